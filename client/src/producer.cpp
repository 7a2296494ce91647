// The Producer's state lives on a strand of the client's executor. Entries are numbered as
// they arrive; batches complete in that order (one connection answers in order), so flush()
// waits for a number.
#include <runnel/client/producer.hpp>

#include <atomic>
#include <deque>
#include <string>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

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

}  // namespace

struct Producer::State : std::enable_shared_from_this<Producer::State> {
  State(Client& c, ProducerOptions o)
      : client(c), options(o), strand(asio::make_strand(c.get_executor())), linger(strand) {}

  void add(Command command, AddHandler handler) {
    if (stopped) {
      dispatch_to(handler, std::make_exception_ptr(ClientError(Errc::stopped, "the producer is closed")), StreamId{});
      return;
    }
    if (buffered >= options.max_buffered) {
      dispatch_to(handler,
                  std::make_exception_ptr(ClientError(Errc::queue_full, "the producer holds max_buffered entries (" +
                                                                            std::to_string(options.max_buffered) + ")")),
                  StreamId{});
      return;
    }
    ++buffered;
    ++accepted;
    command.encode(open.frames);
    open.handlers.push_back(std::move(handler));
    if (open.handlers.size() >= options.max_batch || options.linger.count() == 0) {
      close_open();
    } else if (open.handlers.size() == 1) {
      linger.expires_after(options.linger);
      linger.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (!ec) self->close_open();
      });
    }
  }

  void close_open() {
    if (open.handlers.empty()) return;
    linger.cancel();
    closed.push_back(std::move(open));
    open = Batch{};
    send_closed();
  }

  void send_closed() {
    while (!closed.empty() && in_flight < options.max_in_flight) {
      Batch batch = std::move(closed.front());
      closed.pop_front();
      buffered -= batch.handlers.size();
      ++in_flight;
      batches.fetch_add(1, std::memory_order_relaxed);
      const std::size_t count = batch.handlers.size();
      auto handlers = std::make_shared<std::vector<AddHandler>>(std::move(batch.handlers));
      client.run(Request<Reply>{Command::from_frames(std::move(batch.frames)), &identity_reply, count, -1},
                 asio::bind_executor(strand, [self = shared_from_this(), handlers](std::exception_ptr error,
                                                                                   Reply reply) {
                   self->answered_batch(*handlers, error, std::move(reply));
                 }));
    }
  }

  void answered_batch(std::vector<AddHandler>& handlers, std::exception_ptr error, Reply reply) {
    --in_flight;
    std::uint64_t failures = 0;
    for (std::size_t i = 0; i < handlers.size(); ++i) {
      std::exception_ptr e = error;
      StreamId id;
      if (!e) {
        const Reply* r = i < reply.elements.size() ? &reply.elements[i] : nullptr;
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
    answered += handlers.size();
    entries.fetch_add(handlers.size(), std::memory_order_relaxed);
    failed.fetch_add(failures, std::memory_order_relaxed);
    while (!flushes.empty() && flushes.front().first <= answered) {
      dispatch_to(flushes.front().second, std::exception_ptr());
      flushes.pop_front();
    }
    send_closed();
  }

  void flush(FlushHandler handler) {
    close_open();
    if (answered >= accepted) {
      dispatch_to(handler, std::exception_ptr());
      return;
    }
    flushes.emplace_back(accepted, std::move(handler));
  }

  void stop() {
    stopped = true;
    linger.cancel();
    const auto error = std::make_exception_ptr(ClientError(Errc::stopped, "the producer is closed"));
    std::uint64_t dropped = open.handlers.size();
    for (auto& h : open.handlers) dispatch_to(h, error, StreamId{});
    for (auto& batch : closed) {
      dropped += batch.handlers.size();
      for (auto& h : batch.handlers) dispatch_to(h, error, StreamId{});
    }
    answered += dropped;  // after the batches on the wire, which are older
    open = Batch{};
    closed.clear();
    // Flushes complete as the batches on the wire are answered; none are left after them.
    if (in_flight == 0) {
      for (auto& [n, h] : flushes) dispatch_to(h, error);
      flushes.clear();
    }
  }

  Client& client;
  ProducerOptions options;
  asio::strand<Client::executor_type> strand;
  asio::steady_timer linger;
  Batch open;
  std::deque<Batch> closed;
  std::size_t buffered = 0;
  std::size_t in_flight = 0;
  std::uint64_t accepted = 0;  // entries taken (numbered in arrival order)
  std::uint64_t answered = 0;  // entries whose batch was answered
  std::deque<std::pair<std::uint64_t, FlushHandler>> flushes;
  bool stopped = false;
  std::atomic<std::uint64_t> entries{0}, batches{0}, failed{0};
};

Producer::Producer(Client& client, ProducerOptions options)
    : executor_(client.get_executor()), state_(std::make_shared<State>(client, options)) {}

Producer::~Producer() {
  asio::dispatch(state_->strand, [state = state_] { state->stop(); });
}

void Producer::enqueue(Command command, AddHandler handler) {
  asio::dispatch(state_->strand, [state = state_, command = std::move(command), handler = std::move(handler)]() mutable {
    state->add(std::move(command), std::move(handler));
  });
}

void Producer::start_flush(FlushHandler handler) {
  asio::dispatch(state_->strand, [state = state_, handler = std::move(handler)]() mutable {
    state->flush(std::move(handler));
  });
}

ProducerStats Producer::stats() const noexcept {
  return ProducerStats{state_->entries.load(), state_->batches.load(), state_->failed.load()};
}

}  // namespace runnel::client
