// The process's memory: heap in use, resident set, and giving freed heap back to the system.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace runnel {

// Bytes the allocator has handed out (INFO's used_memory).
std::uint64_t heap_bytes();
// Resident set size (INFO's used_memory_rss).
std::uint64_t rss_bytes();

// glibc keeps freed pages: after a burst (a flood of big pipelines, a FLUSHALL) the resident
// set stays at its peak. Once a second this thread compares it with the heap in use and,
// when at least `slack` bytes (and a quarter of the heap) sit free, gives them back with
// malloc_trim. It runs off the shards' threads, so a long trim delays no command beyond the
// allocator's own locks.
class MemoryTrimmer {
 public:
  explicit MemoryTrimmer(std::uint64_t slack);
  ~MemoryTrimmer();
  MemoryTrimmer(const MemoryTrimmer&) = delete;
  MemoryTrimmer& operator=(const MemoryTrimmer&) = delete;

  [[nodiscard]] std::uint64_t trims() const;

 private:
  void run();

  std::uint64_t slack_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::uint64_t trims_ = 0;
  std::thread thread_;
};

}  // namespace runnel
