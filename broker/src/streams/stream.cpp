// Stream's ops: Redis 7.0's ID rules, trimming, ranges, deliveries, claims and the
// entries-read and lag counters (t_stream.c), over the stream's EntryStore.
#include "streams/stream.hpp"

#include <algorithm>
#include <limits>

#include <runnel/storage/log_entry_store.hpp>

namespace runnel {

Stream::Stream(std::unique_ptr<storage::EntryStore> store)
    : entries_(store ? std::move(store) : std::make_unique<storage::LogEntryStore>()) {}

Stream::~Stream() = default;

void Stream::bind(ChangeSink* sink) {
  sink_ = sink;
  for (auto& [name, group] : groups_) group.bind(sink, this, &name, &refs_);
}

bool Stream::has_after(StreamId after) const {
  const auto last = entries_->last_id();
  return last && *last > after;
}

void Stream::refresh_first_id() { first_id_ = entries_->first_id().value_or(StreamId::min()); }

// --- entries ---------------------------------------------------------------------------------

Result<StreamId> Stream::next_id(StreamId last, const NewId* given, std::int64_t now_ms) {
  if (last == StreamId::max()) {
    return op_error(Errc::kArgument, "ERR The stream has exhausted the last possible ID, unable to add more items");
  }
  StreamId out;
  if (given == nullptr) {
    const auto ms = static_cast<std::uint64_t>(now_ms);
    return ms > last.ms ? StreamId{ms, 0} : *last.next();
  }
  if (!given->seq_given) {
    const std::uint64_t ms = given->id.ms;
    if (ms == last.ms) {
      // Redis 7.0's text here depended on a stale errno; 7.2 fixed it to this one.
      if (last.seq == UINT64_MAX) {
        return op_error(Errc::kArgument, "ERR The ID specified in XADD is equal or smaller than the target stream top item");
      }
      out = {ms, last.seq + 1};
    } else {
      out = {ms, 0};
    }
  } else {
    out = given->id;
  }
  if (out <= last) {
    return op_error(Errc::kArgument,
                    "ERR The ID specified in XADD is equal or smaller than the target stream top item");
  }
  return out;
}

void Stream::append(StreamId id, std::span<const std::string_view> fields) {
  entries_->append(id, fields);
  last_id_ = id;
  ++entries_added_;
  if (entries_->size() == 1) first_id_ = id;
  changed();
}

Result<StreamId> Stream::add(const NewId* given, std::span<const std::string_view> fields,
                             const std::optional<storage::TrimSpec>& trim_spec, std::int64_t now_ms,
                             RefPolicy policy, OpError* trim_error) {
  Result<StreamId> id = next_id(last_id_, given, now_ms);
  if (!id) return id;
  append(*id, fields);
  if (trim_spec) {
    Result<std::uint64_t> trimmed = trim(*trim_spec, policy);
    if (!trimmed && trim_error != nullptr) *trim_error = trimmed.take_error();
  }
  return id;
}

void Stream::keep_references() {
  if (refs_.kept()) return;
  refs_.start();
  for (const auto& [name, group] : groups_) {
    for (const auto& pending : group.pel()) refs_.add(pending.first);
  }
}

Result<std::uint64_t> Stream::trim(const storage::TrimSpec& spec, RefPolicy policy) {
  if (policy != RefPolicy::kKeep) keep_references();
  if (policy == RefPolicy::kAcked) return trim_acked(spec);
  storage::TrimSpec exact = spec;
  if (policy == RefPolicy::kDelete) exact.approx = false;
  const std::uint64_t removed = entries_->trim(exact);
  refresh_first_id();
  if (removed == 0) return removed;
  changed();
  if (policy == RefPolicy::kDelete) {
    // Every pending ID below what is left (all of them, if nothing is) was trimmed now, or
    // deleted before.
    for (const StreamId id : refs_.below(length() > 0 ? std::optional(first_id_) : std::nullopt)) {
      drop_references(id);
    }
  }
  return removed;
}

bool Stream::trim_done(const storage::TrimSpec& spec) const {
  if (spec.strategy == storage::TrimSpec::Strategy::kMaxLen) return length() <= spec.max_len;
  return length() == 0 || first_id_ >= spec.min_id;
}

// ACKED: the entries before the first one some group references go as a plain trim would
// take them (whole nodes where it can); then, while the request is not met, the entries
// between the referenced ones that no group references, one by one, as Redis does.
Result<std::uint64_t> Stream::trim_acked(const storage::TrimSpec& spec) {
  const StreamId min_last = min_last_delivered();
  storage::TrimSpec prefix = spec;
  prefix.approx = false;
  const StreamId first_unread = min_last.next().value_or(StreamId::max());
  prefix.before = std::min(first_unread, refs_.first());
  std::uint64_t removed = entries_->trim(prefix);
  refresh_first_id();
  std::optional<OpError> failed;
  if (!trim_done(spec) && (spec.limit == 0 || removed < spec.limit) && *prefix.before != StreamId::max()) {
    // Only entries up to the smallest last-delivered ID can be free of references.
    StreamId end = min_last;
    if (spec.strategy == storage::TrimSpec::Strategy::kMinId) {
      if (spec.min_id == StreamId::min()) end = StreamId::min();
      else end = std::min(end, *spec.min_id.prev());
    }
    std::uint64_t excess = spec.strategy == storage::TrimSpec::Strategy::kMaxLen && length() > spec.max_len
                               ? length() - spec.max_len
                               : std::numeric_limits<std::uint64_t>::max();
    if (spec.limit != 0) excess = std::min(excess, spec.limit - removed);
    std::vector<StreamId> free;
    if (*prefix.before <= end) {
      const storage::Error error = entries_->scan(*prefix.before, end, false, [&](const storage::EntryView& e) {
        if (refs_.contains(e.id)) return true;
        free.push_back(e.id);
        return free.size() < excess;
      });
      if (error) failed = storage_error(error);
    }
    for (const StreamId id : free) removed += entries_->erase(id) ? 1 : 0;
    refresh_first_id();
  }
  if (removed > 0) changed();
  if (failed) return *failed;
  return removed;
}

std::optional<StreamId> Stream::idmp_duplicate(std::string_view pid, std::string_view iid, std::int64_t now_ms) {
  if (!idmp_) return std::nullopt;
  const auto found = idmp_->find(pid, iid, now_ms);
  if (found) {
    idmp_->count_duplicate();
    if (sink_) sink_->idmp_counted(*this);
  }
  return found;
}

void Stream::idmp_record(std::string_view pid, std::string_view iid, StreamId id, std::int64_t now_ms) {
  restore_idempotency().record(pid, iid, id, now_ms);
  if (sink_) sink_->idmp_recorded(*this, pid, iid, id);
}

void Stream::idmp_configure(std::optional<std::int64_t> duration_s, std::optional<std::int64_t> max_size) {
  const bool made = !idmp_;
  if (restore_idempotency().configure(duration_s, max_size) || made) {
    if (sink_) sink_->idmp_configured(*this);
  }
}

Idempotency& Stream::restore_idempotency() {
  if (!idmp_) idmp_ = std::make_unique<Idempotency>();
  return *idmp_;
}

StreamId Stream::min_last_delivered() const {
  StreamId least = StreamId::max();
  for (const auto& [name, group] : groups_) least = std::min(least, group.last_delivered());
  return least;
}

void Stream::drop_references(StreamId id) {
  for (auto& [name, group] : groups_) (void)group.ack(id);
}

std::vector<DeleteCode> Stream::erase(std::span<const StreamId> ids, RefPolicy policy) {
  if (policy != RefPolicy::kKeep) keep_references();
  std::vector<DeleteCode> codes;
  codes.reserve(ids.size());
  const StreamId min_last = min_last_delivered();
  bool deleted = false;
  for (const StreamId id : ids) {
    if (policy == RefPolicy::kAcked && !groups_.empty() && referenced(id, min_last)) {
      codes.push_back(DeleteCode::kReferenced);
      continue;
    }
    if (policy == RefPolicy::kDelete && refs_.contains(id)) drop_references(id);
    if (!entries_->erase(id)) {
      codes.push_back(DeleteCode::kNotFound);
      continue;
    }
    deleted = true;
    if (id > max_deleted_id_) max_deleted_id_ = id;
    codes.push_back(DeleteCode::kDeleted);
  }
  if (deleted) {
    refresh_first_id();
    changed();
  }
  return codes;
}

std::vector<DeleteCode> Stream::ack_and_erase(ConsumerGroup& group, std::span<const StreamId> ids, RefPolicy policy) {
  if (policy != RefPolicy::kKeep) keep_references();
  std::vector<DeleteCode> codes;
  codes.reserve(ids.size());
  bool deleted = false;
  const StreamId min_last = min_last_delivered();  // acknowledging moves no group
  for (const StreamId id : ids) {
    if (!group.ack(id)) {
      codes.push_back(DeleteCode::kNotFound);
      continue;
    }
    if (policy == RefPolicy::kAcked && referenced(id, min_last)) {
      codes.push_back(DeleteCode::kReferenced);
      continue;
    }
    if (policy == RefPolicy::kDelete && refs_.contains(id)) drop_references(id);
    if (entries_->erase(id)) {
      deleted = true;
      if (id > max_deleted_id_) max_deleted_id_ = id;
    }
    codes.push_back(DeleteCode::kDeleted);  // acknowledged and gone, even if it was gone before
  }
  if (deleted) {
    refresh_first_id();
    changed();
  }
  return codes;
}

std::uint64_t Stream::erase(std::span<const StreamId> ids) {
  std::uint64_t deleted = 0;
  for (const StreamId id : ids) {
    if (!entries_->erase(id)) continue;
    ++deleted;
    if (id > max_deleted_id_) max_deleted_id_ = id;
  }
  if (deleted > 0) {
    refresh_first_id();
    changed();
  }
  return deleted;
}

Result<void> Stream::set_id(StreamId id, std::int64_t entries_added, std::optional<StreamId> max_deleted) {
  if (length() > 0) {
    if (id < *entries_->last_id()) {
      return op_error(Errc::kArgument, "ERR The ID specified in XSETID is smaller than the target stream top item");
    }
    if (entries_added != -1 && length() > static_cast<std::uint64_t>(entries_added)) {
      return op_error(Errc::kArgument,
                      "ERR The entries_added specified in XSETID is smaller than the target stream length");
    }
  }
  last_id_ = id;
  if (entries_added != -1) entries_added_ = static_cast<std::uint64_t>(entries_added);
  if (max_deleted && *max_deleted != StreamId::min()) max_deleted_id_ = *max_deleted;
  changed();
  return {};
}

void Stream::restore_meta(StreamId last_id, std::uint64_t entries_added, StreamId max_deleted_id) {
  last_id_ = last_id;
  entries_added_ = entries_added;
  max_deleted_id_ = max_deleted_id;
  refresh_first_id();
}

void Stream::store_trimmed() {
  refresh_first_id();
  changed();
}

Result<Entries> Stream::range(StreamId start, StreamId end, bool reverse, std::size_t count) const {
  Entries out;
  storage::Error error = entries_->scan(start, end, reverse, [&](const storage::EntryView& entry) {
    out.add(entry);
    return count == 0 || out.size() < count;
  });
  if (error) return storage_error(std::move(error));
  return out;
}

Result<Entries> Stream::read_after(StreamId after, std::size_t count) const {
  const auto from = after.next();
  if (!from) return Entries{};
  return range(*from, StreamId::max(), false, count);
}

Result<bool> Stream::read_one(StreamId id, Entries& out) const {
  bool found = false;
  storage::Error error = entries_->scan(id, id, false, [&](const storage::EntryView& entry) {
    out.add(entry);
    found = true;
    return false;
  });
  if (error) return storage_error(std::move(error));
  return found;
}

Result<bool> Stream::contains(StreamId id) const {
  bool found = false;
  storage::Error error = entries_->scan(id, id, false, [&](const storage::EntryView&) {
    found = true;
    return false;
  });
  if (error) return storage_error(std::move(error));
  return found;
}

// --- groups ----------------------------------------------------------------------------------

ConsumerGroup* Stream::group(std::string_view name) {
  auto it = groups_.find(name);
  return it == groups_.end() ? nullptr : &it->second;
}

const ConsumerGroup* Stream::group(std::string_view name) const {
  auto it = groups_.find(name);
  return it == groups_.end() ? nullptr : &it->second;
}

Result<ConsumerGroup*> Stream::create_group(std::string_view name, StreamId last_delivered,
                                            std::int64_t entries_read) {
  auto [it, created] = groups_.try_emplace(std::string(name));
  if (!created) return op_error(Errc::kGroupExists, "BUSYGROUP Consumer Group name already exists");
  ConsumerGroup& group = it->second;
  group.bind(sink_, this, &it->first, &refs_);
  group.set_position(last_delivered, entries_read);
  return &group;
}

bool Stream::destroy_group(std::string_view name) {
  auto it = groups_.find(name);
  if (it == groups_.end()) return false;
  if (sink_) sink_->group_destroyed(*this, name);
  for (const auto& pending : it->second.pel()) refs_.remove(pending.first);
  groups_.erase(it);
  return true;
}

void Stream::advance(ConsumerGroup& g, StreamId id) {
  if (id <= g.last_delivered()) return;
  std::int64_t read = g.entries_read();
  if (read != kEntriesReadUnknown && !range_has_tombstones(id, StreamId::max())) {
    ++read;
  } else if (entries_added_ != 0) {
    read = estimate_entries_read(id);
  }
  g.set_position(id, read);
}

Result<Entries> Stream::deliver_new(ConsumerGroup& group, Consumer& consumer, std::size_t count, bool noack,
                                    std::int64_t now_ms) {
  Result<Entries> read = read_after(group.last_delivered(), count);
  if (!read) return read;  // the group does not move past entries it could not read
  for (const Entries::Item& item : read->items()) {
    advance(group, item.id);
    if (!noack) group.add_pending(item.id, consumer, now_ms);
  }
  if (!noack && !read->empty()) group.active(consumer, now_ms);  // Redis 7.2: not for NOACK
  return read;
}

Result<Entries> Stream::claim_idle(ConsumerGroup& group, Consumer& consumer, std::int64_t min_idle_ms,
                                   std::size_t count, std::int64_t now_ms) {
  Entries out;
  out.set_with_delivery(true);
  std::vector<StreamId> claimed;
  for (const PendingOrder& at : group.claim_order()) {
    if (count != 0 && out.size() >= count) break;
    const PendingEntry& p = group.pel().at(at.id);
    const std::int64_t idle = now_ms - p.delivery_time_ms;  // a NACKed one's is the clock, as in Redis
    if (at.delivered && idle < min_idle_ms) break;          // the rest were delivered later
    Result<bool> found = read_one(at.id, out);
    if (!found) return found.take_error();
    if (!*found) continue;  // gone from the stream: skipped, and left pending
    out.set_delivery(idle, p.delivery_count);
    claimed.push_back(at.id);
  }
  for (const StreamId id : claimed) {
    const std::uint64_t before = group.pel().at(id).delivery_count;
    group.claim(id, consumer, now_ms, one_more_delivery(before));
  }
  if (!claimed.empty()) group.active(consumer, now_ms);
  return out;
}

std::optional<std::int64_t> Stream::next_claimable(const ConsumerGroup& group, std::int64_t min_idle_ms,
                                                   std::int64_t now_ms) const {
  for (const PendingOrder& at : group.claim_order()) {
    if (at.delivered && at.at + min_idle_ms > now_ms) return at.at + min_idle_ms;
  }
  return std::nullopt;
}

bool Stream::claimable_now(const ConsumerGroup& group, std::int64_t min_idle_ms, std::int64_t now_ms) const {
  for (const PendingOrder& at : group.claim_order()) {
    if (at.delivered && now_ms - at.at < min_idle_ms) return false;
    const Result<bool> there = contains(at.id);
    if (!there || *there) return true;  // a read error is reported by the read that follows
  }
  return false;
}

Result<Entries> Stream::deliver_claiming(ConsumerGroup& group, Consumer& consumer, std::int64_t min_idle_ms,
                                         std::size_t count, bool noack, std::int64_t now_ms) {
  Result<Entries> claimed = claim_idle(group, consumer, min_idle_ms, count, now_ms);
  if (!claimed) return claimed;
  if (count != 0 && claimed->size() >= count) return claimed;
  if (!has_new_for(group)) return claimed;
  // New entries: 0 and 0 (Redis 8.4.0); NOACK applies to them only.
  Result<Entries> fresh = deliver_new(group, consumer, count == 0 ? 0 : count - claimed->size(), noack, now_ms);
  if (!fresh) return fresh;
  claimed->append(*fresh);
  return claimed;
}

Result<Entries> Stream::deliver_history(ConsumerGroup& group, Consumer& consumer, StreamId after,
                                        std::size_t count, std::int64_t now_ms) {
  Entries out;
  std::vector<StreamId> redelivered;  // counted once every read has succeeded
  const auto from = after.next();
  for (auto it = from ? consumer.pending.lower_bound(*from) : consumer.pending.end();
       it != consumer.pending.end() && (count == 0 || out.size() < count); ++it) {
    Result<bool> found = read_one(*it, out);
    if (!found) return found.take_error();
    if (*found) {
      redelivered.push_back(*it);
    } else {
      out.add_deleted(*it);  // deleted since delivery: Redis reports the ID with no fields
    }
  }
  for (const StreamId id : redelivered) group.redelivered(id, now_ms);
  return out;
}

std::uint64_t Stream::ack(ConsumerGroup& group, std::span<const StreamId> ids) {
  std::uint64_t acknowledged = 0;
  for (const StreamId id : ids) acknowledged += group.ack(id) ? 1 : 0;
  return acknowledged;
}

Result<std::uint64_t> Stream::nack(ConsumerGroup& group, std::span<const StreamId> ids, NackMode mode,
                                   std::optional<std::uint64_t> retry_count, bool force) {
  constexpr std::uint64_t kFatal = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  auto deliveries = [&](std::uint64_t now) -> std::uint64_t {
    if (retry_count) return *retry_count;
    switch (mode) {
      case NackMode::kSilent: return now > 0 ? now - 1 : 0;
      case NackMode::kFail: return now;
      case NackMode::kFatal: return kFatal;
    }
    return now;
  };
  std::uint64_t nacked = 0;
  for (const StreamId id : ids) {
    auto it = group.pel().find(id);
    if (it != group.pel().end()) {
      group.nack(id, deliveries(it->second.delivery_count));
      ++nacked;
      continue;
    }
    if (!force) continue;
    Result<bool> there = contains(id);
    if (!there) return there.take_error();
    if (!*there) continue;
    group.add_nacked(id, deliveries(0));
    ++nacked;
  }
  return nacked;
}

Result<Claimed> Stream::claim(ConsumerGroup& group, const ClaimSpec& spec, std::int64_t now_ms) {
  if (spec.last_id > group.last_delivered()) group.set_position(spec.last_id, group.entries_read());
  // A time in the future or before 1970 is taken as now, as Redis does.
  std::int64_t delivery_time = spec.delivery_time_ms;
  if (delivery_time < 0 || delivery_time > now_ms) delivery_time = now_ms;
  Claimed out;
  // Redis 7.2: the consumer is made (or seen) by the attempt, whether or not it claims.
  Consumer& to = group.consumer(spec.consumer, now_ms);
  bool claimed = false;
  for (const StreamId id : spec.ids) {
    // The entry is read straight into the result (only checked for, with JUSTID), and taken
    // back out if it is not claimed.
    Result<bool> exists = spec.justid ? contains(id) : read_one(id, out.entries);
    if (!exists) return exists.take_error();
    auto it = group.pel().find(id);
    if (!*exists) {
      if (it != group.pel().end()) group.drop(id);  // 7.0: gone from the stream
      continue;
    }
    const bool pending = it != group.pel().end();
    const bool idle_enough = !pending || it->second.owner == nullptr || spec.min_idle_ms == 0 ||
                             now_ms - it->second.delivery_time_ms >= spec.min_idle_ms;
    if ((!pending && !spec.force) || !idle_enough) {
      if (!spec.justid) out.entries.pop_back();
      continue;
    }
    if (!pending) group.add_unowned(id, now_ms);
    claimed = true;
    std::optional<std::uint64_t> count;
    if (spec.retry_count >= 0) {
      count = static_cast<std::uint64_t>(spec.retry_count);
    } else if (!spec.justid) {
      count = one_more_delivery(group.pel().at(id).delivery_count);
    }
    group.claim(id, to, delivery_time, count);
    if (spec.justid) out.ids.push_back(id);
  }
  if (claimed) group.active(to, now_ms);
  return out;
}

Result<AutoClaimed> Stream::autoclaim(ConsumerGroup& group, const AutoClaimSpec& spec, std::int64_t now_ms) {
  AutoClaimed out;
  std::int64_t count = spec.count;
  std::int64_t attempts = count * 10;  // PEL entries looked at, at most
  Consumer& to = group.consumer(spec.consumer, now_ms);  // Redis 7.2: by the attempt
  bool claimed = false;
  auto it = group.pel().lower_bound(spec.start);
  while (attempts > 0 && count > 0 && it != group.pel().end()) {
    --attempts;
    const StreamId id = it->first;
    Result<bool> exists = spec.justid ? contains(id) : read_one(id, out.entries);
    if (!exists) return exists.take_error();
    if (!*exists) {  // gone from the stream: gone from the PEL
      out.deleted.push_back(id);
      ++it;
      group.drop(id);
      --count;  // Redis 7.0.15 counts these against COUNT too
      continue;
    }
    if (spec.min_idle_ms != 0 && now_ms - it->second.delivery_time_ms < spec.min_idle_ms) {
      if (!spec.justid) out.entries.pop_back();
      ++it;
      continue;
    }
    std::optional<std::uint64_t> deliveries;
    if (!spec.justid) deliveries = one_more_delivery(it->second.delivery_count);
    group.claim(id, to, now_ms, deliveries);
    claimed = true;
    if (spec.justid) out.ids.push_back(id);
    --count;
    ++it;
  }
  out.next = it == group.pel().end() ? StreamId::min() : it->first;
  if (claimed) group.active(to, now_ms);
  return out;
}

// --- Redis 7.0's counters ----------------------------------------------------------------------

bool Stream::range_has_tombstones(StreamId start, StreamId end) const {
  if (length() == 0 || max_deleted_id_ == StreamId::min()) return false;
  if (first_id_ > max_deleted_id_) return false;  // the last tombstone is before the first entry
  return start <= max_deleted_id_ && max_deleted_id_ <= end;
}

std::int64_t Stream::estimate_entries_read(StreamId id) const {
  const auto added = static_cast<std::int64_t>(entries_added_);
  if (added == 0) return 0;
  if (length() == 0 && id <= last_id_) return added;
  if (id == last_id_) return added;
  if (id > last_id_) return kEntriesReadUnknown;
  if (max_deleted_id_ == StreamId::min() || max_deleted_id_ < first_id_) {
    // No fragmentation ahead: the entries before the first one were all trimmed.
    const auto len = static_cast<std::int64_t>(length());
    if (id < first_id_) return added - len;
    if (id == first_id_) return added - len + 1;
  }
  return kEntriesReadUnknown;
}

std::optional<std::int64_t> Stream::lag(const ConsumerGroup& g) const {
  const auto added = static_cast<std::int64_t>(entries_added_);
  if (added == 0) return 0;
  if (g.entries_read() != kEntriesReadUnknown && !range_has_tombstones(g.last_delivered(), StreamId::max())) {
    return added - g.entries_read();
  }
  const std::int64_t read = estimate_entries_read(g.last_delivered());
  if (read == kEntriesReadUnknown) return std::nullopt;
  return added - read;
}

}  // namespace runnel
