// The Worker's coroutines, all on one strand: fetch (history, then new entries), claim
// (XAUTOCLAIM), lag (XINFO GROUPS), and one per entry in hand (handle, ack, retry, dead-letter).
#include <runnel/client/worker.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <list>
#include <map>
#include <set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace runnel::client {
namespace {

namespace asio = boost::asio;
using asio::use_awaitable;
using Clock = std::chrono::steady_clock;

std::string default_consumer() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return std::string(host[0] != '\0' ? host : "worker") + "-" + std::to_string(::getpid());
}

std::string describe(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what()[0] != '\0' ? e.what() : "an exception with no text";
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

// Runs a user hook; a hook that throws is not the Worker's failure.
template <class F, class... Args>
void call_hook(const F& hook, Args&&... args) {
  if (!hook) return;
  try {
    hook(std::forward<Args>(args)...);
  } catch (...) {
  }
}

struct Job {
  Entry entry;
  std::uint64_t deliveries = 0;  // 0: not known yet (read from the PEL before handling)
};

}  // namespace

struct Worker::State : std::enable_shared_from_this<Worker::State> {
  State(Client& c, WorkerOptions o, WorkerHandler h, WorkerHooks k)
      : client(c), options(std::move(o)), handler(std::move(h)), hooks(std::move(k)),
        strand(asio::make_strand(c.get_executor())), room(strand) {
    if (options.consumer.empty()) options.consumer = default_consumer();
    if (options.dead_letter_stream.empty()) options.dead_letter_stream = options.stream + ":dlq";
    if (options.claim_interval.count() == 0) {
      options.claim_interval = std::max(options.claim_after / 2, std::chrono::milliseconds(10));
    }
    options.concurrency = std::max<std::size_t>(options.concurrency, 1);
    options.max_fetched = std::max(options.max_fetched, options.concurrency);
    options.max_deliveries = std::max<std::uint64_t>(options.max_deliveries, 1);
  }

  // --- fetching --------------------------------------------------------------------------

  asio::awaitable<void> fetch_loop(std::shared_ptr<State> self) {
    ++loops;
    bool history = true;  // the consumer's own pending entries first
    StreamId after;
    bool have_group = false;
    std::chrono::milliseconds backoff{0};
    while (!stopping) {
      try {
        if (!have_group) {
          co_await ensure_group();
          have_group = true;
        }
        co_await wait_for_room();
        if (stopping) break;
        XReadGroupOptions read;
        read.count = options.max_fetched - outstanding;
        if (!history) read.block = options.block;
        // (Requests are built before co_await: GCC 12 miscompiles an initializer list
        // inside a co_await expression.)
        const StreamCursors cursors{{options.stream, history ? after.to_string() : std::string(">")}};
        auto request = cmd::xreadgroup(options.group, options.consumer, cursors, read);
        auto got = co_await client.run(std::move(request), use_awaitable);
        backoff = std::chrono::milliseconds(0);
        std::vector<Entry> entries = got.empty() ? std::vector<Entry>{} : std::move(got.front().entries);
        if (history) {
          if (entries.empty()) {
            history = false;
            // Claiming starts once the history is read: a claim before it could take an
            // entry the history read then hands out a second time.
            asio::co_spawn(strand, claim_loop(shared_from_this()), asio::detached);
            continue;
          }
          after = entries.back().id;
        }
        if (stopping) break;  // read after stop: they stay pending
        for (Entry& entry : entries) {
          if (stopping) break;
          if (entry.deleted) {  // pending, but gone from the stream: nothing to handle
            try {
              auto ack = cmd::xack(options.stream, options.group, std::vector<StreamId>{entry.id});
              co_await client.run(std::move(ack), use_awaitable);
            } catch (const std::exception& e) {
              report_error("acknowledging a deleted entry", e);  // it is claimed later
            }
            continue;
          }
          admit(Job{std::move(entry), history ? 0u : 1u});
        }
      } catch (const ServerError& e) {
        if (e.is("NOGROUP")) have_group = false;  // the stream or group was deleted
        report_error("reading entries", e);
        backoff = next_backoff(backoff);
      } catch (const ClientError& e) {
        if (e.errc() == Errc::stopped) break;
        report_error("reading entries", e);
        backoff = next_backoff(backoff);
      }
      if (backoff.count() > 0) co_await sleep(backoff);
    }
    loop_ended();
    (void)self;
  }

  asio::awaitable<void> ensure_group() {
    try {
      co_await client.run(cmd::xgroup_create(options.stream, options.group, options.group_start, true),
                          use_awaitable);
    } catch (const ServerError& e) {
      if (!e.is("BUSYGROUP")) throw;
    }
  }

  asio::awaitable<void> wait_for_room() {
    while (!stopping && outstanding >= options.max_fetched) {
      room.expires_at(Clock::time_point::max());
      boost::system::error_code ignored;
      co_await room.async_wait(asio::redirect_error(use_awaitable, ignored));
    }
  }

  // --- claiming ----------------------------------------------------------------------------

  asio::awaitable<void> claim_loop(std::shared_ptr<State> self) {
    ++loops;
    while (!stopping) {
      co_await sleep(options.claim_interval);
      // One pass over the group's PEL: the entries idle past claim_after that this Worker
      // does not hold, claimed with XCLAIM. (Not XAUTOCLAIM: it would also claim entries this
      // Worker is still handling or about to retry, counting a delivery and resetting their
      // idle time under them.)
      StreamId from;
      for (int round = 0; round < 100 && !stopping; ++round) {
        const std::size_t space = options.max_fetched - std::min(outstanding, options.max_fetched);
        if (space == 0) break;
        XPendingOptions idle;
        idle.idle_ms = static_cast<std::uint64_t>(options.claim_after.count());
        idle.start = RangeBound(from);
        idle.count = space;
        try {
          auto listing = cmd::xpending(options.stream, options.group, idle);
          const std::vector<PendingEntry> stuck = co_await client.run(std::move(listing), use_awaitable);
          if (stopping) break;
          std::vector<StreamId> ids;
          std::map<StreamId, std::uint64_t> deliveries;
          for (const PendingEntry& p : stuck) {
            if (in_hand.count(p.id) != 0) continue;  // ours, and still running or retrying
            ids.push_back(p.id);
            deliveries[p.id] = p.deliveries;
          }
          if (!ids.empty()) {
            auto claim = cmd::xclaim(options.stream, options.group, options.consumer,
                                     static_cast<std::uint64_t>(options.claim_after.count()), ids);
            for (Entry& entry : co_await client.run(std::move(claim), use_awaitable)) {
              if (stopping || in_hand.count(entry.id) != 0) continue;
              claims.fetch_add(1, std::memory_order_relaxed);
              const std::uint64_t count = deliveries[entry.id] + 1;  // the claim counted one
              admit(Job{std::move(entry), count});
            }
          }
          if (stuck.size() < space || stuck.empty()) break;
          from = stuck.back().id.next();
        } catch (const std::exception& e) {
          report_error("claiming idle entries", e);
          break;  // the next pass tries again
        }
      }
    }
    loop_ended();
    (void)self;
  }

  asio::awaitable<void> lag_loop(std::shared_ptr<State> self) {
    ++loops;
    while (!stopping) {
      try {
        for (const GroupInfo& g : co_await client.run(cmd::xinfo_groups(options.stream), use_awaitable)) {
          if (g.name == options.group) call_hook(hooks.lag, g.lag, g.pending);
        }
      } catch (const std::exception& e) {
        report_error("reading the group's lag", e);
      }
      if (!stopping) co_await sleep(options.lag_interval);
    }
    loop_ended();
    (void)self;
  }

  // A background loop ended; once none runs and no handler does, a stop is complete.
  void loop_ended() {
    --loops;
    if (running == 0 && loops == 0) finish_stops(nullptr);
  }

  // --- handling ----------------------------------------------------------------------------

  void admit(Job job) {
    if (!in_hand.insert(job.entry.id).second) return;  // already held: never handled twice at once
    ++outstanding;
    ready.push_back(std::move(job));
    pump();
  }

  void pump() {
    while (running < options.concurrency && !ready.empty() && !stopping) {
      Job job = std::move(ready.front());
      ready.pop_front();
      ++running;
      asio::co_spawn(strand, handle(shared_from_this(), std::move(job)), asio::detached);
    }
  }

  asio::awaitable<void> handle(std::shared_ptr<State> self, Job job) {
    const StreamId id = job.entry.id;
    try {
      co_await handle_job(job);
    } catch (const std::exception& e) {
      // A failed XACK, XCLAIM or lookup: the entry stays pending and comes back (claimed).
      report_error("handling entry " + id.to_string(), e);
    }
    --running;
    --outstanding;
    in_hand.erase(id);
    room.cancel();
    pump();
    if (running == 0 && loops == 0) finish_stops(nullptr);
    (void)self;
  }

  asio::awaitable<void> handle_job(Job& job) {
    for (;;) {
      if (job.deliveries == 0) {
        job.deliveries = co_await deliveries_of(job.entry.id);
        if (job.deliveries == 0) co_return;  // no longer pending (acknowledged elsewhere)
      }
      if (job.deliveries > options.max_deliveries) {
        co_await dead_letter(job, "delivered " + std::to_string(job.deliveries) +
                                      " times, past max_deliveries (" + std::to_string(options.max_deliveries) + ")");
        co_return;
      }
      std::exception_ptr error;
      const auto began = Clock::now();
      try {
        co_await handler(job.entry);
      } catch (...) {
        error = std::current_exception();
      }
      if (!error) {
        auto ack = cmd::xack(options.stream, options.group, std::vector<StreamId>{job.entry.id});
        co_await client.run(std::move(ack), use_awaitable);
        processed.fetch_add(1, std::memory_order_relaxed);
        call_hook(hooks.processed, job.entry, Clock::now() - began);
        co_return;
      }
      const std::string why = describe(error);
      failures.fetch_add(1, std::memory_order_relaxed);
      call_hook(hooks.failed, job.entry, why, job.deliveries);
      if (job.deliveries >= options.max_deliveries) {
        co_await dead_letter(job, why);
        co_return;
      }
      if (stopping) co_return;  // stays pending
      auto backoff = options.retry_backoff;
      for (std::uint64_t i = 1; i < job.deliveries && backoff < options.retry_backoff_max; ++i) backoff *= 2;
      backoff = std::min(backoff, options.retry_backoff_max);
      co_await sleep(backoff);
      if (stopping) co_return;
      // Claiming it again counts a delivery. Nothing comes back if another consumer took it
      // meanwhile (its idle time restarted) or it was acknowledged or deleted.
      auto claim = cmd::xclaim(options.stream, options.group, options.consumer,
                               static_cast<std::uint64_t>(backoff.count()), std::vector<StreamId>{job.entry.id});
      auto again = co_await client.run(std::move(claim), use_awaitable);
      if (again.empty()) co_return;
      job.entry = std::move(again.front());
      ++job.deliveries;
      retries.fetch_add(1, std::memory_order_relaxed);
      call_hook(hooks.retried, job.entry, job.deliveries);
    }
  }

  asio::awaitable<std::uint64_t> deliveries_of(StreamId id) {
    XPendingOptions range;
    range.start = RangeBound(id);
    range.end = RangeBound(id);
    range.count = 1;
    auto pending = co_await client.run(cmd::xpending(options.stream, options.group, range), use_awaitable);
    co_return pending.empty() ? 0 : pending.front().deliveries;
  }

  // XADD to the dead-letter stream and XACK, as one transaction.
  asio::awaitable<void> dead_letter(const Job& job, const std::string& why) {
    const Request<TransactionResult> request = dead_letter_request(job, why);
    const TransactionResult result = co_await client.run(request, use_awaitable);
    if (result.replies.size() == 2 && !result.replies[0].is_error()) {
      dead.fetch_add(1, std::memory_order_relaxed);
      call_hook(hooks.dead_lettered, job.entry, job.deliveries, why);
      return_if_ack_failed(result, job);
    } else if (result.replies.size() == 2) {
      // EXEC does not roll back: the XADD failed (the dead-letter key holds another type)
      // while the XACK ran. Said loudly; the entry's content is in the hook's Entry.
      dead_letter_failures.fetch_add(1, std::memory_order_relaxed);
      call_hook(hooks.error, "entry " + job.entry.id.to_string() + " was acknowledged but not dead-lettered: " +
                                 result.replies[0].str);
    }
  }

  void return_if_ack_failed(const TransactionResult& result, const Job& job) {
    if (result.replies[1].is_error()) {
      call_hook(hooks.error, "dead letter of " + job.entry.id.to_string() + " was added, its XACK failed: " +
                                 result.replies[1].str);
    }
  }

  void report_error(const std::string& doing, const std::exception& e) {
    call_hook(hooks.error, doing + ": " + e.what());
  }

  Request<TransactionResult> dead_letter_request(const Job& job, const std::string& why) const {
    Fields fields{{kDeadLetterFields[0], options.stream},
                  {kDeadLetterFields[1], job.entry.id.to_string()},
                  {kDeadLetterFields[2], options.group},
                  {kDeadLetterFields[3], options.consumer},
                  {kDeadLetterFields[4], std::to_string(job.deliveries)},
                  {kDeadLetterFields[5], why}};
    fields.insert(fields.end(), job.entry.fields.begin(), job.entry.fields.end());
    Transaction tx;
    tx.add(cmd::xadd(options.dead_letter_stream, fields));
    tx.add(cmd::xack(options.stream, options.group, std::vector<StreamId>{job.entry.id}));
    return tx.request();
  }

  // --- timing and stopping -----------------------------------------------------------------

  asio::awaitable<void> sleep(std::chrono::milliseconds d) {
    asio::steady_timer timer(strand, d);
    sleepers.insert(&timer);
    boost::system::error_code ignored;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ignored));
    sleepers.erase(&timer);
  }

  std::chrono::milliseconds next_backoff(std::chrono::milliseconds b) const {
    return std::clamp(b * 2, std::chrono::milliseconds(50), std::chrono::milliseconds(2000));
  }

  void start() {
    if (started || stopping) return;
    started = true;
    auto self = shared_from_this();
    asio::co_spawn(strand, fetch_loop(self), asio::detached);  // it starts the claim loop
    if (options.lag_interval.count() > 0) asio::co_spawn(strand, lag_loop(self), asio::detached);
  }

  void stop(std::chrono::milliseconds deadline, StopHandler handler) {
    if (!stopping) {
      stopping = true;
      room.cancel();
      for (auto* timer : sleepers) timer->cancel();
      for (Job& job : ready) in_hand.erase(job.entry.id);  // not started: they stay pending
      outstanding -= ready.size();
      ready.clear();
    }
    if (!handler) return;
    if (running == 0 && loops == 0) {
      auto executor = asio::get_associated_executor(handler);
      asio::dispatch(executor, [h = std::move(handler)]() mutable { std::move(h)(nullptr); });
      return;
    }
    auto timer = std::make_shared<asio::steady_timer>(strand, deadline);
    stops.push_back({timer, std::move(handler)});
    timer->async_wait([self = shared_from_this(), timer](boost::system::error_code ec) {
      if (ec) return;
      self->finish_stops(timer.get());
    });
  }

  // Completes stop() calls: all once nothing runs (`expired` null), or the one whose
  // deadline passed.
  void finish_stops(asio::steady_timer* expired) {
    for (auto it = stops.begin(); it != stops.end();) {
      if (expired != nullptr && it->first.get() != expired) {
        ++it;
        continue;
      }
      std::exception_ptr error;
      if (expired != nullptr) {
        error = std::make_exception_ptr(ClientError(
            Errc::timeout, "the worker's handlers did not finish within the stop deadline (" +
                               std::to_string(running) + " still running)"));
      }
      it->first->cancel();
      auto executor = asio::get_associated_executor(it->second);
      asio::dispatch(executor, [h = std::move(it->second), error]() mutable { std::move(h)(error); });
      it = stops.erase(it);
    }
  }

  Client& client;
  WorkerOptions options;
  WorkerHandler handler;
  WorkerHooks hooks;
  asio::strand<Client::executor_type> strand;
  asio::steady_timer room;  // wakes the fetcher when room frees
  std::set<asio::steady_timer*> sleepers;
  std::deque<Job> ready;  // fetched, waiting for a handler slot
  std::set<StreamId> in_hand;
  std::size_t outstanding = 0;  // fetched and not finished
  std::size_t running = 0;
  int loops = 0;  // background loops (fetch, claim, lag) still running
  bool started = false;
  bool stopping = false;
  // (A list: erasing from a vector would move-assign handlers, which Boost 1.81 cannot do.)
  std::list<std::pair<std::shared_ptr<asio::steady_timer>, StopHandler>> stops;
  std::atomic<std::uint64_t> processed{0}, failures{0}, retries{0}, dead{0}, claims{0}, dead_letter_failures{0};
};

Worker::Worker(Client& client, WorkerOptions options, WorkerHandler handler, WorkerHooks hooks)
    : executor_(client.get_executor()),
      state_(std::make_shared<State>(client, std::move(options), std::move(handler), std::move(hooks))) {}

Worker::~Worker() {
  asio::dispatch(state_->strand, [state = state_] { state->stop(std::chrono::milliseconds(0), StopHandler()); });
}

void Worker::start() {
  asio::dispatch(state_->strand, [state = state_] { state->start(); });
}

void Worker::start_stop(std::chrono::milliseconds deadline, StopHandler handler) {
  asio::dispatch(state_->strand, [state = state_, deadline, handler = std::move(handler)]() mutable {
    state->stop(deadline, std::move(handler));
  });
}

WorkerStats Worker::stats() const noexcept {
  return WorkerStats{state_->processed.load(), state_->failures.load(), state_->retries.load(),
                     state_->dead.load(),      state_->claims.load(),   state_->dead_letter_failures.load()};
}

const std::string& Worker::consumer() const noexcept { return state_->options.consumer; }

}  // namespace runnel::client
