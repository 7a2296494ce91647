// The two IoQueue backends of io_queue.hpp: io_uring, and a helper thread.
#include <runnel/storage/io_queue.hpp>

#include <liburing.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

namespace runnel::storage {
namespace {

// The log's and the flushes' own writes ignore a fault meant for the files' background
// writes alone.
InjectedFault queue_fault() {
  InjectedFault fault = injected_fault();
  return fault.files_only ? InjectedFault{} : fault;
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

// One write with a plain system call; 0 or an errno value. A removed file's write is done
// with (file.hpp).
int write_now(const WriteOp& op) {
  const File::Pin pin = op.file->pin_to_write();
  if (!pin) return pin.error();
  return write_at(pin.fd(), op.offset, op.bytes).code;
}

// One fdatasync. A file that cannot be opened again (out of descriptors) is not synced: a
// failed write, retried, never a failed fsync, which would leave the page cache in doubt.
IoResult sync_now(File& file) {
  const File::Pin pin = file.pin();
  if (pin.gone()) return {};
  if (!pin) return failure(pin.error(), false, file.path());
  file.begin_sync();
  if (::fdatasync(pin.fd()) == 0) return {};
  const int error = errno;
  file.note_dirty();
  return failure(error, true, file.path());
}

// Runs a batch with plain system calls (the helper thread's way, and io_uring's fallback
// for a short write).
IoResult run_sync(const IoBatch& batch) {
  const InjectedFault fault = queue_fault();
  for (const WriteOp& op : batch.writes) {
    const int rc = fault.error != 0 && !fault.in_sync ? fault.error : write_now(op);
    if (rc != 0) return failure(rc, false, op.file->path());
  }
  for (const auto& file : batch.syncs) {
    if (fault.error != 0 && fault.in_sync) return failure(fault.error, true, file->path());
    if (IoResult r = sync_now(*file); r.error != 0) return r;
  }
  return {};
}

class ThreadQueue final : public IoQueue {
 public:
  static constexpr std::size_t kInlineWriteBytes = 1024 * 1024;
  static constexpr std::size_t kInlineWrites = 256;
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
      // A batch of buffered writes with nothing to sync only copies into the page cache:
      // done here, it saves waking the worker (a futex wake and two context switches per
      // batch), which every reply waiting for the batch would pay. At --fsync no, delivery
      // latency at 10k/s spent 12% of the server's samples in pthread_cond_broadcast's
      // wake-up. Batches past 1 MiB still go to the worker, so the kernel's dirty-page
      // throttling of a large write never stalls the shard.
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

  [[nodiscard]] bool front_done() override {
    std::lock_guard lock(mutex_);
    return done_.has_value();
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
    // Wait out the batches in flight: their buffers live in slots_.
    std::size_t in_flight = 0;
    for (const Slot& slot : slots_) in_flight += slot.in_flight;
    while (ring_ok_ && in_flight > 0) {
      io_uring_cqe* cqe = nullptr;
      if (io_uring_wait_cqe(&ring_, &cqe) != 0) break;
      io_uring_cqe_seen(&ring_, cqe);
      --in_flight;
    }
    if (ring_ok_) io_uring_queue_exit(&ring_);
    ::close(efd_);
  }

  [[nodiscard]] const char* backend() const override { return "io_uring"; }
  [[nodiscard]] int event_fd() const override { return efd_; }

  [[nodiscard]] bool can_overlap() const override {
    if (slots_.size() != 1) return false;
    const Slot& slot = slots_.front();
    return !slot.finished && slot.result.error == 0 && slot.next >= slot.batch.writes.size() && slot.in_flight > 0;
  }

  void submit(IoBatch batch) override {
    slots_.emplace_back();
    Slot& slot = slots_.back();
    slot.serial = ++serial_;
    slot.batch = std::move(batch);
    if (queue_fault().error != 0) {
      slot.result = run_sync(slot.batch);  // fails where the hook says
      slot.finished = true;
      signal(efd_);
      return;
    }
    std::size_t bytes = 0;
    for (const WriteOp& op : slot.batch.writes) bytes += op.bytes.size();
    if (!slot.batch.inline_ok || bytes > kInlineWriteBytes) return submit_chunk(slot);
    // A small batch of buffered writes only copies into the page cache: done here, it saves
    // the ring a hop to its worker threads (measured: fsync-always XADD -P 1 went from about
    // 53,000 to 70,000-78,000 per second). The fdatasyncs, which wait for the disk, go to
    // the ring. Large batches go to the ring whole, so the kernel's dirty-page throttling
    // never stalls the shard.
    for (const WriteOp& op : slot.batch.writes) {
      if (const int rc = write_now(op); rc != 0) {
        slot.result = failure(rc, false, op.file->path());
        slot.finished = true;
        signal(efd_);
        return;
      }
    }
    slot.next = slot.batch.writes.size();
    if (slot.batch.sync_inline) {
      for (const auto& file : slot.batch.syncs) {
        if (IoResult r = sync_now(*file); r.error != 0) {
          slot.result = std::move(r);
          break;
        }
      }
      slot.next = slot.total();
    }
    if (slot.next == slot.total()) {
      slot.finished = true;
      signal(efd_);
      return;
    }
    submit_chunk(slot);
  }

  [[nodiscard]] bool front_done() override { return !slots_.empty() && slots_.front().finished; }

  std::optional<std::pair<IoBatch, IoResult>> reap() override {
    drain(efd_);
    io_uring_cqe* cqe = nullptr;
    while (io_uring_peek_cqe(&ring_, &cqe) == 0) {
      const std::uint64_t data = io_uring_cqe_get_data64(cqe);
      for (Slot& slot : slots_) {
        if (slot.serial != (data >> kSerialShift)) continue;
        complete(slot, static_cast<std::size_t>(data & ((std::uint64_t{1} << kSerialShift) - 1)), cqe->res);
        --slot.in_flight;
        break;
      }
      io_uring_cqe_seen(&ring_, cqe);
    }
    for (Slot& slot : slots_) {
      if (slot.in_flight > 0 || slot.finished) continue;
      if (slot.result.error == 0 && slot.next < slot.total()) {
        submit_chunk(slot);
        continue;
      }
      slot.pins.clear();
      if (slot.result.error == 0 && slot.resync) {
        for (const auto& file : slot.batch.syncs) {
          if (IoResult r = sync_now(*file); r.error != 0) {
            slot.result = std::move(r);
            break;
          }
        }
      }
      slot.finished = true;
    }
    // In submission order: a batch is done only once every batch before it is. A later
    // batch shares an earlier one's failure, as its fdatasync ran in the same unknown state.
    if (slots_.empty() || !slots_.front().finished) return std::nullopt;
    auto done = std::make_pair(std::move(slots_.front().batch), std::move(slots_.front().result));
    slots_.pop_front();
    if (done.second.error != 0 && !slots_.empty() && slots_.front().result.error == 0) {
      slots_.front().result = done.second;
    }
    // The next batch may be done already; its completion's signal was drained above.
    if (!slots_.empty() && slots_.front().finished) signal(efd_);
    return done;
  }

 private:
  // A batch in flight, and where it is. At most two: a second is submitted only while the
  // first waits for its fdatasyncs (can_overlap).
  struct Slot {
    std::uint64_t serial = 0;  // in each op's user data, above kSerialShift
    IoBatch batch;
    IoResult result;
    std::size_t next = 0;       // the next op to queue (writes, then fdatasyncs)
    std::size_t in_flight = 0;  // ops queued and not yet completed
    bool resync = false;        // a short write was finished by hand: sync again at the end
    bool finished = false;
    // The descriptors of the ops in the ring, by op index (writes, then fdatasyncs), held
    // until the ops complete so the descriptor cache never closes one under the kernel.
    std::vector<File::Pin> pins;

    [[nodiscard]] std::size_t total() const { return batch.writes.size() + batch.syncs.size(); }
  };
  static constexpr unsigned kSerialShift = 32;

  UringQueue() : efd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

  // Queues the next ops of the slot's current phase (writes, then fdatasyncs), as many as
  // the ring holds. Within a phase nothing is linked: the fdatasyncs of a batch's files run
  // together, and the file system can make them one journal commit (with 64 streams under
  // fsync always, linked fdatasyncs ran one after another: 64 commits per batch).
  void submit_chunk(Slot& slot) {
    const IoBatch& batch = slot.batch;
    const std::size_t start = slot.next;
    const std::size_t phase_end = start < batch.writes.size() ? batch.writes.size() : slot.total();
    slot.pins.resize(slot.total());
    std::size_t end = start;
    for (; end < std::min(phase_end, start + ring_chunk_ops()); ++end) {
      File& file = end < batch.writes.size() ? *batch.writes[end].file : *batch.syncs[end - batch.writes.size()];
      File::Pin pin = end < batch.writes.size() ? file.pin_to_write() : file.pin();
      if (!pin && !pin.gone()) {
        slot.result = failure(pin.error(), false, file.path());  // nothing was synced: retried
        break;  // what is queued completes; nothing more is
      }
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      if (sqe == nullptr) break;  // the ring is full: the rest goes when these complete
      if (pin.gone()) {
        io_uring_prep_nop(sqe);  // a removed file: nothing to write (complete() knows)
      } else if (end < batch.writes.size()) {
        const WriteOp& op = batch.writes[end];
        io_uring_prep_write(sqe, pin.fd(), op.bytes.data(), static_cast<unsigned>(op.bytes.size()), op.offset);
      } else {
        file.begin_sync();
        io_uring_prep_fsync(sqe, pin.fd(), IORING_FSYNC_DATASYNC);
      }
      io_uring_sqe_set_data64(sqe, (slot.serial << kSerialShift) | end);
      slot.pins[end] = std::move(pin);
    }
    if (end == start && slot.result.error != 0) {
      slot.finished = true;
      if (slot.in_flight == 0) signal(efd_);
      return;
    }
    const int rc = end > start ? io_uring_submit(&ring_) : -EBUSY;
    if (rc < 0) {
      // Nothing was queued: run the rest here rather than lose it.
      IoBatch rest;
      for (std::size_t i = start; i < batch.writes.size(); ++i) rest.writes.push_back(batch.writes[i]);
      rest.syncs = batch.syncs;
      slot.result = run_sync(rest);
      slot.next = slot.total();
      if (slot.in_flight == 0) signal(efd_);
      return;
    }
    slot.in_flight += end - start;
    slot.next = end;
  }

  static void complete(Slot& slot, std::size_t i, int res) {
    File::Pin pin = std::move(slot.pins[i]);
    if (pin.gone()) return;
    const IoBatch& batch = slot.batch;
    if (i >= batch.writes.size()) {
      // A failed fdatasync outweighs an earlier failure that was not one: a retry's fsync
      // would not report it again.
      if (res < 0) {
        File& file = *batch.syncs[i - batch.writes.size()];
        file.note_dirty();
        if (!slot.result.in_sync) slot.result = failure(-res, true, file.path());
      }
      return;
    }
    if (slot.result.error != 0) return;  // the first failure stands
    {
      const WriteOp& op = batch.writes[i];
      if (res < 0) {
        slot.result = failure(-res, false, op.file->path());
      } else if (static_cast<std::size_t>(res) < op.bytes.size()) {
        // A short write: finish it here, and sync again once the batch ends.
        const int rc = write_at(pin.fd(), op.offset + static_cast<std::uint64_t>(res),
                                std::string_view(op.bytes).substr(static_cast<std::size_t>(res)))
                           .code;
        if (rc != 0) slot.result = failure(rc, false, op.file->path());
        slot.resync = true;
      }
    }
  }

  io_uring ring_{};
  bool ring_ok_ = false;
  int efd_;
  std::deque<Slot> slots_;
  std::uint64_t serial_ = 0;
};

}  // namespace

std::size_t ring_chunk_ops() { return std::clamp<std::size_t>(open_files_budget() / 8, 4, 64); }

InjectedFault injected_fault() {
  const char* const path = std::getenv("RUNNEL_TEST_IO_FAULT");
  if (path == nullptr || ::access(path, F_OK) != 0) return {};
  std::string text;
  if (read_file(path, text)) return {EIO, false, false};
  return {text.find("ENOSPC") != std::string::npos ? ENOSPC : EIO, text.find("fsync") != std::string::npos,
          text.find("files") != std::string::npos};
}

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
