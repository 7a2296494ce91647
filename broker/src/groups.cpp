// Consumer groups' data and Redis 7.0's entries-read and lag rules.
#include "groups.hpp"

#include "keyspace.hpp"

namespace runnel {

Consumer* ConsumerGroup::consumer(std::string_view name, bool create, std::int64_t now_ms,
                                  bool* created) {
  if (created) *created = false;
  auto it = consumers.find(name);
  if (it == consumers.end()) {
    if (!create) return nullptr;
    it = consumers.emplace(std::string(name), Consumer{std::string(name), now_ms, {}}).first;
    if (created) *created = true;
  }
  it->second.seen_time_ms = now_ms;
  return &it->second;
}

std::uint64_t ConsumerGroup::delete_consumer(std::string_view name) {
  auto it = consumers.find(name);
  if (it == consumers.end()) return 0;
  const std::uint64_t pending = it->second.pending.size();
  for (const StreamId id : it->second.pending) pel.erase(id);
  consumers.erase(it);
  return pending;
}

void ConsumerGroup::add_pending(StreamId id, Consumer& to, std::int64_t now_ms) {
  auto [it, inserted] = pel.try_emplace(id, PendingEntry{&to, now_ms, 1});
  if (!inserted) {
    it->second.owner->pending.erase(id);
    it->second = PendingEntry{&to, now_ms, 1};
  }
  to.pending.insert(id);
}

bool ConsumerGroup::ack(StreamId id) {
  auto it = pel.find(id);
  if (it == pel.end()) return false;
  it->second.owner->pending.erase(id);
  pel.erase(it);
  return true;
}

bool range_has_tombstones(const Stream& s, StreamId start, StreamId end) {
  if (s.length() == 0 || s.max_deleted_id == StreamId::min()) return false;
  if (s.first_id > s.max_deleted_id) return false;  // the last tombstone is before the first entry
  return start <= s.max_deleted_id && s.max_deleted_id <= end;
}

std::int64_t estimate_entries_read(const Stream& s, StreamId id) {
  const auto added = static_cast<std::int64_t>(s.entries_added);
  if (added == 0) return 0;
  if (s.length() == 0 && id <= s.last_id) return added;
  if (id == s.last_id) return added;
  if (id > s.last_id) return kEntriesReadUnknown;
  if (s.max_deleted_id == StreamId::min() || s.max_deleted_id < s.first_id) {
    // No fragmentation ahead: the entries before the first one were all trimmed.
    const auto length = static_cast<std::int64_t>(s.length());
    if (id < s.first_id) return added - length;
    if (id == s.first_id) return added - length + 1;
  }
  return kEntriesReadUnknown;
}

void advance_group(const Stream& s, ConsumerGroup& g, StreamId id) {
  if (id <= g.last_delivered) return;
  if (g.entries_read != kEntriesReadUnknown && !range_has_tombstones(s, id, StreamId::max())) {
    ++g.entries_read;
  } else if (s.entries_added != 0) {
    g.entries_read = estimate_entries_read(s, id);
  }
  g.last_delivered = id;
}

void write_entries_read_and_lag(protocol::ReplyWriter& reply, const Stream& s,
                                const ConsumerGroup& g) {
  reply.bulk("entries-read");
  if (g.entries_read != kEntriesReadUnknown) {
    reply.integer(g.entries_read);
  } else {
    reply.null();
  }
  reply.bulk("lag");
  if (const auto lag = group_lag(s, g)) {
    reply.integer(*lag);
  } else {
    reply.null();
  }
}

std::optional<std::int64_t> group_lag(const Stream& s, const ConsumerGroup& g) {
  const auto added = static_cast<std::int64_t>(s.entries_added);
  if (added == 0) return 0;
  if (g.entries_read != kEntriesReadUnknown &&
      !range_has_tombstones(s, g.last_delivered, StreamId::max())) {
    return added - g.entries_read;
  }
  const std::int64_t read = estimate_entries_read(s, g.last_delivered);
  if (read == kEntriesReadUnknown) return std::nullopt;
  return added - read;
}

}  // namespace runnel
