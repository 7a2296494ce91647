// The Coordinator (coordinator.hpp): runs a connection's commands on their shards, by route.
#include "coordinator.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <optional>

#include "stream_reply.hpp"
#include "transaction.hpp"

namespace runnel {
namespace {

// Stops a shard's thread inside a handler until released: how a transaction across shards
// gets every shard to itself (see Coordinator::exec_across_shards).
struct ParkBarrier {
  std::mutex mutex;
  std::condition_variable cv;
  unsigned parked = 0;
  bool released = false;

  void park() {
    std::unique_lock lock(mutex);
    ++parked;
    cv.notify_all();
    cv.wait(lock, [&] { return released; });
  }
  bool wait_parked(unsigned count, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, timeout, [&] { return parked == count; });
  }
  void release() {
    {
      std::lock_guard lock(mutex);
      released = true;
    }
    cv.notify_all();
  }
};

constexpr std::size_t kMaxBatchCommands = 256;
constexpr std::size_t kMaxBatchBytes = 1024 * 1024;
constexpr std::size_t kShrinkScratchAbove = 1024 * 1024;

template <typename Part>
awaitable<bool> run_part(Shard& shard, Part& part, bool hopped = false) {
  if (hopped) shard.hops_waiting.fetch_sub(1, std::memory_order_relaxed);
  bool wait = false;
  if constexpr (std::is_same_v<decltype(part(shard)), bool>) {
    wait = part(shard);
  } else {
    part(shard);
  }
  bool ok = true;
  if (wait) ok = co_await durable(shard, shard.durability->ticket());
  co_return ok;
}

// XREADGROUP CLAIM, blocked: looks at the waiter's keys on `runtime`'s shard again at `wake_ms`
// (ms since 1970), when a pending entry becomes claimable, and serves the waiter if one is;
// else waits for the next such time. Runs on the shard's thread; ends once the waiter is
// answered (by this, an XADD, its timeout or its client going away). It looks at least once
// a second, so a timer outlives its reader by a second at most: a client blocking and
// leaving with CLAIM 86400000 over and over leaves no day-long timers behind.
constexpr std::int64_t kClaimLookMs = 1000;
void watch_claimable(ShardRuntime* runtime, std::weak_ptr<StreamWaiter> weak, std::vector<std::string> keys,
                     std::string group, std::int64_t min_idle_ms, std::int64_t wake_ms) {
  auto timer = std::make_shared<asio::steady_timer>(runtime->io);
  timer->expires_after(std::chrono::milliseconds(std::clamp<std::int64_t>(wake_ms - wall_now_ms(), 0, kClaimLookMs)));
  timer->async_wait([runtime, weak, keys = std::move(keys), group = std::move(group), min_idle_ms, wake_ms,
                     timer](const boost::system::error_code& ec) mutable {
    auto waiter = weak.lock();
    if (ec || !waiter || waiter->claimed()) return;
    if (wall_now_ms() < wake_ms) {  // a look on the way: not due yet
      return watch_claimable(runtime, std::move(weak), std::move(keys), std::move(group), min_idle_ms, wake_ms);
    }
    Shard& shard = runtime->shard;
    for (const std::string& key : keys) shard.signal_ready(key);
    if (shard.holding_ready == 0) shard.serve_ready();  // else the transaction's end serves them
    if (waiter->claimed()) return;
    const std::int64_t now = wall_now_ms();
    std::int64_t next = now + std::max<std::int64_t>(min_idle_ms, 10);
    for (const std::string& key : keys) {
      const Stream* stream = shard.keyspace.find(key);
      const ConsumerGroup* g = stream != nullptr ? stream->group(group) : nullptr;
      if (g == nullptr) continue;
      if (const auto at = stream->next_claimable(*g, min_idle_ms, now)) next = std::min(next, *at);
    }
    watch_claimable(runtime, weak, std::move(keys), std::move(group), min_idle_ms, next);
  });
}

}  // namespace

// Runs `part` on `shard` for the keys it owns: here if it is this thread's shard, else there.
// A part that returns true wrote, and its reply must wait for the disk: the hop ends once
// the shard's flush is durable. Returns false if that flush failed.
template <typename Part>
awaitable<bool> Coordinator::on_shard(unsigned shard, Part&& part) {
  Shard& target = server_.shards[shard]->shard;
  bool ok = true;
  if (shard == home_) {
    ok = co_await run_part(target, part);
  } else {
    target.hops_waiting.fetch_add(1, std::memory_order_relaxed);
    ok = co_await asio::co_spawn(server_.shards[shard]->io, run_part(target, part, true), asio::use_awaitable);
  }
  co_return ok;
}

awaitable<bool> Coordinator::on_shard_call(unsigned shard, std::function<bool(Shard&)> part) {
  co_return co_await on_shard(shard, [&part](Shard& s) { return part(s); });
}

// --- a command, here or by route -------------------------------------------------------------

// After a write command that ran here: its reply may have to wait for the disk.
void Coordinator::wrote_here(Shard& shard, std::size_t reply_start) {
  if (shard.reply_must_wait()) hold_reply(reply_start, shard.durability->ticket());
}

// --- replies held for the disk ----------------------------------------------------------------
//
// A write's reply is not sent before the home shard's batch that carries the write has been
// written (and, under always, synced). The reply stays in the connection's output, held,
// while the connection goes on with the commands after it; the Flusher's completion releases
// it. Positions are counted over the connection's whole output (Link::output_position), so
// they survive the output being sent from the front.

void Coordinator::hold_reply(std::size_t reply_start, std::uint64_t ticket) {
  // A hold with the same or a later batch, earlier in the output, covers this reply too.
  if (!holds_.empty() && holds_.back().ticket >= ticket) return;
  const std::uint64_t base = link_.output_position() - link_.output().size();
  holds_.push_back(Hold{base + reply_start, ticket});
}

void Coordinator::release_when_durable() {
  if (holds_.empty() || hold_armed_) return;
  hold_armed_ = true;
  const std::uint64_t ticket = holds_.front().ticket;
  server_.shards[home_]->shard.durability->when_durable(
      ticket, [alive = link_.lifetime(), self = this, ticket](bool ok) {
        if (auto held = alive.lock()) self->hold_done(ticket, ok);
      });
}

// Batch `ticket` is durable (ok) or failed: the replies it held may go, or, if the disk
// refused it, are dropped from the first held one on, the client gets -MISCONF, and the
// session ends.
void Coordinator::hold_done(std::uint64_t ticket, bool ok) {
  hold_armed_ = false;
  if (holds_.empty()) return;  // dropped meanwhile (the connection is closing)
  if (!ok) {
    std::string& out = link_.output();
    const std::uint64_t base = link_.output_position() - out.size();
    out.resize(static_cast<std::size_t>(holds_.front().at - base));
    holds_.clear();
    protocol::ReplyWriter(out, session_.resp).error(misconf_text(server_.state));
    // A command still running (a hop, a blocked read) may append its reply after this:
    // nothing past the -MISCONF goes out, so no later reply is taken for an earlier one.
    output_end_ = link_.output_position();
    link_.end_session();
  } else {
    auto done = holds_.begin();
    while (done != holds_.end() && done->ticket <= ticket) ++done;
    holds_.erase(holds_.begin(), done);
  }
  link_.replies_released();
  release_when_durable();
}

// Runs a command if it can run on this thread, which is the common case: connection
// commands, keys this shard owns, and fanned commands on a one-shard server. Returns null
// when it ran (or was refused), else the row to run with execute_remote. Keeping this path
// free of co_await saves a coroutine frame per command.
const CommandSpec* Coordinator::run_here(std::span<const std::string_view> args) {
  ServerState& state = server_.state;
  const CommandSpec* spec = command_table().lookup(args);
  state.stats.commands_processed.fetch_add(1, std::memory_order_relaxed);
  const std::size_t start = link_.output().size();
  const auto error_sent = [&] { state.stats.error_reply(std::string_view(link_.output()).substr(start)); };
  protocol::ReplyWriter reply(link_.output(), session_.resp);
  const auto rejected = [&] {
    if (spec == nullptr) return;
    if (CommandCounters* counters = command_counters(state, *spec)) ++counters->rejected;
  };
  if (!check_command(spec, args, session_, reply)) {
    rejected();
    if (spec == nullptr) state.stats.unknown_commands.fetch_add(1, std::memory_order_relaxed);
    error_sent();
    if (session_.in_multi) session_.multi_failed = true;
    return nullptr;
  }
  session_.info->last_command.store(spec->name.data(), std::memory_order_relaxed);
  if (state.loading.load(std::memory_order_acquire) && (spec->flags & kLoading) &&
      spec->route == Route::kEachShard && !session_.in_multi) {
    // INFO: what needs no shard is answered (the loaders own the shards until they finish),
    // with loading:1, as Redis answers INFO while it loads.
    CommandContext ctx{args, reply, session_, state, *spec};
    spec->handler(ctx);
    return nullptr;
  }
  if (state.loading.load(std::memory_order_acquire) &&
      !((spec->flags & kLoading) && spec->route == Route::kConnection)) {
    // Redis's reply, which clients know to wait and retry on.
    rejected();
    reply.error("LOADING Redis is loading the dataset in memory");
    error_sent();
    if (session_.in_multi) session_.multi_failed = true;
    return nullptr;
  }
  if ((spec->flags & kWrite) && !state.storage.ok()) {
    rejected();
    reply.error(misconf_text(state));
    error_sent();
    if (session_.in_multi) session_.multi_failed = true;
    return nullptr;
  }
  if (session_.in_multi && !spec->runs_in_multi) {
    queue_command(args, reply);
    return nullptr;
  }
  Shard& home = server_.shards[home_]->shard;
  const std::size_t before = link_.output().size();
  switch (spec->route) {
    case Route::kConnection: {
      const CommandTimer timer(state, *spec, args, session_, link_.output());
      CommandContext ctx{args, reply, session_, state, *spec};
      spec->handler(ctx);
      break;
    }
    case Route::kReset: {
      const CommandTimer timer(state, *spec, args, session_, link_.output());
      CommandContext ctx{args, reply, session_, state, *spec};
      spec->handler(ctx);
      end_multi();
      unwatch_all();
      break;
    }
    case Route::kExec:
    case Route::kWatch:
    case Route::kMigrate:
    case Route::kCopy:
    case Route::kKeyPair:
    case Route::kKeys:
      return spec;  // they hop to shards
    case Route::kMulti:
    case Route::kDiscard:
    case Route::kUnwatch: {
      const CommandTimer timer(state, *spec, args, session_, link_.output());
      transaction_command(spec->route, reply);
      break;
    }
    case Route::kKey: {
      const std::string_view key = args[static_cast<std::size_t>(spec->first_key)];
      const unsigned owner = owner_of(key);
      link_.note_owner(owner);
      if (owner != home_) return spec;
      if (run_key_command(home, *spec, args, reply, session_, state)) wrote_here(home, before);
      break;
    }
    case Route::kStreamRead:
    case Route::kGroupRead:
      return spec;  // may block: always the coroutine path
    case Route::kPublish: {
      CommandTimer timer(state, *spec, args, session_, link_.output());
      if (!publish(args, (spec->flags & kShardChannel) != 0, reply)) {
        timer.cancel();
        return spec;  // waits: run(), which times it
      }
      break;
    }
    case Route::kEachShard: {
      if (state.shard_count != 1) return spec;
      const CommandTimer timer(state, *spec, args, session_, link_.output());
      Gather gather;
      ShardPartContext part{args, home, 1, gather};
      spec->shard_part(part);
      CommandContext ctx{args, reply, session_, state, *spec, nullptr, &gather};
      spec->handler(ctx);
      // DEL, UNLINK, FLUSHALL: the reply waits for the disk as any write's (the deletions'
      // forget records, under always).
      if ((spec->flags & kWrite) != 0) {
        home.settle();
        wrote_here(home, before);
      }
      break;
    }
  }
  after_command(before);
  return nullptr;
}

// --- MULTI / EXEC / DISCARD / WATCH / UNWATCH (transaction.hpp) -------------------------

void Coordinator::queue_command(std::span<const std::string_view> args, protocol::ReplyWriter& reply) {
  std::uint64_t bytes = 0;
  for (auto a : args) bytes += a.size() + 16;
  // The queue is bounded like unparsed input: past the limit the transaction fails.
  Session::Transaction& transaction = session_.transaction_state();
  if (transaction.queued_bytes + bytes > link_.limits().query_buffer) {
    session_.multi_failed = true;
    reply.error("ERR Transaction discarded: its queued commands passed client-query-buffer-limit");
    return;
  }
  transaction.queued_bytes += bytes;
  transaction.queued.emplace_back(args.begin(), args.end());
  reply.simple("QUEUED");
}

void Coordinator::end_multi() {
  session_.in_multi = false;
  session_.multi_failed = false;
  if (!session_.transaction) return;
  session_.transaction->queued.clear();
  session_.transaction->queued_bytes = 0;
  session_.release_transaction_if_empty();
}

// Lets go of every watched key (posted to the owning shards; no reply waits on it).
void Coordinator::unwatch_all() {
  if (!session_.transaction) return;
  for (auto& [key, version] : session_.transaction->watched) {
    const unsigned owner = owner_of(key);
    ShardRuntime* runtime = server_.shards[owner].get();
    if (owner == home_) {
      runtime->shard.unwatch(key);
    } else {
      asio::post(runtime->io, [runtime, key = std::move(key)] { runtime->shard.unwatch(key); });
    }
  }
  session_.transaction->watched.clear();
  session_.release_transaction_if_empty();
}

// MULTI, DISCARD and UNWATCH, which need no other shard.
void Coordinator::transaction_command(Route route, protocol::ReplyWriter& reply) {
  if (route == Route::kMulti) {
    if (session_.in_multi) return reply.error("ERR MULTI calls can not be nested");
    session_.in_multi = true;
    return reply.ok();
  }
  if (route == Route::kDiscard) {
    if (!session_.in_multi) return reply.error("ERR DISCARD without MULTI");
    end_multi();
    unwatch_all();
    return reply.ok();
  }
  unwatch_all();  // UNWATCH
  reply.ok();
}

awaitable<void> Coordinator::watch(std::span<const std::string_view> args) {
  if (session_.in_multi) {
    protocol::ReplyWriter(link_.output(), session_.resp).error("ERR WATCH inside MULTI is not allowed");
    co_return;
  }
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string key(args[i]);
    bool known = false;
    for (const auto& w : session_.transaction_state().watched) known = known || w.first == key;
    if (known) continue;
    std::uint64_t version = 0;
    co_await on_shard(owner_of(key), [&](Shard& shard) {
      // A key already past its time is deleted first: only one that expires after WATCH
      // fails the EXEC, as in Redis 7.0.
      if (shard.expire_if_due(key)) shard.settle();
      version = shard.watch(key);
    });
    session_.transaction_state().watched.emplace_back(key, version);
  }
  protocol::ReplyWriter(link_.output(), session_.resp).ok();
}

namespace {
constexpr std::string_view kNoShards = "ERR the transaction could not get its shards (the server is stopping)";
}  // namespace

awaitable<void> Coordinator::exec() {
  if (!session_.in_multi) {
    protocol::ReplyWriter(link_.output(), session_.resp).error("ERR EXEC without MULTI");
    co_return;
  }
  std::vector<std::vector<std::string>> queued;
  if (session_.transaction) queued = std::move(session_.transaction->queued);
  const bool failed = session_.multi_failed;
  end_multi();
  if (failed) {
    unwatch_all();
    protocol::ReplyWriter(link_.output(), session_.resp).error("EXECABORT Transaction discarded because of previous errors.");
    co_return;
  }
  bool clean = true;
  if (session_.transaction) {  // nothing else runs on this connection meanwhile
    for (const auto& [key, version] : session_.transaction->watched) {
      co_await on_shard(owner_of(key), [&](Shard& shard) {
        if (shard.expire_if_due(key)) shard.settle();  // expired since WATCH: modified
        clean = clean && shard.watched_version(key) == version;
      });
    }
  }
  unwatch_all();
  if (!clean) {
    protocol::ReplyWriter(link_.output(), session_.resp).null_array();
    co_return;
  }
  std::string body;
  const Ran ran = co_await run_queued(queued, body);
  protocol::ReplyWriter reply(link_.output(), session_.resp);
  if (replied_failure(ran, reply)) co_return;
  reply.array(queued.size());
  link_.output().append(body);
}

bool Coordinator::replied_failure(Ran ran, protocol::ReplyWriter& reply) {
  if (ran == Ran::kNoShards) {
    reply.error(kNoShards);
    return true;
  }
  if (ran == Ran::kNotDurable) {
    reply.error(misconf_text(server_.state));
    link_.end_session();  // as for any write the disk refused
    return true;
  }
  return false;
}

// RENAME: run as a transaction of one command, so both keys' shards are held at once.
awaitable<void> Coordinator::key_pair(std::span<const std::string_view> args) {
  const std::vector<std::vector<std::string>> queued{std::vector<std::string>(args.begin(), args.end())};
  std::string body;
  const Ran ran = co_await run_queued(queued, body);
  protocol::ReplyWriter reply(link_.output(), session_.resp);
  if (replied_failure(ran, reply)) co_return;
  link_.output().append(body);
}

awaitable<Coordinator::Ran> Coordinator::run_queued(const std::vector<std::vector<std::string>>& queued,
                                                    std::string& body) {
  const unsigned shard_count = server_.state.shard_count;
  const std::vector<unsigned> touched = shards_touched(queued, shard_count, home_);
  std::vector<Shard*> shards;
  for (auto& runtime : server_.shards) shards.push_back(&runtime->shard);
  std::vector<char> wrote(shard_count, 0);
  bool ran = true;
  if (touched.size() <= 1) {
    // One shard (or none): the whole transaction runs there in one hop.
    co_await on_shard(touched.empty() ? home_ : touched[0], [&](Shard&) {
      protocol::ReplyWriter writer(body, session_.resp);
      run_transaction(queued, session_, server_.state, shards, writer, wrote);
    });
  } else {
    ran = co_await exec_across_shards(queued, shards, body, wrote);
  }
  if (!ran) co_return Ran::kNoShards;
  // The writes' replies wait for the disk as any write's do.
  bool durable_ok = true;
  for (unsigned s = 0; s < shard_count; ++s) {
    if (!wrote[s]) continue;
    durable_ok = co_await on_shard(s, [](Shard& shard) { return shard.reply_must_wait(); }) && durable_ok;
  }
  co_return durable_ok ? Ran::kDone : Ran::kNotDurable;
}

// A transaction over several shards: one at a time (server_.transactions), with every other
// shard's thread parked in a handler while this thread runs the commands. The lock is taken
// without blocking this thread, so a shard waiting for it still runs other park requests.
awaitable<bool> Coordinator::exec_across_shards(const std::vector<std::vector<std::string>>& queued,
                                   std::vector<Shard*>& shards, std::string& body,
                                   std::vector<char>& wrote) {
  asio::steady_timer retry(link_.executor());
  for (int attempt = 0; !server_.transactions.try_lock(); ++attempt) {
    if (attempt > 100000) co_return false;
    retry.expires_after(std::chrono::microseconds(50));
    co_await retry.async_wait(kNoThrow);
  }
  std::unique_lock lock(server_.transactions, std::adopt_lock);
  auto barrier = std::make_shared<ParkBarrier>();
  for (unsigned s = 0; s < server_.shards.size(); ++s) {
    if (s != home_) asio::post(server_.shards[s]->io, [barrier] { barrier->park(); });
  }
  const auto others = static_cast<unsigned>(server_.shards.size() - 1);
  if (!barrier->wait_parked(others, std::chrono::seconds(5))) {
    barrier->release();
    co_return false;
  }
  protocol::ReplyWriter writer(body, session_.resp);
  run_transaction(queued, session_, server_.state, shards, writer, wrote);
  barrier->release();
  co_return true;
}

// --- batched hops ------------------------------------------------------------------------------

void Coordinator::start_batch(const CommandSpec& spec, std::span<const std::string_view> args) {
  if (!batch_) batch_ = std::make_unique<Batch>();
  batch_->args.assign(args.begin(), args.end());
  const std::string_view key = args[static_cast<std::size_t>(spec.first_key)];
  batch_->commands.assign(1, BatchedCommand{&spec, owner_of(key), 0, args.size()});
  batch_->bytes = 0;
}

// A pipelined command joins the batch while it is a key command that would pass
// check_command; anything else is a barrier (left for the connection's main loop), so what
// it sees is what every command before it did.
const CommandSpec* Coordinator::batchable(std::span<const std::string_view> args) const {
  if (args.empty() || session_.in_multi) return nullptr;
  const CommandSpec* spec = command_table().lookup(args);
  if (spec == nullptr || spec->route != Route::kKey) return nullptr;
  const auto argc = static_cast<int>(args.size());
  if ((spec->arity > 0 && argc != spec->arity) || (spec->arity < 0 && argc < -spec->arity)) return nullptr;
  if (!session_.authenticated && !(spec->flags & kNoAuth)) return nullptr;
  if (server_.state.loading.load(std::memory_order_acquire)) return nullptr;
  if ((spec->flags & kWrite) && !server_.state.storage.ok()) return nullptr;
  return spec;
}

bool Coordinator::add_to_batch(const CommandSpec& spec, std::span<const std::string_view> args, std::size_t bytes) {
  if (batch_->commands.size() >= kMaxBatchCommands || batch_->bytes >= kMaxBatchBytes) return false;
  const unsigned owner = owner_of(args[static_cast<std::size_t>(spec.first_key)]);
  link_.note_owner(owner);
  batch_->commands.push_back(BatchedCommand{&spec, owner, batch_->args.size(), args.size()});
  batch_->args.insert(batch_->args.end(), args.begin(), args.end());
  batch_->bytes += bytes;
  return true;
}

// Runs, on `shard`'s thread, the batch's commands that `owner` owns and that have not run
// yet, in order, with their replies in `scratch`, until the replies there pass `budget`
// bytes (one command always runs). Returns true if one of them wrote and its reply must
// wait for the disk.
bool Coordinator::run_batch_part(Shard& shard, unsigned owner, std::string& scratch,
                    std::size_t budget) {
  ServerState& state = server_.state;
  bool must_wait = false;
  bool ran_one = false;
  protocol::ReplyWriter reply(scratch, session_.resp);
  for (BatchedCommand& command : batch_->commands) {
    if (command.owner != owner || command.ran) continue;
    if (ran_one && scratch.size() > budget) break;
    const CommandSpec& spec = *command.spec;
    const std::span<const std::string_view> args(batch_->args.data() + command.first_arg, command.args);
    command.reply_begin = scratch.size();
    if (run_key_command(shard, spec, args, reply, session_, state)) {
      command.wrote = true;
      must_wait = must_wait || shard.reply_must_wait();
    }
    command.reply_end = scratch.size();
    command.ran = true;
    ran_one = true;
  }
  return must_wait;
}

// Runs the batch: each shard's share in one hop, the shards at once (this thread's share
// here meanwhile), then the replies in request order. Commands on one shard keep their
// order; commands on different shards touch different keys.
//
// Replies are bounded as they are for commands run one at a time: a shard's share stops
// once its replies pass --reply-pause-bytes, the replies up to the first command that did
// not run go out, and the rest runs in another round once the client has taken them. A
// pipeline of 100 XRANGEs of a 20 MB stream, on a connection that reads nothing, built
// 4.7 GB of replies in one hop before.
awaitable<void> Coordinator::run_batch() {
  ServerState& state = server_.state;
  const std::size_t shard_count = server_.shards.size();
  batch_->scratch.resize(shard_count);
  for (std::string& scratch : batch_->scratch) scratch.clear();
  std::size_t next = 0;  // the next command whose reply goes out
  while (true) {
    co_await run_batch_round();
    for (; next < batch_->commands.size() && batch_->commands[next].ran; ++next) {
      const BatchedCommand& command = batch_->commands[next];
      const std::size_t start = link_.output().size();
      if (!command.ok) {
        // The disk refused that hop's writes: as for a write on this shard, the client
        // gets -MISCONF for the first of them, nothing after it, and the connection closes.
        protocol::ReplyWriter(link_.output(), session_.resp).error(misconf_text(state));
        state.stats.error_reply(std::string_view(link_.output()).substr(start));
        link_.end_session();
        break;
      }
      const std::string_view reply(batch_->scratch[command.owner].data() + command.reply_begin,
                                   command.reply_end - command.reply_begin);
      if (!reply.empty() && reply.front() == '-') state.stats.error_reply(reply);
      link_.output().append(reply);
      if (command.ticket != 0) hold_reply(start, command.ticket);
    }
    if (next == batch_->commands.size() || link_.closing()) break;
    compact_batch_scratch(next);
    // Back-pressure, as between commands: what is ready goes to the client first.
    co_await link_.send_and_wait_taken();
    if (link_.closing()) break;  // the rest never runs: the connection is going
  }
  // The first command was counted by try_execute_here; count the others.
  state.stats.commands_processed.fetch_add(next > 0 ? next - 1 : 0, std::memory_order_relaxed);
  // A batch of large replies leaves no large buffers behind on the connection.
  for (std::string& scratch : batch_->scratch) {
    if (scratch.capacity() > kShrinkScratchAbove) {
      scratch.clear();
      scratch.shrink_to_fit();
    }
  }
}

// One round of a batch: every shard with commands still to run runs them (up to its reply
// budget), the other shards in one hop each, at once, and this thread's share here
// meanwhile.
awaitable<void> Coordinator::run_batch_round() {
  const std::size_t shard_count = server_.shards.size();
  const std::size_t budget = link_.limits().reply_pause;
  batch_->parts.assign(shard_count, PartState{});
  for (const BatchedCommand& command : batch_->commands) {
    if (!command.ran) batch_->parts[command.owner].used = true;
  }
  std::size_t remote = 0;
  asio::steady_timer joined(link_.executor());
  joined.expires_at(asio::steady_timer::time_point::max());
  for (unsigned s = 0; s < shard_count; ++s) {
    if (!batch_->parts[s].used || s == home_) continue;
    ++remote;
    Shard& target = server_.shards[s]->shard;
    target.hops_waiting.fetch_add(1, std::memory_order_relaxed);
    asio::co_spawn(server_.shards[s]->io,
                   [this, &target, s, budget]() -> awaitable<bool> {
                     target.hops_waiting.fetch_sub(1, std::memory_order_relaxed);
                     bool ok = true;
                     if (run_batch_part(target, s, batch_->scratch[s], budget)) {
                       ok = co_await durable(target, target.durability->ticket());
                     }
                     co_return ok;
                   },
                   asio::bind_executor(link_.executor(),
                                       [this, s, &remote, &joined](std::exception_ptr, bool ok) {
                                         batch_->parts[s].ok = ok;
                                         if (--remote == 0) joined.cancel();
                                       }));
  }
  // This shard's share runs here, in the meantime; its replies are held with the
  // connection's other local writes (hold_reply).
  std::uint64_t home_ticket = 0;
  if (batch_->parts[home_].used) {
    Shard& home = server_.shards[home_]->shard;
    // Noted now: by the time the replies are assembled the batch may be in flight, and no
    // longer pending.
    if (run_batch_part(home, home_, batch_->scratch[home_], budget)) {
      home_ticket = home.durability->ticket();
    }
  }
  while (remote > 0) co_await joined.async_wait(kNoThrow);
  // What ran in this round takes the round's outcome.
  for (unsigned s = 0; s < shard_count; ++s) {
    const PartState& part = batch_->parts[s];
    if (!part.used) continue;
    for (BatchedCommand& command : batch_->commands) {
      if (command.owner != s || !command.ran || command.settled) continue;
      command.settled = true;
      command.ok = part.ok;
      if (s == home_ && command.wrote) command.ticket = home_ticket;
    }
  }
}

// PUBLISH and SPUBLISH (pubsub.hpp): the directory counts the receivers and names their
// shards; this shard's get the message now, the others' by a post, and the reply does not
// wait for those. Unless a shard has more than pubsub-backlog-bytes of posted messages still
// to deliver (its subscribers are many, or it is busy): then nothing is done here (false),
// and run() hops to the shards and waits, so a publisher cannot pile up messages in another
// shard's queue faster than it delivers them.
bool Coordinator::publish(std::span<const std::string_view> args, bool sharded, protocol::ReplyWriter& reply) {
  static thread_local std::vector<std::uint32_t> per_shard;
  const std::int64_t receivers = server_.state.pubsub.receivers(sharded, args[1], per_shard);
  const std::uint64_t backlog_limit = link_.limits().pubsub_backlog;
  for (unsigned s = 0; s < per_shard.size() && backlog_limit != 0; ++s) {
    if (per_shard[s] != 0 && s != home_ &&
        server_.shards[s]->publish_backlog.load(std::memory_order_relaxed) >= backlog_limit) {
      server_.state.stats.publish_waits.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
  }
  std::shared_ptr<const std::pair<std::string, std::string>> message;
  const std::uint64_t bytes = args[1].size() + args[2].size();
  for (unsigned s = 0; s < per_shard.size(); ++s) {
    if (per_shard[s] == 0) continue;
    ShardRuntime& runtime = *server_.shards[s];
    if (s == home_) {
      (void)runtime.shard.pubsub.publish(sharded, args[1], args[2]);
      continue;
    }
    if (!message) message = std::make_shared<const std::pair<std::string, std::string>>(args[1], args[2]);
    runtime.publish_backlog.fetch_add(bytes, std::memory_order_relaxed);
    asio::post(runtime.io, [&runtime, message, sharded, bytes] {
      (void)runtime.shard.pubsub.publish(sharded, message->first, message->second);
      runtime.publish_backlog.fetch_sub(bytes, std::memory_order_relaxed);
    });
  }
  reply.integer(receivers);
  return true;
}

// PUBLISH behind a shard's backlog: each shard with receivers delivers in a hop, in turn,
// behind the messages posted to it before.
awaitable<void> Coordinator::publish_waiting(std::span<const std::string_view> args, bool sharded) {
  std::vector<std::uint32_t> per_shard;
  const std::int64_t receivers = server_.state.pubsub.receivers(sharded, args[1], per_shard);
  for (unsigned s = 0; s < per_shard.size(); ++s) {
    if (per_shard[s] == 0) continue;
    co_await on_shard(s, [&](Shard& shard) { (void)shard.pubsub.publish(sharded, args[1], args[2]); });
  }
  protocol::ReplyWriter(link_.output(), session_.resp).integer(receivers);
}

// Drops the replies that went out from the shards' scratch buffers, keeping those of
// commands that ran and still wait for an earlier one (from `next` on).
void Coordinator::compact_batch_scratch(std::size_t next) {
  for (unsigned s = 0; s < batch_->scratch.size(); ++s) {
    std::size_t keep_from = batch_->scratch[s].size();
    for (std::size_t i = next; i < batch_->commands.size(); ++i) {
      if (batch_->commands[i].owner == s && batch_->commands[i].ran) keep_from = std::min(keep_from, batch_->commands[i].reply_begin);
    }
    batch_->scratch[s].erase(0, keep_from);
    for (std::size_t i = next; i < batch_->commands.size(); ++i) {
      if (batch_->commands[i].owner != s || !batch_->commands[i].ran) continue;
      batch_->commands[i].reply_begin -= keep_from;
      batch_->commands[i].reply_end -= keep_from;
    }
  }
}

// Runs a command that needs other shards (key commands go by execute_remote_batch): XREAD
// and XREADGROUP, EXEC and WATCH, or a part on every shard.
awaitable<void> Coordinator::run(const CommandSpec& spec, std::span<const std::string_view> args) {
  ServerState& state = server_.state;
  const std::size_t before = link_.output().size();
  // Across shards, the time includes the hops. Blocking reads are not timed: Redis leaves
  // out the time a client waits blocked, and the rest of a read is a look at each key.
  std::optional<CommandTimer> timer;
  // RENAME, MSET and MSETNX run as transactions of one command, whose run times them.
  if (spec.route != Route::kKeyPair && spec.route != Route::kKeys) {
    const bool blocking_read = spec.route == Route::kStreamRead || spec.route == Route::kGroupRead;
    timer.emplace(state, spec, args, session_, link_.output(), !blocking_read);
  }
  if (spec.route == Route::kStreamRead || spec.route == Route::kGroupRead) {
    co_await stream_read(spec, args);
  } else if (spec.route == Route::kExec) {
    co_await exec();
  } else if (spec.route == Route::kWatch) {
    co_await watch(args);
  } else if (spec.route == Route::kMigrate) {
    co_await migrate(args);
  } else if (spec.route == Route::kCopy) {
    co_await copy(args);
  } else if (spec.route == Route::kKeyPair || spec.route == Route::kKeys) {
    co_await key_pair(args);
  } else if (spec.route == Route::kPublish) {
    co_await publish_waiting(args, (spec.flags & kShardChannel) != 0);
  } else {
    Gather gather;
    const bool writes = (spec.flags & kWrite) != 0;  // DEL, UNLINK, FLUSHALL: wait for the disk
    bool durable = true;
    for (unsigned s = 0; s < server_.shards.size(); ++s) {
      durable = co_await on_shard(s, [&](Shard& shard) {
        ShardPartContext part{args, shard, state.shard_count, gather};
        spec.shard_part(part);
        if (writes) shard.settle();  // what the part changed goes to the next flush
        return writes && shard.reply_must_wait();
      }) && durable;
    }
    if (!durable) {
      protocol::ReplyWriter(link_.output(), session_.resp).error(misconf_text(state));
      link_.end_session();  // as for any write the disk refused
      co_return after_command(before);
    }
    protocol::ReplyWriter reply(link_.output(), session_.resp);
    CommandContext ctx{args, reply, session_, state, spec, nullptr, &gather};
    spec.handler(ctx);
  }
  after_command(before);
}

// XREAD and XREADGROUP: read each key on its owning shard (in shard order, one hop per
// shard); reply with what was found, or block.
awaitable<void> Coordinator::stream_read(const CommandSpec& spec, std::span<const std::string_view> args) {
  xread::Request request;
  const bool group_mode = spec.route == Route::kGroupRead;
  if (const std::string error = xread::parse(args, group_mode, request); !error.empty()) {
    protocol::ReplyWriter(link_.output(), session_.resp).error(error);
    co_return;
  }
  std::vector<std::vector<std::size_t>> by_shard(server_.shards.size());
  for (std::size_t i = 0; i < request.keys.size(); ++i) {
    by_shard[owner_of(request.keys[i])].push_back(i);
  }
  if (!request.keys.empty() && by_shard[owner_of(request.keys[0])].size() == request.keys.size()) {
    link_.note_owner(owner_of(request.keys[0]));
  }
  if (group_mode) {
    // Redis checks every key's group (and ID) before it delivers anything.
    std::vector<char> ok(request.keys.size(), 0);
    for (unsigned s = 0; s < by_shard.size(); ++s) {
      if (by_shard[s].empty()) continue;
      co_await on_shard(s, [&](Shard& shard) { xread::check_groups(shard, request, by_shard[s], ok); });
    }
    if (const std::string error = xread::first_error(request, ok); !error.empty()) {
      protocol::ReplyWriter(link_.output(), session_.resp).error(error);
      co_return;
    }
  }
  std::shared_ptr<StreamWaiter> waiter;
  if (request.block_ms) {
    waiter = std::make_shared<StreamWaiter>();
    waiter->keys = request.keys;
    waiter->after.resize(request.keys.size());
    waiter->last_only = request.last_entry;
    // Redis's default COUNT for a blocked read, so a low ID cannot flood the client.
    waiter->count = request.count > 0 ? static_cast<std::size_t>(request.count) : 1000;
    waiter->group_mode = group_mode;
    waiter->group = request.group;
    waiter->consumer = request.consumer;
    waiter->noack = request.noack;
    waiter->claim_min_idle = request.claim_min_idle;
    // Set up before any shard can see the waiter: a shard may answer it (and its reply
    // arrive) before this coroutine even resumes from its last hop.
    waiter->deliver = link_.expect_blocked_answer();
  }
  xread::KeyResults results(request.keys.size());
  for (unsigned s = 0; s < by_shard.size(); ++s) {
    if (by_shard[s].empty()) continue;
    const bool ok = co_await on_shard(s, [&](Shard& shard) {
      xread::run_on_shard(shard, request, by_shard[s], results, waiter);
      if (!group_mode) return false;
      shard.settle();
      return shard.reply_must_wait();
    });
    if (!ok) {
      // The deliveries' group state is not on disk: no entries are handed out.
      if (waiter) {
        waiter->try_claim();
        unregister(waiter, request.registered_shards);
      }
      protocol::ReplyWriter(link_.output(), session_.resp).error(misconf_text(server_.state));
      co_return;
    }
  }
  if (!request.read_error.empty() && (!waiter || request.registered_shards.empty() || waiter->try_claim())) {
    // A key's entries could not be read back: the answer is that error, not the rest.
    protocol::ReplyWriter(link_.output(), session_.resp).error(request.read_error);
    if (waiter) unregister(waiter, request.registered_shards);
    co_return;
  }
  if (request.found_elsewhere) {
    // Entries were found; answer with them unless a shard already answered the waiter it
    // registered before the entries turned up elsewhere.
    if (request.registered_shards.empty() || waiter->try_claim()) {
      protocol::ReplyWriter reply(link_.output(), session_.resp);
      xread::write_reply(reply, request, results);
      unregister(waiter, request.registered_shards);
      co_return;
    }
  } else if (!waiter) {
    protocol::ReplyWriter(link_.output(), session_.resp).null_array();
    co_return;
  } else if (!request.gone_error.empty() && waiter->try_claim()) {
    // A key went away between the check and the read: no shard would ever answer.
    protocol::ReplyWriter(link_.output(), session_.resp).error(request.gone_error);
    unregister(waiter, request.registered_shards);
    co_return;
  }
  if (request.claim_min_idle && request.claim_wake_ms) {
    // Pending entries become claimable as time passes, with nothing to signal it.
    for (const unsigned s : request.registered_shards) {
      std::vector<std::string> keys;
      for (const std::size_t i : by_shard[s]) keys.push_back(request.keys[i]);
      asio::post(server_.shards[s]->io, [runtime = server_.shards[s].get(), weak = std::weak_ptr(waiter),
                                         keys = std::move(keys), group = request.group,
                                         min_idle = *request.claim_min_idle, at = *request.claim_wake_ms]() mutable {
        watch_claimable(runtime, std::move(weak), std::move(keys), std::move(group), min_idle, at);
      });
    }
  }
  co_await link_.wait_blocked(waiter, request);
}

// Drops a waiter's registrations from the shards it was registered on.
void Coordinator::unregister(const std::shared_ptr<StreamWaiter>& waiter, const std::vector<unsigned>& shards) {
  for (const unsigned s : shards) {
    ShardRuntime* runtime = server_.shards[s].get();
    if (s == home_) {
      runtime->shard.blocked.remove(waiter.get());
    } else {
      asio::post(runtime->io, [runtime, waiter] { runtime->shard.blocked.remove(waiter.get()); });
    }
  }
}

void Coordinator::after_command(std::size_t reply_start) {
  if (link_.output().size() > reply_start && link_.output()[reply_start] == '-') {
    server_.state.stats.error_reply(std::string_view(link_.output()).substr(reply_start));
  }
  if (session_.shutdown_after_reply) server_.request_stop();
}

unsigned Coordinator::owner_of(std::string_view key) const {
  return static_cast<unsigned>(key_hash(key) % server_.state.shard_count);
}


}  // namespace runnel
