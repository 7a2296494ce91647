// Entries: stream entries read out of a store, as an op's typed result. Each entry's ID and
// field payload (storage's encode_fields format), copied into one buffer, so a result can
// cross to the connection's thread and be encoded there in RESP2 or RESP3
// (stream_reply.hpp). An entry may be marked deleted: a pending entry XDEL removed, which
// XREADGROUP's history shows as [id, nil].
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <runnel/storage/entry_store.hpp>
#include <runnel/storage/stream_id.hpp>

namespace runnel {

class Entries {
 public:
  struct Item {
    storage::StreamId id;
    std::size_t offset = 0;
    std::size_t size = 0;
    bool deleted = false;
  };

  void add(const storage::EntryView& entry) {
    items_.push_back(Item{entry.id, bytes_.size(), entry.payload.size(), false});
    bytes_.append(entry.payload);
  }
  void add_deleted(storage::StreamId id) { items_.push_back(Item{id, bytes_.size(), 0, true}); }
  // Drops the last entry added.
  void pop_back() {
    bytes_.resize(items_.back().offset);
    items_.pop_back();
  }

  [[nodiscard]] std::size_t size() const { return items_.size(); }
  [[nodiscard]] bool empty() const { return items_.empty(); }
  [[nodiscard]] const std::vector<Item>& items() const { return items_; }
  [[nodiscard]] std::string_view payload(const Item& item) const {
    return std::string_view(bytes_).substr(item.offset, item.size);
  }
  [[nodiscard]] storage::StreamId last_id() const { return items_.back().id; }

 private:
  std::vector<Item> items_;
  std::string bytes_;
};

}  // namespace runnel
