// A blocking RESP connection: send commands, read replies (parsed, or as raw bytes).
// The seed of the C++ SDK; the tests and the compatibility harness use it today.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <runnel/protocol/reply_parser.hpp>

namespace runnel::client {

struct ConnectionError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Encodes a command as a RESP multibulk frame, appending to `out`.
void encode_command(std::span<const std::string_view> args, std::string& out);
std::string encode_command(std::initializer_list<std::string_view> args);

// One TCP connection, used from one thread. Every read waits at most `timeout`; on timeout
// or a closed peer it throws ConnectionError.
class Connection {
 public:
  Connection(const std::string& host, std::uint16_t port,
             std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void send_raw(std::string_view bytes);
  void send(std::span<const std::string_view> args);
  void send(std::initializer_list<std::string_view> args) {
    send(std::span<const std::string_view>(args.begin(), args.size()));
  }

  // Reads one whole reply; `raw` (if given) receives its exact bytes.
  protocol::Reply read_reply(std::string* raw = nullptr);
  // Sends a command and reads its reply.
  protocol::Reply call(std::initializer_list<std::string_view> args, std::string* raw = nullptr);
  protocol::Reply call(std::span<const std::string_view> args, std::string* raw = nullptr);

  // Reads until the peer closes or `timeout` passes; returns what arrived (and whatever was
  // buffered). Never throws on timeout.
  std::string read_until_close(std::chrono::milliseconds timeout);
  // True if the peer has closed the connection (checked within `timeout`).
  bool peer_closed(std::chrono::milliseconds timeout);

  void set_timeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }
  [[nodiscard]] int fd() const { return fd_; }

 private:
  // Reads more bytes into buffer_; returns false on EOF.
  bool fill(std::chrono::milliseconds timeout);

  int fd_ = -1;
  std::chrono::milliseconds timeout_;
  std::string buffer_;
};

}  // namespace runnel::client
