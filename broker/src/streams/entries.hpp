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
    // XREADGROUP CLAIM (Redis 8.4): each entry also says how long it had been idle and how
    // often delivered before this read (0 and 0 for a new one).
    std::int64_t idle_ms = 0;
    std::uint64_t deliveries = 0;
  };

  void add(const storage::EntryView& entry) {
    items_.push_back(Item{entry.id, bytes_.size(), entry.payload.size(), false});
    bytes_.append(entry.payload);
  }
  void add_deleted(storage::StreamId id) { items_.push_back(Item{id, bytes_.size(), 0, true}); }
  // The last entry added was claimed: its idle time and deliveries before the claim.
  void set_delivery(std::int64_t idle_ms, std::uint64_t deliveries) {
    items_.back().idle_ms = idle_ms;
    items_.back().deliveries = deliveries;
  }
  // Appends `more`'s entries.
  void append(const Entries& more) {
    for (Item item : more.items_) {
      item.offset += bytes_.size();
      items_.push_back(item);
    }
    bytes_.append(more.bytes_);
  }
  // Each entry is written with its idle time and deliveries (XREADGROUP CLAIM's reply).
  void set_with_delivery(bool on) { with_delivery_ = on; }
  [[nodiscard]] bool with_delivery() const { return with_delivery_; }
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
  bool with_delivery_ = false;
};

}  // namespace runnel
