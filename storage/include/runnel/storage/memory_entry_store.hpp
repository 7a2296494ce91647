// MemoryEntryStore: an EntryStore that keeps every entry in memory, in ID order.
#pragma once

#include <vector>

#include <runnel/storage/entry_store.hpp>

namespace runnel::storage {

// Owned by one stream, on its shard; not thread-safe.
class MemoryEntryStore final : public EntryStore {
 public:
  void append(StreamId id, std::span<const std::string_view> fields) override;
  [[nodiscard]] std::uint64_t size() const override { return entries_.size(); }
  [[nodiscard]] std::optional<StreamId> first_id() const override;
  [[nodiscard]] std::optional<StreamId> last_id() const override;
  void scan(StreamId start, StreamId end, bool reverse, const EntryVisitor& visit) const override;

 private:
  struct Entry {
    StreamId id;
    std::string payload;
  };
  std::vector<Entry> entries_;  // ascending by id
};

}  // namespace runnel::storage
