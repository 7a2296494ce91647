#include <runnel/storage/memory_entry_store.hpp>

#include <algorithm>
#include <cassert>

namespace runnel::storage {

void MemoryEntryStore::append(StreamId id, std::span<const std::string_view> fields) {
  assert(entries_.empty() || entries_.back().id < id);
  Entry entry{id, {}};
  encode_fields(fields, entry.payload);
  entries_.push_back(std::move(entry));
}

std::optional<StreamId> MemoryEntryStore::first_id() const {
  if (entries_.empty()) return std::nullopt;
  return entries_.front().id;
}

std::optional<StreamId> MemoryEntryStore::last_id() const {
  if (entries_.empty()) return std::nullopt;
  return entries_.back().id;
}

void MemoryEntryStore::scan(StreamId start, StreamId end, bool reverse,
                            const EntryVisitor& visit) const {
  if (start > end) return;
  auto by_id = [](const Entry& e, const StreamId& id) { return e.id < id; };
  auto first = std::lower_bound(entries_.begin(), entries_.end(), start, by_id);
  auto last = std::upper_bound(entries_.begin(), entries_.end(), end,
                               [](const StreamId& id, const Entry& e) { return id < e.id; });
  if (!reverse) {
    for (auto it = first; it != last; ++it) {
      if (!visit(EntryView{it->id, it->payload})) return;
    }
  } else {
    for (auto it = last; it != first;) {
      --it;
      if (!visit(EntryView{it->id, it->payload})) return;
    }
  }
}

}  // namespace runnel::storage
