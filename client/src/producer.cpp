// The Producer's state sits behind one mutex (an uncontended lock per send, where a strand
// would cost a queued operation per send). Handlers are never run under it: they are
// collected, and dispatched once it is released. Entries are numbered as they arrive;
// batches complete in that order (one connection answers in order), so flush() waits for a
// number.
#include <runnel/client/producer.hpp>

#include <atomic>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

namespace runnel::client {
namespace {

namespace asio = boost::asio;
using AddHandler = asio::any_completion_handler<void(std::exception_ptr, StreamId)>;
using FlushHandler = asio::any_completion_handler<void(std::exception_ptr)>;

struct Batch {
  std::string frames;
  std::vector<AddHandler> handlers;
};

template <class H, class... Args>
void dispatch_to(H& handler, Args... args) {
  auto executor = asio::get_associated_executor(handler);
  asio::dispatch(executor, [handler = std::move(handler), args...]() mutable { std::move(handler)(args...); });
}

// Handlers to run once the lock is released. Refusals are posted first (to `executor`), so
// a callback that sends again when refused runs after send() has returned, not inside it.
struct Completions {
  std::vector<std::pair<AddHandler, std::exception_ptr>> adds;
  // (A list: Boost 1.81's any_completion_handler cannot be move-assigned, which a vector
  // may do as it grows.)
  std::list<std::pair<FlushHandler, std::exception_ptr>> flushes;
  template <class Executor>
  void run(const Executor& executor) {
    for (auto& [h, e] : adds) {
      asio::post(executor, [h = std::move(h), e = e]() mutable { dispatch_to(h, e, StreamId{}); });
    }
    for (auto& [h, e] : flushes) dispatch_to(h, e);
  }
};

}  // namespace

struct Producer::State : std::enable_shared_from_this<Producer::State> {
  State(Client& c, ProducerOptions o) : client(c), options(o), linger(c.get_executor()) {}

  void add(Command command, AddHandler handler) {
    Completions done;
    {
      std::lock_guard lock(mutex);
      if (stopped) {
        done.adds.emplace_back(std::move(handler),
                               std::make_exception_ptr(ClientError(Errc::stopped, "the producer is closed")));
      } else if (buffered >= options.max_buffered) {
        done.adds.emplace_back(std::move(handler), std::make_exception_ptr(ClientError(
                                                       Errc::queue_full, "the producer holds max_buffered entries (" +
                                                                             std::to_string(options.max_buffered) + ")")));
      } else {
        ++buffered;
        ++accepted;
        command.encode(open.frames);
        open.handlers.push_back(std::move(handler));
        if (open.handlers.size() >= options.max_batch) {
          close_open();
        } else if (open.handlers.size() == 1) {
          arm_close();
        }
      }
    }
    done.run(client.get_executor());
  }

  // The open batch's first entry sets when it closes: after `linger`, or (no linger) once the
  // work running now is done, holding every entry sent meanwhile.
  void arm_close() {
    const std::uint64_t generation = batch_generation;
    auto close = [self = shared_from_this(), generation](boost::system::error_code ec = {}) {
      if (ec) return;
      std::lock_guard lock(self->mutex);
      if (self->batch_generation == generation) self->close_open();
    };
    if (options.linger.count() == 0) {
      asio::post(client.get_executor(), [close]() mutable { close(); });
    } else {
      linger.expires_after(options.linger);
      linger.async_wait(close);
    }
  }

  // Under the lock. Entries first..first+count have their answers. `answered` moves only
  // over a gap-free prefix: a batch answered early (a failure is completed out of turn)
  // waits in `answered_early` for the ones before it, so a flush never passes an entry whose
  // answer is still to come.
  void mark_answered(std::uint64_t first, std::uint64_t count) {
    if (count == 0) return;
    if (first != answered) {
      answered_early.emplace(first, first + count);
      return;
    }
    answered = first + count;
    for (auto it = answered_early.begin(); it != answered_early.end() && it->first == answered;) {
      answered = it->second;
      it = answered_early.erase(it);
    }
  }

  // Under the lock.
  void close_open() {
    if (open.handlers.empty()) return;
    ++batch_generation;
    closed.push_back(std::move(open));
    open = Batch{};
    send_closed();
  }

  // Under the lock.
  void send_closed() {
    while (!closed.empty() && in_flight < options.max_in_flight) {
      Batch batch = std::move(closed.front());
      closed.pop_front();
      buffered -= batch.handlers.size();
      ++in_flight;
      batches.fetch_add(1, std::memory_order_relaxed);
      const std::size_t count = batch.handlers.size();
      const std::uint64_t first = sent;  // the batch's entries are numbered first..first+count
      sent += count;
      auto handlers = std::make_shared<std::vector<AddHandler>>(std::move(batch.handlers));
      client.run(Request<Reply>{Command::from_frames(std::move(batch.frames)), &identity_reply, count, -1},
                 [self = shared_from_this(), handlers, first](std::exception_ptr error, Reply reply) {
                   self->answered_batch(*handlers, first, error, std::move(reply));
                 });
    }
  }

  void answered_batch(std::vector<AddHandler>& handlers, std::uint64_t first, std::exception_ptr error,
                      Reply reply) {
    std::uint64_t failures = 0;
    for (std::size_t i = 0; i < handlers.size(); ++i) {
      std::exception_ptr e = error;
      StreamId id;
      if (!e) {
        // A batch of one is a one-reply request: its reply is the entry's own.
        const Reply* r = handlers.size() == 1 ? &reply : i < reply.elements.size() ? &reply.elements[i] : nullptr;
        std::optional<StreamId> parsed;
        if (r == nullptr) {
          e = std::make_exception_ptr(UnexpectedReply("XADD: a batch's reply lacks an element"));
        } else if (r->is_error()) {
          e = std::make_exception_ptr(ServerError(r->str));
        } else if (!(parsed = StreamId::parse(r->str))) {
          e = std::make_exception_ptr(UnexpectedReply("XADD: the reply is not an entry ID: " + r->str));
        } else {
          id = *parsed;
        }
      }
      if (e) ++failures;
      dispatch_to(handlers[i], e, id);
    }
    entries.fetch_add(handlers.size(), std::memory_order_relaxed);
    failed.fetch_add(failures, std::memory_order_relaxed);
    Completions done;
    {
      std::lock_guard lock(mutex);
      --in_flight;
      mark_answered(first, handlers.size());
      while (!flushes.empty() && flushes.front().first <= answered) {
        done.flushes.emplace_back(std::move(flushes.front().second), nullptr);
        flushes.pop_front();
      }
      send_closed();
    }
    done.run(client.get_executor());
  }

  void flush(FlushHandler handler) {
    Completions done;
    {
      std::lock_guard lock(mutex);
      close_open();
      if (answered >= accepted) {
        done.flushes.emplace_back(std::move(handler), nullptr);
      } else {
        flushes.emplace_back(accepted, std::move(handler));
      }
    }
    done.run(client.get_executor());
  }

  void stop() {
    Completions done;
    {
      std::lock_guard lock(mutex);
      stopped = true;
      linger.cancel();
      const auto error = std::make_exception_ptr(ClientError(Errc::stopped, "the producer is closed"));
      for (auto& h : open.handlers) done.adds.emplace_back(std::move(h), error);
      for (auto& batch : closed) {
        for (auto& h : batch.handlers) done.adds.emplace_back(std::move(h), error);
      }
      mark_answered(sent, done.adds.size());  // numbered after the batches on the wire
      sent += done.adds.size();
      open = Batch{};
      closed.clear();
      // Flushes complete as the batches on the wire are answered; none are left after them.
      if (in_flight == 0) {
        for (auto& [n, h] : flushes) done.flushes.emplace_back(std::move(h), error);
        flushes.clear();
      }
    }
    done.run(client.get_executor());
  }

  Client& client;
  const ProducerOptions options;
  std::mutex mutex;  // guards everything below
  asio::steady_timer linger;
  Batch open;
  std::deque<Batch> closed;
  std::uint64_t batch_generation = 0;  // batches closed so far (a stale close finds it moved on)
  std::size_t buffered = 0;
  std::size_t in_flight = 0;
  std::uint64_t accepted = 0;  // entries taken (numbered in arrival order)
  std::uint64_t sent = 0;      // entries sent (or dropped by stop), numbered in that order
  std::uint64_t answered = 0;  // entries answered, a gap-free prefix of `sent`
  std::map<std::uint64_t, std::uint64_t> answered_early;  // answered ranges past a gap
  std::deque<std::pair<std::uint64_t, FlushHandler>> flushes;
  bool stopped = false;
  std::atomic<std::uint64_t> entries{0}, batches{0}, failed{0};
};

Producer::Producer(Client& client, ProducerOptions options)
    : executor_(client.get_executor()), state_(std::make_shared<State>(client, options)) {}

Producer::~Producer() { state_->stop(); }

void Producer::enqueue(Command command, AddHandler handler) { state_->add(std::move(command), std::move(handler)); }

void Producer::start_flush(FlushHandler handler) { state_->flush(std::move(handler)); }

ProducerStats Producer::stats() const noexcept {
  return ProducerStats{state_->entries.load(), state_->batches.load(), state_->failed.load()};
}

}  // namespace runnel::client
