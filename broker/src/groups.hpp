// Consumer groups: each group's consumers and its pending-entry list (PEL), with Redis 7.0's
// bookkeeping of entries-read and lag. Lives in its Stream, on the stream's shard only.
//
//   Stream ── groups (by name) ──> ConsumerGroup
//                                   ├─ last_delivered, entries_read
//                                   ├─ pel:       id -> PendingEntry { owner, delivery time, count }
//                                   └─ consumers (by name) -> Consumer { seen time, ids it owns }
//
// Every PendingEntry is in the group's pel and in exactly its owner's `pending` set.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include <runnel/protocol/reply_writer.hpp>
#include <runnel/storage/group_journal.hpp>
#include <runnel/storage/stream_id.hpp>

namespace runnel {

using storage::StreamId;
class Stream;

// Redis's SCG_INVALID_ENTRIES_READ: the group's read counter is unknown.
inline constexpr std::int64_t kEntriesReadUnknown = -1;

struct Consumer;

struct PendingEntry {
  Consumer* owner;
  std::int64_t delivery_time_ms;
  std::uint64_t delivery_count;
};

struct Consumer {
  std::string name;
  std::int64_t seen_time_ms = 0;
  std::set<StreamId> pending;
};

// What changed in a stream's groups since its last flush, by name (a group or consumer may
// be gone by then): the group journal records the new state of each (persistence.cpp).
struct GroupChanges {
  struct Group {
    bool header = false;  // last_delivered / entries_read, or the group's creation
    std::set<std::string, std::less<>> consumers;
    std::set<StreamId> pending;
  };
  std::set<std::string, std::less<>> destroyed;
  std::map<std::string, Group, std::less<>> groups;

  [[nodiscard]] bool empty() const { return destroyed.empty() && groups.empty(); }
  Group& of(std::string_view name) {
    auto it = groups.find(name);
    return it != groups.end() ? it->second : groups.emplace(std::string(name), Group{}).first->second;
  }
};

struct ConsumerGroup {
  StreamId last_delivered;
  std::int64_t entries_read = kEntriesReadUnknown;
  std::map<StreamId, PendingEntry> pel;
  std::map<std::string, Consumer, std::less<>> consumers;

  // Where this group notes its changes when the stream is persisted (else null), and its
  // name (the key of its entry in Stream::groups).
  GroupChanges* changes = nullptr;
  const std::string* name = nullptr;
  // Notes that last_delivered or entries_read changed.
  void touch() {
    if (changes) changes->of(*name).header = true;
  }
  void touch_consumer(std::string_view consumer) {
    if (!changes) return;
    auto& consumers = changes->of(*name).consumers;
    if (consumers.find(consumer) == consumers.end()) consumers.emplace(consumer);
  }
  void touch_pending(StreamId id) {
    if (changes) changes->of(*name).pending.insert(id);
  }

  // Finds a consumer, creating it (seen now) when `create` is set; refreshes its seen time.
  Consumer* consumer(std::string_view name, bool create, std::int64_t now_ms, bool* created = nullptr);
  // Removes a consumer and its pending entries; returns how many it had.
  std::uint64_t delete_consumer(std::string_view name);
  // Records that `id` was delivered to `to` now: a new pending entry, or (if the entry was
  // pending already, e.g. after SETID moved the group back) one moved to `to` and reset.
  void add_pending(StreamId id, Consumer& to, std::int64_t now_ms);
  // Acknowledges `id`; false if it was not pending.
  bool ack(StreamId id);
};

// Redis 7.0's counters (t_stream.c), used by delivery, XINFO and XGROUP.
// The logical number of the entry `id` ("how many entries were added up to it"), or
// kEntriesReadUnknown when fragmentation makes it unknowable.
std::int64_t estimate_entries_read(const Stream& s, StreamId id);
// Whether an XDEL tombstone lies in [start, end].
bool range_has_tombstones(const Stream& s, StreamId start, StreamId end);
// Moves the group's last-delivered ID up to `id` (delivering it), keeping entries_read.
void advance_group(const Stream& s, ConsumerGroup& g, StreamId id);
// The group's lag, or nullopt when it cannot be computed.
std::optional<std::int64_t> group_lag(const Stream& s, const ConsumerGroup& g);

// Writes the "entries-read" and "lag" fields (names and values; null when unknown), as XINFO
// GROUPS and XINFO STREAM FULL show them.
void write_entries_read_and_lag(protocol::ReplyWriter& reply, const Stream& s,
                                const ConsumerGroup& g);

// The group journal's side of groups (group_journal.hpp has the records):
// Appends the new state of what `stream.group_changes` lists to `journal`, and clears it.
void journal_group_changes(Stream& stream, storage::GroupJournal& journal);
// Every record of the whole group state (a snapshot).
void emit_group_state(const Stream& stream, const storage::GroupRecordVisitor& emit);
// Applies one record read back from a snapshot or journal.
void apply_group_record(Stream& stream, const storage::GroupRecord& record);

// XREADGROUP's deliveries (cmd_groups.cpp), each writing an array of entries:
// New entries after the group's last-delivered ID, at most `count` (0: all), added to the
// consumer's pending entries unless `noack`.
// A read that fails delivers nothing and changes nothing: the error is returned.
[[nodiscard]] storage::Error deliver_new(protocol::ReplyWriter& reply, Stream& stream, ConsumerGroup& group,
                                         Consumer& consumer, std::size_t count, bool noack);
// The consumer's pending entries above `after`, delivered again (deleted ones as [id, nil]).
[[nodiscard]] storage::Error deliver_history(protocol::ReplyWriter& reply, Stream& stream, ConsumerGroup& group,
                                             Consumer& consumer, StreamId after, std::size_t count);

}  // namespace runnel
