// Worker: a consumer-group worker with at-least-once delivery, the loop every team writes
// again: read, handle, acknowledge, retry, reclaim stuck entries, give up on poison ones.
//
//   start   creates the group if missing (MKSTREAM, at `group_start`), re-reads the
//           consumer's own pending history (ID 0), then reads new entries (`>`).
//   handle  up to `concurrency` handlers at once; at most `max_fetched` entries fetched and
//           not yet finished. A handler that returns acknowledges its entry (XACK).
//   fail    a handler that throws leaves its entry pending. After a backoff (doubling per
//           delivery) the Worker claims it again (XCLAIM, which counts a delivery) and retries.
//   claim   once the history is read, every `claim_interval` it takes over entries idle past
//           `claim_after` that it
//           does not hold (XPENDING IDLE, then XCLAIM): those of consumers that died, and its
//           own left behind (a failed XACK).
//   dead    an entry whose delivery count (from the PEL) reaches `max_deliveries` and fails,
//           or that arrives with a count past it, goes to the dead-letter stream with its ID,
//           fields, group, consumer, delivery count and last error; its XADD and its XACK
//           are one MULTI/EXEC, so a crash cannot lose it or dead-letter it twice. (EXEC does
//           not roll back: if the XADD fails there, because the dead-letter key holds
//           another type, the entry is acknowledged without its dead letter; the error hook
//           says so, and the stats count it.)
//   stop    fetching stops; handlers in flight finish and are acknowledged, within a
//           deadline. Entries fetched and not started stay pending (read again at the next
//           start, or claimed by another worker). The stop completes once the handlers and
//           the background loops have ended: a read in flight ends within `block`.
//
// Threading: the Worker runs on a strand of the Client's executor; handlers are coroutines
// run there (a handler doing blocking work should hand it to a thread pool). start() and
// stop() may be called from any thread. A stopped Worker does not start again: make a new
// one. Destroying a running Worker stops it without waiting: handlers in flight finish and
// are acknowledged in the background, through the Client. So the Client must outlive them
// too: stop() and wait for it before destroying the Client (or stop its io_context first).
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_executor.hpp>

#include <runnel/client/client.hpp>
#include <runnel/client/streams.hpp>

namespace runnel::client {

struct WorkerOptions {
  std::string stream;
  std::string group;
  std::string consumer;             // empty: "<hostname>-<pid>"
  std::string group_start = "0";    // where a group the Worker creates starts ("0": every entry)
  std::size_t concurrency = 8;      // handlers running at once
  std::size_t max_fetched = 64;     // entries fetched and not yet finished (running included)
  std::chrono::milliseconds block{1000};          // XREADGROUP BLOCK per read
  std::chrono::milliseconds claim_after{30000};   // reclaim entries idle this long
  std::chrono::milliseconds claim_interval{0};    // 0: claim_after / 2
  std::uint64_t max_deliveries = 5;               // then the dead-letter stream
  std::chrono::milliseconds retry_backoff{500};   // before the first retry; doubles per delivery
  std::chrono::milliseconds retry_backoff_max{30000};
  std::string dead_letter_stream;                 // empty: "<stream>:dlq"
  std::chrono::milliseconds lag_interval{0};      // how often the lag hook reads XINFO GROUPS (0: never)
};

// Hooks for metrics and logs. Each is optional; they run on the Worker's strand.
struct WorkerHooks {
  std::function<void(const Entry&, std::chrono::nanoseconds handler_time)> processed;
  std::function<void(const Entry&, const std::string& error, std::uint64_t deliveries)> failed;
  std::function<void(const Entry&, std::uint64_t deliveries)> retried;
  std::function<void(const Entry&, std::uint64_t deliveries, const std::string& error)> dead_lettered;
  // From XINFO GROUPS every lag_interval: the group's lag (empty when the server cannot
  // tell) and its pending count.
  std::function<void(std::optional<std::uint64_t> lag, std::uint64_t pending)> lag;
  // Something the Worker could not do (a read, an ack, a claim, a dead letter), with the
  // cause. It goes on: reads are retried with backoff, and entries left pending come back
  // through claiming.
  std::function<void(const std::string& what)> error;
};

struct WorkerStats {
  std::uint64_t processed = 0;
  std::uint64_t failed = 0;
  std::uint64_t retried = 0;
  std::uint64_t dead_lettered = 0;
  std::uint64_t claimed = 0;
  std::uint64_t dead_letter_failures = 0;  // acknowledged, but the dead letter's XADD failed
};

// What a dead-lettered entry carries, before the original fields (field names).
inline constexpr const char* kDeadLetterFields[] = {"dlq-stream",    "dlq-id",         "dlq-group",
                                                    "dlq-consumer",  "dlq-deliveries", "dlq-error"};

using WorkerHandler = std::function<boost::asio::awaitable<void>(const Entry&)>;

class Worker {
 public:
  Worker(Client& client, WorkerOptions options, WorkerHandler handler, WorkerHooks hooks = {});
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void start();

  // Stops, and completes, void(std::exception_ptr), once the handlers in flight have
  // finished and been acknowledged; with Errc::timeout if `deadline` passes first.
  template <class Token>
  auto stop(std::chrono::milliseconds deadline, Token&& token) {
    return boost::asio::async_initiate<Token, void(std::exception_ptr)>(
        [this, deadline](auto handler) {
          auto executor = boost::asio::get_associated_executor(handler, executor_);
          start_stop(deadline, boost::asio::bind_executor(executor, std::move(handler)));
        },
        token);
  }

  [[nodiscard]] WorkerStats stats() const noexcept;
  [[nodiscard]] const std::string& consumer() const noexcept;

  struct State;

 private:
  using StopHandler = boost::asio::any_completion_handler<void(std::exception_ptr)>;
  void start_stop(std::chrono::milliseconds deadline, StopHandler handler);

  Client::executor_type executor_;
  std::shared_ptr<State> state_;
};

}  // namespace runnel::client
