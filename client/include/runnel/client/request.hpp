// Request<T>: a command and how to turn its reply into a T. The typed calls of both clients
// are built from these (runnel/client/streams.hpp), so each command's arguments and reply
// shape are written once and serve the async Client and the SyncClient alike.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include <runnel/client/command.hpp>
#include <runnel/protocol/reply_parser.hpp>

namespace runnel::client {

using protocol::Reply;

template <class T>
struct Request {
  using result_type = T;
  Command command;
  // Turns the reply into a T. For a one-reply request, an error reply never reaches it (the
  // client turns it into a ServerError first). It throws UnexpectedReply on a wrong shape.
  T (*parse)(Reply&&) = nullptr;
  // How many replies the command's frames get (MULTI ... EXEC sends several commands as one
  // request, kept together on the connection). With more than one, `parse` receives them all
  // as the elements of one array, error replies included.
  std::size_t replies = 1;
  // A blocking read's BLOCK time in milliseconds (0: no end), or -1 for any other command.
  // The client runs a blocking read on a connection of its own, so it never holds up the
  // requests behind it, and its timeout starts after the BLOCK time.
  std::int64_t block_ms = -1;
  // This request's timeout in milliseconds (0: none), or -1 for the client's request_timeout.
  std::int64_t timeout_ms = -1;
};

// `request` with its own timeout: client.run(with_timeout(cmd::xlen("s"), 50ms), token).
template <class T>
Request<T> with_timeout(Request<T> request, std::chrono::milliseconds timeout) {
  request.timeout_ms = timeout.count();
  return request;
}

// The reply as it is, for `execute`.
inline Reply identity_reply(Reply&& reply) { return std::move(reply); }
// `block_ms` as Request::block_ms; by default, the command's own BLOCK (Command::block_ms).
inline Request<Reply> raw_request(Command command, std::optional<std::int64_t> block_ms = std::nullopt) {
  const std::int64_t block = block_ms ? *block_ms : command.block_ms();
  return Request<Reply>{std::move(command), &identity_reply, 1, block};
}

}  // namespace runnel::client
