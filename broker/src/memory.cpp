#include "memory.hpp"

#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <fstream>

#include "log.hpp"

namespace runnel {

std::uint64_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

std::uint64_t heap_bytes() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

MemoryTrimmer::MemoryTrimmer(std::uint64_t slack) : slack_(slack), thread_([this] { run(); }) {}

MemoryTrimmer::~MemoryTrimmer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::uint64_t MemoryTrimmer::trims() const {
  std::lock_guard lock(mutex_);
  return trims_;
}

void MemoryTrimmer::run() {
  // What a trim could not give back (fragmentation, code, stacks): the next trim waits until
  // the free part has grown past it by `slack_` again, so a heap that cannot shrink is not
  // trimmed every second. The floor holds for kFloorSeconds only: what could not be given
  // back at one moment (pages still holding a few live chunks, say, right after a FLUSHALL)
  // often can be a little later, and a floor kept for good left 31 MB of freed heap resident
  // for good after the stress test's FLUSHALL.
  constexpr int kFloorSeconds = 10;
  std::uint64_t floor = 0;
  int floor_age = 0;
  std::unique_lock lock(mutex_);
  while (!cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_; })) {
    lock.unlock();
    const std::uint64_t heap = heap_bytes();
    const std::uint64_t rss = rss_bytes();
    const std::uint64_t idle = rss > heap ? rss - heap : 0;
    if (++floor_age > kFloorSeconds) floor = 0;
    bool trimmed = false;
    if (idle > floor + slack_ && idle > heap / 4) {
      malloc_trim(0);
      const std::uint64_t after = rss_bytes();
      floor = after > heap ? after - heap : 0;
      floor_age = 0;
      log::verbose("Gave " + std::to_string((rss > after ? rss - after : 0) >> 20) +
                   " MiB of freed heap back to the system");
      trimmed = true;
    } else if (idle < floor) {
      floor = idle;
    }
    lock.lock();
    if (trimmed) ++trims_;
  }
}

}  // namespace runnel
