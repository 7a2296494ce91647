// Where a stream's nodes close: Redis's stream-node-max-entries and stream-node-max-bytes,
// which decide what a '~' trim removes (whole nodes) and how DUMP splits a stream. One per
// server, read by every stream's store as it appends; CONFIG SET changes them while running,
// and a store follows at its next entry, as Redis's streams do.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace runnel::storage {

class alignas(64) NodeLimits {  // its own cache line: read by every shard, written by CONFIG SET only
 public:
  static constexpr std::uint64_t kDefaultEntries = 100;
  static constexpr std::uint64_t kDefaultBytes = 4096;
  // Runnel's caps. A node is cached and read back from disk whole, so Redis's 0 ("no limit")
  // and anything larger mean these.
  static constexpr std::uint64_t kMaxEntries = 10000;
  static constexpr std::uint64_t kMaxBytes = 1 << 20;

  void set(std::uint64_t entries, std::uint64_t bytes) {
    entries_.store(static_cast<std::size_t>(entries == 0 ? kMaxEntries : std::min(entries, kMaxEntries)),
                   std::memory_order_relaxed);
    bytes_.store(static_cast<std::size_t>(bytes == 0 ? kMaxBytes : std::min(bytes, kMaxBytes)), std::memory_order_relaxed);
  }
  [[nodiscard]] std::size_t entries() const { return entries_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::size_t bytes() const { return bytes_.load(std::memory_order_relaxed); }

  // Redis's defaults, for stores and dumps that belong to no server.
  static const NodeLimits& defaults() {
    static const NodeLimits limits;
    return limits;
  }

 private:
  std::atomic<std::size_t> entries_{kDefaultEntries};
  std::atomic<std::size_t> bytes_{kDefaultBytes};
};

}  // namespace runnel::storage
