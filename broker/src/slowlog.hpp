// SLOWLOG: the commands that took longer than slowlog-log-slower-than microseconds, newest
// first, at most slowlog-max-len of them, as Redis keeps them (slowlog.c). Shared by every
// shard thread: a command only takes the lock when it is slow, so the lock is off the hot
// path; the two settings are atomics a command reads.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace runnel {

struct SlowLogEntry {
  std::uint64_t id = 0;
  std::int64_t time = 0;         // Unix seconds, when it was logged
  std::int64_t duration_us = 0;
  std::vector<std::string> args;  // cut as Redis cuts them
  std::string client_addr;
  std::string client_name;
};

class SlowLog {
 public:
  // At most this many arguments are kept, the last saying how many more there were, and
  // each argument at most this many bytes, with how many more.
  static constexpr std::size_t kMaxArgs = 32;
  static constexpr std::size_t kMaxArgBytes = 128;

  void configure(std::int64_t slower_than_us, std::uint64_t max_len);
  // Whether a command that took `duration_us` goes in (cheap: no lock).
  [[nodiscard]] bool wants(std::int64_t duration_us) const {
    const std::int64_t threshold = slower_than_us_.load(std::memory_order_relaxed);
    return threshold >= 0 && duration_us >= threshold;
  }
  void add(std::int64_t duration_us, std::span<const std::string_view> args, std::string_view client_addr,
           std::string_view client_name);
  // The newest `count` entries (all with count < 0).
  [[nodiscard]] std::vector<SlowLogEntry> newest(std::int64_t count) const;
  [[nodiscard]] std::size_t size() const;
  void reset();

 private:
  std::atomic<std::int64_t> slower_than_us_{10000};
  std::atomic<std::uint64_t> max_len_{128};
  mutable std::mutex mutex_;
  std::deque<SlowLogEntry> entries_;  // newest first
  std::uint64_t next_id_ = 0;
};

}  // namespace runnel
