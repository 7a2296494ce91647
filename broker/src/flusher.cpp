// The shard's group commit (flusher.hpp): batches to the IoQueue, fsync policy, retries.
#include "flusher.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

#include <runnel/storage/write_ahead_log.hpp>

#include "log.hpp"
#include "server_state.hpp"

namespace runnel {

namespace asio = boost::asio;

namespace {

// Keeps one of each file (by identity): a flush over many streams gathers thousands, so no
// linear search per file.
void dedupe(std::vector<std::shared_ptr<storage::File>>& files) {
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
}

}  // namespace

// The shard's disk work that must not hold up its batches, on a thread of their own.
//
// everysec: the fdatasyncs of the files written, once a second (as Redis's background
// fsync), so that a sync of many dirty pages never holds up the batches behind it.
//
// no: only starts the kernel's writeback of those files (sync_file_range, no wait for the
// disk): left alone, the kernel lets seconds of appends pile up dirty and then writes them
// in one journal commit, which stalled the shard's appends for 60 ms and more.
//
// always: the streams' bytes that the write-ahead log already holds go to their files here,
// a little at a time as they come (write jobs), each followed by a start of its writeback.
// A checkpoint (once a second) then fdatasyncs those files, which by then have little left
// to write, and deletes the log generations they cover. Written in one burst a second
// instead, the files' writeback held the log's fdatasyncs behind it in the file system's
// journal commit for 10-20 ms (isolation at always: flooded online p99 12-21 ms). The next
// log generation is made here too, ahead of time, so the shard never waits on its create:
// from the spare a checkpoint kept (a retired generation's file, recycled), else new.
//
// Jobs run in the order they are handed over.
class BackgroundSync {
 public:
  // Where each file is now written up to (handed back to the shard's thread).
  using WrittenEnds = std::vector<storage::WrittenRange>;
  // Makes log generation N (always), on this thread, from `spare` (a retired log's file) if
  // it is not empty.
  using MakeLog = std::function<std::unique_ptr<storage::WriteAheadLog>(std::uint64_t generation,
                                                                        const std::string& spare, storage::Error& error)>;

  explicit BackgroundSync(bool writeback_only, MakeLog make_log = nullptr, std::uint64_t next_generation = 0)
      : writeback_only_(writeback_only), make_log_(std::move(make_log)), next_generation_(next_generation),
        thread_([this] { run(); }) {}
  // Runs every job handed over, syncs what the write jobs wrote (a shutdown's last
  // checkpoint: the caller then deletes the current log), and drops a log made ahead and
  // the spare.
  ~BackgroundSync() { (void)stop(); }
  // Runs what was handed over, then ends the thread; the first failure ("" if none).
  std::string stop() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    std::lock_guard lock(mutex_);
    if (error_.empty() && !failed_jobs_.empty()) return "writes to the streams' files failed and were not retried";
    return error_;
  }
  BackgroundSync(const BackgroundSync&) = delete;
  BackgroundSync& operator=(const BackgroundSync&) = delete;

  // everysec, no: syncs `files` unless a sync is still running; false if it is (try next
  // time).
  bool start(std::vector<std::shared_ptr<storage::File>>& files) {
    std::lock_guard lock(mutex_);
    if (syncs_queued_ > 0) return false;
    Job job;
    job.sync.swap(files);
    files.clear();
    push(std::move(job));
    return true;
  }

  // always: writes `ops` to their files and starts their writeback; then `done` (which must
  // post to the shard's thread) gets how far each file is written and how many bytes that
  // was. The payloads are freed here. On a failure `done` is not called.
  void write(std::vector<storage::WriteOp>& ops, std::function<void(WrittenEnds, std::uint64_t)> done) {
    std::lock_guard lock(mutex_);
    Job job;
    job.ops.swap(ops);
    ops.clear();
    job.written = std::move(done);
    push(std::move(job));
  }

  // always: once the write jobs before it are done, fdatasyncs every file they wrote since
  // the last checkpoint and `written` (files the shard wrote itself), then retires the logs
  // at `then_remove` (one kept as the spare). False, taking nothing, while the last
  // checkpoint is still running.
  bool start_checkpoint(std::vector<std::shared_ptr<storage::File>>& written, std::vector<std::string> then_remove) {
    std::lock_guard lock(mutex_);
    if (syncs_queued_ > 0) return false;
    Job job;
    job.checkpoint = true;
    job.sync.swap(written);
    written.clear();
    job.remove = std::move(then_remove);
    push(std::move(job));
    return true;
  }

  // always: the next log generation, made ahead; null while it is not ready (or could not
  // be made: the reason is logged).
  std::unique_ptr<storage::WriteAheadLog> take_next_log() {
    std::lock_guard lock(mutex_);
    auto log = std::move(next_log_);
    if (!log && !want_log_) {
      want_log_ = true;  // the last try failed: again (once a second, as the ticks ask)
      cv_.notify_all();
    }
    // Else the one after is made once the checkpoint that follows is done, from the spare
    // that checkpoint keeps.
    return log;
  }

  [[nodiscard]] bool busy() {
    std::lock_guard lock(mutex_);
    return syncs_queued_ > 0;
  }
  // Whether log generations wait to be retired by a checkpoint (one could not retire them
  // while failed writes waited): a quiet shard then still checkpoints, so they go.
  [[nodiscard]] bool has_unretired() const { return has_unretired_.load(std::memory_order_relaxed); }
  // The first failure, once ("" if none); `retryable` if it was a write (whose bytes are kept
  // for retry_writes), not a sync.
  std::string take_error(bool& retryable) {
    std::lock_guard lock(mutex_);
    retryable = !broken_;
    return std::exchange(error_, {});
  }

  // always: whether writes to the streams' files failed and wait for retry_writes (or a
  // retry is still running).
  [[nodiscard]] bool failed_writes() {
    std::lock_guard lock(mutex_);
    return !failed_jobs_.empty() || retries_running_ > 0;
  }
  // Writes the failed writes again (ahead of the jobs queued since); a failure shows at
  // take_error again. Until they succeed, no log generation is retired: the logs hold
  // their bytes.
  void retry_writes() {
    std::lock_guard lock(mutex_);
    retries_running_ += failed_jobs_.size();
    for (auto it = failed_jobs_.rbegin(); it != failed_jobs_.rend(); ++it) {
      it->retry = true;
      jobs_.push_front(std::move(*it));
    }
    failed_jobs_.clear();
    if (!broken_) error_.clear();
    cv_.notify_all();
  }

 private:
  struct Job {
    std::vector<storage::WriteOp> ops;                  // to write
    std::vector<std::shared_ptr<storage::File>> sync;   // to sync
    std::vector<std::string> remove;                    // to delete once synced
    std::function<void(WrittenEnds, std::uint64_t)> written;
    bool checkpoint = false;
    bool retry = false;  // failed once (failed_jobs_), handed back by retry_writes
  };

  void push(Job job) {  // under mutex_
    if (!job.sync.empty() || job.checkpoint) ++syncs_queued_;
    jobs_.push_back(std::move(job));
    cv_.notify_all();
  }

  bool wants_log() const { return make_log_ && want_log_ && !next_log_; }

  void run() {
    std::unique_lock lock(mutex_);
    while (true) {
      cv_.wait(lock, [&] { return stop_ || !jobs_.empty() || wants_log(); });
      if (!jobs_.empty()) {
        Job job = std::move(jobs_.front());
        jobs_.pop_front();
        if (!job.ops.empty() && !failed_jobs_.empty()) {
          // An earlier write failed: this one waits behind it, in order. Written now, it
          // would mark its files written past the hole the failed one left (the shard
          // counts a file written up to its highest write), and their nodes could be
          // evicted and read back from bytes that are not there.
          if (job.retry) --retries_running_;
          job.retry = false;
          failed_jobs_.push_back(std::move(job));
          continue;
        }
        lock.unlock();
        bool write_failed = false;
        std::string error = work(job, write_failed);
        const bool counted = !job.sync.empty() || job.checkpoint;
        lock.lock();
        if (job.retry) --retries_running_;
        if (write_failed) {
          // Kept, bytes and all, for retry_writes: the disk may have room again later.
          failed_jobs_.push_back(std::move(job));
        } else if (!error.empty()) {
          broken_ = true;
        }
        if (counted) --syncs_queued_;
        if (job.checkpoint) want_log_ = true;
        if (!error.empty() && error_.empty()) error_ = std::move(error);
        continue;
      }
      if (stop_) break;
      // Idle: the next log generation, ahead of the checkpoint that takes it.
      const std::uint64_t generation = next_generation_++;
      lock.unlock();
      const std::string spare = std::exchange(spare_, {});
      storage::Error error;
      auto log = make_log_(generation, spare, error);
      if (!log) log::warning("Cannot make the next write-ahead log generation (the current one keeps growing): " + error.what);
      lock.lock();
      next_log_ = std::move(log);
      want_log_ = false;
    }
    lock.unlock();
    // Shutdown: the files written since the last checkpoint.
    bool reopen_failed = false;
    std::string error = touched_.empty() ? std::string() : sync(touched_, reopen_failed);
    lock.lock();
    if (!error.empty() && error_.empty()) error_ = std::move(error);
    lock.unlock();
    if (next_log_) ::unlink(next_log_->file()->path().c_str());
    if (!spare_.empty()) ::unlink(spare_.c_str());
  }

  // One job, off the lock; an error text or "". `write_failed`: a write failed (the job keeps
  // its bytes, to be written again), rather than a sync.
  std::string work(Job& job, bool& write_failed) {
    std::string error;
    if (!job.ops.empty()) {
      const storage::InjectedFault fault = storage::injected_fault();  // tests: a full disk
      // Sorted by file, then offset: one writeback start per file, over the range written.
      std::sort(job.ops.begin(), job.ops.end(), [](const storage::WriteOp& a, const storage::WriteOp& b) {
        return a.file != b.file ? a.file < b.file : a.offset < b.offset;
      });
      WrittenEnds ends;
      std::uint64_t bytes = 0;
      for (std::size_t i = 0; i < job.ops.size();) {
        const auto& file = job.ops[i].file;
        // Held for the file's run of writes and its writeback start (file.hpp). A removed
        // file's writes are done with: its stream, or the segment, is gone.
        const storage::File::Pin pin = file->pin_to_write();
        if (!pin && !pin.gone() && error.empty()) {
          error = "open " + file->path() + ": " + std::strerror(pin.error());
        }
        const std::uint64_t from = job.ops[i].offset;
        std::uint64_t end = from;
        // Each run of ops that follow one another goes in one pwritev: the ops are the
        // appends of many small batches (one per entry at 10k XADDs a second, so about 2,300
        // write calls per lot, which took the CPU from the shard's thread on 2 cores).
        std::vector<std::string_view> run;
        std::uint64_t run_from = from;
        auto write_run = [&] {
          if (run.empty()) return;
          const int rc = fault.error != 0 && !fault.in_sync ? fault.error
                         : !pin                             ? pin.error()
                                                            : storage::write_gathered(pin.fd(), run_from, std::move(run)).code;
          if (rc != 0 && error.empty()) {
            error = "write " + file->path() + ": " + std::strerror(rc);
          }
          run.clear();
          ends.push_back(storage::WrittenRange{file, run_from, end});  // reported only if all went
        };
        for (; i < job.ops.size() && job.ops[i].file == file; ++i) {
          const storage::WriteOp& op = job.ops[i];
          if (run.empty() || op.offset != end || run.size() == storage::kGatherMax) {
            write_run();
            run_from = op.offset;
          }
          run.push_back(op.bytes);
          end = std::max(end, op.offset + op.bytes.size());
          bytes += op.bytes.size();
        }
        write_run();
        if (pin) {
          (void)::sync_file_range(pin.fd(), static_cast<off_t>(from), static_cast<off_t>(end - from),
                                  SYNC_FILE_RANGE_WRITE);
        }
        touched_.push_back(file);
      }
      dedupe(touched_);
      if (!error.empty()) {
        write_failed = true;
        return error;
      }
      job.ops.clear();
      if (job.written) job.written(std::move(ends), bytes);
    }
    if (job.checkpoint) {
      job.sync.insert(job.sync.end(), touched_.begin(), touched_.end());
      touched_.clear();
    }
    if (!job.sync.empty()) {
      dedupe(job.sync);
      bool reopen_failed = false;
      if (std::string e = sync(job.sync, reopen_failed); !e.empty()) {
        write_failed = reopen_failed;  // kept and retried, as a failed write is
        return e;
      }
    }
    // After a failed sync, or while failed writes wait for their retry, the logs hold writes
    // the files may not: none is retired (after a failed sync, until a restart replays them).
    {
      std::lock_guard lock(mutex_);
      if (broken_ || !failed_jobs_.empty() || retries_running_ > 0) {
        // Retired by the first checkpoint after the failed writes are written.
        unretired_.insert(unretired_.end(), job.remove.begin(), job.remove.end());
        has_unretired_.store(true, std::memory_order_relaxed);
        return error;
      }
    }
    job.remove.insert(job.remove.begin(), unretired_.begin(), unretired_.end());
    unretired_.clear();
    has_unretired_.store(false, std::memory_order_relaxed);
    for (const std::string& path : job.remove) {
      std::string spare = storage::WriteAheadLog::retire(path, make_log_ && spare_.empty());
      if (!spare.empty()) spare_ = std::move(spare);
    }
    return error;
  }

  // An error text or "". `reopen_failed`: the only failures were files that could not be
  // opened again to sync them (out of descriptors): nothing failed to sync, so it is retried.
  std::string sync(const std::vector<std::shared_ptr<storage::File>>& files, bool& reopen_failed) {
    std::string error;
    reopen_failed = false;
    bool sync_failed = false;
    for (const auto& f : files) {
      const storage::File::Pin pin = f->pin();
      if (pin.gone()) continue;  // removed: nothing to keep
      if (!pin) {
        if (error.empty()) error = "open " + f->path() + " to sync it: " + std::strerror(pin.error());
        reopen_failed = true;
      } else if (writeback_only_) {
        (void)::sync_file_range(pin.fd(), 0, 0, SYNC_FILE_RANGE_WRITE);
      } else {
        f->begin_sync();
        if (::fdatasync(pin.fd()) != 0) {
          f->note_dirty();
          if (!sync_failed) error = "fdatasync " + f->path() + ": " + std::strerror(errno);
          sync_failed = true;
        }
      }
    }
    reopen_failed = reopen_failed && !sync_failed;
    return error;
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  int syncs_queued_ = 0;  // sync and checkpoint jobs queued or running
  std::vector<std::shared_ptr<storage::File>> touched_;  // this thread's: written since the last checkpoint
  bool stop_ = false;
  bool writeback_only_;
  MakeLog make_log_;
  std::uint64_t next_generation_;
  std::unique_ptr<storage::WriteAheadLog> next_log_;
  std::string spare_;    // this thread's: a retired log's file, for the next generation
  bool broken_ = false;  // a sync failed: nothing is retried, nothing retired
  std::deque<Job> failed_jobs_;  // writes that failed, kept for retry_writes
  std::size_t retries_running_ = 0;
  std::vector<std::string> unretired_;  // this thread's: generations a checkpoint could not retire
  std::atomic<bool> has_unretired_{false};  // unretired_ is not empty (read by the shard)
  bool want_log_ = true;  // the next log is to be made (at the start, after each checkpoint)
  std::string error_;
  std::thread thread_;  // last: started once the members above exist
};

struct Flusher::Impl {
  explicit Impl(asio::io_context& io) : io(io), event(io), timer(io) {}
  asio::io_context& io;
  std::unique_ptr<storage::IoQueue> queue;
  asio::posix::stream_descriptor event;  // the queue's eventfd
  asio::steady_timer timer;              // once a second: everysec syncs, retries
  // The batches in flight, oldest first: when each went, and (under always) the streams'
  // bytes only its log record holds, which may go to their files once it is durable.
  struct InFlight {
    std::uint64_t number = 0;
    std::chrono::steady_clock::time_point submitted_at;
    std::vector<storage::WriteOp> deferred;
    std::uint64_t deferred_bytes = 0;
    bool retry = false;  // the failed batch, again
    std::vector<storage::Forgotten> forgotten;  // its forget records
  };
  std::deque<InFlight> in_flight;
  storage::IoBatch failed;  // a batch that failed, kept for the retry
  std::unique_ptr<BackgroundSync> background;  // everysec and always
  std::unique_ptr<storage::WriteAheadLog> wal;  // always
  std::vector<storage::Forgotten> forgotten;    // scratch for the forget records
  // Under always: the streams' bytes that only the write-ahead log holds so far; the next
  // checkpoint writes them to their files.
  std::vector<storage::WriteOp> deferred;
  std::uint64_t deferred_bytes = 0;
  std::uint64_t queued_bytes = 0;  // handed to `background` to write, not written yet
  // RUNNEL_TEST_WAL_ONLY (tests): under always, nothing but the write-ahead log is written,
  // and it is never checkpointed, so a restart must rebuild every file from it.
  bool wal_only = false;
  // RUNNEL_TEST_CHECKPOINT_MS (tests): checkpoints this often while writes come, instead of
  // once a second, so a short crash test goes through many log generations (recycled ones).
  std::chrono::milliseconds checkpoint_every{0};
  std::chrono::steady_clock::time_point last_checkpoint;
};


Flusher::Flusher(asio::io_context& io, ShardStorage& storage, ServerState& state)
    : impl_(std::make_unique<Impl>(io)), storage_(storage), state_(state) {
  // The I/O path, by policy (measured with runnel-bench at --threads 1 on 2 cores):
  // - always: io_uring. A small batch is copied into the page cache at submission and only
  //   its fdatasync goes to the ring (batch.inline_ok), which saves a hop on the path of
  //   every waiting reply.
  // - everysec: io_uring; a small batch (up to 256 KiB) is written at submission too, as
  //   every reply now waits for its batch's write.
  // - no: the helper thread, which takes a batch of many small writes in one hand-off where
  //   the ring spends a worker per write (produce --streams 64: 1.61 M/s, against 0.90 M/s
  //   on the ring; isolation p99 1.07 ms against 0.68 ms); batches up to 1 MiB are written
  //   at submission.
  const FsyncPolicy policy = storage.options().fsync;
  impl_->queue = storage::IoQueue::create(policy != FsyncPolicy::kNo, backend_note_);
  if (policy == FsyncPolicy::kAlways) {
    storage::Error error;
    const std::string& dir = storage.options().dir;
    const unsigned shard = storage.shard();
    impl_->wal = storage::WriteAheadLog::create(dir, shard, 1, error, kFreshLogBytes);
    if (!impl_->wal) throw std::runtime_error(error.what);
    const char* hook = std::getenv("RUNNEL_TEST_WAL_ONLY");
    impl_->wal_only = hook != nullptr && *hook != '\0' && std::string_view(hook) != "0";
    if (const char* every = std::getenv("RUNNEL_TEST_CHECKPOINT_MS")) {
      impl_->checkpoint_every = std::chrono::milliseconds(std::strtoul(every, nullptr, 10));
    }
    auto make_log = [dir, shard](std::uint64_t generation, const std::string& spare, storage::Error& e) {
      if (!spare.empty()) {
        if (auto log = storage::WriteAheadLog::recycle(spare, dir, shard, generation, e)) return log;
        log::warning("Cannot recycle a write-ahead log file (making a new one): " + e.what);
      }
      return storage::WriteAheadLog::create(dir, shard, generation, e, kFreshLogBytes);
    };
    impl_->background = std::make_unique<BackgroundSync>(false, std::move(make_log), 2);
  } else {
    impl_->background = std::make_unique<BackgroundSync>(policy == FsyncPolicy::kNo);
  }
  const int fd = ::dup(impl_->queue->event_fd());
  if (fd < 0) throw std::runtime_error("cannot dup the I/O queue's eventfd");
  impl_->event.assign(fd);
}

Flusher::~Flusher() = default;

const char* Flusher::backend() const { return impl_->queue->backend(); }

void Flusher::start() {
  // The completion watch and the timer re-arm themselves until the io_context stops.
  struct Watch {
    Flusher* self;
    void operator()(const boost::system::error_code& ec) const {
      if (ec) return;
      self->completed();
      self->impl_->event.async_wait(asio::posix::stream_descriptor::wait_read, *this);
    }
  };
  impl_->event.async_wait(asio::posix::stream_descriptor::wait_read, Watch{this});
  struct Tick {
    Flusher* self;
    void operator()(const boost::system::error_code& ec) const {
      if (ec) return;
      Flusher& f = *self;
      if (f.failed_ && f.retryable_ && f.in_flight() == 0) {
        if (f.impl_->background && f.impl_->background->failed_writes()) {
          // The streams' files first (always: what the background thread could not write);
          // once they are written, the next tick retries the rest.
          f.impl_->background->retry_writes();
        } else {
          // Completing the retry completes everything collected so far (it carries it all).
          f.impl_->in_flight.push_back({f.collected_, std::chrono::steady_clock::now(), {}, 0, true, {}});
          f.impl_->queue->submit(std::move(f.impl_->failed));
          f.impl_->failed = {};
        }
      } else if (f.impl_->wal && f.impl_->background) {
        // A failed write to a stream's file (ENOSPC) is retried, as the flushes' own writes
        // are: the log holds its bytes. A failed sync is not: the page cache is unknown.
        bool retryable = false;
        if (std::string error = f.impl_->background->take_error(retryable); !error.empty()) {
          f.fail(error, retryable);
        } else {
          // Between batches only: with one in flight, the next completion checkpoints (and
          // no second batch overlaps it meanwhile).
          f.checkpoint_wanted_ = f.in_flight() > 0;
          f.checkpoint();
        }
      } else if (f.impl_->background) {
        bool retryable = false;  // everysec and no: the background thread only syncs
        if (std::string error = f.impl_->background->take_error(retryable); !error.empty()) {
          f.fail(error, false);
        } else if (!f.unsynced_.empty()) {
          dedupe(f.unsynced_);
          if (f.impl_->background->start(f.unsynced_)) f.unsynced_dedupe_at_ = 64;
        }
      }
      if (!f.failed_) {
        f.storage_.apply_retention(static_cast<std::uint64_t>(wall_now_ms()));
        (void)f.storage_.settle_seen();  // consumers' seen times, which no reply waited for
        if (f.storage_.pending()) f.request();
      }
      f.impl_->timer.expires_after(std::chrono::seconds(1));
      f.impl_->timer.async_wait(*this);
    }
  };
  impl_->timer.expires_after(std::chrono::seconds(1));
  impl_->timer.async_wait(Tick{this});
}

bool Flusher::can_flush() const {
  if (failed_) return false;
  if (fences_ > 0 && !finish_) return false;
  if (in_flight() == 0) return true;
  // A second batch overlaps the first only under always with the write-ahead log, whose
  // batches are one small inline write and one fdatasync: the first's record is then in
  // the page cache before the second's fdatasync starts, so the second's return makes both
  // durable, and replies still go in order (a batch is reaped after the one before it).
  // With the disk slow, a consumer's XACK and next XREADGROUP no longer wait for the batch
  // in flight before their own fdatasync starts.
  //
  // Only when it pays, though: two fdatasyncs at once each take longer (the disk runs their
  // cache flushes one after the other), so a lone reply does better waiting for the one in
  // flight. It pays with many replies waiting, or while the disk is slow (the last
  // fdatasync took over 1.5 times the usual). Measured against never overlapping and
  // always overlapping, rotated run by run (runnel-bench at always, 2 cores):
  // - produce -c 50 -P 1, medians of 5 runs: 81k, 84k, and 91k per second with this rule;
  // - latency --rate 10000, pooled over 10 runs of 3 s: p50 452, 521 and 449 us; p99 2449,
  //   2131 and 2159 us; p99.9 6901, 3316 and 3445 us.
  if (in_flight() != 1 || !impl_->wal || impl_->wal_only || finish_ || checkpoint_wanted_ ||
      impl_->wal->bytes() >= storage_.options().wal_checkpoint_bytes || !impl_->queue->can_overlap()) {
    return false;
  }
  if (2 * last_fsync_us_ > 3 * usual_fsync_us_) return true;
  // The replies that wait for the next batch (not for the one in flight): the newest ones.
  std::size_t waiting = 0;
  for (auto it = waiters_.rbegin(); it != waiters_.rend() && it->first > collected_; ++it) {
    if (++waiting == kOverlapWaiters) return true;
  }
  return false;
}

void Flusher::request() {
  if (posted_ || !can_flush()) return;
  posted_ = true;
  // Posted, so it runs after the handlers that are ready now: their appends join this batch.
  asio::post(impl_->io, [this] {
    posted_ = false;
    flush();
  });
}

bool Flusher::must_wait() const {
  // Under every policy a write's reply waits for the batch that carries it: under always
  // until it is fsync'ed, under everysec and no until its write has reached the kernel (the
  // page cache), as Redis writes its AOF buffer before it sends any reply. A kill -9 then
  // loses nothing acknowledged; a reply sent before the write was lost with the process.
  // This is also the back-pressure under everysec and no: appends cannot pile up in memory
  // faster than the disk takes them, as each writer waits for its own batch.
  return storage_.pending() || failed_;
}

void Flusher::when_durable(std::uint64_t ticket, std::function<void(bool ok)> done) {
  if (failed_) return done(false);
  if (ticket <= completed_) return done(true);
  // A flush that finds nothing to write releases every waiter.
  waiters_.emplace_back(ticket, std::move(done));
  request();
}

void Flusher::fence_behind(Durability& from_base) {
  auto& from = static_cast<Flusher&>(from_base);
  if (from.completed_ >= from.collected_ || from.failed_) return;  // nothing of it in flight
  ++fences_;
  // Runs on `from`'s thread when its batch is done (or failed: the server is read-only then).
  // In ticket order, before the waiters for batches not yet handed out.
  const auto at = std::find_if(from.waiters_.begin(), from.waiters_.end(),
                               [&](const auto& w) { return w.first > from.collected_; });
  from.waiters_.emplace(at, from.collected_, [this](bool) {
    asio::post(impl_->io, [this] {
      if (--fences_ == 0) request();
    });
  });
}

void Flusher::add_figures(StorageFigures& figures) const {
  figures.flushes += flushes_;
  figures.overlapped += overlapped_;
  figures.last_fsync_us = std::max(figures.last_fsync_us, last_fsync_us_);
  figures.io_backend = backend();
}

void Flusher::finish(std::function<void()> done) {
  finish_ = std::move(done);
  if (failed_) {
    log::warning("Stopping with writes that could not be made durable: " + state_.storage.cause());
    auto f = std::move(finish_);
    finish_ = nullptr;
    return f();
  }
  (void)storage_.settle_seen();
  flush();
}

void Flusher::flush() {
  if (!can_flush()) return;
  storage::IoBatch batch;
  if (std::string error = storage_.collect(batch.writes); !error.empty()) {
    impl_->failed = std::move(batch);  // retried with what the next flush collects
    fail(error, true);
    return;
  }
  const FsyncPolicy policy = storage_.options().fsync;
  const bool sync_all = finish_ != nullptr;
  std::vector<storage::WriteOp> deferring;  // for the streams' files once this batch is durable
  std::uint64_t deferring_bytes = 0;
  storage_.take_forgotten(impl_->forgotten);
  if (impl_->wal && (!batch.writes.empty() || !impl_->forgotten.empty() || (sync_all && !impl_->deferred.empty()))) {
    // One fdatasync, of the log, makes the whole batch durable; the files themselves are
    // synced by the next checkpoint (or below, at shutdown).
    storage::WriteOp logged = impl_->wal->append(batch.writes, impl_->forgotten);
    if (impl_->wal_only) {
      for (const auto& op : batch.writes) storage::SegmentLog::mark_written(op);
      batch.writes.clear();
    } else if (sync_all) {
      // Shutdown: everything goes to its file now, what was deferred first.
      for (auto& op : batch.writes) impl_->deferred.push_back(std::move(op));
      batch.writes = std::move(impl_->deferred);
      impl_->deferred.clear();
      impl_->deferred_bytes = 0;
    } else if (impl_->deferred_bytes + impl_->queued_bytes + in_flight_deferred_bytes() >=
               storage_.options().write_behind_bytes) {
      // The background writes are behind (a slow disk): these go to their files now, as under
      // the other policies, so what waits in memory stays bounded. The next checkpoint syncs
      // them.
      note_unsynced(batch.writes);
    } else {
      // The log alone is written and synced now: one file in the file system's commit. The
      // streams' files get these bytes from the background thread, once the batch is durable
      // (trickle); their nodes stay in memory until then, as they are not written.
      for (auto& op : batch.writes) {
        deferring_bytes += op.bytes.size();
        deferring.push_back(std::move(op));
      }
      batch.writes.clear();
    }
    batch.writes.push_back(std::move(logged));
    batch.syncs.push_back(impl_->wal->file());
    if (sync_all) {
      for (const auto& op : batch.writes) batch.syncs.push_back(op.file);
    }
  } else if (policy == FsyncPolicy::kAlways || sync_all) {
    for (const auto& op : batch.writes) batch.syncs.push_back(op.file);
  }
  if (sync_all) {
    batch.syncs.insert(batch.syncs.end(), unsynced_.begin(), unsynced_.end());
    unsynced_.clear();
  }
  dedupe(batch.syncs);
  if (batch.writes.empty() && batch.syncs.empty()) {
    // Nothing to write: all that was appended is durable once the batches in flight are,
    // including what waiters expected in the next batch. With one in flight (under always
    // a second batch may overlap it), only what completed is.
    release(in_flight() > 0 ? completed_ : collected_ + 1, true);
    if (finish_) {
      // Everything is in its own file and synced: the write-ahead log has nothing to add.
      if (impl_->wal && !impl_->wal_only) {
        // Finishes the background work (a checkpoint under way too). If any of it failed,
        // the log stays, for the next start to replay.
        if (const std::string error = impl_->background->stop(); error.empty()) {
          ::unlink(impl_->wal->file()->path().c_str());
        } else {
          log::warning("Keeping the write-ahead log for the next start: " + error);
        }
        impl_->background.reset();
      }
      auto f = std::move(finish_);
      finish_ = nullptr;
      f();
    }
    return;
  }
  // One reply waiting (a lone writer, or a quiet moment): the fdatasync runs right here, as
  // Redis's does, and saves the ring worker's two hand-offs on that reply's path (a lone
  // client's XADD: 285 -> 198 us). With more waiting, the ring keeps the shard taking
  // commands for the next batch while this one syncs.
  batch.sync_inline = policy == FsyncPolicy::kAlways && !sync_all && in_flight() == 0 && waiters_.size() <= 1 &&
                      batch.syncs.size() == 1;
  ++collected_;
  if (in_flight() > 0) ++overlapped_;
  impl_->in_flight.push_back({collected_, std::chrono::steady_clock::now(), std::move(deferring), deferring_bytes, false,
                              std::move(impl_->forgotten)});
  impl_->forgotten.clear();
  impl_->queue->submit(std::move(batch));
  // A small batch is often done at submission (written on this thread, and under always
  // maybe synced): its replies go now, not after a turn of the event loop for the eventfd.
  if (impl_->queue->front_done()) completed();
}

void Flusher::note_unsynced(const std::vector<storage::WriteOp>& writes) {
  // The background sync takes these once a second; kept deduplicated as they pile up while
  // it is busy.
  for (const auto& op : writes) unsynced_.push_back(op.file);
  if (unsynced_.size() >= unsynced_dedupe_at_) {
    dedupe(unsynced_);
    unsynced_dedupe_at_ = 2 * unsynced_.size() + 64;
  }
}

void Flusher::trickle() {
  if (impl_->deferred.empty()) return;
  impl_->queued_bytes += impl_->deferred_bytes;
  impl_->deferred_bytes = 0;
  asio::io_context& io = impl_->io;
  impl_->background->write(impl_->deferred, [this, &io](BackgroundSync::WrittenEnds ends, std::uint64_t bytes) {
    // On the shard's thread: the bytes are in their files now, so their nodes may be evicted
    // and read back (the write-ahead log keeps them durable until the checkpoint).
    asio::post(io, [this, ends = std::move(ends), bytes] {
      impl_->queued_bytes -= bytes;
      storage_.written(ends);
    });
  });
}

void Flusher::checkpoint() {
  // A new log generation takes the batches from now on; once the files the old ones wrote
  // are synced, the old generations go. Only between batches, so the old log is complete.
  if (impl_->wal_only || in_flight() > 0 || !impl_->background || impl_->background->busy() ||
      (impl_->wal->bytes() <= storage::WriteAheadLog::kHeaderBytes && unsynced_.empty() &&
       !impl_->background->has_unretired())) {
    return;
  }
  auto next = impl_->background->take_next_log();
  if (!next) return;  // not made yet: the next tick
  impl_->last_checkpoint = std::chrono::steady_clock::now();
  std::vector<std::string> retired{impl_->wal->file()->path()};
  impl_->wal = std::move(next);
  trickle();
  dedupe(unsynced_);
  unsynced_dedupe_at_ = 64;
  impl_->background->start_checkpoint(unsynced_, std::move(retired));
}

void Flusher::completed() {
  auto done = impl_->queue->reap();
  if (!done) return;
  Impl::InFlight finished = std::move(impl_->in_flight.front());
  impl_->in_flight.pop_front();
  storage::IoBatch& batch = done->first;
  const storage::IoResult& result = done->second;
  // The streams' bytes this batch's log record holds may go to their files once it is
  // durable (trickle below). After a failure they wait there, with the log, for the retry.
  for (auto& op : finished.deferred) impl_->deferred.push_back(std::move(op));
  impl_->deferred_bytes += finished.deferred_bytes;
  if (failed_ && !finished.retry) {
    // A batch that overlapped one that failed: its waiters were answered then. Kept for the
    // retry with the failed one (its log record is rewritten at the same place).
    for (auto& op : batch.writes) impl_->failed.writes.push_back(std::move(op));
    return;
  }
  if (result.error != 0) {
    impl_->failed = std::move(batch);
    fail(result.what, !result.in_sync);
    return;
  }
  const auto elapsed = std::chrono::steady_clock::now() - finished.submitted_at;
  if (!batch.syncs.empty()) {
    last_fsync_us_ = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count());
    // A moving average over about the last 32 batches.
    usual_fsync_us_ = usual_fsync_us_ == 0 ? last_fsync_us_ : usual_fsync_us_ - usual_fsync_us_ / 32 + last_fsync_us_ / 32;
  }
  storage_.written(batch.writes);
  storage::WriteAheadLog::forgets_durable(finished.forgotten);  // their folders' names are free
  if (impl_->wal && !impl_->wal_only) {
    if (in_flight() == 0 &&
        (checkpoint_wanted_ || impl_->wal->bytes() >= storage_.options().wal_checkpoint_bytes ||
         (impl_->checkpoint_every.count() > 0 &&
          std::chrono::steady_clock::now() - impl_->last_checkpoint >= impl_->checkpoint_every))) {
      checkpoint_wanted_ = false;
      checkpoint();
    } else if (impl_->deferred_bytes >= kTrickleBytes) {
      trickle();
    }
  }
  if (impl_->background && !impl_->wal) note_unsynced(batch.writes);
  ++flushes_;
  completed_ = finished.number;
  if (failed_) {
    failed_ = false;
    state_.storage.recovered(storage_.shard());
    log::notice("Writing to the data dir works again; taking writes");
  }
  release(completed_, true);
  if (storage_.pending() || finish_ || !waiters_.empty()) request();
}

std::size_t Flusher::in_flight() const { return impl_->in_flight.size(); }

std::uint64_t Flusher::in_flight_deferred_bytes() const {
  std::uint64_t bytes = 0;
  for (const auto& f : impl_->in_flight) bytes += f.deferred_bytes;
  return bytes;
}

void Flusher::fail(const std::string& what, bool retry) {
  failed_ = true;
  retryable_ = retry;
  state_.storage.failed(storage_.shard(), what);
  log::warning("Writing to the data dir failed (" + what + "); refusing writes " +
               (retry ? "until a retry succeeds (every second)"
                      : "until a restart: after a failed fsync the file's state is unknown"));
  release(collected_, false);
}

void Flusher::release(std::uint64_t up_to, bool ok) {
  auto waiters = std::move(waiters_);
  waiters_.clear();
  decltype(waiters_) kept;
  for (auto& [batch, done] : waiters) {
    if (!ok) {
      done(false);
    } else if (batch <= up_to) {
      done(true);  // may call when_durable again, adding to waiters_
    } else {
      kept.emplace_back(batch, std::move(done));
    }
  }
  // The kept ones are older than any a callback added: waiters_ stays in ticket order.
  kept.insert(kept.end(), std::make_move_iterator(waiters_.begin()), std::make_move_iterator(waiters_.end()));
  waiters_ = std::move(kept);
}

}  // namespace runnel
