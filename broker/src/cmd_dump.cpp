// DUMP and RESTORE: a stream as Redis 7.0 serializes it (storage/rdb.hpp has the format), so
// streams move between Redis and Runnel with Redis's own tools. Both run on the key's shard.
#include <map>
#include <variant>

#include <runnel/storage/rdb.hpp>

#include "command.hpp"
#include "keyspace.hpp"
#include "log.hpp"
#include "shard.hpp"
#include "stream_reply.hpp"
#include "streams/stream.hpp"

namespace runnel {
namespace cmd {
namespace {

namespace rdb = storage::rdb;

// The stream as DUMP carries it. Refused: a stream whose serialized entries would pass
// `limit` bytes (proto-max-bulk-len: what RESTORE could take back), and one with NACKed
// entries (Redis 8.8), which have no owner, as Redis 7.0's format requires.
Result<rdb::Stream> to_rdb(const Stream& s, std::size_t limit) {
  rdb::Stream out;
  std::size_t bytes = 0;
  bool too_big = false;
  const storage::Error error = s.entries().scan(StreamId::min(), StreamId::max(), false, [&](const storage::EntryView& e) {
    bytes += e.payload.size() + 16;
    if (bytes > limit) {
      too_big = true;
      return false;
    }
    rdb::Entry entry{e.id, {}};
    storage::FieldCursor cursor(e.payload);
    std::string_view field, value;
    while (cursor.next(field) && cursor.next(value)) entry.fields.emplace_back(field, value);
    out.entries.push_back(std::move(entry));
    return true;
  });
  if (too_big) {
    return op_error(Errc::kArgument, "ERR the stream is too large to DUMP: its entries pass proto-max-bulk-len (" +
                                         std::to_string(limit) + " bytes), which RESTORE could not take back");
  }
  if (error) return OpError{Errc::kStorage, {}, error};
  out.last_id = s.last_id();
  out.first_id = s.first_id();
  out.max_deleted_id = s.max_deleted_id();
  out.entries_added = s.entries_added();
  for (const auto& [name, group] : s.groups()) {
    rdb::Group g{name, group.last_delivered(), group.entries_read(), {}, {}};
    for (const auto& [id, p] : group.pel()) {
      if (p.owner == nullptr) {
        return op_error(Errc::kArgument,
                        "ERR the stream has NACKed entries (XNACK), which Redis 7.0's DUMP format cannot carry: "
                        "claim or acknowledge them first");
      }
      g.pel.push_back(rdb::PendingEntry{id, p.delivery_time_ms, p.delivery_count});
    }
    for (const auto& [cname, c] : group.consumers()) {
      g.consumers.push_back(rdb::Consumer{cname, c.seen_time_ms, c.active_time_ms,
                                          std::vector<StreamId>(c.pending.begin(), c.pending.end())});
    }
    out.groups.push_back(std::move(g));
  }
  return out;
}

// What a payload holds is checked before anything changes: everything Stream's own
// operations would refuse later is refused here, so a RESTORE either makes the whole stream
// or nothing.
const char* refuse(const rdb::Stream& s) {
  if (!s.entries.empty() && s.entries.front().id == StreamId::min()) return "an entry with ID 0-0";
  if (s.entries_added < s.entries.size()) return "entries-added below the stream's length";
  return nullptr;
}

void build(Stream& stream, const rdb::Stream& s) {
  std::vector<std::string_view> fields;
  for (const rdb::Entry& e : s.entries) {
    fields.clear();
    for (const auto& [field, value] : e.fields) {
      fields.push_back(field);
      fields.push_back(value);
    }
    stream.append(e.id, fields);
  }
  (void)stream.set_id(s.last_id, static_cast<std::int64_t>(s.entries_added), s.max_deleted_id);
  for (const rdb::Group& g : s.groups) {
    Result<ConsumerGroup*> made = stream.create_group(g.name, g.last_delivered, g.entries_read);
    if (!made) continue;  // names are unique in a payload that passed restore_stream
    ConsumerGroup& group = **made;
    std::map<StreamId, const rdb::PendingEntry*> pel;
    for (const rdb::PendingEntry& p : g.pel) pel[p.id] = &p;
    for (const rdb::Consumer& c : g.consumers) {
      // A payload from before Redis 7.2 has no active time: the seen time stands for it.
      group.restore_consumer(c.name, c.seen_time_ms, c.active_time_ms.value_or(c.seen_time_ms));
      Consumer& consumer = group.consumer(c.name, c.seen_time_ms);
      for (const StreamId id : c.pending) {
        const rdb::PendingEntry& p = *pel.at(id);
        group.add_pending(id, consumer, p.delivery_time_ms);
        group.set_delivery_count(id, p.delivery_count);
      }
    }
  }
}

}  // namespace

}  // namespace cmd

Result<std::optional<storage::rdb::Stream>> stream_value(Shard& shard, std::string_view key, ServerState& state) {
  if (const std::string damage = shard.damage_of(key); !damage.empty()) return op_error(Errc::kArgument, damage);
  if (shard.keyspace.type_of(key) == KeyType::kString) {
    return op_error(Errc::kArgument, "ERR DUMP of a string key is not supported by Runnel");
  }
  const Stream* stream = shard.keyspace.find(key);
  if (stream == nullptr) return std::optional<storage::rdb::Stream>();
  Result<storage::rdb::Stream> value = cmd::to_rdb(*stream, state.config.snapshot().proto_max_bulk_len);
  if (!value) return value.take_error();
  return std::optional<storage::rdb::Stream>(std::move(*value));
}

Result<std::optional<std::string>> dump_payload(Shard& shard, std::string_view key, ServerState& state) {
  Result<std::optional<storage::rdb::Stream>> value = stream_value(shard, key, state);
  if (!value) return value.take_error();
  if (!*value) return std::optional<std::string>();
  return std::optional<std::string>(storage::rdb::dump_stream(**value, state.node_limits));
}

Result<void> make_stream(Shard& shard, std::string_view key, const storage::rdb::Stream& value) {
  Result<Stream*> created = shard.keyspace.find_or_create(key);
  if (!created) return created.take_error();
  cmd::build(**created, value);
  shard.signal_modified(key);
  shard.signal_ready(key);
  return {};
}

namespace cmd {

void dump(CommandContext& ctx) {
  const Result<std::optional<std::string>> payload = dump_payload(*ctx.shard, ctx.args[1], ctx.server);
  if (!payload) return write_error(ctx.reply, ctx.args[1], payload.error());
  if (!*payload) return ctx.reply.null();
  ctx.reply.bulk(**payload);
}

void restore(CommandContext& ctx) {
  const auto& args = ctx.args;
  bool replace = false, absttl = false, idletime = false, freq = false;
  for (std::size_t i = 4; i < args.size(); ++i) {
    const bool more = i + 1 < args.size();
    std::int64_t n = 0;
    if (equals_ignore_case(args[i], "REPLACE")) {
      replace = true;
    } else if (equals_ignore_case(args[i], "ABSTTL")) {
      absttl = true;
    } else if (equals_ignore_case(args[i], "IDLETIME") && more && !freq) {
      if (!parse_int64(args[++i], n)) return ctx.reply.error(kNotInteger);
      if (n < 0) return ctx.reply.error("ERR Invalid IDLETIME value, must be >= 0");
      idletime = true;  // no eviction here: accepted, and nothing to set
    } else if (equals_ignore_case(args[i], "FREQ") && more && !idletime) {
      if (!parse_int64(args[++i], n)) return ctx.reply.error(kNotInteger);
      if (n < 0 || n > 255) return ctx.reply.error("ERR Invalid FREQ value, must be >= 0 and <= 255");
      freq = true;
    } else {
      return ctx.reply.error("ERR syntax error");
    }
  }
  Keyspace& keyspace = ctx.shard->keyspace;
  if (!replace && keyspace.lookup(args[1]) != nullptr) return ctx.reply.error("BUSYKEY Target key name already exists.");
  std::int64_t ttl = 0;
  if (!parse_int64(args[2], ttl)) return ctx.reply.error(kNotInteger);
  if (ttl < 0) return ctx.reply.error("ERR Invalid TTL value, must be >= 0");
  const std::uint64_t limit = ctx.server.config.snapshot().proto_max_bulk_len;
  auto decoded = rdb::restore_stream(args[3], limit);
  if (const auto* bad = std::get_if<rdb::RestoreError>(&decoded)) {
    switch (bad->kind) {
      case rdb::RestoreError::Kind::kChecksum:
        return ctx.reply.error("ERR DUMP payload version or checksum are wrong");
      case rdb::RestoreError::Kind::kNotAStream:
        return ctx.reply.error("ERR Bad data format: the payload holds a value of another type (" + bad->detail +
                               "); Runnel stores streams only");
      case rdb::RestoreError::Kind::kTooLarge:
        return ctx.reply.error("ERR the stream is too large to RESTORE: its entries pass proto-max-bulk-len (" +
                               std::to_string(limit) + " bytes)");
      case rdb::RestoreError::Kind::kBadFormat:
        log::warning("RESTORE of '" + log::escape_sample(args[1]) + "' refused: " + bad->detail);
        return ctx.reply.error("ERR Bad data format");
    }
  }
  const rdb::Stream& value = std::get<rdb::Stream>(decoded);
  if (const char* why = refuse(value)) {
    log::warning("RESTORE of '" + log::escape_sample(args[1]) + "' refused: " + why);
    return ctx.reply.error("ERR Bad data format");
  }
  // A TTL already past: Redis answers OK and makes no key.
  const std::int64_t at = ttl == 0 ? 0 : absttl ? ttl : wall_now_ms() + ttl;
  const bool expired = at != 0 && at <= wall_now_ms();
  if (replace) (void)ctx.shard->delete_key(args[1]);
  if (expired) return ctx.reply.simple("OK");
  if (Result<void> made = make_stream(*ctx.shard, args[1], value); !made) {
    return write_error(ctx.reply, args[1], made.error());
  }
  if (at != 0) {
    if (KeyValue* made = keyspace.lookup(args[1])) keyspace.set_expiry(args[1], *made, at);
  }
  ctx.reply.simple("OK");
}

}  // namespace cmd
}  // namespace runnel
