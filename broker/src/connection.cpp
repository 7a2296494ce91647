// A client connection (connection.hpp). Each shard is one thread running one io_context; a
// connection lives on one shard's thread, its "home".
#include "connection.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "command.hpp"
#include "coordinator.hpp"
#include "log.hpp"
#include "stream_reply.hpp"

namespace runnel {
namespace {

constexpr std::size_t kInitialInputBuffer = 16 * 1024;
constexpr std::size_t kShrinkInputAbove = 1024 * 1024;

// A connection's own input bytes: what is left over between two reads (a frame the end of a
// read cut), or a frame too big for the thread's scratch buffer, in a buffer that grows as the
// frame needs. An idle connection has none. (10,000 idle connections took 211 MB when each
// had a 16 KiB buffer from the start.)
class InputBuffer {
 public:
  InputBuffer() = default;
  InputBuffer(const InputBuffer&) = delete;
  InputBuffer& operator=(const InputBuffer&) = delete;
  ~InputBuffer() { release(); }

  [[nodiscard]] char* data() { return bytes_; }
  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] bool on_heap() const { return bytes_ != nullptr; }
  // Moves to a buffer of `bytes` (more than size()), keeping its first bytes. By realloc: a
  // large buffer is remapped in place rather than copied, so growing a 256 MiB buffer to
  // 512 MiB holds 512 MiB at its peak, not 768 MiB.
  void grow(std::size_t bytes) {
    void* grown = std::realloc(bytes_, bytes);
    if (grown == nullptr) throw std::bad_alloc();
    bytes_ = static_cast<char*>(grown);
    size_ = bytes;
  }
  // Holds a copy of the `count` bytes at `from`, in a buffer of `capacity` (at least count).
  void assign(const char* from, std::size_t count, std::size_t capacity) {
    release();
    grow(capacity);
    if (count > 0) std::memcpy(bytes_, from, count);
  }
  void release() {
    std::free(bytes_);
    bytes_ = nullptr;
    size_ = 0;
  }

 private:
  char* bytes_ = nullptr;
  std::size_t size_ = 0;
};

// The shard thread's read buffer, shared by its connections. A connection reads into it and
// runs the commands it holds before the thread turns to anything else; what must outlive
// that (a cut frame, the input of a command that waits) is copied to the connection's own
// InputBuffer first.
constexpr std::size_t kScratchBytes = 64 * 1024;
char* thread_scratch() {
  static thread_local const std::unique_ptr<char[]> scratch = std::make_unique_for_overwrite<char[]>(kScratchBytes);
  return scratch.get();
}

std::string endpoint_text(const tcp::endpoint& ep) {
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

class Connection;

// A connection's ClientInfo also knows where the connection lives now, so that
// request_close reaches it from any thread, and a close asked for while the connection moves
// between shards is not lost. One allocation per connection carries both.
struct ConnectionInfo final : ClientInfo {
  std::mutex where_mutex;  // guards the three below
  std::weak_ptr<Connection> connection;
  asio::io_context* io = nullptr;  // its home shard's
  bool close_requested = false;

  void request_close() override;
};

// One client connection. Runs on its home shard's thread only; other threads reach it by
// posting to that thread (request_close).
//
// An idle connection is small: a socket with one readiness wait armed, and no coroutine,
// timer or buffer (per idle connection, 5.3 KB before, when each had a reader and a writer
// coroutine waiting). When the socket is readable, its bytes are read into the thread's
// scratch buffer and the commands that can run on this thread run at once, their replies
// written straight to the socket. Only what has to wait starts a coroutine (drive): a hop to
// another shard, a blocked read, or replies past --reply-pause-bytes that the client has not
// taken. It ends once nothing is in progress. What the socket does not take at once goes out
// by an async_write, and later replies wait behind it.
//
// It is kept alive by what it waits on: the readiness wait, the async_write, drive, or (while
// closing with replies held for the disk) keep_alive_.
//
// A connection whose key commands keep going to one other shard moves there (move_to_owner):
// its commands then run without a hop, and a busy connection loads only the shard it uses.
class Connection : public std::enable_shared_from_this<Connection>, private Coordinator::Link {
 public:
  Connection(ServerCore& server, Socket socket, unsigned home)
      : server_(server), socket_(std::move(socket)), home_(home) {}

  ~Connection() {
    if (moved_) return;  // its successor on the other shard carries on
    cmd::unsubscribe_all(session_);  // from its home shard's table (a subscriber never moves)
    if (!session_.info) {  // never started (the server stopped first)
      server_.connection_closed();
      return;
    }
    server_.shards[home_]->shard.connections.fetch_sub(1, std::memory_order_relaxed);
    coordinator_.unwatch_all();
    server_.state.clients.remove(session_.info->id);
    server_.connection_closed();
  }

  void start() {
    auto info = std::make_shared<ConnectionInfo>();
    boost::system::error_code ec;
    info->addr = endpoint_text(socket_.remote_endpoint(ec));
    info->laddr = endpoint_text(socket_.local_endpoint(ec));
    info->fd = socket_.native_handle();
    info->last_interaction_ms = steady_now_ms();
    info->connection = shared_from_this();
    info->io = &server_.shards[home_]->io;
    server_.shards[home_]->shard.connections.fetch_add(1, std::memory_order_relaxed);
    session_.info = info;
    session_.parser = &parser_;
    session_.subscriber = this;
    const Config config = server_.state.config.snapshot();
    refresh_limits();
    const bool needs_auth = !config.requirepass.empty();
    session_.authenticated = !needs_auth;
    info->authenticated = !needs_auth;
    parser_.set_authenticated(!needs_auth);
    server_.state.clients.add(info);
    socket_.set_option(tcp::no_delay(true), ec);
    socket_.non_blocking(true, ec);  // reads and writes are tried at once, then waited for
    if (!server_.accepting) closing_ = true;  // accepted just as the server began to stop
    resume_reading();
  }

  // Takes over a connection that moved here from another shard (posted to this thread).
  void resume() {
    session_.subscriber = this;
    {
      auto& info = static_cast<ConnectionInfo&>(*session_.info);
      std::lock_guard lock(info.where_mutex);
      info.connection = shared_from_this();
      info.io = &server_.shards[home_]->io;
      if (info.close_requested) closing_ = true;
    }
    if (!server_.accepting) closing_ = true;
    resume_reading();
  }

  // Stops reading; replies already produced still go out, then the socket closes.
  void close() {
    closing_ = true;
    boost::system::error_code ec;
    socket_.cancel(ec);
    wake_drive();
    if (busy_) wake(busy_->block_timer);
    maybe_finish();
  }

  // A shard's answer to this connection's blocked read, encoded here, on its own thread.
  void on_blocked_answer(WaiterAnswer answer) {
    if (!busy_) return;  // the read ended as the connection closed: nobody waits for it
    std::string reply;
    protocol::ReplyWriter writer(reply, session_.resp);
    if (!answer.error.empty()) {
      writer.error(answer.error);
    } else {
      const KeyEntries keyed{answer.key, &answer.entries};
      write_keyed_entries(writer, std::span<const KeyEntries>(&keyed, 1));
    }
    on_blocked_reply(std::move(reply));
  }

  // A shard answered this connection's blocked read (on this thread). While drive waits in
  // wait_blocked, everything before the blocked command has been answered, so the reply goes
  // out at once, before drive resumes: a woken reader's latency is then one turn of the event
  // loop, not three (post, timer, resume).
  void on_blocked_reply(std::string reply) {
    if (!busy_) return;  // the read ended as the connection closed: nobody waits for it
    if (busy_->in_blocked_wait) {
      // No longer blocked, and counted so before the reply leaves: whoever sees the reply
      // sees blocked_clients without it, as in Redis (the count fell a turn later before).
      end_blocked_wait();
      out_.append(reply);
      flush();
      busy_->blocked_reply.emplace();  // answered; nothing more to append
    } else {
      busy_->blocked_reply = std::move(reply);
    }
    wake(busy_->block_timer);
  }

 private:
  // A Pub/Sub message, on this thread (pubsub.hpp): appended after whatever the connection
  // has produced so far, and sent on the next turn (once per turn, however many arrive). A
  // subscriber past the output buffer limit is closed: it never holds up the publisher.
  void deliver(ChannelKind kind, std::string_view pattern, std::string_view channel,
               std::string_view message) override {
    if (closing_ || finished_ || moved_) return;
    // The smaller of the two limits that are set (0 is none), checked before the message is
    // appended: a huge message is never copied into the output of a subscriber it would
    // close (a 512 MB message to 100 subscribers held 100 copies at once otherwise).
    const std::uint64_t general = limits().output_buffer, pubsub = limits().pubsub_output;
    const std::uint64_t limit = general == 0 ? pubsub : pubsub == 0 ? general : std::min(general, pubsub);
    constexpr std::size_t kFraming = 64;  // the push header, kind and lengths, at most
    const std::uint64_t after = unsent() + pattern.size() + channel.size() + message.size() + kFraming;
    // The soft limit, as Redis's: past it for longer than its seconds, the subscriber is closed.
    bool over_soft = false;
    if (const std::uint64_t soft = limits().pubsub_soft; soft != 0 && session_.subscriptions) {
      std::int64_t& since = session_.subscriptions->soft_limit_since_ms;
      if (after <= soft) {
        since = -1;
      } else if (since < 0) {
        since = steady_now_ms();
      } else {
        over_soft = steady_now_ms() - since > limits().pubsub_soft_ms;
      }
    }
    if ((limit != 0 && after > limit) || over_soft) {
      log::warning("Client id=" + std::to_string(session_.info->id) +
                   " closed for overcoming of output buffer limits.");
      drop_output_and_close();
      close();
      return;
    }
    protocol::ReplyWriter writer(out_, session_.resp);
    const bool by_pattern = kind == ChannelKind::kPattern;
    writer.push(by_pattern ? 4 : 3);
    writer.bulk(by_pattern ? "pmessage" : kind == ChannelKind::kShard ? "smessage" : "message");
    if (by_pattern) writer.bulk(pattern);
    writer.bulk(channel);
    writer.bulk(message);
    if (flush_posted_) return;
    flush_posted_ = true;
    asio::post(socket_.get_executor(), [self = shared_from_this()] {
      self->flush_posted_ = false;
      self->flush();
      self->session_.info->output_buffer_bytes.store(self->unsent(), std::memory_order_relaxed);
    });
  }

  PubSub& subscriptions_table() override { return server_.shards[home_]->shard.pubsub; }

  static void wake(asio::steady_timer& timer) { timer.cancel(); }

  // What a connection needs only while drive runs.
  struct Busy {
    explicit Busy(const asio::any_io_executor& executor) : wakeup(executor), block_timer(executor) {
      wakeup.expires_at(asio::steady_timer::time_point::max());
    }
    asio::steady_timer wakeup;       // cancelled when replies were taken or released
    asio::steady_timer block_timer;  // a blocked read's timeout; cancelled to wake it
    std::optional<std::string> blocked_reply;
    bool in_blocked_wait = false;  // drive waits in wait_blocked
  };

  void wake_drive() {
    if (busy_) wake(busy_->wakeup);
  }

  // --- reading ------------------------------------------------------------------------------

  // Reads at most this many times in a row from one readiness report, while each read fills
  // the buffer; then the socket waits its turn again.
  static constexpr int kReadsPerTurn = 4;

  [[nodiscard]] char* in_data() { return in_borrowed_ ? thread_scratch() : in_.data(); }
  [[nodiscard]] std::size_t in_size() const { return in_borrowed_ ? kScratchBytes : in_.size(); }
  [[nodiscard]] std::string_view pending_input() { return {in_data() + in_begin_, in_end_ - in_begin_}; }

  // With nothing in progress: waits for the socket to be readable (or moves the connection to
  // the shard its keys live on), holding no buffer meanwhile.
  void resume_reading() {
    if (closing_) {
      maybe_finish();
      return;
    }
    if (should_move() && move_to_owner()) return;
    if (closing_) {  // the move failed
      maybe_finish();
      return;
    }
    if (in_begin_ == in_end_ && in_.on_heap()) {
      in_.release();
      in_begin_ = in_end_ = 0;
    }
    if (out_.empty() && out_.capacity() > 0) std::string().swap(out_);
    if (!writing_ && sending_.capacity() > 0) std::string().swap(sending_);
    socket_.async_wait(tcp::socket::wait_read,
                       [self = shared_from_this()](const boost::system::error_code& ec) { self->on_readable(ec); });
  }

  void on_readable(const boost::system::error_code& ec) {
    if (finished_ || moved_) return;
    if (ec) closing_ = true;
    for (int round = 0; !closing_ && round < kReadsPerTurn; ++round) {
      const ReadOutcome got = read_input();
      if (got == ReadOutcome::kClosed) {
        closing_ = true;  // the client went away, or sent past the query buffer limit
        break;
      }
      if (got == ReadOutcome::kNothing) break;  // a readiness report with nothing to read
      const bool filled = in_end_ == in_size();
      refresh_limits();
      const CommandSpec* remote = run_local();
      after_run();
      if (remote != nullptr || paused_) {
        adopt_input();
        driving_ = true;
        flush();
        asio::co_spawn(socket_.get_executor(), drive(shared_from_this(), remote), asio::detached);
        return;
      }
      flush();
      if (!filled) break;
    }
    adopt_input();
    resume_reading();
  }

  enum class ReadOutcome { kRead, kNothing, kClosed };

  // One non-blocking read: into the thread's scratch buffer, after what was left of the
  // input, unless the frame in progress is too big for it (then into the connection's own
  // buffer, grown as the frame needs).
  ReadOutcome read_input() {
    const std::size_t pending = in_end_ - in_begin_;
    if (pending <= kScratchBytes / 2 && parser_.frame_bytes_needed() <= kScratchBytes) {
      if (pending > 0) std::memmove(thread_scratch(), in_data() + in_begin_, pending);
      if (!in_borrowed_) in_.release();
      in_borrowed_ = true;
      in_begin_ = 0;
      in_end_ = pending;
    } else {
      adopt_input();
      if (!prepare_input()) return ReadOutcome::kClosed;
    }
    boost::system::error_code error;
    const std::size_t n = socket_.read_some(asio::buffer(in_data() + in_end_, in_size() - in_end_), error);
    if (error == asio::error::would_block || error == asio::error::try_again) return ReadOutcome::kNothing;
    if (error || n == 0) return ReadOutcome::kClosed;
    in_end_ += n;
    server_.state.stats.net_input_bytes.fetch_add(n, std::memory_order_relaxed);
    session_.info->last_interaction_ms.store(steady_now_ms(), std::memory_order_relaxed);
    return ReadOutcome::kRead;
  }

  // Copies what is left of the input out of the thread's scratch buffer, which the thread's
  // next connection reads into.
  void adopt_input() {
    if (!in_borrowed_) return;
    in_borrowed_ = false;
    const std::size_t pending = in_end_ - in_begin_;
    if (pending > 0) in_.assign(thread_scratch() + in_begin_, pending, pending);
    in_begin_ = 0;
    in_end_ = pending;
  }

  // Makes room to read into the connection's own buffer: moves unparsed bytes to the front,
  // and grows the buffer only when a frame needs it (up to the query buffer limit).
  bool prepare_input() {
    if (in_begin_ > 0 && (in_end_ == in_.size() || in_begin_ > in_.size() / 2)) {
      std::memmove(in_.data(), in_.data() + in_begin_, in_end_ - in_begin_);
      in_end_ -= in_begin_;
      in_begin_ = 0;
    }
    if (in_end_ < in_.size()) return true;
    const std::size_t pending = in_end_ - in_begin_;
    if (pending >= limits().query_buffer) {
      log::warning("Closing client that reached max query buffer length (id=" +
                   std::to_string(session_.info->id) + ", " + std::to_string(pending) + " bytes)");
      return false;
    }
    // Doubles as bytes arrive, never to more than the frame in progress needs: a declared
    // bulk length is not trusted with memory (four clients declaring 512 MiB each and
    // sending 20 KB took 2 GB when the buffer was sized to the declaration at once).
    std::size_t wanted = std::max(in_.size() * 2, kInitialInputBuffer);
    if (const std::size_t needed = parser_.frame_bytes_needed(); needed > in_.size()) {
      wanted = std::min(wanted, std::max(needed, kInitialInputBuffer));
    }
    wanted = std::min<std::size_t>(wanted, limits().query_buffer);
    if (wanted <= in_.size()) return false;  // a limit below the buffer
    in_.grow(wanted);
    return true;
  }

  // The limits of the live config, as of the latest refresh_limits on this thread.
  const ConnectionLimits& limits() const override { return server_.shards[home_]->limits; }

  // Takes the limits of the live config if it changed (into the shard's copy), and gives the
  // parser its share.
  void refresh_limits() {
    ShardRuntime& runtime = *server_.shards[home_];
    const std::uint64_t version = server_.state.config.version();
    if (version != runtime.limits_version) {
      const Config config = server_.state.config.snapshot();
      runtime.limits_version = version;
      runtime.limits.query_buffer = config.client_query_buffer_limit;
      runtime.limits.output_buffer = config.client_output_buffer_limit;
      runtime.limits.pubsub_output = config.pubsub_output_buffer_limit;
      runtime.limits.pubsub_soft = config.pubsub_output_buffer_soft_limit;
      runtime.limits.pubsub_soft_ms = static_cast<std::int64_t>(config.pubsub_output_buffer_soft_seconds) * 1000;
      runtime.limits.pubsub_backlog = config.pubsub_backlog_bytes;
      runtime.limits.reply_pause = config.reply_pause_bytes;
      protocol::ParserLimits& parser = runtime.parser_limits;
      parser.max_bulk_len = config.proto_max_bulk_len;
      parser.max_multibulk_len = config.proto_max_multibulk_len;
      parser.max_inline_len = config.proto_inline_max_size;
    }
    parser_.set_limits(runtime.parser_limits);
  }

  // --- running commands ---------------------------------------------------------------------

  // Parses and runs, here, the whole commands in the input, until the input ends, the unsent
  // replies pass the pause bound (paused_), or a command must run elsewhere or wait: that one
  // is returned, unconsumed, for drive to run.
  const CommandSpec* run_local() {
    paused_ = false;
    const CommandSpec* remote = nullptr;
    while (!closing_ && !session_.close_after_reply) {
      if (unsent() > limits().reply_pause) {
        paused_ = true;
        break;
      }
      const std::string_view pending = pending_input();
      const protocol::ParseResult result = parser_.parse(pending);
      if (result.status == protocol::ParseStatus::kNeedMore) break;
      if (result.status == protocol::ParseStatus::kError) {
        server_.state.stats.protocol_errors.fetch_add(1, std::memory_order_relaxed);
        log::verbose("Protocol error (" + std::string(parser_.error()) + ") from client id=" +
                     std::to_string(session_.info->id) + ": '" + log::escape_sample(pending) + "'");
        protocol::ReplyWriter(out_, session_.resp).error(parser_.error());
        server_.state.stats.error_reply(parser_.error());  // Redis counts these too
        session_.close_after_reply = true;
        break;
      }
      if (!parser_.args().empty() && is_http_request(parser_.args()[0])) {
        refuse_http();
        break;
      }
      if (!parser_.args().empty()) {
        remote = coordinator_.run_here(parser_.args());
        if (remote != nullptr) break;
      }
      in_begin_ += result.consumed;
    }
    if (in_begin_ == in_end_) in_begin_ = in_end_ = 0;
    if (session_.close_after_reply) closing_ = true;
    coordinator_.release_when_durable();
    return remote;
  }

  // After commands ran: the client's figures, and its output buffer limit.
  void after_run() {
    session_.info->query_buffer_bytes.store(in_end_ - in_begin_, std::memory_order_relaxed);
    session_.info->output_buffer_bytes.store(unsent(), std::memory_order_relaxed);
    if (limits().output_buffer != 0 && unsent() > limits().output_buffer) {
      log::warning("Client id=" + std::to_string(session_.info->id) +
                   " closed for overcoming of output buffer limits.");
      drop_output_and_close();
    }
  }

  // Runs what must wait (`remote`, a command run_local left unconsumed, or a pause), then the
  // commands after it, until nothing is in progress; then the connection reads again.
  awaitable<void> drive([[maybe_unused]] std::shared_ptr<Connection> self, const CommandSpec* remote) {
    if (!busy_) busy_ = std::make_unique<Busy>(socket_.get_executor());
    while (!closing_) {
      if (remote != nullptr) {
        co_await run_remote(*remote);
      } else {
        // Back-pressure: run no more commands, and read nothing, until the client has taken
        // its replies.
        while (!closing_ && unsent() > limits().reply_pause) co_await busy_->wakeup.async_wait(kNoThrow);
      }
      if (closing_) break;
      refresh_limits();
      remote = run_local();
      after_run();
      flush();
      if (remote == nullptr && !paused_) break;
    }
    busy_.reset();
    driving_ = false;
    resume_reading();
  }

  // Runs the command at the front of the input on the shards it needs. It is parsed again,
  // in the connection's own buffer, where its bytes now are.
  awaitable<void> run_remote(const CommandSpec& spec) {
    const protocol::ParseResult result = parser_.parse(pending_input());
    const std::span<const std::string_view> args = parser_.args();
    if (spec.route == Route::kKey) {
      // It and the pipelined commands after it for the same shard go in one hop.
      coordinator_.start_batch(spec, args);
      in_begin_ += result.consumed;
      gather_key_commands();
      co_await coordinator_.run_batch();
    } else {
      co_await coordinator_.run(spec, args);
      in_begin_ += result.consumed;
    }
  }

  // --- writing ------------------------------------------------------------------------------

  // Sends what may be sent: one non-blocking write, which usually takes it all. What the
  // socket does not take goes by an async_write, and later replies wait behind it, so order
  // is kept.
  void flush() {
    if (finished_ || moved_) return;
    if (!writing_ && !discard_output_) {
      const std::size_t take = sendable();
      if (take > 0) {
        boost::system::error_code ec;
        std::size_t n = socket_.write_some(asio::buffer(out_.data(), take), ec);
        if (ec == asio::error::would_block || ec == asio::error::try_again) {
          ec = {};
          n = 0;
        }
        if (ec) {
          discard_output_ = true;  // the client went away
          closing_ = true;
        } else {
          server_.state.stats.net_output_bytes.fetch_add(n, std::memory_order_relaxed);
          out_.erase(0, n);
          out_taken_ += n;
          if (n < take) start_write(take - n);
        }
      }
    }
    if (closing_) maybe_finish();
  }

  void start_write(std::size_t take) {
    if (take == out_.size()) {
      sending_.swap(out_);
      out_.clear();
    } else {
      sending_.assign(out_, 0, take);
      out_.erase(0, take);
    }
    out_taken_ += take;
    writing_ = true;
    asio::async_write(socket_, asio::buffer(sending_),
                      [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                        self->on_written(ec, n);
                      });
  }

  void on_written(const boost::system::error_code& ec, std::size_t n) {
    writing_ = false;
    server_.state.stats.net_output_bytes.fetch_add(n, std::memory_order_relaxed);
    sending_.clear();
    if (sending_.capacity() > kShrinkInputAbove) sending_.shrink_to_fit();
    if (ec) {
      discard_output_ = true;
      closing_ = true;
    }
    wake_drive();  // a paused drive may go on
    flush();
  }

  // Closing: the socket closes once nothing is in progress and every reply that may go out
  // has gone. Replies held for the disk are waited for (the Coordinator releases them, or cuts the output after -MISCONF).
  void maybe_finish() {
    if (finished_ || moved_ || !closing_ || driving_ || writing_) return;
    if (!discard_output_ && sendable() > 0) {
      flush();  // comes back here once it has sent them, or started a write
      return;
    }
    if (!discard_output_ && !out_.empty() && !coordinator_.output_cut()) {
      keep_alive_ = shared_from_this();  // nothing else may hold the connection meanwhile
      return;
    }
    finished_ = true;
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    // Let go of the connection after this handler, not inside it.
    if (keep_alive_) asio::post(socket_.get_executor(), [keep = std::move(keep_alive_)] {});
  }

  // --- replies that wait for the disk ------------------------------------------------------
  //
  // The Coordinator holds a write's reply in out_ until its batch is durable; it says how far
  // the output may go (sendable_end, a position counted as out_taken_ is).

  // Bytes at the front of out_ that may be sent now: all, or up to the first held reply.
  [[nodiscard]] std::size_t sendable() const {
    const std::uint64_t end = std::min(out_taken_ + out_.size(), coordinator_.sendable_end());
    return end > out_taken_ ? static_cast<std::size_t>(end - out_taken_) : 0;
  }

  std::size_t unsent() const { return out_.size() + sending_.size(); }

  // --- what the Coordinator asks of the connection (Coordinator::Link) ----------------------

  std::string& output() override { return out_; }
  std::uint64_t output_position() const override { return out_taken_ + out_.size(); }
  std::weak_ptr<void> lifetime() override { return weak_from_this(); }
  void replies_released() override {
    flush();
    wake_drive();  // a drive paused on unsent replies may go on
  }
  bool closing() const override { return closing_; }
  void end_session() override { closing_ = true; }
  asio::any_io_executor executor() override { return socket_.get_executor(); }

  awaitable<void> send_and_wait_taken() override {
    coordinator_.release_when_durable();
    flush();
    while (!closing_ && unsent() > limits().reply_pause) co_await busy_->wakeup.async_wait(kNoThrow);
  }

  std::function<void(WaiterAnswer)> expect_blocked_answer() override {
    busy_->blocked_reply.reset();
    std::weak_ptr<Connection> weak = shared_from_this();
    auto executor = socket_.get_executor();
    asio::io_context* home_io = &server_.shards[home_]->io;
    return [weak, executor, home_io](WaiterAnswer answer) {
      if (home_io->get_executor().running_in_this_thread()) {
        // Answered by a command on this connection's own thread: no need to post.
        if (auto self = weak.lock()) self->on_blocked_answer(std::move(answer));
        return;
      }
      asio::post(executor, [weak, answer = std::move(answer)]() mutable {
        if (auto self = weak.lock()) self->on_blocked_answer(std::move(answer));
      });
    };
  }

  // --- moving to the shard that owns the keys ----------------------------------------------

  // Key commands in a row for one shard after which a connection moves to that shard.
  static constexpr std::uint32_t kMoveAfter = 32;

  void note_owner(unsigned owner) override {
    if (owner == affinity_shard_) {
      if (affinity_run_ < kMoveAfter) ++affinity_run_;
    } else {
      affinity_shard_ = owner;
      affinity_run_ = 1;
    }
  }

  // Moves happen only between reads, with nothing unparsed, unsent or in progress: no
  // transaction, no watched key, no blocked read.
  bool should_move() const {
    return affinity_run_ >= kMoveAfter && affinity_shard_ != home_ && in_begin_ == in_end_ &&
           out_.empty() && !writing_ && !coordinator_.holding() && !session_.in_multi &&
           !session_.watching() && !session_.close_after_reply && !session_.shutdown_after_reply &&
           !session_.subscribed();
  }

  // Hands the socket and the session to a new Connection on the owning shard's thread.
  // Returns false (and stays) if the socket could not be handed over.
  bool move_to_owner() {
    const unsigned target = affinity_shard_;
    affinity_run_ = 0;
    boost::system::error_code ec;
    const tcp::endpoint local = socket_.local_endpoint(ec);
    if (ec) return false;
    // Nothing is pending on the socket: the reader is here and the writer has nothing to send.
    const tcp::socket::native_handle_type fd = socket_.release(ec);
    if (ec) return false;
    Socket moved(server_.shards[target]->io);
    moved.assign(local.protocol(), fd, ec);
    // The descriptor is non-blocking already; Asio must know it, or its synchronous reads
    // and writes (flush, read_input, wait_blocked) would wait in poll on this thread.
    if (!ec) moved.non_blocking(true, ec);
    if (ec) {
      ::close(fd);
      closing_ = true;
      return false;
    }
    auto next = std::make_shared<Connection>(server_, std::move(moved), target);
    next->session_ = std::move(session_);
    next->session_.parser = &next->parser_;
    next->parser_ = std::move(parser_);
    server_.shards[target]->shard.connections.fetch_add(1, std::memory_order_relaxed);
    server_.shards[target]->shard.connections_moved_in.fetch_add(1, std::memory_order_relaxed);
    server_.shards[home_]->shard.connections.fetch_sub(1, std::memory_order_relaxed);
    moved_ = true;
    closing_ = true;
    asio::post(server_.shards[target]->io, [next] { next->resume(); });
    return true;
  }

  // Parses and runs the whole commands in the input buffer. Returns true if it stopped early
  // because the unsent replies passed the pause bound.

  // "POST" or "Host:" as a command name: an HTTP request, which a web page the user opens
  // can send to a server on localhost (cross-protocol scripting). As Redis does, the
  // connection closes at once, unanswered: the replies to what came in the same read are
  // dropped, and nothing after it runs.
  static bool is_http_request(std::string_view name) {
    return equals_ignore_case(name, "post") || equals_ignore_case(name, "host:");
  }

  void refuse_http() {
    static std::atomic<std::int64_t> logged_at{-1};
    const std::int64_t now = steady_now_ms() / 1000;
    std::int64_t last = logged_at.load(std::memory_order_relaxed);
    if ((last < 0 || now - last > 60) && logged_at.compare_exchange_strong(last, now)) {
      log::warning("Possible SECURITY ATTACK detected. It looks like somebody is sending POST or Host: commands to "
                   "Runnel. This is likely due to an attacker attempting to use Cross Protocol Scripting to "
                   "compromise your Runnel instance. Connection aborted.");
    }
    drop_output_and_close();
  }

  // Closes the connection without sending the replies not yet handed to the writer.
  void drop_output_and_close() {
    out_.clear();
    coordinator_.drop_holds();
    discard_output_ = true;
    closing_ = true;
  }

  // Adds the whole key commands that follow in the input to the Coordinator's batch, while
  // each may join it (Coordinator::batchable).
  void gather_key_commands() {
    while (true) {
      const std::string_view pending = pending_input();
      const protocol::ParseResult result = parser_.parse(pending);
      if (result.status != protocol::ParseStatus::kCommand) break;
      const CommandSpec* spec = coordinator_.batchable(parser_.args());
      if (spec == nullptr || !coordinator_.add_to_batch(*spec, parser_.args(), result.consumed)) break;
      in_begin_ += result.consumed;
    }
  }

  // Waits for a shard's answer, the timeout, or the client going away. Input that arrives
  // meanwhile is kept for after the block; a closed socket ends the wait.
  awaitable<void> wait_blocked(const std::shared_ptr<StreamWaiter>& waiter,
                               const xread::Request& request) override {
    using namespace asio::experimental::awaitable_operators;
    coordinator_.release_when_durable();
    flush();  // replies to earlier pipelined commands go out now (once durable)
    if (busy_->blocked_reply) {
      // Answered before this coroutine got here.
      out_.append(*busy_->blocked_reply);
      busy_->blocked_reply.reset();
      coordinator_.unregister(waiter, request.registered_shards);
      co_return;
    }
    busy_->in_blocked_wait = true;
    server_.state.blocked_clients.fetch_add(1, std::memory_order_relaxed);
    if (*request.block_ms > 0) {
      busy_->block_timer.expires_after(std::chrono::milliseconds(*request.block_ms));
    } else {
      busy_->block_timer.expires_at(asio::steady_timer::time_point::max());
    }
    while (!busy_->blocked_reply) {
      if (closing_) {
        waiter->try_claim();  // nobody answers a closed connection
        break;
      }
      auto woke = co_await (busy_->block_timer.async_wait(kNoThrow) ||
                            socket_.async_wait(tcp::socket::wait_read, kNoThrow));
      if (busy_->blocked_reply) break;
      if (woke.index() == 0) {
        const auto [ec] = std::get<0>(woke);
        if (ec) continue;  // woken to look again (reply or close)
        if (waiter->try_claim()) {
          protocol::ReplyWriter(out_, session_.resp).null_array();
          break;
        }
        // A shard claimed it as the time ran out: its reply is on the way.
        busy_->block_timer.expires_at(asio::steady_timer::time_point::max());
        continue;
      }
      const auto [ec] = std::get<1>(woke);
      boost::system::error_code read_error;
      std::size_t n = 0;
      if (!ec && prepare_input()) {
        n = socket_.read_some(asio::buffer(in_.data() + in_end_, in_.size() - in_end_), read_error);
        // A readiness report with nothing to read (the socket is non-blocking): wait again.
        if (read_error == asio::error::would_block || read_error == asio::error::try_again) continue;
      }
      if (ec || read_error || n == 0) {
        closing_ = true;  // the client went away (or sent past the query buffer limit)
        continue;
      }
      in_end_ += n;
      server_.state.stats.net_input_bytes.fetch_add(n, std::memory_order_relaxed);
    }
    end_blocked_wait();
    if (busy_->blocked_reply) out_.append(*busy_->blocked_reply);  // empty if on_blocked_reply sent it
    busy_->blocked_reply.reset();
    coordinator_.unregister(waiter, request.registered_shards);
  }

  void end_blocked_wait() {
    if (!busy_->in_blocked_wait) return;
    busy_->in_blocked_wait = false;
    server_.state.blocked_clients.fetch_sub(1, std::memory_order_relaxed);
  }

  ServerCore& server_;
  Socket socket_;
  unsigned home_;
  unsigned affinity_shard_ = 0;     // the shard of the latest key commands
  std::uint32_t affinity_run_ = 0;  // and how many in a row
  Session session_;
  protocol::RequestParser parser_;
  Coordinator coordinator_{server_, session_, *this, home_};
  std::unique_ptr<Busy> busy_;  // while drive runs
  std::uint64_t out_taken_ = 0;  // bytes that have left out_ (sent, or handed to async_write)
  InputBuffer in_;  // bytes [in_begin_, in_end_) of the input (in_ or the scratch) are unconsumed
  std::size_t in_begin_ = 0;
  std::size_t in_end_ = 0;
  std::string out_;      // replies not yet sent or handed to async_write
  std::string sending_;  // replies async_write is sending
  std::shared_ptr<Connection> keep_alive_;  // closing, with replies held for the disk
  bool in_borrowed_ = false;  // the input is in the thread's scratch buffer
  bool paused_ = false;       // run_local stopped at the pause bound
  bool driving_ = false;      // drive runs
  bool flush_posted_ = false;  // a flush is posted for the Pub/Sub messages appended
  bool writing_ = false;      // an async_write is in flight
  bool closing_ = false;
  bool discard_output_ = false;
  bool finished_ = false;  // the socket is closed
  bool moved_ = false;     // handed over to another shard
};

void ConnectionInfo::request_close() {
  std::lock_guard lock(where_mutex);
  close_requested = true;
  asio::post(*io, [weak = connection] {
    if (auto self = weak.lock()) self->close();
  });
}


}  // namespace

void serve_connection(ServerCore& server, Socket socket, unsigned home) {
  auto connection = std::make_shared<Connection>(server, std::move(socket), home);
  asio::post(server.shards[home]->io, [connection] { connection->start(); });
}

}  // namespace runnel
