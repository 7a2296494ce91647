// LogEntryStore: a stream's entries as a table of nodes in memory, backed by a SegmentLog on
// disk. Only the newest nodes keep their records in memory (the tail cache); older nodes are
// read back from the segment files when a scan reaches them. Without a log (the default
// constructor) every node stays in memory: the store of tests and of embedded use without
// persistence.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <runnel/storage/entry_store.hpp>
#include <runnel/storage/node_limits.hpp>
#include <runnel/storage/segment_log.hpp>

namespace runnel::storage {

class LogEntryStore;

// The records of closed nodes that the stores of one shard keep in memory, under one byte
// budget (--cache-bytes split between the shards). When the budget is passed, the nodes
// closed longest ago are evicted, once they are written to their segment. The open node of
// every stream always stays. Used on its shard's thread only.
class TailCache {
 public:
  explicit TailCache(std::uint64_t budget) : budget_(budget) {}
  TailCache(const TailCache&) = delete;
  TailCache& operator=(const TailCache&) = delete;

  [[nodiscard]] std::uint64_t budget() const { return budget_; }
  [[nodiscard]] std::uint64_t used() const { return used_; }
  // Closed nodes it keeps track of (resident ones, and some gone since).
  [[nodiscard]] std::size_t tracked() const { return closed_.size(); }
  void charge(std::int64_t bytes) { used_ = static_cast<std::uint64_t>(static_cast<std::int64_t>(used_) + bytes); }

  std::uint64_t enroll(LogEntryStore* store);
  void withdraw(std::uint64_t store_id);
  // A node closed: it may be evicted from now on.
  void closed(std::uint64_t store_id, StreamId master);
  // Evicts the oldest closed nodes until the budget holds, or the oldest is not written yet.
  void evict();

 private:
  struct Closed {
    std::uint64_t store;
    StreamId master;
  };
  std::uint64_t budget_;
  std::uint64_t used_ = 0;
  std::uint64_t next_id_ = 1;
  // Drops the entries of closed_ whose node is gone or no longer resident.
  void compact();

  std::unordered_map<std::uint64_t, LogEntryStore*> stores_;
  std::deque<Closed> closed_;
  // Under budget nothing is evicted, so entries for nodes trimmed or deleted since would pile
  // up: closed_ is compacted whenever it doubles (amortized O(1) per node).
  std::size_t compact_at_ = 4096;
};

// Entries are grouped in nodes exactly where Redis groups them in listpacks, so approximate
// trimming ('~') removes the same whole nodes Redis would. A node takes new entries until it
// holds 100 (live or deleted), or until its listpack would reach 4096 bytes; each node tracks
// the byte size Redis's listpack would have (listpack_bytes) to decide the second rule.
// A node also closes when its segment rolls, so a node lies in one segment.
// A node whose entries are all deleted is dropped.
//
// A resident node keeps its entries as records in one byte array:
//
//   data:    | record 0 | record 1 | ... | record n-1 |
//   offsets: [ 0,         o1,        ...,  on-1 ]        (uint32 each)
//
//   record:  +-------+----------------------+----------------+------------------------+
//            | flags | ms - master.ms       | seq            | payload (entry_store.hpp) |
//            | 1 B   | LEB128 varint        | LEB128 varint  | count, len, bytes, ...    |
//            +-------+----------------------+----------------+------------------------+
//   flags:   bit 0 = deleted (the payload stays until the node goes, as in Redis)
//
// An evicted node keeps only its place in the log (segment, first and last batch offset)
// and the IDs of its deleted entries; a scan reads its batches back and skips those.
//
// The node table of a sealed segment is the blob of its index (segment_log.hpp):
//
//   | node count u32 | node: master ms u64, master seq u64, last ms u64, last seq u64,
//   |                        entries u32, listpack bytes u32, first batch u64, last batch u64 |
//
// Owned by one stream, on its shard; not thread-safe.
class LogEntryStore final : public EntryStore, private RecoverySink {
 public:
  // In memory only.
  LogEntryStore() = default;
  // Backed by `log`, which the caller has just created (new stream) or will open(). Nodes
  // close where `limits` say (null: Redis's defaults); they must outlive the store.
  LogEntryStore(std::unique_ptr<SegmentLog> log, TailCache* cache, const NodeLimits* limits = nullptr);
  ~LogEntryStore() override;

  // Opens the log and rebuilds the node table, applying tombstones and the trim floor.
  // `notes` gets a line per repair.
  [[nodiscard]] Error open(std::vector<std::string>& notes);

  void append(StreamId id, std::span<const std::string_view> fields) override;
  [[nodiscard]] std::uint64_t size() const override { return size_; }
  [[nodiscard]] std::optional<StreamId> first_id() const override;
  [[nodiscard]] std::optional<StreamId> last_id() const override;
  Error scan(StreamId start, StreamId end, bool reverse, const EntryVisitor& visit) const override;
  bool erase(StreamId id) override;
  std::uint64_t trim(const TrimSpec& spec) override;
  [[nodiscard]] std::uint64_t node_count() const override { return nodes_.size(); }
  void record_meta(StreamId last_id, std::uint64_t entries_added, StreamId max_deleted_id) override;

  // Retention, as Kafka's: drops the oldest whole segments while the stream's segments pass
  // `max_bytes`, or while a segment's entries are all older than `max_age_ms` before `now_ms`
  // (0: no bound). The last segment always stays. Returns the entries removed.
  std::uint64_t retain(std::uint64_t max_bytes, std::uint64_t max_age_ms, std::uint64_t now_ms);

  [[nodiscard]] SegmentLog* log() { return log_.get(); }
  [[nodiscard]] const SegmentLog* log() const { return log_.get(); }
  // The stream moves to another shard (a RENAME across shards): its resident nodes are
  // counted in that shard's cache from now on. Call with both shards' threads held.
  void move_to_cache(TailCache* cache);
  // For TailCache: evicts the node that starts at `master`.
  enum class Evicted { kFreed, kGone, kNotWritten };
  Evicted evict(StreamId master, std::size_t& freed);
  // Whether the node that starts at `master` is here and keeps its records in memory.
  [[nodiscard]] bool holds_resident(StreamId master) const;

 private:
  struct Record {
    StreamId id;
    bool deleted;
    std::string_view payload;
  };
  struct Resident {
    std::string data;
    std::vector<std::uint32_t> offsets;
  };
  struct Node {
    StreamId master;  // first entry's ID
    StreamId last;    // last entry's ID
    std::uint32_t entries = 0;
    std::uint32_t live = 0;
    std::uint32_t listpack_bytes = 0;
    std::uint32_t segment = 0;
    std::uint64_t first_batch = 0;
    std::uint64_t last_batch = 0;
    std::unique_ptr<Resident> resident;       // null when evicted
    std::unique_ptr<std::vector<StreamId>> deleted;  // evicted: its deleted entries, if any
  };
  // A node's records, resident or read back from the log.
  class NodeRecords;

  [[nodiscard]] static Record record(const Node& node, std::size_t i);
  static std::size_t resident_bytes(const Node& node);
  // The node takes no more entries, whatever their size (the rule of node_for_append).
  [[nodiscard]] bool full(const Node& node) const {
    return node.listpack_bytes >= limits_->bytes() || node.entries >= limits_->entries();
  }
  Node& node_for_append(StreamId id, std::span<const std::string_view> fields);
  // Adds an entry to the listpack size Redis would have for `node` (and makes it the master
  // of an empty node). `master_payload` is the node's first entry's payload.
  static void count_listpack(Node& node, StreamId id, std::span<const std::string_view> fields,
                             std::string_view master_payload);
  void close_node(Node& node);
  // Loads an evicted node's records into memory (the open node after a restart).
  bool make_resident(Node& node);
  void mark_deleted(Node& node, std::size_t i, StreamId id);
  void drop_node(std::deque<Node>::iterator node);
  // The node that starts at `master`, if it is here and resident.
  [[nodiscard]] Node* resident_node(StreamId master) const;
  void drop_empty_segments();
  std::string index_blob_for(std::uint32_t segment) const;

  // RecoverySink
  bool on_index(std::uint32_t segment, std::string_view blob) override;
  void on_entry(LogPosition pos, StreamId id, std::string_view payload) override;
  void on_segment_end(std::uint32_t segment) override;
  std::string index_blob(std::uint32_t segment) override { return index_blob_for(segment); }

  std::unique_ptr<SegmentLog> log_;
  TailCache* cache_ = nullptr;
  const NodeLimits* limits_ = &NodeLimits::defaults();
  std::uint64_t cache_id_ = 0;
  std::uint64_t size_ = 0;
  StreamId floor_;  // the trim floor (StreamMeta::trim_floor)
  std::deque<Node> nodes_;  // ascending; never holds a node without live entries
  std::string scratch_;  // recovery: the open node's master payload
};

}  // namespace runnel::storage
