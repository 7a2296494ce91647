// IoQueue: runs a shard's log writes and fsyncs off its thread, a batch at a time (two may overlap).
//
// Two backends do the same work: io_uring (the writes, then once they are all done the
// fdatasyncs, each phase submitted at once so the kernel runs them together; a batch of at
// most 256 KiB is written with pwrite at submission, and only its fdatasyncs go to the
// ring), and a helper thread with pwrite/fdatasync, one after another, for where io_uring is refused (some container sandboxes) or
// forced with RUNNEL_IO=threads. Both signal completion on an eventfd, which the shard's
// event loop watches; reap() then hands the finished batch back on the shard's thread.
//
// Lifecycle: one queue per shard; submit() only when no batch is in flight, or, with
// io_uring, when can_overlap() says a second may go (the first is written and only waits
// for its fdatasyncs). Batches come back from reap() in the order they were submitted; the
// destructor waits for those in flight. Test hook: when RUNNEL_TEST_IO_FAULT names a file, and that
// file exists, each write fails with the error its text names (ENOSPC, else EIO) instead of
// reaching the disk; if the text says "fsync", the writes are made and the fdatasyncs fail.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <runnel/storage/segment_log.hpp>

namespace runnel::storage {

struct IoBatch {
  std::vector<WriteOp> writes;             // in order
  std::vector<std::shared_ptr<File>> syncs;  // fdatasync'd after every write succeeded
  // Whether a small batch's writes may be made at submission, on the caller's thread (a
  // copy into the page cache that saves the ring a hop, worth it when replies wait for the
  // batch, as the broker's always do). False sends everything to the ring or the helper.
  bool inline_ok = true;
  // Whether the fdatasyncs, too, may run at submission (with inline_ok, on a small batch).
  // Worth it when a single reply waits: the ring's worker costs it a hand-off each way.
  bool sync_inline = false;
};

struct IoResult {
  int error = 0;      // the first failure's errno, 0 if all went well
  bool in_sync = false;  // the failure was an fsync's (the page cache state is unknown then)
  std::string what;   // which file and operation failed
};

// The test hook: when RUNNEL_TEST_IO_FAULT names a file that exists, the error its text names
// (ENOSPC, else EIO), for fdatasyncs if the text says "fsync", else for writes; if it says
// "files", only for the streams' files written in the background (under --fsync always),
// never for the write-ahead log. Costs a getenv and an access() per batch while the
// variable is set, nothing otherwise.
struct InjectedFault {
  int error = 0;
  bool in_sync = false;
  bool files_only = false;
};
[[nodiscard]] InjectedFault injected_fault();

// Ops queued to io_uring at once: each holds a stream file's descriptor open (file.hpp), so
// a batch that touches thousands of streams never holds thousands of descriptors. An eighth
// of the open files budget, 4 to 64.
[[nodiscard]] std::size_t ring_chunk_ops();

class IoQueue {
 public:
  virtual ~IoQueue() = default;
  // io_uring when `prefer_uring` and the kernel allows it, else the helper thread; `note`
  // says which, and why.
  static std::unique_ptr<IoQueue> create(bool prefer_uring, std::string& note);

  [[nodiscard]] virtual const char* backend() const = 0;
  [[nodiscard]] virtual int event_fd() const = 0;
  virtual void submit(IoBatch batch) = 0;
  // Whether submit() may take a second batch now, while one is in flight: its writes are all
  // made and its fdatasyncs are running. The second batch's own fdatasyncs then run beside
  // them, and it is reaped after the first (sharing the first's failure, if any).
  [[nodiscard]] virtual bool can_overlap() const { return false; }
  // Whether the oldest batch in flight is done already (written, and synced, at submission):
  // reap() would hand it back now, without waiting for the eventfd.
  [[nodiscard]] virtual bool front_done() = 0;
  // Called when event_fd() is readable: the oldest batch in flight and its result once it
  // is done (each call reaps at most one; the event stays readable while another is done).
  virtual std::optional<std::pair<IoBatch, IoResult>> reap() = 0;
};

}  // namespace runnel::storage
