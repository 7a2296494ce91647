// Idempotent producers (Redis 8.6): per stream, per producer ID, the idempotent IDs of its
// recent XADDs and the entry each one added, so that a retried XADD adds nothing and answers
// the first one's ID. A window of IDMP-DURATION seconds (by the entry IDs' time, as Redis
// does) and at most IDMP-MAXSIZE IDs per producer (oldest out first). Made for a stream by
// its first XADD IDMP/IDMPAUTO or XCFGSET; a stream that never uses it has none.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <runnel/storage/stream_id.hpp>

namespace runnel {

class Idempotency {
 public:
  // Redis 8.6's defaults and ranges (stream-idmp-duration, stream-idmp-maxsize).
  static constexpr std::int64_t kDefaultDuration = 100;
  static constexpr std::int64_t kDefaultMaxSize = 100;
  static constexpr std::int64_t kMaxDuration = 86400;
  static constexpr std::int64_t kMaxMaxSize = 10000;

  [[nodiscard]] std::int64_t duration_s() const { return duration_s_; }
  [[nodiscard]] std::int64_t max_size() const { return max_size_; }
  [[nodiscard]] std::uint64_t added() const { return added_; }
  [[nodiscard]] std::uint64_t duplicates() const { return duplicates_; }
  [[nodiscard]] std::size_t producers() const { return producers_.size(); }
  [[nodiscard]] std::size_t ids() const;



  // The entry `iid` of producer `pid` added, if it is still in the window (as of `now_ms`).
  [[nodiscard]] std::optional<storage::StreamId> find(std::string_view pid, std::string_view iid, std::int64_t now_ms);
  void count_duplicate() { ++duplicates_; }
  // `iid` of `pid` added entry `id`. With `now_ms` (a live XADD, not a replay), two other
  // producers are also looked at, in turn, and their IDs out of the window dropped: a
  // producer that never comes back does not stay for good (Redis sweeps once a second).
  void record(std::string_view pid, std::string_view iid, storage::StreamId id,
              std::optional<std::int64_t> now_ms = std::nullopt);
  // XCFGSET: sets what is given; if a value changed, every producer's IDs are forgotten.
  // Returns whether anything changed.
  bool configure(std::optional<std::int64_t> duration_s, std::optional<std::int64_t> max_size);
  // The counters as loaded from disk.
  void restore_counters(std::uint64_t added, std::uint64_t duplicates) {
    added_ = added;
    duplicates_ = duplicates;
  }
  // Every recorded ID, oldest first per producer.
  void for_each(const std::function<void(std::string_view pid, std::string_view iid, storage::StreamId id)>& visit) const;

  // IDMPAUTO's idempotent ID: a 128-bit hash of the field/value pairs that does not depend on
  // their order (each pair hashed with its field's length, the pairs' hashes summed and
  // xored), as 16 bytes.
  [[nodiscard]] static std::string auto_id(std::span<const std::string_view> fields);

 private:
  struct Hash {  // XXH3 of the bytes; a lookup by string_view makes no string
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const;
  };
  // One producer's IDs: a queue, oldest first (the window's order, and so what expiry and
  // IDMP-MAXSIZE drop), and an open-addressing index over it with linear probing. A lookup
  // reads one slot (hash and sequence number) and, on a match, the ID itself: on the XADD
  // path that is a few cache lines where a node-based map walked a chain of nodes. Dropping
  // the oldest ID leaves its slot in place, dead (its sequence number is below the queue's
  // first); new IDs reuse dead slots, and the index is rebuilt, sized to what is live, once
  // half its slots have been used.
  class Producer {
   public:
    struct Id {
      std::string iid;
      storage::StreamId id;
      std::uint64_t hash;
    };
    [[nodiscard]] const Id* find(std::string_view iid, std::uint64_t hash) const;
    void push(std::string iid, std::uint64_t hash, storage::StreamId id);
    void pop();  // the oldest
    [[nodiscard]] const std::deque<Id>& ids() const { return ids_; }

   private:
    struct Slot {
      std::uint64_t hash = 0;
      std::uint64_t seq = 0;  // the ID's sequence number + 1; 0: never used
    };
    [[nodiscard]] std::size_t home(std::uint64_t hash) const { return hash & (slots_.size() - 1); }
    [[nodiscard]] bool live(const Slot& slot) const { return slot.seq > first_seq_; }
    void place(std::uint64_t hash, std::uint64_t seq);
    void rebuild();

    std::deque<Id> ids_;
    std::uint64_t first_seq_ = 0;  // ids_.front()'s sequence number
    std::vector<Slot> slots_;      // a power of two
    std::size_t used_ = 0;         // slots ever used since the last rebuild, live or dead
  };
  void expire(Producer& producer, std::int64_t now_ms) const;
  void sweep(std::int64_t now_ms);

  std::int64_t duration_s_ = kDefaultDuration;
  std::int64_t max_size_ = kDefaultMaxSize;
  std::unordered_map<std::string, Producer, Hash, std::equal_to<>> producers_;
  std::uint64_t added_ = 0;
  std::uint64_t duplicates_ = 0;
  std::string swept_;  // the producer sweep() looked at last
};

}  // namespace runnel
