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
  touch_consumer(name);
  return &it->second;
}

std::uint64_t ConsumerGroup::delete_consumer(std::string_view name) {
  auto it = consumers.find(name);
  if (it == consumers.end()) return 0;
  const std::uint64_t pending = it->second.pending.size();
  for (const StreamId id : it->second.pending) {
    pel.erase(id);
    touch_pending(id);
  }
  touch_consumer(name);
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
  touch_pending(id);
}

bool ConsumerGroup::ack(StreamId id) {
  auto it = pel.find(id);
  if (it == pel.end()) return false;
  it->second.owner->pending.erase(id);
  pel.erase(it);
  touch_pending(id);
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
  g.touch();
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

// --- the group journal -----------------------------------------------------------------------

namespace {

using storage::GroupRecord;

GroupRecord record(GroupRecord::Type type, std::string_view group, std::string_view consumer = {},
                   StreamId id = {}) {
  GroupRecord r;
  r.type = type;
  r.group = group;
  r.consumer = consumer;
  r.id = id;
  return r;
}

GroupRecord group_set(std::string_view name, const ConsumerGroup& g) {
  GroupRecord r = record(GroupRecord::Type::kGroupSet, name, {}, g.last_delivered);
  r.entries_read = g.entries_read;
  return r;
}

GroupRecord consumer_set(std::string_view group, const Consumer& c) {
  GroupRecord r = record(GroupRecord::Type::kConsumerSet, group, c.name);
  r.time_ms = c.seen_time_ms;
  return r;
}

GroupRecord pending_set(std::string_view group, StreamId id, const PendingEntry& p) {
  GroupRecord r = record(GroupRecord::Type::kPendingSet, group,
                         p.owner != nullptr ? std::string_view(p.owner->name) : std::string_view(), id);
  r.time_ms = p.delivery_time_ms;
  r.count = p.delivery_count;
  return r;
}

}  // namespace

void journal_group_changes(Stream& stream, storage::GroupJournal& journal) {
  GroupChanges& changes = *stream.group_changes;
  // Deletions of whole groups first: a group destroyed and created again starts empty.
  for (const std::string& name : changes.destroyed) {
    journal.append(record(GroupRecord::Type::kGroupDelete, name));
  }
  for (const auto& [name, delta] : changes.groups) {
    auto g = stream.groups.find(name);
    if (g == stream.groups.end()) continue;  // destroyed: its deletion covers the rest
    const ConsumerGroup& group = g->second;
    if (delta.header) journal.append(group_set(name, group));
    // Consumers before the pending entries that name them as owners.
    for (const std::string& consumer : delta.consumers) {
      auto c = group.consumers.find(consumer);
      journal.append(c != group.consumers.end()
                         ? consumer_set(name, c->second)
                         : record(GroupRecord::Type::kConsumerDelete, name, consumer));
    }
    for (const StreamId id : delta.pending) {
      auto p = group.pel.find(id);
      journal.append(p != group.pel.end() ? pending_set(name, id, p->second)
                                          : record(GroupRecord::Type::kPendingDelete, name, {}, id));
    }
  }
  changes = GroupChanges{};
}

void emit_group_state(const Stream& stream, const storage::GroupRecordVisitor& emit) {
  for (const auto& [name, group] : stream.groups) {
    emit(group_set(name, group));
    for (const auto& [cname, consumer] : group.consumers) emit(consumer_set(name, consumer));
    for (const auto& [id, entry] : group.pel) emit(pending_set(name, id, entry));
  }
}

void apply_group_record(Stream& stream, const storage::GroupRecord& r) {
  using Type = GroupRecord::Type;
  if (r.type == Type::kGroupSet) {
    ConsumerGroup* group = stream.create_group(r.group);
    if (group == nullptr) group = &stream.groups.find(r.group)->second;
    group->last_delivered = r.id;
    group->entries_read = r.entries_read;
    return;
  }
  auto g = stream.groups.find(r.group);
  if (g == stream.groups.end()) return;
  ConsumerGroup& group = g->second;
  switch (r.type) {
    case Type::kGroupSet:
      break;
    case Type::kGroupDelete:
      stream.groups.erase(g);
      break;
    case Type::kConsumerSet:
      group.consumer(r.consumer, true, r.time_ms);
      break;
    case Type::kConsumerDelete:
      group.delete_consumer(r.consumer);
      break;
    case Type::kPendingSet: {
      auto owner = group.consumers.find(r.consumer);
      if (owner == group.consumers.end()) break;  // never written so: consumers come first
      group.add_pending(r.id, owner->second, r.time_ms);
      PendingEntry& p = group.pel.at(r.id);
      p.delivery_count = r.count;
      break;
    }
    case Type::kPendingDelete:
      group.ack(r.id);
      break;
  }
}

}  // namespace runnel
