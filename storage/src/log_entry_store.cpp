// The node table over segment files, as drawn in log_entry_store.hpp.
#include <runnel/storage/log_entry_store.hpp>

#include <algorithm>
#include <cassert>

#include "listpack_size.hpp"
#include "varint.hpp"

namespace runnel::storage {
namespace {

// Redis stores ID differences from the master ID as int64, wrapping as C does.
std::int64_t diff(std::uint64_t a, std::uint64_t b) { return static_cast<std::int64_t>(a - b); }

void sorted_insert(std::vector<StreamId>& ids, StreamId id) {
  auto it = std::lower_bound(ids.begin(), ids.end(), id);
  if (it == ids.end() || *it != id) ids.insert(it, id);
}

bool contains(const std::vector<StreamId>* ids, StreamId id) {
  return ids != nullptr && std::binary_search(ids->begin(), ids->end(), id);
}

}  // namespace

// ---------------------------------------------------------------------------------------
// TailCache

std::uint64_t TailCache::enroll(LogEntryStore* store) {
  const std::uint64_t id = next_id_++;
  stores_.emplace(id, store);
  return id;
}

void TailCache::withdraw(std::uint64_t store_id) { stores_.erase(store_id); }

void TailCache::closed(std::uint64_t store_id, StreamId master) {
  closed_.push_back({store_id, master});
  if (closed_.size() >= compact_at_) compact();
}

void TailCache::compact() {
  std::erase_if(closed_, [&](const Closed& c) {
    auto it = stores_.find(c.store);
    return it == stores_.end() || !it->second->holds_resident(c.master);
  });
  compact_at_ = std::max<std::size_t>(4096, 2 * closed_.size());
}

void TailCache::evict() {
  while (used_ > budget_ && !closed_.empty()) {
    const Closed c = closed_.front();
    auto it = stores_.find(c.store);
    if (it != stores_.end()) {
      std::size_t freed = 0;
      if (it->second->evict(c.master, freed) == LogEntryStore::Evicted::kNotWritten) return;
    }
    closed_.pop_front();
  }
}

// ---------------------------------------------------------------------------------------
// A node's records: in place when resident, else read back from the log into a buffer.

class LogEntryStore::NodeRecords {
 public:
  NodeRecords(const LogEntryStore& store, const Node& node) : node_(node) {
    if (node.resident) return;
    std::vector<std::pair<StreamId, std::pair<std::size_t, std::size_t>>> found;
    error_ = store.log_->read_entries(
        node.segment, node.first_batch, node.last_batch, [&](StreamId id, std::string_view payload) {
          if (id < node.master || id > node.last) return;
          found.push_back({id, {buffer_.size(), payload.size()}});
          buffer_.append(payload);
        });
    if (!error_ && found.size() != node.entries) {
      error_ = damage_error("node " + node.master.to_string() + " lost entries in " + store.log_->dir(),
                            store.log_->dir());
    }
    if (error_) {
      ok_ = false;
      return;
    }
    loaded_.reserve(found.size());
    for (const auto& [id, span] : found) {
      loaded_.push_back(Record{id, contains(node.deleted.get(), id),
                               std::string_view(buffer_).substr(span.first, span.second)});
    }
  }

  [[nodiscard]] bool ok() const { return ok_; }
  [[nodiscard]] const Error& error() const { return error_; }
  [[nodiscard]] std::size_t size() const { return node_.resident ? node_.entries : loaded_.size(); }
  [[nodiscard]] Record at(std::size_t i) const { return node_.resident ? record(node_, i) : loaded_[i]; }
  // Index of the first record with id >= `id` (size() if none).
  [[nodiscard]] std::size_t lower_bound(StreamId id) const {
    std::size_t lo = 0, hi = size();
    while (lo < hi) {
      const std::size_t mid = (lo + hi) / 2;
      if (at(mid).id < id) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  }

 private:
  const Node& node_;
  std::string buffer_;
  std::vector<Record> loaded_;
  bool ok_ = true;
  Error error_;
};

// ---------------------------------------------------------------------------------------

LogEntryStore::LogEntryStore(std::unique_ptr<SegmentLog> log, TailCache* cache, const NodeLimits* limits)
    : log_(std::move(log)), cache_(cache), limits_(limits != nullptr ? limits : &NodeLimits::defaults()) {
  if (cache_ != nullptr) cache_id_ = cache_->enroll(this);
}

LogEntryStore::~LogEntryStore() {
  if (cache_ == nullptr) return;
  cache_->withdraw(cache_id_);
  for (const Node& node : nodes_) cache_->charge(-static_cast<std::int64_t>(resident_bytes(node)));
}

void LogEntryStore::move_to_cache(TailCache* cache) {
  if (cache == cache_) return;
  std::int64_t bytes = 0;
  for (const Node& node : nodes_) bytes += static_cast<std::int64_t>(resident_bytes(node));
  if (cache_ != nullptr) {
    cache_->withdraw(cache_id_);  // its entries in the old cache's list go at its next compaction
    cache_->charge(-bytes);
  }
  cache_ = cache;
  if (cache_ == nullptr) return;
  cache_id_ = cache_->enroll(this);
  cache_->charge(bytes);
  // Every resident node but the open one (the last) may be evicted, oldest first.
  for (std::size_t i = 0; i + 1 < nodes_.size(); ++i) {
    if (nodes_[i].resident) cache_->closed(cache_id_, nodes_[i].master);
  }
}

LogEntryStore::Record LogEntryStore::record(const Node& node, std::size_t i) {
  const Resident& r = *node.resident;
  const std::size_t begin = r.offsets[i];
  const std::size_t end = i + 1 < r.offsets.size() ? r.offsets[i + 1] : r.data.size();
  std::string_view rest(r.data.data() + begin, end - begin);
  const auto flags = static_cast<unsigned char>(rest.front());
  rest.remove_prefix(1);
  std::uint64_t ms_delta = 0, seq = 0;
  get_varint(rest, ms_delta);
  get_varint(rest, seq);
  return Record{StreamId{node.master.ms + ms_delta, seq}, (flags & 1) != 0, rest};
}

std::size_t LogEntryStore::resident_bytes(const Node& node) {
  if (!node.resident) return 0;
  return sizeof(Resident) + node.resident->data.capacity() +
         node.resident->offsets.capacity() * sizeof(std::uint32_t);
}

void LogEntryStore::close_node(Node& node) {
  if (!node.resident) return;
  const std::size_t before = resident_bytes(node);
  node.resident->data.shrink_to_fit();
  node.resident->offsets.shrink_to_fit();
  if (cache_ != nullptr) {
    cache_->charge(static_cast<std::int64_t>(resident_bytes(node)) - static_cast<std::int64_t>(before));
    cache_->closed(cache_id_, node.master);
  }
}

bool LogEntryStore::make_resident(Node& node) {
  if (node.resident) return true;
  NodeRecords records(*this, node);
  if (!records.ok()) return false;
  auto resident = std::make_unique<Resident>();
  for (std::size_t i = 0; i < records.size(); ++i) {
    const Record r = records.at(i);
    resident->offsets.push_back(static_cast<std::uint32_t>(resident->data.size()));
    resident->data.push_back(r.deleted ? 1 : 0);
    put_varint(r.id.ms - node.master.ms, resident->data);
    put_varint(r.id.seq, resident->data);
    resident->data.append(r.payload);
  }
  node.resident = std::move(resident);
  node.deleted.reset();
  if (cache_ != nullptr) cache_->charge(static_cast<std::int64_t>(resident_bytes(node)));
  return true;
}

void LogEntryStore::count_listpack(Node& node, StreamId id, std::span<const std::string_view> fields,
                                   std::string_view master_payload) {
  if (node.entries == 0) {
    node.master = id;
    node.listpack_bytes = listpack::kEmptyBytes + listpack::master_entry_size(fields);
  }
  // Redis omits the field names when they equal the master entry's (the node's first entry).
  bool same_fields = node.entries == 0;
  if (!same_fields) {
    FieldCursor master(master_payload);
    same_fields = master.count() == fields.size();
    std::string_view name, value;
    for (std::size_t i = 0; same_fields && i < fields.size(); i += 2) {
      same_fields = master.next(name) && master.next(value) && name == fields[i];
    }
  }
  node.listpack_bytes += listpack::entry_size(diff(id.ms, node.master.ms),
                                              diff(id.seq, node.master.seq), fields, same_fields);
}

LogEntryStore::Node& LogEntryStore::node_for_append(StreamId id,
                                                    std::span<const std::string_view> fields) {
  if (log_ && log_->needs_roll()) {
    // A failed roll leaves the stream in its old segment, which takes the entry as well;
    // the next append tries again.
    (void)log_->roll(id, index_blob_for(log_->last_segment()));
  }
  if (!nodes_.empty()) {
    Node& last = nodes_.back();
    std::size_t raw_bytes = 0;
    for (auto f : fields) raw_bytes += f.size();
    const bool same_segment = !log_ || last.segment == log_->last_segment();
    if (same_segment && last.listpack_bytes + raw_bytes < limits_->bytes() &&
        last.entries < limits_->entries() && make_resident(last)) {
      return last;
    }
    close_node(last);
  }
  Node& node = nodes_.emplace_back();
  node.resident = std::make_unique<Resident>();
  // Charged as a node's bytes are released (resident_bytes), the empty Resident included.
  if (cache_ != nullptr) cache_->charge(static_cast<std::int64_t>(resident_bytes(node)));
  return node;
}

void LogEntryStore::append(StreamId id, std::span<const std::string_view> fields) {
  assert(nodes_.empty() || nodes_.back().last < id);
  Node& node = node_for_append(id, fields);
  const std::size_t before = resident_bytes(node);
  count_listpack(node, id, fields, node.entries == 0 ? std::string_view() : record(node, 0).payload);
  // The payload is encoded once, into the node; the log copies it from there.
  Resident& r = *node.resident;
  r.offsets.push_back(static_cast<std::uint32_t>(r.data.size()));
  r.data.push_back(0);
  put_varint(id.ms - node.master.ms, r.data);
  put_varint(id.seq, r.data);
  const std::size_t payload_at = r.data.size();
  encode_fields(fields, r.data);
  if (log_) {
    const LogPosition pos = log_->append_entry(id, std::string_view(r.data).substr(payload_at));
    if (node.entries == 0) {
      node.segment = pos.segment;
      node.first_batch = pos.batch;
    }
    node.last_batch = pos.batch;
  }
  node.last = id;
  ++node.entries;
  ++node.live;
  ++size_;
  if (cache_ != nullptr) {
    cache_->charge(static_cast<std::int64_t>(resident_bytes(node)) - static_cast<std::int64_t>(before));
  }
  // Full, it is closed now rather than at the next append, so the cache may evict it once
  // written: one entry bigger than the whole budget is then held only until it is on disk.
  if (full(node)) close_node(node);
}

std::optional<StreamId> LogEntryStore::first_id() const {
  if (nodes_.empty()) return std::nullopt;
  const Node& node = nodes_.front();
  if (!node.resident && !node.deleted) return node.master;
  NodeRecords records(*this, node);
  for (std::size_t i = 0; i < records.size(); ++i) {
    const Record r = records.at(i);
    if (!r.deleted) return r.id;
  }
  return node.master;  // unreadable: the node's bound
}

std::optional<StreamId> LogEntryStore::last_id() const {
  if (nodes_.empty()) return std::nullopt;
  const Node& node = nodes_.back();
  if (!node.resident && !node.deleted) return node.last;
  NodeRecords records(*this, node);
  for (std::size_t i = records.size(); i-- > 0;) {
    const Record r = records.at(i);
    if (!r.deleted) return r.id;
  }
  return node.last;
}

Error LogEntryStore::scan(StreamId start, StreamId end, bool reverse, const EntryVisitor& visit) const {
  if (start > end || nodes_.empty()) return {};
  // The last node whose first entry is <= `id`: where `id` would be.
  auto node_holding = [&](StreamId id) {
    auto it = std::upper_bound(nodes_.begin(), nodes_.end(), id,
                               [](const StreamId& x, const Node& n) { return x < n.master; });
    return it == nodes_.begin() ? it : std::prev(it);
  };
  if (!reverse) {
    for (auto node = node_holding(start); node != nodes_.end(); ++node) {
      if (node->last < start) continue;
      if (node->master > end) return {};
      NodeRecords records(*this, *node);
      if (!records.ok()) return records.error();
      for (std::size_t i = records.lower_bound(start); i < records.size(); ++i) {
        const Record r = records.at(i);
        if (r.id > end) return {};
        if (!r.deleted && !visit(EntryView{r.id, r.payload})) return {};
      }
    }
    return {};
  }
  auto node = node_holding(end);
  if (node->master > end) return {};  // every entry is above the range
  while (true) {
    if (node->last >= start) {
      NodeRecords records(*this, *node);
      if (!records.ok()) return records.error();
      // Start just past the last record <= end.
      std::size_t i = end == StreamId::max() ? records.size() : records.lower_bound(*end.next());
      while (i-- > 0) {
        const Record r = records.at(i);
        if (r.id < start) return {};
        if (!r.deleted && !visit(EntryView{r.id, r.payload})) return {};
      }
    } else {
      return {};
    }
    if (node == nodes_.begin()) return {};
    --node;
  }
}

void LogEntryStore::mark_deleted(Node& node, std::size_t i, StreamId id) {
  if (node.resident) {
    node.resident->data[node.resident->offsets[i]] |= 1;
  } else {
    if (!node.deleted) node.deleted = std::make_unique<std::vector<StreamId>>();
    sorted_insert(*node.deleted, id);
  }
  --node.live;
  --size_;
}

void LogEntryStore::drop_node(std::deque<Node>::iterator node) {
  if (cache_ != nullptr) cache_->charge(-static_cast<std::int64_t>(resident_bytes(*node)));
  nodes_.erase(node);
}

void LogEntryStore::drop_empty_segments() {
  if (!log_) return;
  const std::uint32_t keep = nodes_.empty() ? log_->last_segment() : nodes_.front().segment;
  if (keep <= log_->first_segment()) return;
  // A failure leaves the segments' files on disk, listed by the old manifest; the store has
  // dropped their entries either way, and no caller reads the error.
  (void)log_->drop_segments_before(keep);
}

bool LogEntryStore::erase(StreamId id) {
  auto node = std::upper_bound(nodes_.begin(), nodes_.end(), id,
                               [](const StreamId& x, const Node& n) { return x < n.master; });
  if (node == nodes_.begin()) return false;
  --node;
  if (id > node->last) return false;
  std::size_t i = 0;
  {
    NodeRecords records(*this, *node);
    if (!records.ok()) return false;
    i = records.lower_bound(id);
    if (i == records.size()) return false;
    const Record r = records.at(i);
    if (r.id != id || r.deleted) return false;
  }
  mark_deleted(*node, i, id);
  if (log_) log_->append_tombstone(id);
  if (node->live == 0) {
    drop_node(node);
    drop_empty_segments();
  }
  return true;
}

std::uint64_t LogEntryStore::trim(const TrimSpec& spec) {
  using Strategy = TrimSpec::Strategy;
  std::uint64_t removed = 0;
  const StreamId floor_before = floor_;
  while (!nodes_.empty()) {
    if (spec.strategy == Strategy::kMaxLen && size_ <= spec.max_len) break;
    Node& node = nodes_.front();
    if (spec.limit != 0 && removed + node.live > spec.limit) break;
    // The whole node goes if what remains still satisfies the request.
    const bool whole = (spec.strategy == Strategy::kMaxLen ? size_ - node.live >= spec.max_len
                                                           : node.last < spec.min_id) &&
                       (!spec.before || node.last < *spec.before);
    if (whole) {
      size_ -= node.live;
      removed += node.live;
      floor_ = std::max(floor_, node.last.next().value_or(StreamId::max()));
      drop_node(nodes_.begin());
      continue;
    }
    if (spec.approx) break;
    // Exact: delete entries inside this node until the request is met; some stay.
    NodeRecords records(*this, node);
    if (!records.ok()) break;
    for (std::size_t i = 0; i < records.size(); ++i) {
      const Record r = records.at(i);
      const bool stop = (spec.strategy == Strategy::kMaxLen ? size_ <= spec.max_len : r.id >= spec.min_id) ||
                        (spec.before && r.id >= *spec.before);
      if (stop) break;
      floor_ = std::max(floor_, r.id.next().value_or(StreamId::max()));
      if (r.deleted) continue;
      mark_deleted(node, i, r.id);
      ++removed;
    }
    break;  // the rest of the stream is newer than what the request removes
  }
  if (log_ && floor_ != floor_before) {
    StreamMeta meta = log_->meta();
    meta.trim_floor = floor_;
    log_->set_meta(meta);
    drop_empty_segments();
  }
  return removed;
}

std::uint64_t LogEntryStore::retain(std::uint64_t max_bytes, std::uint64_t max_age_ms, std::uint64_t now_ms) {
  if (!log_ || (max_bytes == 0 && max_age_ms == 0)) return 0;
  const auto segments = log_->segments();
  std::uint64_t total = 0;
  for (const auto& s : segments) total += s.second;
  // Segment i's entries all lie below segment i + 1's first ID.
  std::size_t drop = 0;
  while (drop + 1 < segments.size()) {
    const std::uint64_t newest_ms = segments[drop + 1].first.ms;
    const bool too_big = max_bytes != 0 && total > max_bytes;
    const bool too_old = max_age_ms != 0 && newest_ms + max_age_ms < now_ms;
    if (!too_big && !too_old) break;
    total -= segments[drop].second;
    ++drop;
  }
  if (drop == 0) return 0;
  TrimSpec spec;
  spec.strategy = TrimSpec::Strategy::kMinId;
  spec.min_id = segments[drop].first;
  return trim(spec);  // whole nodes only (nodes never span segments), and their files go
}

void LogEntryStore::record_meta(StreamId last_id, std::uint64_t entries_added, StreamId max_deleted_id) {
  if (!log_) return;
  log_->set_meta(StreamMeta{last_id, entries_added, max_deleted_id, floor_});
}

LogEntryStore::Node* LogEntryStore::resident_node(StreamId master) const {
  auto node = std::lower_bound(nodes_.begin(), nodes_.end(), master,
                               [](const Node& n, const StreamId& x) { return n.master < x; });
  if (node == nodes_.end() || node->master != master || !node->resident) return nullptr;
  return const_cast<Node*>(&*node);
}

bool LogEntryStore::holds_resident(StreamId master) const { return resident_node(master) != nullptr; }

LogEntryStore::Evicted LogEntryStore::evict(StreamId master, std::size_t& freed) {
  freed = 0;
  Node* node = resident_node(master);
  // The open node stays; a full one takes no more entries, and goes as any closed node.
  if (node == nullptr || (node == &nodes_.back() && !full(*node))) return Evicted::kGone;
  if (!log_ || !log_->written(node->segment, node->last_batch)) return Evicted::kNotWritten;
  std::vector<StreamId> deleted;
  for (std::size_t i = 0; i < node->entries; ++i) {
    const Record r = record(*node, i);
    if (r.deleted) deleted.push_back(r.id);
  }
  if (!deleted.empty()) node->deleted = std::make_unique<std::vector<StreamId>>(std::move(deleted));
  freed = resident_bytes(*node);
  node->resident.reset();
  if (cache_ != nullptr) cache_->charge(-static_cast<std::int64_t>(freed));
  return Evicted::kFreed;
}

// ---------------------------------------------------------------------------------------
// Recovery

std::string LogEntryStore::index_blob_for(std::uint32_t segment) const {
  std::string blob;
  std::uint32_t count = 0;
  put_u32(blob, 0);
  for (const Node& n : nodes_) {
    if (n.segment != segment) continue;
    for (std::uint64_t v : {n.master.ms, n.master.seq, n.last.ms, n.last.seq}) put_u64(blob, v);
    put_u32(blob, n.entries);
    put_u32(blob, n.listpack_bytes);
    put_u64(blob, n.first_batch);
    put_u64(blob, n.last_batch);
    ++count;
  }
  const std::string n = [&] {
    std::string c;
    put_u32(c, count);
    return c;
  }();
  blob.replace(0, 4, n);
  return blob;
}

bool LogEntryStore::on_index(std::uint32_t segment, std::string_view blob) {
  constexpr std::size_t kNodeBytes = 56;
  if (blob.size() < 4) return false;
  const std::uint32_t count = get_u32(blob.data());
  if (4 + std::uint64_t{count} * kNodeBytes != blob.size()) return false;
  std::vector<Node> found;
  StreamId prev = nodes_.empty() ? StreamId::min() : nodes_.back().last;
  const bool any_before = !nodes_.empty();
  for (std::uint32_t i = 0; i < count; ++i) {
    const char* p = blob.data() + 4 + i * kNodeBytes;
    Node n;
    n.master = {get_u64(p), get_u64(p + 8)};
    n.last = {get_u64(p + 16), get_u64(p + 24)};
    n.entries = n.live = get_u32(p + 32);
    n.listpack_bytes = get_u32(p + 36);
    n.first_batch = get_u64(p + 40);
    n.last_batch = get_u64(p + 48);
    n.segment = segment;
    const bool ordered = (found.empty() && !any_before) ? true : n.master > prev;
    if (!ordered || n.last < n.master || n.entries == 0 || n.first_batch > n.last_batch) return false;
    prev = n.last;
    found.push_back(std::move(n));
  }
  for (Node& n : found) nodes_.push_back(std::move(n));
  return true;
}

void LogEntryStore::on_entry(LogPosition pos, StreamId id, std::string_view payload) {
  std::vector<std::string_view> fields;
  FieldCursor cursor(payload);
  for (std::string_view f; cursor.next(f);) fields.push_back(f);
  std::size_t raw_bytes = 0;
  for (auto f : fields) raw_bytes += f.size();
  bool fresh = nodes_.empty();
  if (!fresh) {
    const Node& last = nodes_.back();
    fresh = last.segment != pos.segment || last.listpack_bytes + raw_bytes >= limits_->bytes() ||
            last.entries >= limits_->entries();
  }
  if (fresh) {
    Node& n = nodes_.emplace_back();
    n.segment = pos.segment;
    n.first_batch = pos.batch;
  }
  Node& node = nodes_.back();
  count_listpack(node, id, fields, scratch_);
  if (fresh) scratch_.assign(payload);  // the master entry's fields, for the entries after it
  node.last = id;
  node.last_batch = pos.batch;
  ++node.entries;
  ++node.live;
}

void LogEntryStore::on_segment_end(std::uint32_t) {}

Error LogEntryStore::open(std::vector<std::string>& notes) {
  if (Error failed = log_->open(*this, notes)) return failed;
  scratch_.clear();
  // Tombstones, then the trim floor, decide which entries are gone.
  for (StreamId id : log_->take_recovered_tombstones()) {
    auto node = std::upper_bound(nodes_.begin(), nodes_.end(), id,
                                 [](const StreamId& x, const Node& n) { return x < n.master; });
    if (node == nodes_.begin()) continue;
    --node;
    if (id > node->last) continue;
    if (!node->deleted) node->deleted = std::make_unique<std::vector<StreamId>>();
    const std::size_t before = node->deleted->size();
    sorted_insert(*node->deleted, id);
    if (node->deleted->size() != before) --node->live;
  }
  floor_ = log_->meta().trim_floor;
  while (!nodes_.empty() && nodes_.front().last < floor_) nodes_.pop_front();
  if (!nodes_.empty() && nodes_.front().master < floor_) {
    Node& node = nodes_.front();
    NodeRecords records(*this, node);
    if (!records.ok()) return records.error();
    std::vector<StreamId> below;
    for (std::size_t i = 0; i < records.size(); ++i) {
      const Record r = records.at(i);
      if (r.id < floor_ && !r.deleted) below.push_back(r.id);
    }
    if (!node.deleted) node.deleted = std::make_unique<std::vector<StreamId>>();
    for (StreamId id : below) {
      sorted_insert(*node.deleted, id);
      --node.live;
    }
  }
  std::erase_if(nodes_, [](const Node& n) { return n.live == 0; });
  size_ = 0;
  for (const Node& n : nodes_) size_ += n.live;
  return {};
}

}  // namespace runnel::storage
