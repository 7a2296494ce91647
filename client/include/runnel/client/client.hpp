// Client: the SDK's async core. One connection carries many concurrent requests; requests
// issued while a write is in flight go out together in the next write (automatic
// pipelining), and replies are matched to requests in order. It speaks RESP3 (HELLO 3) and
// falls back to RESP2, authenticates, names itself, reconnects with backoff and jitter, times
// requests out, and bounds what is queued. Blocking reads (XREAD/XREADGROUP BLOCK) run on
// connections of their own, so they never hold up the requests behind them.
//
// Every operation takes an Asio completion token (use_awaitable, a callback, use_future,
// ...), with the signature void(std::exception_ptr, T): the exception is a ServerError for
// an error reply, a ClientError when no reply came (see error.hpp).
//
// Threading: a Client's calls may come from any thread, at once; its state lives on a strand
// of the executor it was given. Completions run on the handler's associated executor (for a
// plain callback, the Client's executor). Destroy the Client before the io_context it runs
// on; destroying it (or close()) fails what is still pending with Errc::stopped.
//
// A blocking read (XREAD/XREADGROUP with BLOCK) gets a connection of its own, whether it
// comes through the typed calls, execute() or raw_request.
#pragma once

#include <exception>
#include <memory>
#include <utility>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>

#include <runnel/client/command.hpp>
#include <runnel/client/error.hpp>
#include <runnel/client/options.hpp>
#include <runnel/client/request.hpp>
#include <runnel/client/streams.hpp>

namespace runnel::client {

// What a Client has done, for metrics and tests. Read with Client::stats().
struct ClientStats {
  std::uint64_t connects = 0;     // connections made and handshaken (the first included)
  std::uint64_t writes = 0;       // socket writes (each may carry many requests)
  std::uint64_t requests = 0;     // requests written
  std::uint64_t timeouts = 0;     // requests that timed out
  std::uint64_t lost = 0;         // requests failed by a lost connection
};

class Client : public StreamCommands<Client> {
 public:
  using executor_type = boost::asio::any_io_executor;

  Client(executor_type executor, ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  [[nodiscard]] executor_type get_executor() const noexcept { return executor_; }

  // Connects and runs the handshake now; void(std::exception_ptr). Optional: the first
  // request connects too. Fails with Errc::connect_failed or Errc::handshake_failed.
  template <class Token>
  auto connect(Token&& token) {
    return boost::asio::async_initiate<Token, void(std::exception_ptr)>(
        [this](auto handler) {
          auto executor = boost::asio::get_associated_executor(handler, executor_);
          start_connect(boost::asio::bind_executor(executor, std::move(handler)));
        },
        token);
  }

  // Runs a typed request (built by the cmd:: functions of streams.hpp, or raw_request).
  template <class T, class Token>
  auto run(Request<T> request, Token&& token) {
    return boost::asio::async_initiate<Token, void(std::exception_ptr, T)>(
        [this](auto handler, Request<T> request) {
          auto executor = boost::asio::get_associated_executor(handler, executor_);
          auto parse = request.parse;
          submit(std::move(request.command), request.replies, request.block_ms, request.timeout_ms,
                 boost::asio::bind_executor(
                     executor, [handler = std::move(handler), parse](std::exception_ptr error,
                                                                     Reply reply) mutable {
                       T value{};
                       if (!error) {
                         try {
                           value = parse(std::move(reply));
                         } catch (...) {
                           error = std::current_exception();
                         }
                       }
                       std::move(handler)(error, std::move(value));
                     }));
        },
        token, std::move(request));
  }

  // Any command; the reply as it is (an error reply completes with a ServerError). A blocking
  // XREAD/XREADGROUP runs on a connection of its own.
  template <class Token>
  auto execute(Command command, Token&& token) {
    return run(raw_request(std::move(command)), std::forward<Token>(token));
  }

  // Fails everything pending with Errc::stopped and closes the connections. Idempotent;
  // any thread.
  void close();

  // 3 once a HELLO 3 succeeded, 2 after a fallback, 0 before the first connection.
  [[nodiscard]] int protocol() const noexcept;
  [[nodiscard]] ClientStats stats() const noexcept;

  struct Core;

 private:
  using Handler = boost::asio::any_completion_handler<void(std::exception_ptr, Reply)>;
  using ConnectHandler = boost::asio::any_completion_handler<void(std::exception_ptr)>;
  void submit(Command command, std::size_t replies, std::int64_t block_ms, std::int64_t timeout_ms,
              Handler handler);
  void start_connect(ConnectHandler handler);

  executor_type executor_;
  std::shared_ptr<Core> core_;
};

}  // namespace runnel::client
