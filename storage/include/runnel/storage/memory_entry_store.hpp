// MemoryEntryStore: an EntryStore that keeps every entry in memory, in ID order.
#pragma once

#include <deque>
#include <vector>

#include <runnel/storage/entry_store.hpp>

namespace runnel::storage {

// Entries are grouped in nodes the way Redis groups them in listpacks: a node takes new
// entries until it holds `kNodeMaxEntries` (live or deleted) or its payloads pass
// `kNodeMaxBytes`, so that approximate trimming removes the same whole nodes Redis would for
// small entries. A node whose entries are all deleted is dropped.
//
//   nodes_:  [ node 0: e e x e ... (<= 100) ] [ node 1: ... ] ... [ last node, takes appends ]
//                            x = deleted entry (tombstone)
//
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
  struct Entry {
    StreamId id;
    bool deleted = false;
    std::string payload;
  };
  struct Node {
    std::vector<Entry> entries;  // ascending by id, tombstones included
    std::size_t live = 0;
    std::size_t bytes = 0;  // payload bytes, for the node size limit
  };

  std::uint64_t size_ = 0;
  std::deque<Node> nodes_;  // ascending; never holds a node without live entries
};

}  // namespace runnel::storage
