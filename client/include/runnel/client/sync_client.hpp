// SyncClient: blocking calls over the async core, for simple programs, tools and tests.
// Its header includes no Asio header: the core and the thread that runs it live behind it.
//
// Threading: the calls of one SyncClient may come from any threads, at once; each blocks its
// caller until its reply (or error) is there, and concurrent callers share the connection's
// pipeline. A blocking read (XREAD/XREADGROUP BLOCK) runs on a connection of its own, so it
// blocks only its caller.
#pragma once

#include <memory>
#include <string_view>
#include <utility>

#include <runnel/client/command.hpp>
#include <runnel/client/error.hpp>
#include <runnel/client/options.hpp>
#include <runnel/client/request.hpp>
#include <runnel/client/streams.hpp>

namespace runnel::client {

class SyncClient : public StreamCommands<SyncClient> {
 public:
  // Connects and runs the handshake; throws ClientError if that fails.
  explicit SyncClient(ClientOptions options = {});
  ~SyncClient();
  SyncClient(const SyncClient&) = delete;
  SyncClient& operator=(const SyncClient&) = delete;

  // Runs a typed request: its reply parsed, a ServerError for an error reply, a ClientError
  // when no reply came.
  template <class T>
  T run(Request<T> request) {
    auto parse = request.parse;
    return parse(call(std::move(request.command), request.replies, request.block_ms, request.timeout_ms));
  }
  // Any command: execute("XLEN", "orders"). The reply as it is (an error reply throws). An
  // XREAD/XREADGROUP with BLOCK gets a connection of its own, as the typed calls do.
  template <class... Args>
  Reply execute(std::string_view name, const Args&... args) {
    return execute(Command(name, args...));
  }
  Reply execute(Command command) {
    const std::int64_t block = command.block_ms();
    return call(std::move(command), 1, block, -1);
  }

  // 3 after a successful HELLO 3, else 2.
  [[nodiscard]] int protocol() const;

 private:
  Reply call(Command command, std::size_t replies, std::int64_t block_ms, std::int64_t timeout_ms);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace runnel::client
