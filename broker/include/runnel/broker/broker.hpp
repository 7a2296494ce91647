// Broker: the whole Runnel server as a class, for runnel-server and for embedding in tests
// and applications.
#pragma once

#include <cstdint>
#include <memory>

#include <runnel/broker/config.hpp>

namespace runnel {

class Server;

// Lifecycle: construct with a Config, start() once, then stop() (or the SHUTDOWN command);
// the destructor stops a running broker. start() throws std::runtime_error when the server
// cannot start (the data dir is locked by another server, the address is taken, ...).
// start(), stop() and wait() are called from the owning thread; the broker runs its own
// threads (one per shard).
class Broker {
 public:
  explicit Broker(Config config);
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  void start();
  // The port the server listens on: the configured one, or the one picked for port 0.
  [[nodiscard]] std::uint16_t port() const;
  // Stops accepting, lets in-flight commands finish and their replies go out, closes
  // connections and files. Idempotent.
  void stop();
  // Blocks until the server has stopped (by stop() from another thread, SHUTDOWN, or a signal
  // that the caller turns into stop()).
  void wait();

 private:
  std::unique_ptr<Server> server_;
};

}  // namespace runnel
