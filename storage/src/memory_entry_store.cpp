#include <runnel/storage/memory_entry_store.hpp>

#include <algorithm>
#include <cassert>

namespace runnel::storage {

void MemoryEntryStore::append(StreamId id, std::span<const std::string_view> fields) {
  assert(nodes_.empty() || nodes_.back().entries.back().id < id);
  Entry entry{id, false, {}};
  encode_fields(fields, entry.payload);
  if (nodes_.empty() || nodes_.back().entries.size() >= kNodeMaxEntries ||
      nodes_.back().bytes + entry.payload.size() >= kNodeMaxBytes) {
    nodes_.emplace_back();
  }
  Node& node = nodes_.back();
  node.bytes += entry.payload.size();
  node.entries.push_back(std::move(entry));
  ++node.live;
  ++size_;
}

std::optional<StreamId> MemoryEntryStore::first_id() const {
  if (nodes_.empty()) return std::nullopt;
  for (const Entry& e : nodes_.front().entries) {
    if (!e.deleted) return e.id;
  }
  return std::nullopt;  // unreachable: nodes always hold a live entry
}

std::optional<StreamId> MemoryEntryStore::last_id() const {
  if (nodes_.empty()) return std::nullopt;
  const auto& entries = nodes_.back().entries;
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    if (!it->deleted) return it->id;
  }
  return std::nullopt;
}

void MemoryEntryStore::scan(StreamId start, StreamId end, bool reverse,
                            const EntryVisitor& visit) const {
  if (start > end || nodes_.empty()) return;
  // The first node that may hold `start`: the last whose first entry is <= start.
  auto node_first = [](const Node& n) { return n.entries.front().id; };
  auto by_id = [](const Entry& e, const StreamId& id) { return e.id < id; };
  if (!reverse) {
    auto node = std::upper_bound(nodes_.begin(), nodes_.end(), start,
                                 [&](const StreamId& id, const Node& n) { return id < node_first(n); });
    if (node != nodes_.begin()) --node;
    for (; node != nodes_.end(); ++node) {
      auto it = std::lower_bound(node->entries.begin(), node->entries.end(), start, by_id);
      for (; it != node->entries.end(); ++it) {
        if (it->id > end) return;
        if (!it->deleted && !visit(EntryView{it->id, it->payload})) return;
      }
    }
  } else {
    auto node = std::upper_bound(nodes_.begin(), nodes_.end(), end,
                                 [&](const StreamId& id, const Node& n) { return id < node_first(n); });
    while (node != nodes_.begin()) {
      --node;
      auto it = std::upper_bound(node->entries.begin(), node->entries.end(), end,
                                 [](const StreamId& id, const Entry& e) { return id < e.id; });
      while (it != node->entries.begin()) {
        --it;
        if (it->id < start) return;
        if (!it->deleted && !visit(EntryView{it->id, it->payload})) return;
      }
    }
  }
}

bool MemoryEntryStore::erase(StreamId id) {
  auto node = std::upper_bound(nodes_.begin(), nodes_.end(), id, [](const StreamId& x, const Node& n) {
    return x < n.entries.front().id;
  });
  if (node == nodes_.begin()) return false;
  --node;
  auto it = std::lower_bound(node->entries.begin(), node->entries.end(), id,
                             [](const Entry& e, const StreamId& x) { return e.id < x; });
  if (it == node->entries.end() || it->id != id || it->deleted) return false;
  it->deleted = true;
  it->payload.clear();
  it->payload.shrink_to_fit();
  --node->live;
  --size_;
  if (node->live == 0) nodes_.erase(node);
  return true;
}

std::uint64_t MemoryEntryStore::trim(const TrimSpec& spec) {
  using Strategy = TrimSpec::Strategy;
  std::uint64_t removed = 0;
  while (!nodes_.empty()) {
    if (spec.strategy == Strategy::kMaxLen && size_ <= spec.max_len) break;
    Node& node = nodes_.front();
    if (spec.limit != 0 && removed + node.live > spec.limit) break;
    // The whole node goes if what remains still satisfies the request.
    const bool whole = spec.strategy == Strategy::kMaxLen
                           ? size_ - node.live >= spec.max_len
                           : node.entries.back().id < spec.min_id;
    if (whole) {
      size_ -= node.live;
      removed += node.live;
      nodes_.pop_front();
      continue;
    }
    if (spec.approx) break;
    // Exact: delete entries inside this node until the request is met; some stay.
    for (Entry& e : node.entries) {
      const bool stop = spec.strategy == Strategy::kMaxLen ? size_ <= spec.max_len
                                                           : e.id >= spec.min_id;
      if (stop) break;
      if (e.deleted) continue;
      e.deleted = true;
      e.payload.clear();
      e.payload.shrink_to_fit();
      --node.live;
      --size_;
      ++removed;
    }
    break;  // the rest of the stream is newer than what the request removes
  }
  return removed;
}

}  // namespace runnel::storage
