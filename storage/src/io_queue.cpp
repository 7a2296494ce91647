// The two IoQueue backends of io_queue.hpp: io_uring, and a helper thread.
#include <runnel/storage/io_queue.hpp>

#include <liburing.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

namespace runnel::storage {
namespace {

// The test hook (io_queue.hpp): the error to inject, and whether into fsyncs or writes.
struct Fault {
  int error = 0;
  bool in_sync = false;
};
Fault injected_fault() {
  const char* const path = std::getenv("RUNNEL_TEST_IO_FAULT");
  if (path == nullptr || ::access(path, F_OK) != 0) return {};
  std::string text;
  if (read_file(path, text) != 0) return {EIO, false};
  return {text.find("ENOSPC") != std::string::npos ? ENOSPC : EIO, text.find("fsync") != std::string::npos};
}

void signal(int efd) {
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(efd, &one, sizeof one);
}

void drain(int efd) {
  std::uint64_t count = 0;
  [[maybe_unused]] const ssize_t n = ::read(efd, &count, sizeof count);
}

IoResult failure(int error, bool in_sync, const std::string& path) {
  return IoResult{error, in_sync,
                  std::string(in_sync ? "fdatasync " : "write ") + path + ": " + std::strerror(error)};
}

// Runs a batch with plain system calls (the helper thread's way, and io_uring's fallback
// for a short write).
IoResult run_sync(const IoBatch& batch) {
  const Fault fault = injected_fault();
  for (const WriteOp& op : batch.writes) {
    const int rc = fault.error != 0 && !fault.in_sync ? fault.error : write_at(op.file->fd(), op.offset, op.bytes);
    if (rc != 0) return failure(rc, false, op.file->path());
  }
  for (const auto& file : batch.syncs) {
    if (fault.error != 0 && fault.in_sync) return failure(fault.error, true, file->path());
    if (::fdatasync(file->fd()) != 0) return failure(errno, true, file->path());
  }
  return {};
}

class ThreadQueue final : public IoQueue {
 public:
  static constexpr std::size_t kInlineWriteBytes = 64 * 1024;
  static constexpr std::size_t kInlineWrites = 4;
  ThreadQueue() : efd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    worker_ = std::thread([this] { run(); });
  }
  ~ThreadQueue() override {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
    ::close(efd_);
  }

  [[nodiscard]] const char* backend() const override { return "threads"; }
  [[nodiscard]] int event_fd() const override { return efd_; }

  void submit(IoBatch batch) override {
    std::size_t bytes = 0;
    for (const WriteOp& op : batch.writes) bytes += op.bytes.size();
    if (batch.inline_ok && batch.syncs.empty() && batch.writes.size() <= kInlineWrites && bytes <= kInlineWriteBytes) {
      // A small batch of a few buffered writes with nothing to sync only copies into the
      // page cache: done here, it saves waking the worker (a futex wake and two context
      // switches per batch). At --fsync no, delivery latency at 10k/s spent 12% of the
      // server's samples in pthread_cond_broadcast's wake-up. A batch of many writes (many
      // streams) still goes to the worker in one hand-off: written here, 64 streams at
      // -P 16 fell from 1.5 M/s to 1.2-1.3 M/s.
      IoResult result = run_sync(batch);
      {
        std::lock_guard lock(mutex_);
        done_.emplace(std::move(batch), std::move(result));
      }
      signal(efd_);
      return;
    }
    {
      std::lock_guard lock(mutex_);
      job_ = std::move(batch);
    }
    cv_.notify_all();
  }

  std::optional<std::pair<IoBatch, IoResult>> reap() override {
    drain(efd_);
    std::lock_guard lock(mutex_);
    auto done = std::move(done_);
    done_.reset();
    return done;
  }

 private:
  void run() {
    std::unique_lock lock(mutex_);
    while (true) {
      cv_.wait(lock, [&] { return stop_ || job_.has_value(); });
      if (!job_) return;  // stopping, nothing in flight
      IoBatch batch = std::move(*job_);
      job_.reset();
      lock.unlock();
      IoResult result = run_sync(batch);
      lock.lock();
      done_.emplace(std::move(batch), std::move(result));
      signal(efd_);
    }
  }

  int efd_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::optional<IoBatch> job_;
  std::optional<std::pair<IoBatch, IoResult>> done_;
  bool stop_ = false;
  std::thread worker_;
};

class UringQueue final : public IoQueue {
 public:
  static constexpr unsigned kEntries = 256;
  static constexpr std::size_t kInlineWriteBytes = 256 * 1024;

  static std::unique_ptr<UringQueue> make(std::string& why) {
    auto q = std::unique_ptr<UringQueue>(new UringQueue());
    if (const int rc = io_uring_queue_init(kEntries, &q->ring_, 0); rc < 0) {
      why = std::string("io_uring_queue_init: ") + std::strerror(-rc);
      q->ring_ok_ = false;
      return nullptr;
    }
    q->ring_ok_ = true;
    if (const int rc = io_uring_register_eventfd(&q->ring_, q->efd_); rc < 0) {
      why = std::string("io_uring_register_eventfd: ") + std::strerror(-rc);
      return nullptr;
    }
    return q;
  }

  ~UringQueue() override {
    // Wait out a batch in flight: its buffers live in batch_.
    while (ring_ok_ && in_flight_ > 0) {
      io_uring_cqe* cqe = nullptr;
      if (io_uring_wait_cqe(&ring_, &cqe) != 0) break;
      io_uring_cqe_seen(&ring_, cqe);
      --in_flight_;
    }
    if (ring_ok_) io_uring_queue_exit(&ring_);
    ::close(efd_);
  }

  [[nodiscard]] const char* backend() const override { return "io_uring"; }
  [[nodiscard]] int event_fd() const override { return efd_; }

  void submit(IoBatch batch) override {
    batch_ = std::move(batch);
    result_ = {};
    next_ = 0;
    resync_ = false;
    if (injected_fault().error != 0) {
      result_ = run_sync(batch_);  // fails where the hook says
      finished_ = true;
      signal(efd_);
      return;
    }
    finished_ = false;
    std::size_t bytes = 0;
    for (const WriteOp& op : batch_.writes) bytes += op.bytes.size();
    if (!batch_.inline_ok || bytes > kInlineWriteBytes) return submit_chunk();
    // A small batch of buffered writes only copies into the page cache: done here, it saves
    // the ring a hop to its worker threads (measured: fsync-always XADD -P 1 went from about
    // 53,000 to 70,000-78,000 per second). The fdatasyncs, which wait for the disk, go to
    // the ring. Large batches go to the ring whole, so the kernel's dirty-page throttling
    // never stalls the shard.
    for (const WriteOp& op : batch_.writes) {
      if (const int rc = write_at(op.file->fd(), op.offset, op.bytes); rc != 0) {
        result_ = failure(rc, false, op.file->path());
        finished_ = true;
        signal(efd_);
        return;
      }
    }
    next_ = batch_.writes.size();
    if (batch_.sync_inline) {
      for (const auto& file : batch_.syncs) {
        if (::fdatasync(file->fd()) != 0) {
          result_ = failure(errno, true, file->path());
          break;
        }
      }
      next_ = total();
    }
    if (next_ == total()) {
      finished_ = true;
      signal(efd_);
      return;
    }
    submit_chunk();
  }

  std::optional<std::pair<IoBatch, IoResult>> reap() override {
    drain(efd_);
    io_uring_cqe* cqe = nullptr;
    while (in_flight_ > 0 && io_uring_peek_cqe(&ring_, &cqe) == 0) {
      complete(static_cast<std::size_t>(cqe->user_data), cqe->res);
      io_uring_cqe_seen(&ring_, cqe);
      --in_flight_;
    }
    if (in_flight_ > 0) return std::nullopt;
    if (!finished_) {
      if (result_.error == 0 && next_ < total()) {
        submit_chunk();
        return std::nullopt;
      }
      if (result_.error == 0 && resync_) {
        for (const auto& file : batch_.syncs) {
          if (::fdatasync(file->fd()) != 0) {
            result_ = failure(errno, true, file->path());
            break;
          }
        }
      }
    }
    finished_ = true;
    auto done = std::make_pair(std::move(batch_), std::move(result_));
    batch_ = {};
    result_ = {};
    return done;
  }

 private:
  UringQueue() : efd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

  [[nodiscard]] std::size_t total() const { return batch_.writes.size() + batch_.syncs.size(); }

  // Queues the next ops of the current phase (writes, then fdatasyncs), as many as the ring
  // holds. Within a phase nothing is linked: the fdatasyncs of a batch's files run together,
  // and the file system can make them one journal commit (with 64 streams under fsync
  // always, linked fdatasyncs ran one after another: 64 commits per batch).
  void submit_chunk() {
    const std::size_t start = next_;
    const std::size_t phase_end = start < batch_.writes.size() ? batch_.writes.size() : total();
    const std::size_t end = std::min(phase_end, start + kEntries);
    for (std::size_t i = start; i < end; ++i) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      if (i < batch_.writes.size()) {
        const WriteOp& op = batch_.writes[i];
        io_uring_prep_write(sqe, op.file->fd(), op.bytes.data(), static_cast<unsigned>(op.bytes.size()),
                            op.offset);
      } else {
        io_uring_prep_fsync(sqe, batch_.syncs[i - batch_.writes.size()]->fd(), IORING_FSYNC_DATASYNC);
      }
      io_uring_sqe_set_data64(sqe, i);
    }
    in_flight_ = end - start;
    next_ = end;
    const int rc = io_uring_submit(&ring_);
    if (rc < 0) {
      // Nothing was queued: run the rest here rather than lose it.
      in_flight_ = 0;
      IoBatch rest;
      for (std::size_t i = start; i < batch_.writes.size(); ++i) rest.writes.push_back(batch_.writes[i]);
      rest.syncs = batch_.syncs;
      result_ = run_sync(rest);
      next_ = total();
      signal(efd_);
    }
  }

  void complete(std::size_t i, int res) {
    if (result_.error != 0) return;  // the first failure stands
    if (i < batch_.writes.size()) {
      const WriteOp& op = batch_.writes[i];
      if (res < 0) {
        result_ = failure(-res, false, op.file->path());
      } else if (static_cast<std::size_t>(res) < op.bytes.size()) {
        // A short write: finish it here, and sync again once the batch ends.
        const int rc = write_at(op.file->fd(), op.offset + static_cast<std::uint64_t>(res),
                                std::string_view(op.bytes).substr(static_cast<std::size_t>(res)));
        if (rc != 0) result_ = failure(rc, false, op.file->path());
        resync_ = true;
      }
    } else if (res < 0) {
      result_ = failure(-res, true, batch_.syncs[i - batch_.writes.size()]->path());
    }
  }

  io_uring ring_{};
  bool ring_ok_ = false;
  int efd_;
  IoBatch batch_;
  IoResult result_;
  std::size_t next_ = 0;
  std::size_t in_flight_ = 0;
  bool resync_ = false;
  bool finished_ = true;
};

}  // namespace

std::unique_ptr<IoQueue> IoQueue::create(bool prefer_uring, std::string& note) {
  const char* forced = std::getenv("RUNNEL_IO");
  if (forced != nullptr && std::string_view(forced) == "threads") prefer_uring = false;
  if (prefer_uring) {
    std::string why;
    if (auto q = UringQueue::make(why)) {
      note = "io_uring";
      return q;
    }
    note = "threads (io_uring refused: " + why + ")";
  } else {
    note = "threads (chosen)";
  }
  return std::make_unique<ThreadQueue>();
}

}  // namespace runnel::storage
