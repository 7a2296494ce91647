// TestBroker: an embedded broker as a test fixture. It makes a fresh data dir under the
// system's temp dir, starts a Broker on 127.0.0.1 with a port the kernel picks, and on
// destruction stops it and removes the dir. One shard and quiet logs unless the Config
// given says otherwise.
//
//   runnel::TestBroker broker;                 // started
//   runnel::client::ClientOptions options;
//   options.port = broker.port();
//
// Lifecycle: started by the constructor (which throws std::runtime_error if it cannot
// start), stopped by stop() or the destructor. Not copyable or movable.
#pragma once

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>

#include <runnel/broker/broker.hpp>

namespace runnel {

class TestBroker {
 public:
  explicit TestBroker(Config config = quiet_config()) : dir_(make_temp_dir()) {
    config.bind = "127.0.0.1";
    config.port = 0;
    config.dir = (dir_ / "data").string();
    broker_ = std::make_unique<Broker>(std::move(config));
    try {
      broker_->start();
    } catch (...) {
      remove_dir();
      throw;
    }
  }
  ~TestBroker() {
    broker_->stop();
    broker_.reset();
    remove_dir();
  }
  TestBroker(const TestBroker&) = delete;
  TestBroker& operator=(const TestBroker&) = delete;

  [[nodiscard]] std::uint16_t port() const { return broker_->port(); }
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }
  [[nodiscard]] Broker& broker() { return *broker_; }
  void stop() { broker_->stop(); }

  // One shard, warnings only: what a test usually wants.
  static Config quiet_config() {
    Config config;
    config.threads = 1;
    config.loglevel = "warning";
    return config;
  }

 private:
  static std::filesystem::path make_temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "runnel-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::runtime_error("TestBroker: cannot make a temporary directory under " +
                               std::filesystem::temp_directory_path().string());
    }
    return pattern;
  }
  void remove_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::filesystem::path dir_;
  std::unique_ptr<Broker> broker_;
};

}  // namespace runnel
