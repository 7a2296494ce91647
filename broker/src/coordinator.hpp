// Coordinator: runs a connection's parsed commands on the shards their routes in the command
// table name, and gathers their replies in request order:
//
//   route (command.hpp)       how
//   kConnection, kReset       here, on the connection's thread
//   kKey                      here if this thread's shard owns the key; else a hop, batched
//                             with the pipelined key commands after it (one hop per shard)
//   kEachShard                a part on every shard in turn, then the reply from what they gathered
//   kStreamRead, kGroupRead   each key read on its shard; or the reader blocks (stream_read.hpp)
//   kMulti .. kUnwatch        MULTI/EXEC/DISCARD/WATCH/UNWATCH (transaction.hpp)
//
// A write's reply waits for the disk: the Coordinator holds it back until the batch that
// carries the write is durable, and tells the connection how far its output may be sent
// (sendable_end). If the disk refuses the batch, the held replies are replaced by -MISCONF
// and the session ends: a write is never answered with OK unless it is durable.
// The Coordinator knows nothing of sockets or parsing: what it needs of its connection goes
// through Link. One per connection, on the connection's thread.
#pragma once

#include <cstdint>
#include <algorithm>
#include <functional>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "blocking.hpp"
#include "command.hpp"
#include "server_core.hpp"
#include "stream_read.hpp"

namespace runnel {

class Coordinator {
 public:
  // What the Coordinator asks of its connection.
  // The connection is also its own Pub/Sub receiver (one vtable: an idle connection stays
  // small).
  class Link : public Subscriber {
   public:
    // Where replies go, in request order: the unsent end of the connection's output.
    virtual std::string& output() = 0;
    // How many bytes of replies the connection has been given, sent or not: output()[0] is
    // at output_position() - output().size().
    [[nodiscard]] virtual std::uint64_t output_position() const = 0;
    // Held replies were released (or cut): what may go now should go.
    virtual void replies_released() = 0;
    // The connection's lifetime: a durability callback runs only while it holds.
    virtual std::weak_ptr<void> lifetime() = 0;
    // A key command went to `shard` (the connection may move there).
    virtual void note_owner(unsigned shard) = 0;
    [[nodiscard]] virtual const ConnectionLimits& limits() const = 0;
    [[nodiscard]] virtual bool closing() const = 0;
    // The session ends after what was answered so far (a write the disk refused).
    virtual void end_session() = 0;
    // Sends what is ready, and waits while the client has not taken --reply-pause-bytes.
    virtual awaitable<void> send_and_wait_taken() = 0;
    // A blocked read is about to register: the function that hands its answer to the
    // connection, from any thread.
    virtual std::function<void(WaiterAnswer)> expect_blocked_answer() = 0;
    // Waits for the blocked read's answer, its timeout, or the client going away.
    virtual awaitable<void> wait_blocked(const std::shared_ptr<StreamWaiter>& waiter,
                                         const xread::Request& request) = 0;
    [[nodiscard]] virtual asio::any_io_executor executor() = 0;

   protected:
    ~Link() = default;
  };

  Coordinator(ServerCore& server, Session& session, Link& link, unsigned home)
      : server_(server), session_(session), link_(link), home_(home) {}

  // Runs a command if it can run on this thread, which is the common case: connection
  // commands, keys this shard owns, and fanned commands on a one-shard server. Returns null
  // when it ran (or was refused), else the row to run with run(). Free of co_await: no
  // coroutine frame per command.
  const CommandSpec* run_here(std::span<const std::string_view> args);
  // Runs a command run_here() returned: a key command's hop (start a batch with it, add the
  // pipelined key commands after it, then run_batch()), or any other route.
  awaitable<void> run(const CommandSpec& spec, std::span<const std::string_view> args);

  // A batched hop: start_batch() with the first command, then add_to_batch() while
  // batchable() says the next one may join (arguments must stay put until run_batch() ends).
  void start_batch(const CommandSpec& spec, std::span<const std::string_view> args);
  [[nodiscard]] const CommandSpec* batchable(std::span<const std::string_view> args) const;
  // False once the batch is full (256 commands or 1 MiB).
  bool add_to_batch(const CommandSpec& spec, std::span<const std::string_view> args, std::size_t bytes);
  awaitable<void> run_batch();

  // --- replies held for the disk ---
  // Asks the home shard's Flusher to call back once the first held reply's batch is
  // durable (once per held batch, not per write: the connection calls it after a run).
  void release_when_durable();
  // Output position up to which replies may be sent: the first held reply, or the end of
  // the output once a refused write cut it (nothing past its -MISCONF goes out).
  [[nodiscard]] std::uint64_t sendable_end() const {
    return holds_.empty() ? output_end_ : std::min(holds_.front().at, output_end_);
  }
  [[nodiscard]] bool holding() const { return !holds_.empty() || hold_armed_; }
  // Whether the output was cut after a refused write.
  [[nodiscard]] bool output_cut() const { return output_end_ != kNoOutputEnd; }
  // The connection drops its unsent output: nothing is held any more.
  void drop_holds() { holds_.clear(); }

  // Lets go of every watched key (posted to the owning shards; no reply waits on it).
  void unwatch_all();
  // Drops a blocked reader's registrations from the shards it was registered on.
  void unregister(const std::shared_ptr<StreamWaiter>& waiter, const std::vector<unsigned>& shards);

 private:
  // A command of a batched hop: its row, its owning shard, where its arguments are in
  // args, and (once run) where its reply is in its shard's scratch buffer. The arguments are
  // views into the connection's own input buffer, which stays put until the batch has run
  // (the connection reads nothing while it waits on the batch).
  struct BatchedCommand {
    const CommandSpec* spec;
    unsigned owner;
    std::size_t first_arg;
    std::size_t args;
    std::size_t reply_begin = 0;
    std::size_t reply_end = 0;
    bool wrote = false;
    bool ran = false;
    bool settled = false;      // its hop's outcome (ok, ticket) is noted
    bool ok = true;            // false: the disk refused the writes of the hop it ran in
    std::uint64_t ticket = 0;  // on the home shard: the batch its write's reply waits for
  };
  // How one shard's share of a batch went.
  struct PartState {
    bool used = false;
    bool ok = true;  // false: the disk refused its writes
  };
  // Allocated by the first batch: most connections never hop.
  struct Batch {
    std::vector<BatchedCommand> commands;
    std::vector<std::string_view> args;
    std::vector<std::string> scratch;  // replies, per shard
    std::vector<PartState> parts;      // outcome, per shard
    std::size_t bytes = 0;
  };

  void wrote_here(Shard& shard, std::size_t reply_start);
  // The reply from output()[reply_start] on waits for batch `ticket` of the home shard.
  void hold_reply(std::size_t reply_start, std::uint64_t ticket);
  void hold_done(std::uint64_t ticket, bool ok);
  void after_command(std::size_t reply_start);
  [[nodiscard]] unsigned owner_of(std::string_view key) const;

  // MULTI / EXEC / DISCARD / WATCH / UNWATCH.
  void queue_command(std::span<const std::string_view> args, protocol::ReplyWriter& reply);
  void end_multi();
  void transaction_command(Route route, protocol::ReplyWriter& reply);
  awaitable<void> watch(std::span<const std::string_view> args);
  awaitable<void> migrate(std::span<const std::string_view> args);  // migrate.cpp
  awaitable<void> copy(std::span<const std::string_view> args);     // copy.cpp
  awaitable<void> exec();
  awaitable<void> key_pair(std::span<const std::string_view> args);  // RENAME
  // PUBLISH here; false (nothing done) when it must wait for a shard's backlog instead.
  bool publish(std::span<const std::string_view> args, bool sharded, protocol::ReplyWriter& reply);
  awaitable<void> publish_waiting(std::span<const std::string_view> args, bool sharded);
  // Runs `queued` as a transaction (in one hop, or with the other shards parked), its replies
  // into `body`, and waits for the disk as a write does.
  enum class Ran { kDone, kNoShards, kNotDurable };
  awaitable<Ran> run_queued(const std::vector<std::vector<std::string>>& queued, std::string& body);
  // The error reply for a run that did not happen or that the disk refused; false if none.
  bool replied_failure(Ran ran, protocol::ReplyWriter& reply);
  awaitable<bool> exec_across_shards(const std::vector<std::vector<std::string>>& queued,
                                     std::vector<Shard*>& shards, std::string& body, std::vector<char>& wrote);

  // Batched hops.
  bool run_batch_part(Shard& shard, unsigned owner, std::string& scratch,
                      std::size_t budget);
  awaitable<void> run_batch_round();
  void compact_batch_scratch(std::size_t next);

  // XREAD and XREADGROUP.
  awaitable<void> stream_read(const CommandSpec& spec, std::span<const std::string_view> args);

  // Runs `part` on `shard` (here, or there by a hop). A part that returns true wrote, and its
  // reply must wait for the disk: the hop ends once the shard's flush is durable. Returns
  // false if that flush failed.
  template <typename Part>
  awaitable<bool> on_shard(unsigned shard, Part&& part);
  // on_shard for callers outside coordinator.cpp (migrate.cpp): `part` returns whether it wrote.
  awaitable<bool> on_shard_call(unsigned shard, std::function<bool(Shard&)> part);

  ServerCore& server_;
  Session& session_;
  Link& link_;
  unsigned home_;
  std::unique_ptr<Batch> batch_;

  // Replies held until a batch of the home shard is durable: from output position `at` on,
  // until batch `ticket`; positions and tickets rise. A vector, not a deque: it holds a
  // batch or two at most, and libstdc++'s deque allocates 576 bytes when it is made.
  struct Hold {
    std::uint64_t at;
    std::uint64_t ticket;
  };
  std::vector<Hold> holds_;
  static constexpr std::uint64_t kNoOutputEnd = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t output_end_ = kNoOutputEnd;  // after a refused batch: nothing past this is sent
  bool hold_armed_ = false;                  // the Flusher will call hold_done for holds_.front()
};

}  // namespace runnel
