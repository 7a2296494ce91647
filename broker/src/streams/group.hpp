// Consumer groups: each group's consumers and its pending-entry list (PEL). Lives in its
// Stream (stream.hpp), on the stream's shard only. This is the bookkeeping; what needs the
// stream's entries as well (delivery, claims, lag) is Stream's.
//
//   Stream ── groups (by name) ──> ConsumerGroup
//                                   ├─ last_delivered, entries_read
//                                   ├─ pel:       id -> PendingEntry { owner, delivery time, count }
//                                   └─ consumers (by name) -> Consumer { seen time, ids it owns }
//
// Every PendingEntry is in the group's pel and in exactly its owner's `pending` set (an entry
// XCLAIM FORCE took has an owner only once claimed). Every change is reported to the
// stream's ChangeSink, when it has one.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <runnel/storage/stream_id.hpp>

#include "streams/change_sink.hpp"
#include "streams/pel_refs.hpp"

namespace runnel {

using storage::StreamId;

// One more delivery, stopping at the largest integer RESP can say (a FATAL XNACK's count).
inline std::uint64_t one_more_delivery(std::uint64_t count) {
  constexpr auto kMost = static_cast<std::uint64_t>(INT64_MAX);
  return count >= kMost ? kMost : count + 1;
}

// Redis's SCG_INVALID_ENTRIES_READ: the group's read counter is unknown.
inline constexpr std::int64_t kEntriesReadUnknown = -1;

struct Consumer;

struct PendingEntry {
  Consumer* owner = nullptr;        // null: unowned (NACKed, Redis 8.8)
  std::int64_t delivery_time_ms = 0;  // 0 while NACKed, as in Redis
  std::uint64_t delivery_count = 0;
  std::int64_t nack_order = -1;     // NACKed: its place in the NACKed zone; else -1
};

// The PEL in claim order (XREADGROUP CLAIM): the NACKed zone first, in the order the entries
// were NACKed, then the others oldest delivery first (ties by ID).
struct PendingOrder {
  bool delivered = false;  // false: NACKed
  std::int64_t at = 0;     // nack_order, or delivery time
  StreamId id;
  auto operator<=>(const PendingOrder&) const = default;
};

// Redis 7.2's two times: `seen` is the last attempt to read or claim (XREADGROUP,
// XCLAIM, XAUTOCLAIM, even when nothing came of it), `active` the last that delivered or
// claimed something (-1: never).
struct Consumer {
  std::string name;
  std::int64_t seen_time_ms = 0;
  std::int64_t active_time_ms = -1;
  std::set<StreamId> pending;
};

// XPENDING's summary form.
struct PendingSummary {
  std::uint64_t count = 0;
  StreamId smallest, largest;  // when count > 0
  std::vector<std::pair<std::string, std::uint64_t>> consumers;  // with entries pending, by name
};

// One line of XPENDING's extended form.
struct PendingItem {
  StreamId id;
  std::string owner;
  std::int64_t idle_ms = 0;
  std::uint64_t delivery_count = 0;
};

// XPENDING's extended form: [start, end], at most `count`, only `consumer`'s when given,
// only entries idle at least `min_idle_ms` when not 0.
struct PendingQuery {
  StreamId start = StreamId::min();
  StreamId end = StreamId::max();
  std::size_t count = 0;
  std::optional<std::string_view> consumer;
  std::int64_t min_idle_ms = 0;
};

class ConsumerGroup {
 public:
  using Pel = std::map<StreamId, PendingEntry>;
  using ClaimOrder = std::set<PendingOrder>;
  using Consumers = std::map<std::string, Consumer, std::less<>>;

  ConsumerGroup() = default;
  ConsumerGroup(const ConsumerGroup&) = delete;  // consumers are pointed to by the PEL
  ConsumerGroup& operator=(const ConsumerGroup&) = delete;

  [[nodiscard]] StreamId last_delivered() const { return last_delivered_; }
  [[nodiscard]] std::int64_t entries_read() const { return entries_read_; }
  [[nodiscard]] const Pel& pel() const { return pel_; }
  // Kept from the first call on (a group never read with CLAIM pays nothing for it).
  [[nodiscard]] const ClaimOrder& claim_order() const;
  // Entries in the NACKed zone (XINFO STREAM FULL's nacked-count).
  [[nodiscard]] std::size_t nacked() const { return nacked_; }
  [[nodiscard]] const Consumers& consumers() const { return consumers_; }
  [[nodiscard]] const Consumer* find_consumer(std::string_view name) const;

  // Sets the last-delivered ID and the read counter (XGROUP CREATE and SETID, delivery).
  void set_position(StreamId last_delivered, std::int64_t entries_read);

  // The consumer `name`, created when missing; its seen time becomes now. A consumer created
  // is a change like any other; a seen time alone is reported as ChangeSink::consumer_seen
  // (written with the next flush, not waited for).
  Consumer& consumer(std::string_view name, std::int64_t now_ms, bool* created = nullptr);
  // The consumer got entries, or claimed some: its active time becomes now.
  void active(Consumer& consumer, std::int64_t now_ms);
  // A consumer as loaded from disk.
  void restore_consumer(std::string_view name, std::int64_t seen_time_ms, std::int64_t active_time_ms);
  // Removes a consumer and its pending entries; returns how many it had.
  std::uint64_t delete_consumer(std::string_view name);

  // `id` was delivered to `to` now: a new pending entry, or (if it was pending already,
  // e.g. after SETID moved the group back) one moved to `to` and reset.
  void add_pending(StreamId id, Consumer& to, std::int64_t now_ms);
  // `id` was delivered again to its owner (XREADGROUP's history): now, one more delivery.
  void redelivered(StreamId id, std::int64_t now_ms);
  // Gives the pending entry `id` to `to` (XCLAIM, XAUTOCLAIM), delivered at `time_ms`, with
  // `delivery_count` deliveries when given.
  void claim(StreamId id, Consumer& to, std::int64_t time_ms, std::optional<std::uint64_t> delivery_count);
  // XCLAIM FORCE: a pending entry with no owner yet (claim gives it one).
  void add_unowned(StreamId id, std::int64_t now_ms);
  // XNACK (Redis 8.8): the pending entry `id` loses its owner and goes to the end of the
  // NACKed zone with `delivery_count` deliveries; false if it was not pending.
  bool nack(StreamId id, std::uint64_t delivery_count);
  // XNACK FORCE, or the journal's replay: `id` pending and NACKed, at `order` in the zone
  // (-1: at its end).
  void add_nacked(StreamId id, std::uint64_t delivery_count, std::int64_t order = -1);
  // Restores a pending entry's delivery count (the group journal's replay).
  void set_delivery_count(StreamId id, std::uint64_t count);
  // Acknowledges `id`; false if it was not pending.
  bool ack(StreamId id);
  // Removes `id` from the PEL (its entry is gone from the stream).
  void drop(StreamId id) { (void)ack(id); }

  [[nodiscard]] PendingSummary pending_summary() const;
  [[nodiscard]] std::vector<PendingItem> pending(const PendingQuery& query, std::int64_t now_ms) const;

  // Where changes are reported: the stream's sink (null: none), the stream, this group's
  // name (its key in the stream's map), and the stream's count of pending IDs over all its
  // groups. Set by the stream.
  void bind(ChangeSink* sink, Stream* stream, const std::string* name, PelRefs* refs) {
    sink_ = sink;
    stream_ = stream;
    name_ = name;
    refs_ = refs;
  }

 private:
  void changed_header() {
    if (sink_) sink_->group_changed(*stream_, *name_);
  }
  void changed_consumer(std::string_view consumer) {
    if (sink_) sink_->consumer_changed(*stream_, *name_, consumer);
  }
  void seen_consumer(std::string_view consumer) {
    if (sink_) sink_->consumer_seen(*stream_, *name_, consumer);
  }
  void changed_pending(StreamId id) {
    if (sink_) sink_->pending_changed(*stream_, *name_, id);
  }

  static PendingOrder order_of(StreamId id, const PendingEntry& p) {
    return p.nack_order >= 0 ? PendingOrder{false, p.nack_order, id} : PendingOrder{true, p.delivery_time_ms, id};
  }
  // Every change of a pending entry's place goes through these two.
  void unorder(StreamId id, const PendingEntry& p) {
    if (ordered_) order_.erase(order_of(id, p));
    if (p.nack_order >= 0) --nacked_;
  }
  void reorder(StreamId id, const PendingEntry& p) {
    if (ordered_) order_.insert(order_of(id, p));
    if (p.nack_order >= 0) ++nacked_;
  }

  StreamId last_delivered_;
  std::int64_t entries_read_ = kEntriesReadUnknown;
  Pel pel_;
  mutable ClaimOrder order_;   // once ordered_
  mutable bool ordered_ = false;
  std::size_t nacked_ = 0;
  std::int64_t next_nack_ = 0;
  Consumers consumers_;
  void referenced(StreamId id) {
    if (refs_) refs_->add(id);
  }
  void unreferenced(StreamId id) {
    if (refs_) refs_->remove(id);
  }

  ChangeSink* sink_ = nullptr;
  Stream* stream_ = nullptr;
  const std::string* name_ = nullptr;
  PelRefs* refs_ = nullptr;
};

}  // namespace runnel
