// Flusher: a shard's group commit. Commands append to their streams' logs; once the shard
// has run the handlers that are ready, the Flusher hands everything appended to the IoQueue
// as one batch (writes, then fdatasyncs under `--fsync always`). While that batch is in
// flight, appends gather for the next one. Under `always`, a writer's reply waits for the
// batch that carries its data (when_durable); under `everysec` a background thread
// fdatasyncs the files written once a second, off the write path; under `no` the kernel
// decides.
//
// A failed write or fsync is never papered over: writers waiting on it are told (their
// connections close without an OK), the server turns read-only (-MISCONF, INFO shows the
// cause), and the failed batch is retried every second. When a retry succeeds the server
// takes writes again. After a failed fsync the state of the page cache is unknown, so
// there is no retry: the server stays read-only until it is restarted.
//
// Lifecycle: made and started before the shard's thread runs; used on that thread only;
// finish() before the io_context stops.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "persistence.hpp"

namespace boost::asio {
class io_context;
}

namespace runnel {

struct ServerState;

class Flusher final : public Durability {
 public:
  Flusher(boost::asio::io_context& io, ShardStorage& storage, ServerState& state);
  ~Flusher() override;
  Flusher(const Flusher&) = delete;
  Flusher& operator=(const Flusher&) = delete;

  void start();
  [[nodiscard]] const char* backend() const;
  [[nodiscard]] const std::string& backend_note() const { return backend_note_; }

  void request() override;
  [[nodiscard]] bool must_wait() const override;
  using Durability::when_durable;
  [[nodiscard]] std::uint64_t ticket() const override { return collected_ + 1; }
  void when_durable(std::uint64_t ticket, std::function<void(bool ok)> done) override;
  void add_figures(StorageFigures& figures) const override;
  void fence_behind(Durability& from) override;

  // Writes and syncs everything (whatever the policy), then calls `done`.
  void finish(std::function<void()> done);


 private:
  struct Impl;
  void flush();
  // Whether a batch may be submitted now: none is in flight, or (under always, between
  // checkpoints) the one in flight only waits for its fdatasync and a second may overlap it.
  [[nodiscard]] bool can_flush() const;
  // Batches submitted and not yet reaped (at most 2), and the bytes they hold back for
  // the streams' files.
  [[nodiscard]] std::size_t in_flight() const;
  [[nodiscard]] std::uint64_t in_flight_deferred_bytes() const;
  void completed();
  void checkpoint();
  // Under always: hands what only the write-ahead log holds to the background thread, which
  // writes it to the streams' files.
  void trickle();
  // Files written but not yet synced, for the next background sync or checkpoint.
  void note_unsynced(const std::vector<storage::WriteOp>& writes);
  void fail(const std::string& what, bool retry);
  // Answers the waiters for batches up to `up_to` (all of them, with false, when !ok).
  void release(std::uint64_t up_to, bool ok);

  std::unique_ptr<Impl> impl_;
  ShardStorage& storage_;
  ServerState& state_;
  std::string backend_note_;
  // A checkpoint's start and the bytes waiting for their files (always) are bounded by
  // StorageOptions: --wal-checkpoint-bytes, --write-behind-bytes.
  // Under always: a log file made new (not recycled: at the start, or after a spare was too long to
  // keep) is written with this many zeros, so its first appends overwrite written blocks as
  // a recycled file's do ...
  static constexpr std::uint64_t kFreshLogBytes = 8 * 1024 * 1024;
  // ... and the streams' bytes go to the background thread to write in lots of this size.
  static constexpr std::uint64_t kTrickleBytes = 256 * 1024;
  bool posted_ = false;
  int fences_ = 0;  // fence_behind()s still waiting: no batch goes (but at shutdown)
  bool checkpoint_wanted_ = false;  // the once-a-second checkpoint found a batch in flight
  bool failed_ = false;     // a batch failed; writes wait for the retry
  bool retryable_ = true;
  std::uint64_t collected_ = 0;  // batches handed to the queue
  std::uint64_t completed_ = 0;  // batches written (and synced, under always)
  std::uint64_t flushes_ = 0;
  std::uint64_t overlapped_ = 0;
  std::uint64_t last_fsync_us_ = 0;
  std::uint64_t usual_fsync_us_ = 0;  // a moving average of last_fsync_us_
  // Under always: a second batch overlaps the one in flight once this many replies wait.
  static constexpr std::size_t kOverlapWaiters = 8;
  std::vector<std::pair<std::uint64_t, std::function<void(bool)>>> waiters_;
  std::vector<std::shared_ptr<storage::File>> unsynced_;  // everysec: written since the last sync
  std::size_t unsynced_dedupe_at_ = 64;
  std::function<void()> finish_;
};

}  // namespace runnel
