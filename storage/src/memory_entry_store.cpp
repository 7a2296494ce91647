// The in-memory store: nodes of records, as drawn in memory_entry_store.hpp.
#include <runnel/storage/memory_entry_store.hpp>

#include <algorithm>
#include <cassert>

#include "listpack_size.hpp"
#include "varint.hpp"

namespace runnel::storage {
namespace {

// Redis stores ID differences from the master ID as int64, wrapping as C does.
std::int64_t diff(std::uint64_t a, std::uint64_t b) { return static_cast<std::int64_t>(a - b); }

}  // namespace

MemoryEntryStore::Record MemoryEntryStore::Node::record(std::size_t i) const {
  const std::size_t begin = offsets[i];
  const std::size_t end = i + 1 < offsets.size() ? offsets[i + 1] : data.size();
  std::string_view rest(data.data() + begin, end - begin);
  const auto flags = static_cast<unsigned char>(rest.front());
  rest.remove_prefix(1);
  std::uint64_t ms_delta = 0, seq = 0;
  get_varint(rest, ms_delta);
  get_varint(rest, seq);
  return Record{StreamId{master.ms + ms_delta, seq}, (flags & 1) != 0, rest};
}

std::size_t MemoryEntryStore::Node::lower_bound(StreamId id) const {
  std::size_t lo = 0, hi = offsets.size();
  while (lo < hi) {
    const std::size_t mid = (lo + hi) / 2;
    if (record(mid).id < id) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

MemoryEntryStore::Node& MemoryEntryStore::node_for_append(std::span<const std::string_view> fields) {
  if (!nodes_.empty()) {
    Node& last = nodes_.back();
    std::size_t raw_bytes = 0;
    for (auto f : fields) raw_bytes += f.size();
    if (last.listpack_bytes + raw_bytes < kNodeMaxBytes && last.entries() < kNodeMaxEntries) {
      return last;
    }
    // The node is closed: give back what its buffers reserved for growth.
    last.data.shrink_to_fit();
    last.offsets.shrink_to_fit();
  }
  return nodes_.emplace_back();
}

void MemoryEntryStore::append(StreamId id, std::span<const std::string_view> fields) {
  assert(nodes_.empty() || nodes_.back().record(nodes_.back().entries() - 1).id < id);
  Node& node = node_for_append(fields);
  if (node.offsets.empty()) {
    node.master = id;
    node.listpack_bytes = listpack::kEmptyBytes + listpack::master_entry_size(fields);
  }
  // Redis omits the field names when they equal the master entry's (the node's first entry).
  bool same_fields = node.offsets.empty();
  if (!same_fields) {
    FieldCursor master(node.record(0).payload);
    same_fields = master.count() == fields.size();
    std::string_view name, value;
    for (std::size_t i = 0; same_fields && i < fields.size(); i += 2) {
      same_fields = master.next(name) && master.next(value) && name == fields[i];
    }
  }
  node.listpack_bytes += listpack::entry_size(diff(id.ms, node.master.ms),
                                              diff(id.seq, node.master.seq), fields, same_fields);
  node.offsets.push_back(static_cast<std::uint32_t>(node.data.size()));
  node.data.push_back(0);
  put_varint(id.ms - node.master.ms, node.data);
  put_varint(id.seq, node.data);
  encode_fields(fields, node.data);
  ++node.live;
  ++size_;
}

std::optional<StreamId> MemoryEntryStore::first_id() const {
  if (nodes_.empty()) return std::nullopt;
  const Node& node = nodes_.front();
  for (std::size_t i = 0; i < node.entries(); ++i) {
    const Record r = node.record(i);
    if (!r.deleted) return r.id;
  }
  return std::nullopt;  // unreachable: nodes always hold a live entry
}

std::optional<StreamId> MemoryEntryStore::last_id() const {
  if (nodes_.empty()) return std::nullopt;
  const Node& node = nodes_.back();
  for (std::size_t i = node.entries(); i-- > 0;) {
    const Record r = node.record(i);
    if (!r.deleted) return r.id;
  }
  return std::nullopt;
}

void MemoryEntryStore::scan(StreamId start, StreamId end, bool reverse,
                            const EntryVisitor& visit) const {
  if (start > end || nodes_.empty()) return;
  // The last node whose first entry is <= `id`: where `id` would be.
  auto node_holding = [&](StreamId id) {
    auto it = std::upper_bound(nodes_.begin(), nodes_.end(), id,
                               [](const StreamId& x, const Node& n) { return x < n.master; });
    return it == nodes_.begin() ? it : std::prev(it);
  };
  if (!reverse) {
    for (auto node = node_holding(start); node != nodes_.end(); ++node) {
      for (std::size_t i = node->lower_bound(start); i < node->entries(); ++i) {
        const Record r = node->record(i);
        if (r.id > end) return;
        if (!r.deleted && !visit(EntryView{r.id, r.payload})) return;
      }
    }
    return;
  }
  auto node = node_holding(end);
  if (node->master > end) return;  // every entry is above the range
  while (true) {
    // Start just past the last record <= end.
    std::size_t i = end == StreamId::max() ? node->entries() : node->lower_bound(*end.next());
    while (i-- > 0) {
      const Record r = node->record(i);
      if (r.id < start) return;
      if (!r.deleted && !visit(EntryView{r.id, r.payload})) return;
    }
    if (node == nodes_.begin()) return;
    --node;
  }
}

bool MemoryEntryStore::erase(StreamId id) {
  auto node = std::upper_bound(nodes_.begin(), nodes_.end(), id,
                               [](const StreamId& x, const Node& n) { return x < n.master; });
  if (node == nodes_.begin()) return false;
  --node;
  const std::size_t i = node->lower_bound(id);
  if (i == node->entries()) return false;
  const Record r = node->record(i);
  if (r.id != id || r.deleted) return false;
  node->mark_deleted(i);
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
                           : node.record(node.entries() - 1).id < spec.min_id;
    if (whole) {
      size_ -= node.live;
      removed += node.live;
      nodes_.pop_front();
      continue;
    }
    if (spec.approx) break;
    // Exact: delete entries inside this node until the request is met; some stay.
    for (std::size_t i = 0; i < node.entries(); ++i) {
      const Record r = node.record(i);
      const bool stop = spec.strategy == Strategy::kMaxLen ? size_ <= spec.max_len
                                                           : r.id >= spec.min_id;
      if (stop) break;
      if (r.deleted) continue;
      node.mark_deleted(i);
      --node.live;
      --size_;
      ++removed;
    }
    break;  // the rest of the stream is newer than what the request removes
  }
  return removed;
}

}  // namespace runnel::storage
