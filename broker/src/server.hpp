// Server: the running broker behind runnel::Broker. Owns the shard threads, the acceptor and
// the connections. Asio appears only in server.cpp; this header keeps it out of everything
// else.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>

#include <runnel/broker/config.hpp>

namespace runnel {

// Lifecycle: start() once; stop() from any thread, once or more; the destructor stops.
// request_stop() may be called from a shard thread (SHUTDOWN): it only records the request,
// under its own mutex, and the stop itself runs on the thread in wait(). (stop() joins the
// shard threads, so a shard thread must never wait for stop_mutex_.)
class Server {
 public:
  explicit Server(Config config);
  ~Server();

  void start();
  [[nodiscard]] std::uint16_t port() const;
  void stop();
  void wait();
  void request_stop();

  struct Impl;  // defined in server.cpp, where the connections use it

 private:
  std::unique_ptr<Impl> impl_;
  std::mutex stop_mutex_;  // serializes start/stop
  bool stopped_ = false;
  bool started_ = false;
  std::mutex request_mutex_;  // guards the two flags below; never held while stopping
  std::condition_variable request_cv_;
  bool stop_requested_ = false;
  bool stop_done_ = false;
};

}  // namespace runnel
