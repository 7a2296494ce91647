// The async core: one Client holds a main connection for every request and a small pool of
// connections for blocking reads. Each connection (ClientLink) runs one coroutine that
// connects, says hello, reads replies until the connection ends, and reconnects with
// backoff; a write is posted when a request is queued and carries everything queued by then.
//
// A Client's state lives on one strand; calls from any thread meet in a locked list first
// (Core::incoming). A request is, in order:
//   waiting (Core::waiting: the queue bound is reached)
//   -> queued (ClientLink::queued_: admitted, not yet written; dropped unsent if it times out)
//   -> in flight (ClientLink::inflight_: written; a lost connection fails it, never resends it)
//   -> answered (its handler runs with the reply, or a ServerError for an error reply).
#include <runnel/client/client.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace runnel::client {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using Strand = asio::strand<asio::any_io_executor>;
using Handler = asio::any_completion_handler<void(std::exception_ptr, Reply)>;
using ConnectHandler = asio::any_completion_handler<void(std::exception_ptr)>;

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr std::size_t kKeepWriteBuffer = 1024 * 1024;  // a bigger one is given back

class ErrorCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "runnel.client"; }
  std::string message(int value) const override {
    switch (static_cast<Errc>(value)) {
      case Errc::connect_failed: return "cannot connect";
      case Errc::not_connected: return "not connected";
      case Errc::connection_lost: return "connection lost with the request in flight";
      case Errc::timeout: return "request timed out";
      case Errc::queue_full: return "request queue full";
      case Errc::reply_too_large: return "reply too large";
      case Errc::protocol_error: return "malformed reply";
      case Errc::unexpected_reply: return "unexpected reply";
      case Errc::stopped: return "client stopped";
      case Errc::handshake_failed: return "handshake refused";
    }
    return "unknown client error";
  }
};

std::exception_ptr client_error(Errc code, const std::string& what) {
  return std::make_exception_ptr(ClientError(code, what));
}

// Runs a handler on its associated executor. A reply runs it inline when already there (the
// hot path); a failure is always posted, since failures are completed while walking the
// queues, and a handler that closes the client would change them under the walk.
// (A handler's executor is an any_completion_executor, which cannot post: the failure is
// posted to the client's strand, then dispatched from there.)
void complete(const Strand& strand, Handler& handler, std::exception_ptr error, Reply reply) {
  if (error) {
    asio::post(strand, [handler = std::move(handler), error]() mutable {
      auto executor = asio::get_associated_executor(handler);
      asio::dispatch(executor, [handler = std::move(handler), error]() mutable { std::move(handler)(error, Reply{}); });
    });
    return;
  }
  auto executor = asio::get_associated_executor(handler);
  asio::dispatch(executor, [handler = std::move(handler), reply = std::move(reply)]() mutable {
    std::move(handler)(nullptr, std::move(reply));
  });
}

void complete(const Strand& strand, ConnectHandler& handler, std::exception_ptr error) {
  asio::post(strand, [handler = std::move(handler), error]() mutable {
    auto executor = asio::get_associated_executor(handler);
    asio::dispatch(executor, [handler = std::move(handler), error]() mutable { std::move(handler)(error); });
  });
}

// (Boost 1.81's any_completion_handler recurses without end on move assignment, so a
// handler is only ever move-constructed: Pending is built whole and never assigned.)
struct Pending {
  Pending(Command c, Handler h, std::size_t r, std::chrono::milliseconds t, Clock::time_point d, bool b)
      : command(std::move(c)), handler(std::move(h)), replies(r), timeout(t), deadline(d),
        bytes(command.size_bytes() + 16), blocking(b) {}
  Pending(Pending&&) = default;
  Pending& operator=(Pending&&) = delete;

  Command command;  // cleared once written
  Handler handler;  // empty once completed (a timed-out request stays until its reply)
  std::size_t replies = 1;
  std::vector<Reply> collected;
  std::chrono::milliseconds timeout{0};  // 0: none
  Clock::time_point deadline = Clock::time_point::max();
  std::size_t bytes = 0;  // counted against the queue bound while `counted`
  bool counted = false;
  bool blocking = false;
};

std::chrono::milliseconds timeout_for(const ClientOptions& options, std::int64_t block_ms, std::int64_t timeout_ms) {
  if (block_ms == 0) return std::chrono::milliseconds(0);  // BLOCK 0 waits without end
  return timeout_ms >= 0 ? std::chrono::milliseconds(timeout_ms) : options.request_timeout;
}

Clock::time_point deadline_for(std::chrono::milliseconds timeout, std::int64_t block_ms) {
  if (timeout.count() == 0) return Clock::time_point::max();
  return Clock::now() + timeout + std::chrono::milliseconds(std::max<std::int64_t>(block_ms, 0));
}

}  // namespace

class ClientLink;

struct Client::Core : std::enable_shared_from_this<Client::Core> {
  Core(const asio::any_io_executor& executor, ClientOptions opts)
      : strand(asio::make_strand(executor)), options(std::move(opts)), sweep(strand) {}

  void drain_incoming();
  void admit(Pending pending);
  void count(Pending& pending);
  void uncount(Pending& pending);
  void release(Pending& pending);
  void pump();
  void fail(Pending& pending, std::exception_ptr error);
  void start_sweep();
  void sweep_once();
  void connected(ClientLink& link, int protocol);
  void connect_failed(ClientLink& link, std::exception_ptr error);
  void close();
  ClientLink& link_for(bool blocking);

  Strand strand;
  ClientOptions options;
  std::shared_ptr<ClientLink> main;
  std::vector<std::shared_ptr<ClientLink>> blocking;
  std::mutex incoming_mutex;
  std::vector<Pending> incoming;  // submitted, not yet on the strand (guarded by the mutex)
  std::vector<Pending> draining;  // the strand's side of the swap
  std::deque<Pending> waiting;  // past the queue bound, in call order
  std::size_t pending_requests = 0;
  std::size_t pending_bytes = 0;
  asio::steady_timer sweep;
  bool sweeping = false;
  bool pump_posted = false;  // a pump() is on its way (room freed by failures)
  // The shortest request timeout seen: the sweep checks deadlines an eighth of it apart.
  std::chrono::milliseconds shortest_timeout = std::chrono::milliseconds::max();
  bool closed = false;
  std::vector<ConnectHandler> connect_waiters;
  std::atomic<int> protocol{0};
  std::atomic<std::uint64_t> connects{0}, writes{0}, requests{0}, timeouts{0}, lost{0};
};

// One connection: connect, hello, read replies until it ends, reconnect.
class ClientLink : public std::enable_shared_from_this<ClientLink> {
 public:
  enum class State { idle, connecting, ready, down, closed };

  // The Core owns its links; a link's run coroutine holds the Core (so a Core left by a
  // stopped io_context is freed with that coroutine, not kept by a cycle).
  ClientLink(Client::Core& core, bool main)
      : core_(&core), main_(main), socket_(core.strand), retry_(core.strand), resolver_(core.strand),
        rng_(std::random_device{}()) {}

  void enqueue(Pending pending) {
    if (state_ == State::down && !core_->options.reconnect) {
      core_->fail(pending, client_error(stopped_by_, down_reason_));
      return;
    }
    queued_.push_back(std::move(pending));
    if (state_ == State::idle) start();
    if (state_ == State::ready && !write_active_ && !flush_posted_) {
      // The write goes out once the strand's current work is done, so every request issued
      // meanwhile (typically: one per reply of the batch being delivered) shares it.
      flush_posted_ = true;
      asio::post(core_->strand, [self = shared_from_this()] {
        self->flush_posted_ = false;
        if (self->state_ == State::ready && !self->write_active_) self->flush();
      });
    }
  }

  void start() {
    if (state_ != State::idle) return;
    state_ = State::connecting;
    asio::co_spawn(core_->strand, run(shared_from_this(), core_->shared_from_this()), asio::detached);
  }

  [[nodiscard]] bool ready() const { return state_ == State::ready; }
  // Down for good (reconnecting is off): why.
  [[nodiscard]] std::exception_ptr down_error() const {
    return state_ == State::down && !core_->options.reconnect ? client_error(stopped_by_, down_reason_) : nullptr;
  }
  [[nodiscard]] std::size_t load() const { return queued_.size() + inflight_.size(); }

  // Fails everything and ends the connection for good.
  void close(std::exception_ptr error) {
    state_ = State::closed;
    end_connection();
    retry_.cancel();
    resolver_.cancel();
    fail_all(inflight_, error);
    fail_all(queued_, error);
  }

  // Completes timed-out requests with Errc::timeout. An unwritten one is dropped unsent; a
  // written one keeps its place until its reply comes (and is then dropped).
  //
  // Timed-out requests still in flight hold a slot each (small, but counted nowhere else): past
  // max_queued_requests of them the server has stopped answering, and the connection is
  // dropped (the client reconnects), so a hung server cannot grow them without bound.
  void expire(Clock::time_point now) {
    for (auto* list : {&queued_, &inflight_}) {
      for (Pending& p : *list) {
        if (p.handler && p.deadline <= now) {
          core_->timeouts.fetch_add(1, std::memory_order_relaxed);
          // Never written because no connection could be made: that is the error to give.
          const bool unsent = list == &queued_ && state_ != State::ready && connect_failed_;
          core_->fail(p, unsent ? client_error(Errc::connect_failed, down_reason_)
                                : client_error(Errc::timeout, "no reply within the request timeout"));
        }
      }
    }
    if (state_ != State::ready) return;
    const auto abandoned = static_cast<std::size_t>(
        std::count_if(inflight_.begin(), inflight_.end(), [](const Pending& p) { return !p.handler; }));
    if (abandoned > core_->options.max_queued_requests) {
      lose_connection(Errc::timeout, "the server at " + endpoint() + " left " + std::to_string(abandoned) +
                                         " requests unanswered past their timeout");
    }
  }

 private:
  asio::awaitable<void> run(std::shared_ptr<ClientLink> self, std::shared_ptr<Client::Core> keep) {
    std::chrono::milliseconds backoff{0};
    while (state_ != State::closed) {
      std::exception_ptr failure;
      // The connect timeout closes the socket under the attempt (resolve, connect, hello).
      // (Asio's awaitable `||` waits for the first *success*, so a refused handshake would
      // wait for the timer: a plain timer instead.)
      auto timed_out = std::make_shared<bool>(false);
      auto attempting = std::make_shared<bool>(true);  // false once the attempt has ended
      asio::steady_timer timer(core_->strand, core_->options.connect_timeout);
      timer.async_wait([self, timed_out, attempting](boost::system::error_code ec) {
        // (A completion already queued when the attempt ended must not close its socket.)
        if (ec || !*attempting || self->state_ == State::closed) return;
        *timed_out = true;
        self->resolver_.cancel();
        boost::system::error_code ignored;
        self->socket_.close(ignored);
      });
      try {
        co_await connect_once();
      } catch (const ClientError&) {
        failure = std::current_exception();
      } catch (const std::exception& e) {
        failure = client_error(Errc::connect_failed, "cannot connect to " + endpoint() + ": " + e.what());
      }
      *attempting = false;
      timer.cancel();
      if (*timed_out) {
        failure = client_error(Errc::connect_failed, "cannot connect to " + endpoint() +
                                                         ": no connection within the connect timeout");
      }
      if (state_ == State::closed) break;
      if (!failure) {
        state_ = State::ready;
        connect_failed_ = false;
        backoff = std::chrono::milliseconds(0);
        core_->connected(*this, protocol_);
        if (!write_active_) flush();
        co_await read_loop();
        if (state_ == State::closed) break;
      } else {
        end_connection();
        down_reason_ = describe(failure);
        stopped_by_ = errc_of(failure);
        connect_failed_ = true;
        core_->connect_failed(*this, failure);
      }
      if (!core_->options.reconnect) {
        state_ = State::down;
        fail_all(queued_, client_error(stopped_by_, down_reason_));
        break;
      }
      state_ = State::connecting;
      backoff = std::clamp(backoff * 2, core_->options.reconnect_min, core_->options.reconnect_max);
      const auto half = backoff.count() / 2;
      retry_.expires_after(std::chrono::milliseconds(
          half + std::uniform_int_distribution<std::int64_t>(0, std::max<std::int64_t>(half, 0))(rng_)));
      boost::system::error_code ignored;
      co_await retry_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
    (void)keep;
  }

  asio::awaitable<void> connect_once() {
    auto endpoints = co_await resolver_.async_resolve(
        core_->options.host, std::to_string(core_->options.port), asio::use_awaitable);
    socket_ = tcp::socket(core_->strand);
    co_await asio::async_connect(socket_, endpoints, asio::use_awaitable);
    socket_.set_option(tcp::no_delay(true));
    begin_ = end_ = 0;
    co_await handshake();
  }

  // HELLO 3 with AUTH and SETNAME; on a server that does not know RESP3, AUTH and CLIENT
  // SETNAME in RESP2. CLIENT SETINFO is sent to every server, its refusal ignored (before
  // Redis 7.2 there is none).
  asio::awaitable<void> handshake() {
    const ClientOptions& o = core_->options;
    protocol_ = 2;
    bool said_hello = false;
    if (o.resp3) {
      Command hello("HELLO", "3");
      if (!o.password.empty()) hello.arg("AUTH").arg(o.username.empty() ? "default" : o.username).arg(o.password);
      if (!o.client_name.empty()) hello.arg("SETNAME").arg(o.client_name);
      Reply reply = co_await round_trip(hello);
      if (!reply.is_error()) {
        protocol_ = 3;
        said_hello = true;
      } else if (reply.str.rfind("NOPROTO", 0) != 0 && reply.str.find("unknown command") == std::string::npos) {
        throw ClientError(Errc::handshake_failed, "HELLO refused: " + reply.str);
      }
    }
    if (!said_hello) {
      if (!o.password.empty()) {
        Command auth("AUTH");
        if (!o.username.empty()) auth.arg(o.username);
        auth.arg(o.password);
        if (Reply r = co_await round_trip(auth); r.is_error()) {
          throw ClientError(Errc::handshake_failed, "AUTH refused: " + r.str);
        }
      }
      if (!o.client_name.empty()) {
        if (Reply r = co_await round_trip(Command("CLIENT", "SETNAME", o.client_name)); r.is_error()) {
          throw ClientError(Errc::handshake_failed, "CLIENT SETNAME refused: " + r.str);
        }
      }
    }
    if (!o.lib_name.empty()) (void)co_await round_trip(Command("CLIENT", "SETINFO", "LIB-NAME", o.lib_name));
    if (!o.lib_version.empty()) (void)co_await round_trip(Command("CLIENT", "SETINFO", "LIB-VER", o.lib_version));
  }

  asio::awaitable<Reply> round_trip(const Command& command) {
    std::string frame = command.encoded();
    co_await asio::async_write(socket_, asio::buffer(frame), asio::use_awaitable);
    for (;;) {
      Reply reply;
      const auto parsed = protocol::parse_reply(std::string_view(in_.data() + begin_, end_ - begin_), reply);
      if (parsed.status == protocol::ReplyStatus::kDone) {
        begin_ += parsed.consumed;
        if (reply.type == Reply::Type::kPush) continue;
        co_return reply;
      }
      if (parsed.status == protocol::ReplyStatus::kError) {
        throw ClientError(Errc::protocol_error, "malformed reply from " + endpoint() + " during the handshake");
      }
      make_room();
      end_ += co_await socket_.async_read_some(asio::buffer(in_.data() + end_, in_.size() - end_),
                                                asio::use_awaitable);
    }
  }

  asio::awaitable<void> read_loop() {
    const std::uint64_t generation = generation_;
    for (;;) {
      if (!parse_replies() || generation != generation_) co_return;
      make_room();
      boost::system::error_code ec;
      const std::size_t n = co_await socket_.async_read_some(
          asio::buffer(in_.data() + end_, in_.size() - end_), asio::redirect_error(asio::use_awaitable, ec));
      if (generation != generation_ || state_ == State::closed) co_return;
      if (ec) {
        lose_connection(Errc::connection_lost,
                        "connection to " + endpoint() + " lost: " + (ec == asio::error::eof ? std::string("closed by the server") : ec.message()));
        co_return;
      }
      end_ += n;
    }
  }

  // Parses and delivers every whole reply buffered. False when the connection ended.
  bool parse_replies() {
    const std::uint64_t generation = generation_;
    // A reply still incomplete after `partial_` bytes is parsed again only once twice as
    // many bytes are here or the socket has nothing more for now, so a reply of many
    // chunks is not parsed from the start once per chunk.
    if (partial_ != 0 && end_ - begin_ < 2 * partial_) {
      boost::system::error_code ec;
      if (socket_.available(ec) > 0 && !ec) return true;
    }
    while (begin_ < end_) {
      Reply reply;
      const std::string_view view(in_.data() + begin_, end_ - begin_);
      const auto parsed = protocol::parse_reply(view, reply);
      if (parsed.status == protocol::ReplyStatus::kNeedMore) {
        if (view.size() > core_->options.max_reply_bytes) {
          lose_connection(Errc::reply_too_large, "a reply from " + endpoint() + " passed max_reply_bytes (" +
                                                     std::to_string(core_->options.max_reply_bytes) + ")");
          return false;
        }
        partial_ = view.size();
        break;
      }
      if (parsed.status == protocol::ReplyStatus::kError) {
        lose_connection(Errc::protocol_error, "malformed reply from " + endpoint());
        return false;
      }
      partial_ = 0;
      begin_ += parsed.consumed;
      if (parsed.consumed > core_->options.max_reply_bytes) {
        lose_connection(Errc::reply_too_large, "a reply from " + endpoint() + " passed max_reply_bytes (" +
                                                   std::to_string(core_->options.max_reply_bytes) + ")");
        return false;
      }
      deliver(std::move(reply));
      // A handler run inline may have closed the client.
      if (generation != generation_ || state_ != State::ready) return false;
    }
    if (begin_ == end_) begin_ = end_ = 0;
    return true;
  }

  void deliver(Reply&& reply) {
    if (reply.type == Reply::Type::kPush) return;  // out of band: this client subscribes to nothing
    if (inflight_.empty()) {
      lose_connection(Errc::protocol_error, "a reply from " + endpoint() + " that no request asked for");
      return;
    }
    Pending& front = inflight_.front();
    if (front.replies > 1) {
      front.collected.push_back(std::move(reply));
      if (front.collected.size() < front.replies) return;
      reply = Reply{};
      reply.type = Reply::Type::kArray;
      reply.elements = std::move(front.collected);
    }
    Pending done = std::move(front);
    inflight_.pop_front();
    if (!done.handler) return;  // timed out before its reply came
    core_->release(done);
    if (done.replies == 1 && reply.is_error()) {
      complete(core_->strand, done.handler, std::make_exception_ptr(ServerError(std::move(reply.str))), Reply{});
    } else {
      complete(core_->strand, done.handler, nullptr, std::move(reply));
    }
  }

  // Writes everything queued in one write; runs again when it completes if more came.
  void flush() {
    std::unique_ptr<std::string> buffer = std::move(spare_);
    if (!buffer) buffer = std::make_unique<std::string>();
    buffer->clear();
    for (Pending& p : queued_) {
      if (!p.handler) continue;  // timed out before it was written: never sent
      p.command.encode(*buffer);
      p.command = Command();
      inflight_.push_back(std::move(p));
    }
    const std::size_t count = queued_.size();
    queued_.clear();
    if (buffer->empty()) {
      spare_ = std::move(buffer);
      return;
    }
    write_active_ = true;
    core_->writes.fetch_add(1, std::memory_order_relaxed);
    core_->requests.fetch_add(count, std::memory_order_relaxed);
    std::string* bytes = buffer.get();
    asio::async_write(socket_, asio::buffer(*bytes),
                      asio::bind_executor(core_->strand, [self = shared_from_this(), buffer = std::move(buffer),
                                                          generation = generation_](
                                                             boost::system::error_code ec, std::size_t) mutable {
                        if (buffer->capacity() <= kKeepWriteBuffer) self->spare_ = std::move(buffer);
                        if (generation != self->generation_) return;  // that connection has ended
                        self->write_active_ = false;
                        if (ec) {
                          self->lose_connection(Errc::connection_lost,
                                                "connection to " + self->endpoint() + " lost: " + ec.message());
                          return;
                        }
                        if (!self->queued_.empty()) self->flush();
                      }));
  }

  // The connection ended under requests in flight: they fail (never resent); requests not
  // yet written stay queued for the next connection.
  void lose_connection(Errc code, const std::string& why) {
    end_connection();
    state_ = State::down;
    bool front = true;
    for (Pending& p : inflight_) {
      if (p.handler) {
        // The request whose reply was bad learns why; the ones behind it only lost the
        // connection.
        core_->lost.fetch_add(1, std::memory_order_relaxed);
        core_->fail(p, client_error(front ? code : Errc::connection_lost, why));
      }
      front = false;
    }
    inflight_.clear();
    down_reason_ = why;
    stopped_by_ = Errc::not_connected;
  }

  void end_connection() {
    ++generation_;
    write_active_ = false;
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    begin_ = end_ = partial_ = 0;
    if (in_.capacity() > 4 * kReadChunk) std::string().swap(in_);
  }

  void fail_all(std::deque<Pending>& list, const std::exception_ptr& error) {
    for (Pending& p : list) {
      if (p.handler) core_->fail(p, error);
    }
    list.clear();
  }

  void make_room() {
    if (begin_ > 0 && (begin_ == end_ || in_.size() - end_ < kReadChunk / 4)) {
      std::copy(in_.begin() + static_cast<std::ptrdiff_t>(begin_), in_.begin() + static_cast<std::ptrdiff_t>(end_),
                in_.begin());
      end_ -= begin_;
      begin_ = 0;
    }
    if (in_.size() - end_ < kReadChunk / 4) in_.resize(std::max(in_.size() * 2, kReadChunk));
  }

  std::string endpoint() const { return core_->options.host + ":" + std::to_string(core_->options.port); }

  static std::string describe(const std::exception_ptr& error) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      return e.what();
    }
  }
  static Errc errc_of(const std::exception_ptr& error) {
    try {
      std::rethrow_exception(error);
    } catch (const ClientError& e) {
      return e.errc();
    } catch (...) {
      return Errc::connect_failed;
    }
  }

  Client::Core* core_;
  const bool main_;
  State state_ = State::idle;
  tcp::socket socket_;
  asio::steady_timer retry_;
  tcp::resolver resolver_;
  std::minstd_rand rng_;
  int protocol_ = 0;
  std::uint64_t generation_ = 0;  // bumped when a connection ends; stale callbacks see it
  std::deque<Pending> queued_;
  std::deque<Pending> inflight_;
  bool write_active_ = false;
  bool flush_posted_ = false;
  std::unique_ptr<std::string> spare_;
  std::string in_;
  std::size_t begin_ = 0, end_ = 0, partial_ = 0;
  std::string down_reason_ = "not connected";
  bool connect_failed_ = false;  // the last attempt to connect failed
  Errc stopped_by_ = Errc::not_connected;
};

void Client::Core::admit(Pending pending) {
  if (pending.timeout.count() > 0) shortest_timeout = std::min(shortest_timeout, pending.timeout);
  if (closed) {
    fail(pending, client_error(Errc::stopped, "the client is closed"));
    return;
  }
  const bool full = pending_requests >= options.max_queued_requests ||
                    (pending_requests > 0 && pending_bytes + pending.bytes > options.max_queued_bytes);
  if (full || !waiting.empty()) {  // behind the ones already waiting, in call order
    if (options.fail_when_full) {
      fail(pending, client_error(Errc::queue_full, "the request queue is full (" + std::to_string(pending_requests) +
                                                       " requests, " + std::to_string(pending_bytes) + " bytes)"));
      return;
    }
    waiting.push_back(std::move(pending));
    start_sweep();
    return;
  }
  count(pending);
  link_for(pending.blocking).enqueue(std::move(pending));
  start_sweep();
}

void Client::Core::count(Pending& pending) {
  ++pending_requests;
  pending_bytes += pending.bytes;
  pending.counted = true;
}

void Client::Core::uncount(Pending& pending) {
  if (!pending.counted) return;
  --pending_requests;
  pending_bytes -= pending.bytes;
  pending.counted = false;
}

// A request was answered: its room in the queue goes to the oldest waiting ones.
void Client::Core::release(Pending& pending) {
  uncount(pending);
  pump();
}

void Client::Core::pump() {
  while (!waiting.empty() && !closed) {
    Pending& next = waiting.front();
    if (!next.handler) {
      waiting.pop_front();
      continue;
    }
    if (pending_requests >= options.max_queued_requests ||
        (pending_requests > 0 && pending_bytes + next.bytes > options.max_queued_bytes)) {
      break;
    }
    Pending admitted = std::move(next);
    waiting.pop_front();
    count(admitted);
    link_for(admitted.blocking).enqueue(std::move(admitted));
  }
}

// Completes a request with an error. Room it frees goes to waiting requests at the next
// release or sweep (never here: this runs while the queues are walked).
void Client::Core::fail(Pending& pending, std::exception_ptr error) {
  if (!pending.handler) return;
  const bool freed = pending.counted;
  uncount(pending);
  complete(strand, pending.handler, std::move(error), Reply{});
  if (freed && !waiting.empty() && !pump_posted) {
    pump_posted = true;
    asio::post(strand, [self = shared_from_this()] {
      self->pump_posted = false;
      self->pump();
    });
  }
}

ClientLink& Client::Core::link_for(bool for_blocking) {
  if (!for_blocking) {
    if (!main) main = std::make_shared<ClientLink>(*this, true);
    return *main;
  }
  // An idle blocking connection, else a new one, else the least loaded.
  ClientLink* best = nullptr;
  for (auto& link : blocking) {
    if (link->load() == 0) return *link;
    if (best == nullptr || link->load() < best->load()) best = link.get();
  }
  if (blocking.size() < std::max<std::size_t>(options.max_blocking_connections, 1)) {
    blocking.push_back(std::make_shared<ClientLink>(*this, false));
    return *blocking.back();
  }
  return *best;
}

// While anything is pending, a timer checks deadlines a few times per request timeout.
void Client::Core::start_sweep() {
  if (sweeping || closed || shortest_timeout == std::chrono::milliseconds::max()) return;
  sweeping = true;
  const auto tick = std::clamp(shortest_timeout / 8, std::chrono::milliseconds(5), std::chrono::milliseconds(500));
  sweep.expires_after(tick);
  sweep.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    self->sweeping = false;
    if (ec || self->closed) return;
    self->sweep_once();
    if (self->pending_requests > 0 || !self->waiting.empty()) self->start_sweep();
  });
}

void Client::Core::sweep_once() {
  const auto now = Clock::now();
  if (main) main->expire(now);
  for (auto& link : blocking) link->expire(now);
  for (Pending& p : waiting) {
    if (p.handler && p.deadline <= now) {
      timeouts.fetch_add(1, std::memory_order_relaxed);
      fail(p, client_error(Errc::timeout, "no room in the request queue within the request timeout"));
    }
  }
  pump();
}

void Client::Core::connected(ClientLink& link, int proto) {
  connects.fetch_add(1, std::memory_order_relaxed);
  if (&link != main.get()) return;
  protocol.store(proto);
  for (auto& waiter : connect_waiters) complete(strand, waiter, nullptr);
  connect_waiters.clear();
}

void Client::Core::connect_failed(ClientLink& link, std::exception_ptr error) {
  if (&link != main.get()) return;
  for (auto& waiter : connect_waiters) complete(strand, waiter, error);
  connect_waiters.clear();
}

void Client::Core::close() {
  if (closed) return;
  closed = true;
  const auto error = client_error(Errc::stopped, "the client is closed");
  for (Pending& p : waiting) fail(p, error);
  waiting.clear();
  if (main) main->close(error);
  for (auto& link : blocking) link->close(error);
  main.reset();
  blocking.clear();
  sweep.cancel();
  for (auto& waiter : connect_waiters) complete(strand, waiter, error);
  connect_waiters.clear();
}

std::int64_t Command::block_ms() const {
  if (frames_) return -1;
  // The arguments, read back from their encoding ("$<len>\r\n<bytes>\r\n" each).
  std::size_t at = 0;
  auto next = [&](std::string_view& arg) {
    if (at >= body_.size() || body_[at] != '$') return false;
    const std::size_t eol = body_.find("\r\n", at);
    std::size_t len = 0;
    std::from_chars(body_.data() + at + 1, body_.data() + eol, len);
    arg = std::string_view(body_).substr(eol + 2, len);
    at = eol + 2 + len + 2;
    return true;
  };
  auto is = [](std::string_view a, std::string_view upper) {
    return a.size() == upper.size() &&
           std::equal(a.begin(), a.end(), upper.begin(), [](char x, char y) { return std::toupper(static_cast<unsigned char>(x)) == y; });
  };
  std::string_view arg;
  if (!next(arg) || !(is(arg, "XREAD") || is(arg, "XREADGROUP"))) return -1;
  while (next(arg) && !is(arg, "STREAMS")) {  // keys come after STREAMS: a key named BLOCK is no option
    if (!is(arg, "BLOCK")) continue;
    std::int64_t ms = -1;
    if (!next(arg)) return -1;
    const auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), ms);
    return ec == std::errc() && end == arg.data() + arg.size() && ms >= 0 ? ms : -1;
  }
  return -1;
}

const std::error_category& client_category() noexcept {
  static const ErrorCategory category;
  return category;
}

Client::Client(executor_type executor, ClientOptions options)
    : executor_(std::move(executor)), core_(std::make_shared<Core>(executor_, std::move(options))) {}

Client::~Client() { close(); }

void Client::close() {
  asio::dispatch(core_->strand, [core = core_] { core->close(); });
}

int Client::protocol() const noexcept { return core_->protocol.load(); }

ClientStats Client::stats() const noexcept {
  return ClientStats{core_->connects.load(), core_->writes.load(), core_->requests.load(), core_->timeouts.load(),
                     core_->lost.load()};
}

void Client::submit(Command command, std::size_t replies, std::int64_t block_ms, std::int64_t timeout_ms,
                    Handler handler) {
  const auto timeout = timeout_for(core_->options, block_ms, timeout_ms);
  Pending pending(std::move(command), std::move(handler), std::max<std::size_t>(replies, 1), timeout,
                  deadline_for(timeout, block_ms), block_ms >= 0);
  // Requests from any thread meet in one locked list; the first into an empty list posts
  // the drain, so a burst of calls costs one hop to the strand, not one each.
  bool first = false;
  {
    std::lock_guard lock(core_->incoming_mutex);
    first = core_->incoming.empty();
    core_->incoming.push_back(std::move(pending));
  }
  if (first) asio::post(core_->strand, [core = core_] { core->drain_incoming(); });
}

void Client::Core::drain_incoming() {
  {
    std::lock_guard lock(incoming_mutex);
    draining.swap(incoming);
  }
  for (Pending& pending : draining) admit(std::move(pending));
  draining.clear();
}

void Client::start_connect(ConnectHandler handler) {
  asio::dispatch(core_->strand, [core = core_, handler = std::move(handler)]() mutable {
    if (core->closed) {
      complete(core->strand, handler, client_error(Errc::stopped, "the client is closed"));
      return;
    }
    ClientLink& link = core->link_for(false);
    if (link.ready()) {
      complete(core->strand, handler, nullptr);
      return;
    }
    if (auto down = link.down_error()) {
      complete(core->strand, handler, down);
      return;
    }
    core->connect_waiters.push_back(std::move(handler));
    link.start();
  });
}

}  // namespace runnel::client
