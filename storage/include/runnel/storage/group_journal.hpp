// GroupJournal: the durable form of a stream's consumer groups, as a snapshot plus a journal
// of changes since it, in the stream's folder.
//
//   groups.snapshot   the whole group state when it was last folded (written atomically)
//   groups.journal    records since then, appended with the stream's log in each flush
//
// Both files: a 32-byte header, then batches framed as in segment_log.hpp.
//
//   header: | magic (8): "RUNNELGS" snapshot, "RUNNELGJ" journal | version u32 (1)
//           | reserved u32 | generation u64 | XXH3-64 of the 24 bytes before it (8) |
//
//   record: | type u8 | group: length varint, bytes | fields by type:
//     1 group set:     last-delivered ms, seq varints | entries-read + 1 varint (0: unknown)
//     2 group delete:  -
//     3 consumer set:  consumer (length, bytes) | seen time ms varint
//     4 consumer del:  consumer (length, bytes)
//     5 pending set:   entry ms, seq varints | owner (length, bytes) | delivery time ms varint
//                      | delivery count varint
//     6 pending del:   entry ms, seq varints
//     ... (GroupRecord::Type lists them all; 12 to 14 are a shard's keys journal's)
//    12 key string:    value (length, bytes) | expires-at ms varint (0: never)
//    13 key ttl:       expires-at ms varint (0: none)
//    14 key forget:    -
//
// Records carry whole states, not deltas, so replaying one twice changes nothing. Folding
// writes the snapshot with generation G, then replaces the journal with an empty one of
// generation G; a journal older than the snapshot (a crash between the two steps) is
// ignored. Recovery replays the snapshot, then the journal; the journal's torn tail is cut
// as a segment's is, and damage before it fails open().
//
// Lifecycle: open() (or nothing, for a new stream: the journal file is made on the first
// append); then appends, take_writes() per flush, and fold() when should_fold(). Used on the
// stream's shard only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <runnel/storage/error.hpp>
#include <runnel/storage/file.hpp>
#include <runnel/storage/segment_log.hpp>
#include <runnel/storage/stream_id.hpp>

namespace runnel::storage {

struct GroupRecord {
  enum class Type : std::uint8_t {
    kGroupSet = 1,
    kGroupDelete = 2,
    kConsumerSet = 3,
    kConsumerDelete = 4,
    kPendingSet = 5,
    kPendingDelete = 6,
    kConsumerTimes = 7,  // a consumer with its seen and active times (Redis 7.2); 3 had seen only
    kPendingNacked = 8,  // an unowned pending entry in the NACKed zone (Redis 8.8), at `time_ms`'s place
    // Idempotent producers (Redis 8.6), with an empty `group`:
    kIdmpConfig = 9,    // time_ms: IDMP-DURATION (s); count: IDMP-MAXSIZE
    kIdmpRecord = 10,   // group: the producer ID; consumer: the idempotent ID; id: the entry it added
    kIdmpCounters = 11, // count: IDs added; time_ms: duplicates
    // A shard's keys journal (keys/<shard>/, persistence.hpp), with the key in `group`:
    kKeyString = 12,  // consumer: the string's value; time_ms: when it expires (0: never)
    kKeyTtl = 13,     // a stream's TTL: time_ms (0: none)
    kKeyForget = 14,  // the key's string or TTL is gone
  };
  Type type = Type::kGroupSet;
  std::string_view group;
  std::string_view consumer;      // consumer records; the owner of a pending set
  StreamId id;                    // group set: last delivered; pending: the entry
  std::int64_t entries_read = -1; // group set (-1: unknown)
  std::int64_t time_ms = 0;       // consumer set: seen; pending set: delivery
  std::int64_t active_time_ms = -1;  // consumer times: active (-1: never)
  std::uint64_t count = 0;        // pending set: delivery count
};

using GroupRecordVisitor = std::function<void(const GroupRecord&)>;

class GroupJournal {
 public:
  static constexpr std::uint64_t kMinFoldBytes = 1024 * 1024;

  // `sync_metadata` false (--fsync no): snapshots and new journals are not fdatasync'ed.
  explicit GroupJournal(std::string dir, bool sync_metadata = true);

  // Replays the snapshot and the journal into `apply`.
  [[nodiscard]] Error open(const GroupRecordVisitor& apply, std::vector<std::string>& notes);

  void append(const GroupRecord& record);
  [[nodiscard]] bool dirty() const { return !batch_.empty() || !out_.empty(); }
  // Seals the appended records and moves them to `ops`. Fails when the journal file could
  // not be made.
  [[nodiscard]] Error take_writes(std::vector<WriteOp>& ops);

  // The journal has grown past twice the snapshot (and past kMinFoldBytes).
  [[nodiscard]] bool should_fold() const;
  // Writes the state that `emit` gives (every record of it) as the new snapshot and starts
  // an empty journal; appends not yet written are dropped, as the state includes them.
  // Synchronous.
  [[nodiscard]] Error fold(const std::function<void(const GroupRecordVisitor&)>& emit);

  [[nodiscard]] std::uint64_t bytes() const { return journal_end_ + snapshot_bytes_; }
  // The journal's file (null before the first write).
  [[nodiscard]] const std::shared_ptr<File>& file() const { return journal_; }

 private:
  [[nodiscard]] Error create_journal(std::uint64_t generation);
  [[nodiscard]] Error replay(const std::string& path, std::string_view magic, bool tail,
                             const GroupRecordVisitor& apply, std::uint64_t& generation,
                             std::vector<std::string>& notes);

  std::string dir_;
  bool sync_metadata_ = true;
  std::shared_ptr<File> journal_;
  std::uint64_t generation_ = 0;
  std::uint64_t journal_end_ = 0;  // bytes sealed into the journal file
  std::uint64_t snapshot_bytes_ = 0;
  std::string batch_;
  std::uint32_t batch_records_ = 0;
  std::string out_;
  std::uint64_t out_offset_ = 0;
};

// Encodes one record (the format drawn above) onto `out`; parse_group_records reads a batch
// body back, false if a record is malformed.
void encode_group_record(const GroupRecord& record, std::string& out);
bool parse_group_records(std::string_view body, const GroupRecordVisitor& visit);

}  // namespace runnel::storage
