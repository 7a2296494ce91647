// ClientOptions: where a client connects, how it says hello, and the bounds it keeps.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace runnel::client {

struct ClientOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;

  // Sent with HELLO (RESP3) or AUTH (RESP2) on every connection. An empty username with a
  // password authenticates as the default user.
  std::string username;
  std::string password;
  std::string client_name;  // CLIENT SETNAME, when not empty
  // CLIENT SETINFO LIB-NAME / LIB-VER (servers before Redis 7.2 refuse it; that is ignored).
  std::string lib_name = "runnel-cpp";
  std::string lib_version = "0.2.0";
  // Speak RESP3 (HELLO 3); false, or a server that refuses HELLO 3, gives RESP2. Typed calls
  // parse both.
  bool resp3 = true;

  std::chrono::milliseconds connect_timeout{5000};
  // Longest wait for a reply, counted from the call (0: no bound); a request may carry its
  // own (with_timeout in request.hpp). A blocking read gets its BLOCK time on top. A
  // timed-out request completes with Errc::timeout; its reply, if it comes later, is dropped.
  std::chrono::milliseconds request_timeout{10000};

  // After a lost connection: reconnect with exponential backoff (from min to max, with
  // jitter) and run the handshake again. Requests in flight fail with
  // Errc::connection_lost and are never resent; requests not yet written wait for the
  // new connection (within their timeout).
  bool reconnect = true;
  std::chrono::milliseconds reconnect_min{50};
  std::chrono::milliseconds reconnect_max{2000};

  // Back-pressure: requests issued but not yet answered, by count and by encoded bytes.
  // Past either bound a call waits for room, or fails at once with Errc::queue_full when
  // fail_when_full is set. One request larger than max_queued_bytes is still let through
  // when nothing else is queued.
  std::size_t max_queued_requests = 16384;
  std::size_t max_queued_bytes = 64ull * 1024 * 1024;
  bool fail_when_full = false;

  // A reply whose bytes pass this fails with Errc::reply_too_large and closes the connection.
  std::size_t max_reply_bytes = 512ull * 1024 * 1024;
  // Blocking reads each take a connection of their own, kept for reuse; at most this many
  // connections. Past that, a blocking read queues behind the least loaded one's current read.
  std::size_t max_blocking_connections = 16;
};

}  // namespace runnel::client
