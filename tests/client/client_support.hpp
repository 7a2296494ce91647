// Test support for the SDK's tests: client options for a test server, and an io_context run
// by a thread of its own for the whole test.
#pragma once

#include <chrono>
#include <cstdint>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <runnel/client/options.hpp>

namespace runnel::test {

inline client::ClientOptions options_for(std::uint16_t port) {
  client::ClientOptions options;
  options.port = port;
  options.request_timeout = std::chrono::seconds(10);
  return options;
}

struct IoThread {
  boost::asio::io_context io{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};
  std::thread thread{[this] { io.run(); }};
  ~IoThread() {
    work.reset();
    io.stop();
    thread.join();
  }
};

}  // namespace runnel::test
