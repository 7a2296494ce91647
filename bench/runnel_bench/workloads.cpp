// The workloads, each a set of coroutines over RespConnection on one or more io_contexts.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <unistd.h>

#include "bench.hpp"
#include "resp.hpp"

namespace runnel::bench {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using tcp = asio::ip::tcp;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count());
}

std::string_view first_line(std::string_view reply) {
  return reply.substr(0, std::min(reply.find("\r\n"), std::size_t{200}));
}

// Throws if `reply` is an error reply.
void expect_no_error(std::string_view reply, std::string_view what) {
  if (!reply.empty() && reply[0] == '-') {
    throw BenchError(std::string(what) + " got an error reply: " + std::string(first_line(reply.substr(1))));
  }
}

// Appends a RESP command.
template <typename Args>
void encode_args(std::string& out, const Args& args) {
  out += '*';
  out += std::to_string(args.size());
  out += "\r\n";
  for (const std::string_view a : args) {
    out += '$';
    out += std::to_string(a.size());
    out += "\r\n";
    out += a;
    out += "\r\n";
  }
}
void encode(std::string& out, std::initializer_list<std::string_view> args) { encode_args(out, args); }
void encode(std::string& out, const std::vector<std::string>& args) { encode_args(out, args); }

// One connection to the server: send bytes, take whole replies as views into its buffer.
class RespConnection {
 public:
  explicit RespConnection(asio::any_io_executor executor) : socket_(std::move(executor)), buffer_(64 * 1024, '\0') {}

  awaitable<void> connect(const Options& o) {
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(o.host, ec);
    if (ec) throw BenchError("'" + o.host + "' is not an IP address");
    const auto [connect_error] = co_await socket_.async_connect(tcp::endpoint(address, o.port), kNoThrow);
    if (connect_error) {
      throw BenchError("cannot connect to " + o.host + ":" + std::to_string(o.port) + ": " + connect_error.message());
    }
    socket_.set_option(tcp::no_delay(true), ec);
  }

  awaitable<void> send(std::string_view bytes) {
    const auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(bytes.data(), bytes.size()), kNoThrow);
    if (ec) throw BenchError("connection lost while sending: " + ec.message());
  }

  // The next whole reply, valid until the next call.
  awaitable<std::string_view> reply() {
    while (true) {
      if (begin_ < end_) {
        const std::string_view pending(buffer_.data() + begin_, end_ - begin_);
        if (const auto length = reply_length(pending)) {
          const std::string_view whole = pending.substr(0, *length);
          begin_ += *length;
          co_return whole;
        }
      }
      if (begin_ > 0) {
        std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
      }
      if (end_ == buffer_.size()) {
        if (buffer_.size() >= (std::size_t{1} << 30)) throw BenchError("a reply over 1 GiB");
        buffer_.resize(buffer_.size() * 2);
      }
      const auto [ec, n] = co_await socket_.async_read_some(
          asio::buffer(buffer_.data() + end_, buffer_.size() - end_), kNoThrow);
      if (ec) throw BenchError("connection lost: " + ec.message());
      end_ += n;
    }
  }

  // Sends a command and requires a reply that is not an error.
  awaitable<void> call(std::string command, std::string_view what) {
    co_await send(command);
    const std::string_view r = co_await reply();
    expect_no_error(r, what);
  }

 private:
  tcp::socket socket_;
  std::string buffer_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

// io_contexts (one per --threads), each run by a thread, and what the coroutines share.
class Runner {
 public:
  explicit Runner(const Options& o) : options(o), latency(o.threads) {
    for (unsigned i = 0; i < o.threads; ++i) contexts_.push_back(std::make_unique<asio::io_context>(1));
    remaining_ = o.count;
  }

  const Options& options;
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> ops{0};
  std::atomic<std::uint64_t> bytes{0};
  std::atomic<int> active{0};  // workers still running
  std::vector<Histogram> latency;  // one per context

  asio::io_context& context(unsigned i) { return *contexts_[i % contexts_.size()]; }
  Histogram& histogram(unsigned i) { return latency[i % latency.size()]; }

  // Starts `task` on context `i`; an exception in it stops the run with its message.
  // Workers are the tasks that make the load; helpers (timers) end when no worker is left.
  template <typename Task>
  void spawn(unsigned i, Task&& task, bool worker = true) {
    if (worker) active.fetch_add(1);
    asio::co_spawn(context(i), std::forward<Task>(task), [this, worker](std::exception_ptr e) {
      if (worker) active.fetch_sub(1);
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& error) {
        fail(error.what());
      }
    });
  }

  void fail(const std::string& message) {
    {
      std::lock_guard lock(mutex_);
      if (error_.empty()) error_ = message;
    }
    stop = true;
  }

  // Takes up to `n` operations from --count (all of them when there is no count).
  std::uint64_t claim(std::uint64_t n) {
    if (options.count == 0) return n;
    std::uint64_t left = remaining_.load();
    while (left > 0) {
      const std::uint64_t take = std::min(left, n);
      if (remaining_.compare_exchange_weak(left, left - take)) return take;
    }
    return 0;
  }

  // Runs every context on its own thread until all tasks end; prints progress each second.
  // Throws the first error.
  void run(const std::string& label) {
    std::vector<std::thread> threads;
    const auto start = Clock::now();
    for (auto& context : contexts_) {
      threads.emplace_back([this, &context] {
        context->run();
        std::lock_guard done(mutex_);
        ++finished_;
        progress_cv_.notify_all();
      });
    }
    std::unique_lock lock(mutex_);
    std::uint64_t last_ops = 0;
    auto last = start;
    while (!progress_cv_.wait_for(lock, std::chrono::seconds(1), [&] { return finished_ == contexts_.size(); })) {
      const auto now = Clock::now();
      const std::uint64_t total = ops.load();
      const double second = std::chrono::duration<double>(now - last).count();
      if (!options.quiet) {
        std::fprintf(stderr, "%s%s: %.0f s, %.0f ops/s, %llu ops%s", isatty(2) ? "\r" : "", label.c_str(),
                     std::chrono::duration<double>(now - start).count(),
                     static_cast<double>(total - last_ops) / second, static_cast<unsigned long long>(total),
                     isatty(2) ? "   " : "\n");
      }
      last_ops = total;
      last = now;
    }
    lock.unlock();
    for (auto& t : threads) t.join();
    if (!options.quiet && isatty(2)) std::fprintf(stderr, "\n");
    if (!error_.empty()) throw BenchError(error_);
  }

  // Marks the end of a worker's load; the phase lasts until the last one.
  void note_end() {
    const auto now = Clock::now().time_since_epoch().count();
    auto seen = last_end_.load();
    while (seen < now && !last_end_.compare_exchange_weak(seen, now)) {
    }
  }
  [[nodiscard]] double seconds_since(Clock::time_point start) const {
    const Clock::time_point end{Clock::duration(last_end_.load())};
    return std::chrono::duration<double>(end - start).count();
  }

 private:
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::atomic<std::uint64_t> remaining_{0};
  std::atomic<Clock::rep> last_end_{0};
  std::mutex mutex_;
  std::condition_variable progress_cv_;
  std::size_t finished_ = 0;
  std::string error_;
};

// Stops the run after --duration seconds (a timer on context 0).
void stop_after(Runner& runner, double seconds, std::atomic<bool>& flag) {
  runner.spawn(0, [&runner, seconds, &flag]() -> awaitable<void> {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    // Wakes every 50 ms so the timer does not outlive a run that ended early.
    while (!flag.load() && !runner.stop.load() && runner.active.load() > 0 && Clock::now() < end) {
      timer.expires_after(std::chrono::milliseconds(50));
      co_await timer.async_wait(kNoThrow);
    }
    flag = true;
  }, false);
}

std::string stream_key(const Options& o, unsigned i) {
  return o.streams <= 1 ? o.key : o.key + ":" + std::to_string(i);
}

// XADD key [MAXLEN ~ n] * f0 v f1 v ...
// XADD with --maxlen, --fields and --value-size; with `idmp`, IDMP pid iid before the ID.
std::string xadd_command(const Options& o, const std::string& key,
                         const std::optional<std::pair<std::string, std::string>>& idmp = std::nullopt) {
  const std::string value(o.value_size, 'v');
  std::string out;
  const std::size_t args = 3 + (o.maxlen ? 3 : 0) + (idmp ? 3 : 0) + 2 * o.fields;
  out += "*" + std::to_string(args) + "\r\n";
  auto bulk = [&out](std::string_view a) {
    out += "$" + std::to_string(a.size()) + "\r\n";
    out += a;
    out += "\r\n";
  };
  bulk("XADD");
  bulk(key);
  if (o.maxlen) {
    bulk("MAXLEN");
    bulk("~");
    bulk(std::to_string(o.maxlen));
  }
  if (idmp) {
    bulk("IDMP");
    bulk(idmp->first);
    bulk(idmp->second);
  }
  bulk("*");
  for (unsigned f = 0; f < o.fields; ++f) {
    bulk("f" + std::to_string(f));
    bulk(value);
  }
  return out;
}

std::uint64_t payload_bytes(const Options& o) {
  std::uint64_t b = 0;
  for (unsigned f = 0; f < o.fields; ++f) b += std::to_string(f).size() + 1 + o.value_size;
  return b;
}

// Waits until `due` (for fixed-rate senders).
awaitable<void> wait_until(asio::steady_timer& timer, Clock::time_point due) {
  if (Clock::now() >= due) co_return;
  timer.expires_at(due);
  co_await timer.async_wait(kNoThrow);
}

Clock::duration period_of(double per_second) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / per_second));
}

// --- produce ----------------------------------------------------------------------------------

// One producing connection: batches of --pipeline XADDs over the streams, as fast as the
// replies come or at its share of --rate. A command's latency runs from when its batch was
// due (so a late batch counts its wait: no coordinated omission) to its reply.
awaitable<void> produce_connection(Runner& run, unsigned index, std::atomic<bool>& stop, std::string key_override) {
  const Options& o = run.options;
  RespConnection c(co_await asio::this_coro::executor);
  co_await c.connect(o);
  std::vector<std::string> commands;
  if (!key_override.empty()) {
    commands.push_back(xadd_command(o, key_override));
  } else {
    for (unsigned s = 0; s < std::max(1u, o.streams); ++s) commands.push_back(xadd_command(o, stream_key(o, s)));
  }
  // --idmp: the same commands with IDMP p<index> and an empty idempotent ID, and where that
  // empty ID's length digit is (all commands share the prefix up to it in shape).
  std::vector<std::string> idmp_commands;
  std::vector<std::size_t> idmp_cuts;
  if (o.idmp) {
    const std::pair<std::string, std::string> empty{"p" + std::to_string(index), ""};
    if (!key_override.empty()) {
      idmp_commands.push_back(xadd_command(o, key_override, empty));
    } else {
      for (unsigned s = 0; s < std::max(1u, o.streams); ++s) idmp_commands.push_back(xadd_command(o, stream_key(o, s), empty));
    }
    for (const std::string& command : idmp_commands) idmp_cuts.push_back(command.find("$0\r\n\r\n$1\r\n*") + 1);
  }
  const std::uint64_t payload = payload_bytes(o);
  Histogram& histogram = run.histogram(index);
  asio::steady_timer timer(co_await asio::this_coro::executor);
  const Clock::duration period = o.rate > 0 ? period_of(o.rate / (o.connections * static_cast<double>(o.pipeline)))
                                            : Clock::duration::zero();
  Clock::time_point due = Clock::now();
  std::uint64_t next = index;
  std::string batch;
  while (!stop.load(std::memory_order_relaxed)) {
    const std::uint64_t n = run.claim(o.pipeline);
    if (n == 0) break;
    batch.clear();
    for (std::uint64_t i = 0; i < n; ++i) {
      if (o.idmp) {
        // The command as built for IDMP with an empty idempotent ID, which goes last before
        // "*": cut there, and the ID put in (one allocation-free append per XADD).
        const std::size_t which = next % idmp_commands.size();
        const std::string& command = idmp_commands[which];
        const std::size_t idmp_cut = idmp_cuts[which];
        const std::string iid = std::to_string(next);
        batch.append(command, 0, idmp_cut);
        batch += std::to_string(iid.size());
        batch += "\r\n";
        batch += iid;
        batch.append(command, idmp_cut + 3, std::string::npos);  // past "0\r\n" (empty bulk's length)
        next += o.connections;  // unique over the connections
      } else {
        batch += commands[next++ % commands.size()];
      }
    }
    if (period != Clock::duration::zero()) {
      co_await wait_until(timer, due);
    } else {
      due = Clock::now();
    }
    co_await c.send(batch);
    for (std::uint64_t i = 0; i < n; ++i) {
      const std::string_view r = co_await c.reply();
      expect_no_error(r, "XADD");
      histogram.record(static_cast<std::uint64_t>(std::chrono::nanoseconds(Clock::now() - due).count()));
    }
    run.ops.fetch_add(n, std::memory_order_relaxed);
    run.bytes.fetch_add(n * payload, std::memory_order_relaxed);
    due += period;
  }
  run.note_end();
}

Result finish(Runner& run, const std::string& name, Clock::time_point start) {
  Result r;
  r.name = name;
  r.ops = run.ops.load();
  r.bytes = run.bytes.load();
  r.seconds = run.seconds_since(start);
  for (const Histogram& h : run.latency) r.latency.merge(h);
  return r;
}

std::vector<Result> produce(const Options& o) {
  Runner run(o);
  for (unsigned i = 0; i < o.connections; ++i) run.spawn(i, produce_connection(run, i, run.stop, ""));
  if (o.duration > 0) stop_after(run, o.duration, run.stop);
  const auto start = Clock::now();
  run.run("produce");
  return {finish(run, "produce", start)};
}

// --- setup: a stream of --prefill entries, and groups on it --------------------------------

void prefill(const Options& o, const std::string& key, unsigned groups) {
  Options fill = o;
  fill.count = o.prefill;
  fill.threads = 1;
  fill.quiet = o.quiet;
  Runner run(fill);
  run.spawn(0, [&run, &o, &key, groups]() -> awaitable<void> {
    RespConnection c(co_await asio::this_coro::executor);
    co_await c.connect(o);
    std::string command;
    encode(command, {"DEL", key});
    co_await c.call(command, "DEL");
    const std::string xadd = xadd_command(o, key);
    std::string batch;
    while (run.options.count > 0) {
      const std::uint64_t n = run.claim(1000);
      if (n == 0) break;
      batch.clear();
      for (std::uint64_t i = 0; i < n; ++i) batch += xadd;
      co_await c.send(batch);
      for (std::uint64_t i = 0; i < n; ++i) expect_no_error(co_await c.reply(), "XADD (prefill)");
      run.ops.fetch_add(n, std::memory_order_relaxed);
    }
    for (unsigned g = 0; g < groups; ++g) {
      command.clear();
      encode(command, {"XGROUP", "CREATE", key, "g" + std::to_string(g), "0", "MKSTREAM"});
      co_await c.call(command, "XGROUP CREATE");
    }
  });
  run.run("prefill");
}

// The IDs and, if asked, the "t" field of an XREAD/XREADGROUP reply's entries.
struct Delivery {
  std::vector<std::string_view> ids;
  std::vector<std::uint64_t> stamps;
};
// One entry: [id, fields], or with CLAIM [id, fields, idle, deliveries].
void parse_entry(ReplyCursor& cur, bool want_stamps, Delivery& out) {
  const std::int64_t parts = cur.aggregate();
  out.ids.push_back(cur.string());
  const std::int64_t fields = cur.aggregate();
  for (std::int64_t f = 0; f + 1 < fields; f += 2) {
    const std::string_view name = cur.string();
    const std::string_view value = cur.string();
    if (want_stamps && name == "t") {
      if (const auto t = to_int(value)) out.stamps.push_back(static_cast<std::uint64_t>(*t));
    }
  }
  if (fields < 0) cur.skip();
  for (std::int64_t p = 2; p < parts; ++p) cur.skip();
}

void parse_entries(std::string_view reply, bool want_stamps, Delivery& out) {
  out.ids.clear();
  out.stamps.clear();
  ReplyCursor cur(reply);
  const std::int64_t streams = cur.aggregate();
  // RESP3 answers XREAD with a map (stream -> entries), RESP2 with [stream, entries] pairs.
  const bool map = !reply.empty() && reply[0] == '%';
  const std::int64_t count = map ? streams / 2 : streams;
  for (std::int64_t s = 0; s < count && !cur.failed(); ++s) {
    if (!map) cur.aggregate();
    cur.string();  // the stream's name
    const std::int64_t entries = cur.aggregate();
    for (std::int64_t e = 0; e < entries && !cur.failed(); ++e) parse_entry(cur, want_stamps, out);
  }
  if (cur.failed()) throw BenchError("a reply that is not XREAD's shape: " + std::string(first_line(reply)));
}

// XAUTOCLAIM's reply: [next cursor, entries, deleted IDs]. Appends the entries' IDs to `out`.
void parse_autoclaimed(std::string_view reply, Delivery& out, std::string& cursor) {
  ReplyCursor cur(reply);
  cur.aggregate();
  cursor = std::string(cur.string());
  const std::int64_t entries = cur.aggregate();
  for (std::int64_t e = 0; e < entries && !cur.failed(); ++e) parse_entry(cur, false, out);
  cur.skip();
  if (cur.failed()) throw BenchError("a reply that is not XAUTOCLAIM's shape: " + std::string(first_line(reply)));
}

// One group consumer: XREADGROUP COUNT --batch, with the XACK of the previous batch in the
// same round trip. Ends when the stream is drained (no BLOCK) or the run stops. Latency is the
// round trip of each XREADGROUP; with stamps, the latency is each entry's age on receipt.
awaitable<void> group_consumer(Runner& run, unsigned index, std::string key, std::string group,
                               std::string consumer, std::optional<unsigned> block_ms, bool stamps,
                               std::atomic<bool>& stop) {
  const Options& o = run.options;
  RespConnection c(co_await asio::this_coro::executor);
  co_await c.connect(o);
  Histogram& histogram = run.histogram(index);
  const std::uint64_t payload = payload_bytes(o);
  std::vector<std::string> read_args = {"XREADGROUP", "GROUP", group, consumer, "COUNT", std::to_string(o.batch)};
  if (block_ms) read_args.insert(read_args.end(), {"BLOCK", std::to_string(*block_ms)});
  if (o.claim_ms) read_args.insert(read_args.end(), {"CLAIM", std::to_string(*o.claim_ms)});
  read_args.insert(read_args.end(), {"STREAMS", key, ">"});
  std::string read;
  encode(read, read_args);
  std::string wire;
  std::string ack;
  std::string cursor = "0-0";  // --autoclaim's
  Delivery delivery;
  while (!stop.load(std::memory_order_relaxed)) {
    const bool acking = !ack.empty();
    wire = ack;
    if (o.autoclaim_ms) {
      encode(wire, {"XAUTOCLAIM", key, group, consumer, std::to_string(*o.autoclaim_ms), cursor, "COUNT",
                    std::to_string(o.batch)});
    }
    wire += read;
    const auto sent = Clock::now();
    co_await c.send(wire);
    if (acking) expect_no_error(co_await c.reply(), "XACK");
    std::string claimed_reply;
    if (o.autoclaim_ms) {
      const std::string_view a = co_await c.reply();
      expect_no_error(a, "XAUTOCLAIM");
      claimed_reply = std::string(a);
    }
    const std::string_view r = co_await c.reply();
    expect_no_error(r, "XREADGROUP");
    const auto received = Clock::now();
    parse_entries(r, stamps, delivery);
    if (o.autoclaim_ms) parse_autoclaimed(claimed_reply, delivery, cursor);
    ack.clear();
    if (delivery.ids.empty()) {
      if (!block_ms) break;  // drained
      continue;
    }
    if (stamps) {
      const std::uint64_t now = now_ns();
      for (const std::uint64_t t : delivery.stamps) histogram.record(now > t ? now - t : 0);
    } else {
      histogram.record(static_cast<std::uint64_t>(std::chrono::nanoseconds(received - sent).count()));
    }
    run.ops.fetch_add(delivery.ids.size(), std::memory_order_relaxed);
    run.bytes.fetch_add(delivery.ids.size() * payload, std::memory_order_relaxed);
    // XACK key group id...
    ack += "*" + std::to_string(3 + delivery.ids.size()) + "\r\n$4\r\nXACK\r\n";
    ack += "$" + std::to_string(key.size()) + "\r\n" + key + "\r\n";
    ack += "$" + std::to_string(group.size()) + "\r\n" + group + "\r\n";
    for (const std::string_view id : delivery.ids) {
      ack += "$" + std::to_string(id.size()) + "\r\n";
      ack += id;
      ack += "\r\n";
    }
  }
  if (!ack.empty()) co_await c.call(ack, "XACK");
  run.note_end();
}

std::vector<Result> consume(const Options& o) {
  prefill(o, o.key, 1);
  Runner run(o);
  for (unsigned i = 0; i < o.consumers; ++i) {
    run.spawn(i, group_consumer(run, i, o.key, "g0", "c" + std::to_string(i), std::nullopt, false, run.stop));
  }
  if (o.duration > 0) stop_after(run, o.duration, run.stop);
  const auto start = Clock::now();
  run.run("consume");
  return {finish(run, "consume", start)};
}

std::vector<Result> fanout(const Options& o) {
  prefill(o, o.key, o.groups);
  Runner run(o);
  for (unsigned g = 0; g < o.groups; ++g) {
    run.spawn(g, group_consumer(run, g, o.key, "g" + std::to_string(g), "c0", std::nullopt, false, run.stop));
  }
  if (o.duration > 0) stop_after(run, o.duration, run.stop);
  const auto start = Clock::now();
  run.run("fanout");
  return {finish(run, "fanout", start)};
}

// XADD key * t <now ns> f0 v ...: an entry that carries when it was sent. Open loop: each
// XADD goes out when it is due, whether or not the replies to the earlier ones have come
// (a second coroutine takes them), so a slow server cannot slow the producer down and hide
// its own delay.
awaitable<void> stamped_producer(Runner& run, unsigned index, std::string key, double rate,
                                 std::atomic<bool>& stop, std::atomic<std::uint64_t>& produced,
                                 const std::atomic<bool>* start_when = nullptr) {
  const Options& o = run.options;
  auto executor = co_await asio::this_coro::executor;
  auto c = std::make_shared<RespConnection>(executor);
  co_await c->connect(o);
  asio::steady_timer timer(executor);
  while (start_when != nullptr && !start_when->load() && !stop.load() && !run.stop.load()) {
    timer.expires_after(std::chrono::milliseconds(1));
    co_await timer.async_wait(kNoThrow);
  }
  // Replies: counted by the taker; the producer waits for them all at the end.
  auto sent = std::make_shared<std::uint64_t>(0);
  auto taken = std::make_shared<std::uint64_t>(0);
  auto sending_done = std::make_shared<bool>(false);
  auto taker_done = std::make_shared<asio::steady_timer>(executor, asio::steady_timer::time_point::max());
  run.spawn(index, [c, sent, taken, sending_done, taker_done, &produced]() -> awaitable<void> {
    asio::steady_timer idle(co_await asio::this_coro::executor);
    while (!(*sending_done && *taken == *sent)) {
      if (*taken == *sent) {
        idle.expires_after(std::chrono::microseconds(200));
        co_await idle.async_wait(kNoThrow);
        continue;
      }
      expect_no_error(co_await c->reply(), "XADD");
      ++*taken;
      produced.fetch_add(1, std::memory_order_relaxed);
    }
    taker_done->cancel();
  });
  const Clock::duration period = period_of(rate);
  // Spread the producers' phases over one period.
  Clock::time_point due = Clock::now() + period * index / std::max(1u, o.producers);
  const std::string value(o.value_size, 'v');
  std::string command;
  while (!stop.load(std::memory_order_relaxed) && !run.stop.load(std::memory_order_relaxed)) {
    co_await wait_until(timer, due);
    due += period;
    command.clear();
    encode(command, {"XADD", key, "*", "t", std::to_string(now_ns()), "f0", value});
    ++*sent;
    co_await c->send(command);
  }
  *sending_done = true;
  if (*taken != *sent) co_await taker_done->async_wait(kNoThrow);
  run.note_end();
}

// Stops the consumers once the producers have stopped and everything produced was delivered
// (or 2 s later).
void stop_when_drained(Runner& run, std::atomic<bool>& producers_stopped, std::atomic<std::uint64_t>& produced,
                       std::atomic<bool>& consumers_stop) {
  run.spawn(0, [&]() -> awaitable<void> {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    while (!producers_stopped.load() && !run.stop.load() && run.active.load() > 0) {
      timer.expires_after(std::chrono::milliseconds(20));
      co_await timer.async_wait(kNoThrow);
    }
    const auto give_up = Clock::now() + std::chrono::seconds(2);
    while (run.ops.load() < produced.load() && Clock::now() < give_up && !run.stop.load() && run.active.load() > 0) {
      timer.expires_after(std::chrono::milliseconds(20));
      co_await timer.async_wait(kNoThrow);
    }
    consumers_stop = true;
  }, false);
}

std::vector<Result> latency(const Options& o) {
  {
    // A fresh stream with one group, at its end.
    Options fresh = o;
    fresh.prefill = 0;
    prefill(fresh, o.key, 1);
  }
  Runner run(o);
  std::atomic<bool> producers_stop{false};
  std::atomic<bool> consumers_stop{false};
  std::atomic<std::uint64_t> produced{0};
  const double rate = (o.rate > 0 ? o.rate : 10000) / std::max(1u, o.producers);
  for (unsigned i = 0; i < o.consumers; ++i) {
    run.spawn(i, group_consumer(run, i, o.key, "g0", "c" + std::to_string(i), 100u, true, consumers_stop));
  }
  for (unsigned i = 0; i < o.producers; ++i) {
    run.spawn(i, stamped_producer(run, i, o.key, rate, producers_stop, produced));
  }
  stop_after(run, o.duration, producers_stop);
  stop_when_drained(run, producers_stop, produced, consumers_stop);
  const auto start = Clock::now();
  run.run("latency");
  Result r = finish(run, "latency", start);
  if (r.ops < produced.load()) {
    throw BenchError("only " + std::to_string(r.ops) + " of " + std::to_string(produced.load()) +
                     " entries were delivered within 2 s of the end");
  }
  return {r};
}

// --- isolation --------------------------------------------------------------------------------

// The online stream: one producer at --rate (stamped entries), one reader in XREAD BLOCK that
// measures each entry's age on receipt.
awaitable<void> online_reader(Runner& run, std::string key, std::atomic<bool>& stop, std::atomic<bool>& ready) {
  const Options& o = run.options;
  RespConnection c(co_await asio::this_coro::executor);
  co_await c.connect(o);
  std::string command;
  Delivery delivery;
  // Starts after the stream's last entry, so it misses none the producer sends from now on.
  encode(command, {"XREVRANGE", key, "+", "-", "COUNT", "1"});
  co_await c.send(command);
  std::string last = "0-0";
  {
    const std::string_view r = co_await c.reply();
    expect_no_error(r, "XREVRANGE");
    ReplyCursor cur(r);
    if (cur.aggregate() > 0) {
      cur.aggregate();
      last = std::string(cur.string());
    }
  }
  ready = true;
  Histogram& histogram = run.histogram(0);
  while (!stop.load(std::memory_order_relaxed)) {
    command.clear();
    encode(command, {"XREAD", "COUNT", "100", "BLOCK", "100", "STREAMS", key, last});
    co_await c.send(command);
    const std::string_view r = co_await c.reply();
    expect_no_error(r, "XREAD");
    parse_entries(r, true, delivery);
    const std::uint64_t now = now_ns();
    for (const std::uint64_t t : delivery.stamps) histogram.record(now > t ? now - t : 0);
    if (!delivery.ids.empty()) last = std::string(delivery.ids.back());
    run.ops.fetch_add(delivery.ids.size(), std::memory_order_relaxed);
  }
  run.note_end();
}

Result online_phase(const Options& o, const std::string& name, const std::string& key) {
  Options online = o;
  online.producers = 1;
  Runner run(online);
  std::atomic<bool> producers_stop{false};
  std::atomic<bool> reader_stop{false};
  std::atomic<std::uint64_t> produced{0};
  std::atomic<bool> ready{false};
  run.spawn(0, online_reader(run, key, reader_stop, ready));
  run.spawn(0, stamped_producer(run, 0, key, o.rate > 0 ? o.rate : 1000, producers_stop, produced, &ready));
  stop_after(run, o.duration, producers_stop);
  stop_when_drained(run, producers_stop, produced, reader_stop);
  const auto start = Clock::now();
  run.run(name);
  return finish(run, name, start);
}

std::vector<Result> isolation(const Options& o) {
  const std::string online_key = o.key + ":online";
  const std::string batch_key = o.key + ":batch";
  {
    Options fresh = o;
    fresh.prefill = 0;
    prefill(fresh, online_key, 0);
    prefill(fresh, batch_key, 0);
  }
  std::vector<Result> results;
  results.push_back(online_phase(o, "online quiet", online_key));

  // The flood, on threads of its own, runs for the whole second phase (and a second before).
  Options flood_options = o;
  flood_options.rate = 0;
  flood_options.count = 0;
  flood_options.quiet = true;
  if (flood_options.maxlen == 0) flood_options.maxlen = 100000;
  Runner flood(flood_options);
  for (unsigned i = 0; i < o.connections; ++i) flood.spawn(i, produce_connection(flood, i, flood.stop, batch_key));
  const auto flood_start = Clock::now();
  std::thread flood_thread([&flood] {
    try {
      flood.run("flood");
    } catch (const BenchError&) {
      // reported below through its ops
    }
  });
  std::this_thread::sleep_for(std::chrono::seconds(1));
  try {
    results.push_back(online_phase(o, "online flooded", online_key));
  } catch (...) {
    flood.stop = true;
    flood_thread.join();
    throw;
  }
  flood.stop = true;
  flood_thread.join();
  results.push_back(finish(flood, "flood", flood_start));
  if (results.back().ops == 0) throw BenchError("the flood made no progress");
  return results;
}

// --- pubsub -------------------------------------------------------------------------------------

// One subscriber: SUBSCRIBE, then counts the messages that arrive until told to stop (a last
// message, "stop", published once the publishers are done).
awaitable<void> subscriber(Runner& run, unsigned index, std::atomic<unsigned>& ready) {
  const Options& o = run.options;
  RespConnection c(co_await asio::this_coro::executor);
  co_await c.connect(o);
  std::string command;
  encode(command, {"SUBSCRIBE", o.key});
  co_await c.send(command);
  expect_no_error(co_await c.reply(), "SUBSCRIBE");
  ++ready;
  const std::uint64_t payload = o.value_size;
  for (;;) {
    const std::string_view r = co_await c.reply();
    expect_no_error(r, "a message");
    // ["message", channel, payload]: the last part ends the reply.
    if (r.ends_with("\r\nstop\r\n")) break;
    run.ops.fetch_add(1, std::memory_order_relaxed);
    run.bytes.fetch_add(payload, std::memory_order_relaxed);
  }
  (void)index;
  run.note_end();
}

// One publisher: --pipeline PUBLISHes at a time, each reply (the receivers) read.
awaitable<void> publisher(Runner& run, unsigned index, const std::atomic<unsigned>& ready,
                          std::atomic<bool>& stop, std::atomic<std::uint64_t>& published) {
  const Options& o = run.options;
  RespConnection c(co_await asio::this_coro::executor);
  co_await c.connect(o);
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (ready.load() < o.subscribers && !run.stop.load()) {
    timer.expires_after(std::chrono::milliseconds(1));
    co_await timer.async_wait(kNoThrow);
  }
  std::string command;
  encode(command, {"PUBLISH", o.key, std::string(o.value_size, 'm')});
  std::string batch;
  for (unsigned i = 0; i < o.pipeline; ++i) batch += command;
  Histogram& histogram = run.histogram(index);
  while (!stop.load(std::memory_order_relaxed) && !run.stop.load(std::memory_order_relaxed)) {
    const Clock::time_point sent = Clock::now();
    co_await c.send(batch);
    for (unsigned i = 0; i < o.pipeline; ++i) {
      const std::string_view r = co_await c.reply();
      expect_no_error(r, "PUBLISH");
      histogram.record(static_cast<std::uint64_t>(std::chrono::nanoseconds(Clock::now() - sent).count()));
    }
    published.fetch_add(o.pipeline, std::memory_order_relaxed);
  }
  run.note_end();
}

// P publishers PUBLISH to one channel that S subscribers read: messages delivered per second
// (each message counts once per subscriber that got it).
std::vector<Result> pubsub(const Options& o) {
  Runner run(o);
  std::atomic<unsigned> ready{0};
  std::atomic<bool> publishers_stop{false};
  std::atomic<std::uint64_t> published{0};
  for (unsigned i = 0; i < o.subscribers; ++i) run.spawn(i, subscriber(run, i, ready));
  for (unsigned i = 0; i < o.producers; ++i) run.spawn(i, publisher(run, i, ready, publishers_stop, published));
  // After --duration: the publishers stop, then one "stop" message ends the subscribers.
  run.spawn(0, [&run, &o, &publishers_stop]() -> awaitable<void> {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    timer.expires_after(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration)));
    co_await timer.async_wait(kNoThrow);
    publishers_stop = true;
    timer.expires_after(std::chrono::milliseconds(200));  // the publishers' last batches
    co_await timer.async_wait(kNoThrow);
    RespConnection c(co_await asio::this_coro::executor);
    co_await c.connect(o);
    std::string command;
    encode(command, {"PUBLISH", o.key, "stop"});
    co_await c.call(command, "PUBLISH stop");
  }, false);
  const auto start = Clock::now();
  run.run("pubsub");
  Result r = finish(run, "pubsub", start);
  r.seconds = std::min(r.seconds, o.duration);  // the drain after the publishers stopped is not load
  if (r.ops == 0) throw BenchError("no message was delivered");
  return {r};
}

}  // namespace

// --- strings: SET and GET, one of each in turn, over --keys keys ------------------------------

namespace {

awaitable<void> strings_connection(Runner& run, unsigned index) {
  const Options& o = run.options;
  RespConnection c(co_await asio::this_coro::executor);
  co_await c.connect(o);
  const std::string value(o.value_size, 'v');
  Histogram& histogram = run.histogram(index);
  std::uint64_t next = index;
  std::string batch;
  while (!run.stop.load(std::memory_order_relaxed)) {
    const std::uint64_t n = run.claim(o.pipeline);
    if (n == 0) break;
    batch.clear();
    for (std::uint64_t i = 0; i < n; ++i, ++next) {
      const std::string key = o.key + ":" + std::to_string((next / 2) % std::max(1u, o.keys));
      if (next % 2 == 0) {
        encode(batch, {"SET", key, value});
      } else {
        encode(batch, {"GET", key});
      }
    }
    const auto due = Clock::now();
    co_await c.send(batch);
    for (std::uint64_t i = 0; i < n; ++i) {
      expect_no_error(co_await c.reply(), "SET/GET");
      histogram.record(static_cast<std::uint64_t>(std::chrono::nanoseconds(Clock::now() - due).count()));
    }
    run.ops.fetch_add(n, std::memory_order_relaxed);
    run.bytes.fetch_add(n * o.value_size, std::memory_order_relaxed);
  }
  run.note_end();
}

std::vector<Result> strings(const Options& o) {
  Runner run(o);
  for (unsigned i = 0; i < o.connections; ++i) run.spawn(i, strings_connection(run, i));
  if (o.duration > 0) stop_after(run, o.duration, run.stop);
  const auto start = Clock::now();
  run.run("strings");
  return {finish(run, "strings", start)};
}

}  // namespace

std::vector<Result> run_workload(const std::string& workload, const Options& options) {
  if (workload == "strings") return strings(options);
  if (workload == "pubsub") return pubsub(options);
  if (workload == "produce") return produce(options);
  if (workload == "consume") return consume(options);
  if (workload == "fanout") return fanout(options);
  if (workload == "latency") return latency(options);
  if (workload == "isolation") return isolation(options);
  throw BenchError("unknown workload '" + workload + "'");
}

}  // namespace runnel::bench
