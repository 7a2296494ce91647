// Producer: batches XADDs from many callers into pipelined writes. Entries collect in an open
// batch until it holds max_batch entries or has waited `linger`; a closed batch goes to the
// server as one request of many XADD frames, and each caller gets its entry's ID (or its
// error) back. At most max_in_flight batches are on the wire; closed batches past that wait.
//
// Ordering: the entries of one caller, sent one after another, reach their stream in that
// order (the Producer keeps one queue and one connection).
// Bounds: at most max_buffered entries wait (open batch and closed batches not yet sent);
// a send past it fails at once with Errc::queue_full. A caller that awaits each send is
// never refused.
// Threading: send() and flush() may be called from any thread; completions run on the
// handler's associated executor. The Client must outlive the Producer; destroying the
// Producer fails the entries not yet sent with Errc::stopped (sent ones still complete).
#pragma once

#include <chrono>
#include <cstddef>
#include <exception>
#include <memory>
#include <string_view>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>

#include <runnel/client/client.hpp>
#include <runnel/client/streams.hpp>

namespace runnel::client {

struct ProducerOptions {
  std::size_t max_batch = 256;                // entries in one batch
  // An open batch waits this long for more entries. 0: it closes as soon as the entries sent
  // in the same turn of the event loop are in (no added latency).
  std::chrono::microseconds linger{0};
  std::size_t max_in_flight = 8;              // batches sent and not yet answered
  std::size_t max_buffered = 64 * 1024;       // entries waiting to be sent
};

struct ProducerStats {
  std::uint64_t entries = 0;  // entries answered (with an ID or an error)
  std::uint64_t batches = 0;  // batches sent
  std::uint64_t failed = 0;   // entries answered with an error
};

class Producer {
 public:
  explicit Producer(Client& client, ProducerOptions options = {});
  ~Producer();
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  // XADD `fields` to `stream`; completes with void(std::exception_ptr, StreamId).
  template <class Token>
  auto send(std::string_view stream, const Fields& fields, Token&& token) {
    return send(stream, fields, XAddOptions{}, std::forward<Token>(token));
  }
  template <class Token>
  auto send(std::string_view stream, const Fields& fields, const XAddOptions& options, Token&& token) {
    return boost::asio::async_initiate<Token, void(std::exception_ptr, StreamId)>(
        [this](auto handler, Command command) {
          auto executor = boost::asio::get_associated_executor(handler, executor_);
          enqueue(std::move(command), boost::asio::bind_executor(executor, std::move(handler)));
        },
        token, cmd::xadd(stream, fields, options).command);
  }

  // Sends the open batch now, and completes, void(std::exception_ptr), once every entry
  // sent before this call has been answered (its error, if any, went to its own caller).
  template <class Token>
  auto flush(Token&& token) {
    return boost::asio::async_initiate<Token, void(std::exception_ptr)>(
        [this](auto handler) {
          auto executor = boost::asio::get_associated_executor(handler, executor_);
          start_flush(boost::asio::bind_executor(executor, std::move(handler)));
        },
        token);
  }

  [[nodiscard]] ProducerStats stats() const noexcept;

  struct State;

 private:
  using AddHandler = boost::asio::any_completion_handler<void(std::exception_ptr, StreamId)>;
  using FlushHandler = boost::asio::any_completion_handler<void(std::exception_ptr)>;
  void enqueue(Command command, AddHandler handler);
  void start_flush(FlushHandler handler);

  Client::executor_type executor_;
  std::shared_ptr<State> state_;
};

}  // namespace runnel::client
