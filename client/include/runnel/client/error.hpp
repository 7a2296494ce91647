// The SDK's errors. Three kinds, each an exception type:
// - ServerError: the server answered with an error reply. It carries the server's text and
//   its code (the first word: ERR, NOGROUP, BUSYGROUP, NOAUTH, WRONGPASS, MISCONF, DAMAGED,
//   EXECABORT, ...).
// - ClientError: the request got no reply from the server: it could not connect, the
//   connection was lost with the request in flight, the request timed out, the queue was
//   full, the reply was malformed or too large, the client was stopped. code() is an Errc.
// - UnexpectedReply (a ClientError): the reply arrived but does not have the shape the typed
//   call expects (a server that is not Redis-compatible there).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace runnel::client {

enum class Errc {
  connect_failed = 1,  // no connection could be made within the connect timeout
  not_connected,       // reconnecting is off and the connection is down
  connection_lost,     // the connection dropped with this request in flight (never resent)
  timeout,             // no reply within the request timeout
  queue_full,          // the queue bound was reached and the client fails fast
  reply_too_large,     // a reply passed ClientOptions::max_reply_bytes
  protocol_error,      // the server sent bytes that are not RESP
  unexpected_reply,    // a reply of the wrong shape for a typed call
  stopped,             // the client was closed
  handshake_failed,    // HELLO, AUTH or CLIENT SETNAME was refused
};

const std::error_category& client_category() noexcept;
inline std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), client_category()};
}

class ClientError : public std::system_error {
 public:
  ClientError(Errc code, const std::string& what) : std::system_error(make_error_code(code), what) {}
  [[nodiscard]] Errc errc() const noexcept { return static_cast<Errc>(code().value()); }
};

class UnexpectedReply : public ClientError {
 public:
  explicit UnexpectedReply(const std::string& what) : ClientError(Errc::unexpected_reply, what) {}
};

class ServerError : public std::runtime_error {
 public:
  // `text` is the error reply without its '-': "NOGROUP No such key 'k' or consumer group ...".
  explicit ServerError(std::string text)
      : std::runtime_error(text), code_(text.substr(0, text.find(' '))) {}
  // The first word of the reply: "ERR", "NOGROUP", "WRONGTYPE", ...
  [[nodiscard]] const std::string& code() const noexcept { return code_; }
  [[nodiscard]] bool is(std::string_view code) const noexcept { return code_ == code; }

 private:
  std::string code_;
};

}  // namespace runnel::client

template <>
struct std::is_error_code_enum<runnel::client::Errc> : std::true_type {};
