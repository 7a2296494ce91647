// MemoryEntryStore: an EntryStore that keeps every entry in memory, compactly, in ID order.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include <runnel/storage/entry_store.hpp>

namespace runnel::storage {

// Entries are grouped in nodes exactly where Redis groups them in listpacks, so approximate
// trimming ('~') removes the same whole nodes Redis would. A node takes new entries until it
// holds 100 (live or deleted), or until its listpack would reach 4096 bytes; each node tracks
// the byte size Redis's listpack would have (listpack_bytes) to decide the second rule.
// A node whose entries are all deleted is dropped.
//
// A node keeps its entries as records in one byte array:
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
// The master ID is the node's first entry's ID; IDs only grow, so ms - master.ms >= 0.
// Owned by one stream, on its shard; not thread-safe.
class MemoryEntryStore final : public EntryStore {
 public:
  static constexpr std::size_t kNodeMaxEntries = 100;  // Redis's stream-node-max-entries
  static constexpr std::size_t kNodeMaxBytes = 4096;   // Redis's stream-node-max-bytes

  void append(StreamId id, std::span<const std::string_view> fields) override;
  [[nodiscard]] std::uint64_t size() const override { return size_; }
  [[nodiscard]] std::optional<StreamId> first_id() const override;
  [[nodiscard]] std::optional<StreamId> last_id() const override;
  void scan(StreamId start, StreamId end, bool reverse, const EntryVisitor& visit) const override;
  bool erase(StreamId id) override;
  std::uint64_t trim(const TrimSpec& spec) override;
  [[nodiscard]] std::uint64_t node_count() const override { return nodes_.size(); }

 private:
  struct Record {
    StreamId id;
    bool deleted;
    std::string_view payload;
  };
  struct Node {
    StreamId master;
    std::string data;
    std::vector<std::uint32_t> offsets;
    std::uint32_t live = 0;
    std::uint32_t listpack_bytes = 0;

    [[nodiscard]] std::size_t entries() const { return offsets.size(); }
    [[nodiscard]] Record record(std::size_t i) const;
    void mark_deleted(std::size_t i) { data[offsets[i]] |= 1; }
    // Index of the first record with id >= `id` (entries() if none).
    [[nodiscard]] std::size_t lower_bound(StreamId id) const;
  };

  Node& node_for_append(std::span<const std::string_view> fields);

  std::uint64_t size_ = 0;
  std::deque<Node> nodes_;  // ascending; never holds a node without live entries
};

}  // namespace runnel::storage
