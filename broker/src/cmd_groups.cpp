// Consumer-group commands: XGROUP, XACK, XPENDING, XINFO GROUPS and XINFO CONSUMERS, and the
// deliveries XREADGROUP makes. All run on the shard that owns the stream. Argument checks
// follow Redis 7.0's order (t_stream.c), since that decides which error a client sees.

#include "command.hpp"
#include "stream_args.hpp"
#include "stream_reply.hpp"

namespace runnel {
namespace {


// The group `name` of the stream at `key`, or null when either is missing.
ConsumerGroup* find_group(Shard& shard, std::string_view key, std::string_view name,
                          Stream** stream_out = nullptr) {
  Stream* stream = shard.keyspace.find(key);
  if (stream_out) *stream_out = stream;
  if (stream == nullptr) return nullptr;
  auto it = stream->groups.find(name);
  return it == stream->groups.end() ? nullptr : &it->second;
}

void reply_no_group(CommandContext& ctx, std::string_view group, std::string_view key) {
  ctx.reply.error("NOGROUP No such consumer group '" + std::string(group) + "' for key name '" +
                  std::string(key) + "'");
}

// What XGROUP CREATE and SETID share: [MKSTREAM] [ENTRIESREAD n] after the ID.
struct GroupOptions {
  bool mkstream = false;
  std::int64_t entries_read = kEntriesReadUnknown;
};

// Returns false after replying with the error.
bool parse_group_options(CommandContext& ctx, bool create, GroupOptions& out) {
  for (std::size_t i = 5; i < ctx.args.size();) {
    if (create && equals_ignore_case(ctx.args[i], "MKSTREAM")) {
      out.mkstream = true;
      ++i;
    } else if (equals_ignore_case(ctx.args[i], "ENTRIESREAD") && i + 1 < ctx.args.size()) {
      if (!parse_int64(ctx.args[i + 1], out.entries_read)) {
        ctx.reply.error(kNotInteger);
        return false;
      }
      if (out.entries_read < 0 && out.entries_read != kEntriesReadUnknown) {
        ctx.reply.error("ERR value for ENTRIESREAD must be positive or -1");
        return false;
      }
      i += 2;
    } else {
      reply_subcommand_syntax_error(ctx);
      return false;
    }
  }
  return true;
}

constexpr std::string_view kKeyMustExist =
    "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to "
    "use the MKSTREAM option to create an empty stream automatically.";

// The stream and group an XGROUP subcommand works on, with Redis's errors when they are not
// there. Returns null after replying.
Stream* group_target(CommandContext& ctx, bool group_required, ConsumerGroup** group) {
  Stream* stream = ctx.shard->keyspace.find(ctx.args[2]);
  if (stream == nullptr) {
    ctx.reply.error(kKeyMustExist);
    return nullptr;
  }
  auto it = stream->groups.find(ctx.args[3]);
  *group = it == stream->groups.end() ? nullptr : &it->second;
  if (*group == nullptr && group_required) {
    reply_no_group(ctx, ctx.args[3], ctx.args[2]);
    return nullptr;
  }
  return stream;
}

}  // namespace

// --- deliveries for XREADGROUP ---------------------------------------------------------------

storage::Error deliver_new(protocol::ReplyWriter& reply, Stream& stream, ConsumerGroup& group,
                           Consumer& consumer, std::size_t count, bool noack) {
  const std::int64_t now = wall_now_ms();
  std::vector<StreamId> delivered;
  if (storage::Error error = write_range(reply, stream.entries(), *group.last_delivered.next(), StreamId::max(),
                                         false, count, [&](StreamId id) { delivered.push_back(id); })) {
    return error;  // the group does not move past entries it could not read
  }
  for (const StreamId id : delivered) {
    advance_group(stream, group, id);
    if (!noack) group.add_pending(id, consumer, now);
  }
  return {};
}

storage::Error deliver_history(protocol::ReplyWriter& reply, Stream& stream, ConsumerGroup& group,
                               Consumer& consumer, StreamId after, std::size_t count) {
  const std::int64_t now = wall_now_ms();
  std::string body;
  protocol::ReplyWriter out(body, reply.version());
  std::size_t n = 0;
  std::vector<StreamId> redelivered;  // counted once every read has succeeded
  const auto from = after.next();
  for (auto it = from ? consumer.pending.lower_bound(*from) : consumer.pending.end();
       it != consumer.pending.end() && (count == 0 || n < count); ++it) {
    bool found = false;
    storage::Error error = stream.entries().scan(*it, *it, false, [&](const storage::EntryView& e) {
      write_entry(out, e);
      found = true;
      return false;
    });
    if (error) return error;
    if (found) {
      redelivered.push_back(*it);
    } else {
      // Deleted since delivery: Redis reports the ID with no fields.
      out.array(2);
      write_stream_id(out, *it);
      out.null_array();
    }
    ++n;
  }
  for (const StreamId id : redelivered) {
    PendingEntry& p = group.pel.at(id);
    p.delivery_time_ms = now;
    ++p.delivery_count;
    group.touch_pending(id);
  }
  reply.array(n);
  reply.buffer().append(body);
  return {};
}

namespace cmd {

void xgroup_create(CommandContext& ctx) {
  GroupOptions options;
  if (!parse_group_options(ctx, true, options)) return;
  Stream* stream = ctx.shard->keyspace.find(ctx.args[2]);
  if (stream == nullptr && !options.mkstream) return ctx.reply.error(kKeyMustExist);
  StreamId id;
  if (ctx.args[4] == "$") {
    id = stream ? stream->last_id : StreamId::min();
  } else {
    const auto parsed = parse_id_arg(ctx.args[4], 0, true);
    if (!parsed) return ctx.reply.error(kInvalidStreamId);
    id = parsed->id;
  }
  if (stream == nullptr) {
    std::string error;
    stream = ctx.shard->keyspace.find_or_create(ctx.args[2], error);
    if (stream == nullptr) return ctx.reply.error("MISCONF " + error);
    ctx.shard->signal_modified(ctx.args[2]);
  }
  ConsumerGroup* group = stream->create_group(ctx.args[3]);
  if (group == nullptr) return ctx.reply.error("BUSYGROUP Consumer Group name already exists");
  group->last_delivered = id;
  group->entries_read = options.entries_read;
  group->touch();
  ctx.reply.ok();
}

void xgroup_setid(CommandContext& ctx) {
  GroupOptions options;
  if (!parse_group_options(ctx, false, options)) return;
  ConsumerGroup* group = nullptr;
  Stream* stream = group_target(ctx, true, &group);
  if (stream == nullptr) return;
  if (ctx.args.size() != 5 && ctx.args.size() != 7) return reply_subcommand_syntax_error(ctx);
  StreamId id;
  if (ctx.args[4] == "$") {
    id = stream->last_id;
  } else {
    const auto parsed = parse_id_arg(ctx.args[4], 0, false);
    if (!parsed) return ctx.reply.error(kInvalidStreamId);
    id = parsed->id;
  }
  group->last_delivered = id;
  group->entries_read = options.entries_read;
  group->touch();
  ctx.reply.ok();
}

void xgroup_destroy(CommandContext& ctx) {
  ConsumerGroup* group = nullptr;
  Stream* stream = group_target(ctx, false, &group);
  if (stream == nullptr) return;
  if (group == nullptr) return ctx.reply.integer(0);
  stream->destroy_group(ctx.args[3]);
  ctx.reply.integer(1);
  ctx.shard->signal_ready(ctx.args[2]);  // its blocked readers get -NOGROUP
}

void xgroup_createconsumer(CommandContext& ctx) {
  ConsumerGroup* group = nullptr;
  if (group_target(ctx, true, &group) == nullptr) return;
  bool created = false;
  group->consumer(ctx.args[4], true, wall_now_ms(), &created);
  ctx.reply.integer(created ? 1 : 0);
}

void xgroup_delconsumer(CommandContext& ctx) {
  ConsumerGroup* group = nullptr;
  if (group_target(ctx, true, &group) == nullptr) return;
  ctx.reply.integer(static_cast<std::int64_t>(group->delete_consumer(ctx.args[4])));
}

void xgroup_help(CommandContext& ctx) {
  reply_help(ctx, {"CREATE <key> <groupname> <id|$> [option]",
                   "    Create a new consumer group. Options are:", "    * MKSTREAM",
                   "      Create the empty stream if it does not exist.",
                   "    * ENTRIESREAD entries_read",
                   "      Set the group's entries_read counter (internal use).",
                   "CREATECONSUMER <key> <groupname> <consumer>",
                   "    Create a new consumer in the specified group.",
                   "DELCONSUMER <key> <groupname> <consumer>", "    Remove the specified consumer.",
                   "DESTROY <key> <groupname>", "    Remove the specified group.",
                   "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
                   "    Set the current group ID and entries_read counter."});
}

void xack(CommandContext& ctx) {
  ConsumerGroup* group = find_group(*ctx.shard, ctx.args[1], ctx.args[2]);
  if (group == nullptr) return ctx.reply.integer(0);
  // Every ID is checked first: once some are acknowledged, the reply cannot be an error.
  std::vector<StreamId> ids;
  for (std::size_t i = 3; i < ctx.args.size(); ++i) {
    const auto id = parse_id_arg(ctx.args[i], 0, true);
    if (!id) return ctx.reply.error(kInvalidStreamId);
    ids.push_back(id->id);
  }
  std::int64_t acknowledged = 0;
  for (const StreamId id : ids) acknowledged += group->ack(id) ? 1 : 0;
  ctx.reply.integer(acknowledged);
}

void xpending(CommandContext& ctx) {
  const auto& args = ctx.args;
  const bool summary = args.size() == 3;
  if (!summary && (args.size() < 6 || args.size() > 9)) return ctx.reply.error("ERR syntax error");
  std::int64_t min_idle = 0, count = 0;
  StreamId start, end;
  std::optional<std::string_view> consumer_name;
  if (!summary) {
    std::size_t at = 3;
    if (equals_ignore_case(args[3], "IDLE")) {
      if (!parse_int64(args[4], min_idle)) return ctx.reply.error(kNotInteger);
      if (args.size() < 8) return ctx.reply.error("ERR syntax error");
      at += 2;
    }
    if (!parse_int64(args[at + 2], count)) return ctx.reply.error(kNotInteger);
    if (count < 0) count = 0;
    bool exclusive = false;
    auto bound = [&](std::string_view text, std::uint64_t missing_seq, StreamId& id) {
      exclusive = text.size() > 1 && text[0] == '(';
      const auto parsed = exclusive ? parse_id_arg(text.substr(1), missing_seq, true)
                                    : parse_id_arg(text, missing_seq, false);
      if (parsed) id = parsed->id;
      return parsed.has_value();
    };
    if (!bound(args[at], 0, start)) return ctx.reply.error(kInvalidStreamId);
    if (exclusive) {
      if (!start.next()) return ctx.reply.error("ERR invalid start ID for the interval");
      start = *start.next();
    }
    if (!bound(args[at + 1], UINT64_MAX, end)) return ctx.reply.error(kInvalidStreamId);
    if (exclusive) {
      if (!end.prev()) return ctx.reply.error("ERR invalid end ID for the interval");
      end = *end.prev();
    }
    if (at + 3 < args.size()) consumer_name = args[at + 3];
  }
  const ConsumerGroup* found = find_group(*ctx.shard, args[1], args[2]);
  if (found == nullptr) {
    return ctx.reply.error("NOGROUP No such key '" + std::string(args[1]) +
                           "' or consumer group '" + std::string(args[2]) + "'");
  }
  const ConsumerGroup& group = *found;
  if (summary) {
    ctx.reply.array(4);
    ctx.reply.integer(static_cast<std::int64_t>(group.pel.size()));
    if (group.pel.empty()) {
      ctx.reply.null();
      ctx.reply.null();
      ctx.reply.null_array();
      return;
    }
    write_stream_id(ctx.reply, group.pel.begin()->first);
    write_stream_id(ctx.reply, group.pel.rbegin()->first);
    std::size_t with_pending = 0;
    for (const auto& [name, c] : group.consumers) with_pending += c.pending.empty() ? 0 : 1;
    ctx.reply.array(with_pending);
    for (const auto& [name, c] : group.consumers) {
      if (c.pending.empty()) continue;
      ctx.reply.array(2);
      ctx.reply.bulk(name);
      ctx.reply.bulk(std::to_string(c.pending.size()));
    }
    return;
  }
  const Consumer* only = nullptr;
  if (consumer_name) {
    auto c = group.consumers.find(*consumer_name);
    if (c == group.consumers.end()) return ctx.reply.array(0);
    only = &c->second;
  }
  const std::int64_t now = wall_now_ms();
  std::string body;
  protocol::ReplyWriter out(body, ctx.reply.version());
  std::size_t n = 0;
  for (auto it = group.pel.lower_bound(start);
       count > 0 && it != group.pel.end() && it->first <= end; ++it) {
    const PendingEntry& p = it->second;
    if (only != nullptr && p.owner != only) continue;
    if (min_idle != 0 && now - p.delivery_time_ms < min_idle) continue;
    out.array(4);
    write_stream_id(out, it->first);
    out.bulk(p.owner->name);
    out.integer(std::max<std::int64_t>(0, now - p.delivery_time_ms));
    out.integer(static_cast<std::int64_t>(p.delivery_count));
    ++n;
    --count;
  }
  ctx.reply.array(n);
  ctx.reply.buffer().append(body);
}

namespace {

// Whether the stream still holds the entry `id` (in `exists`), or the error of its read.
storage::Error entry_exists(const Stream& stream, StreamId id, bool& exists) {
  exists = false;
  return stream.entries().scan(id, id, false, [&](const storage::EntryView&) {
    exists = true;
    return false;
  });
}

// Gives the pending entry `id` to `to` (creating `to` on first use), as XCLAIM and XAUTOCLAIM
// do, and writes it: the entry, or only its ID.
// The entry is read first: a read that fails claims nothing and returns its error (entries the
// same command claimed before stay claimed, as if their reply had been lost).
storage::Error claim(ConsumerGroup& group, std::map<StreamId, PendingEntry>::iterator it, Consumer*& to,
                     std::string_view to_name, std::int64_t now, std::int64_t delivery_time,
                     std::int64_t retry_count, bool justid, const Stream& stream,
                     protocol::ReplyWriter& out) {
  std::string entry;
  if (!justid) {
    protocol::ReplyWriter one(entry, out.version());
    if (storage::Error error = stream.entries().scan(it->first, it->first, false, [&](const storage::EntryView& e) {
          write_entry(one, e);
          return false;
        })) {
      return error;
    }
  }
  if (to == nullptr) to = group.consumer(to_name, true, now);
  PendingEntry& p = it->second;
  if (p.owner != to) {
    if (p.owner != nullptr) p.owner->pending.erase(it->first);
    to->pending.insert(it->first);
    p.owner = to;
  }
  p.delivery_time_ms = delivery_time;
  if (retry_count >= 0) {
    p.delivery_count = static_cast<std::uint64_t>(retry_count);
  } else if (!justid) {
    ++p.delivery_count;
  }
  group.touch_pending(it->first);
  if (justid) {
    write_stream_id(out, it->first);
  } else {
    out.buffer().append(entry);
  }
  return {};
}

void drop_pending(ConsumerGroup& group, std::map<StreamId, PendingEntry>::iterator it) {
  if (it->second.owner != nullptr) it->second.owner->pending.erase(it->first);
  group.touch_pending(it->first);
  group.pel.erase(it);
}

}  // namespace

void xclaim(CommandContext& ctx) {
  const auto& args = ctx.args;
  Stream* stream = nullptr;
  ConsumerGroup* group = find_group(*ctx.shard, args[1], args[2], &stream);
  if (group == nullptr) {
    return ctx.reply.error("NOGROUP No such key '" + std::string(args[1]) +
                           "' or consumer group '" + std::string(args[2]) + "'");
  }
  std::int64_t min_idle = 0;
  if (!parse_int64(args[4], min_idle)) {
    return ctx.reply.error("ERR Invalid min-idle-time argument for XCLAIM");
  }
  if (min_idle < 0) min_idle = 0;
  // The IDs run until the first argument that is not one; options follow.
  std::vector<StreamId> ids;
  std::size_t j = 5;
  for (; j < args.size(); ++j) {
    const auto id = parse_id_arg(args[j], 0, true);
    if (!id) break;
    ids.push_back(id->id);
  }
  const std::int64_t now = wall_now_ms();
  std::int64_t delivery_time = -1, retry_count = -1;
  bool force = false, justid = false;
  StreamId last_id;
  for (; j < args.size(); ++j) {
    const bool more = j + 1 < args.size();
    const std::string_view opt = args[j];
    auto number = [&](std::string_view what, std::int64_t& value) {
      if (parse_int64(args[++j], value)) return true;
      ctx.reply.error("ERR Invalid " + std::string(what) + " option argument for XCLAIM");
      return false;
    };
    if (equals_ignore_case(opt, "FORCE")) {
      force = true;
    } else if (equals_ignore_case(opt, "JUSTID")) {
      justid = true;
    } else if (equals_ignore_case(opt, "IDLE") && more) {
      if (!number("IDLE", delivery_time)) return;
      delivery_time = now - delivery_time;
    } else if (equals_ignore_case(opt, "TIME") && more) {
      if (!number("TIME", delivery_time)) return;
    } else if (equals_ignore_case(opt, "RETRYCOUNT") && more) {
      if (!number("RETRYCOUNT", retry_count)) return;
    } else if (equals_ignore_case(opt, "LASTID") && more) {
      const auto id = parse_id_arg(args[++j], 0, true);
      if (!id) return ctx.reply.error(kInvalidStreamId);
      last_id = id->id;
    } else {
      return ctx.reply.error("ERR Unrecognized XCLAIM option '" + std::string(opt) + "'");
    }
  }
  if (last_id > group->last_delivered) {
    group->last_delivered = last_id;
    group->touch();
  }
  // A time in the future or before 1970 is taken as now, as Redis does.
  if (delivery_time < 0 || delivery_time > now) delivery_time = now;
  std::string body;
  protocol::ReplyWriter out(body, ctx.reply.version());
  std::size_t claimed = 0;
  Consumer* consumer = nullptr;
  for (const StreamId id : ids) {
    auto it = group->pel.find(id);
    bool exists = false;
    if (storage::Error error = entry_exists(*stream, id, exists)) {
      return ctx.reply.error(read_error_text(args[1], error));
    }
    if (!exists) {
      if (it != group->pel.end()) drop_pending(*group, it);  // 7.0: gone from the stream
      continue;
    }
    if (it == group->pel.end()) {
      if (!force) continue;
      it = group->pel.emplace(id, PendingEntry{nullptr, now, 1}).first;
    } else if (it->second.owner != nullptr && min_idle != 0 &&
               now - it->second.delivery_time_ms < min_idle) {
      continue;
    }
    if (storage::Error error =
            claim(*group, it, consumer, args[3], now, delivery_time, retry_count, justid, *stream, out)) {
      return ctx.reply.error(read_error_text(args[1], error));
    }
    ++claimed;
  }
  ctx.reply.array(claimed);
  ctx.reply.buffer().append(body);
}

void xautoclaim(CommandContext& ctx) {
  const auto& args = ctx.args;
  std::int64_t min_idle = 0;
  if (!parse_int64(args[4], min_idle)) {
    return ctx.reply.error("ERR Invalid min-idle-time argument for XAUTOCLAIM");
  }
  if (min_idle < 0) min_idle = 0;
  StreamId start;
  const bool exclusive = args[5].size() > 1 && args[5][0] == '(';
  const auto parsed = exclusive ? parse_id_arg(args[5].substr(1), 0, true)
                                : parse_id_arg(args[5], 0, false);
  if (!parsed) return ctx.reply.error(kInvalidStreamId);
  start = parsed->id;
  if (exclusive) {
    if (!start.next()) return ctx.reply.error("ERR invalid start ID for the interval");
    start = *start.next();
  }
  std::int64_t count = 100;
  bool justid = false;
  for (std::size_t j = 6; j < args.size(); ++j) {
    if (equals_ignore_case(args[j], "COUNT") && j + 1 < args.size()) {
      // Redis bounds COUNT so that its buffer of COUNT stream IDs (16 bytes each) fits.
      if (!parse_int64(args[j + 1], count) || count < 1 || count > INT64_MAX / 16) {
        return ctx.reply.error("ERR COUNT must be > 0");
      }
      ++j;
    } else if (equals_ignore_case(args[j], "JUSTID")) {
      justid = true;
    } else {
      return ctx.reply.error("ERR syntax error");
    }
  }
  Stream* stream = nullptr;
  ConsumerGroup* group = find_group(*ctx.shard, args[1], args[2], &stream);
  if (group == nullptr) {
    return ctx.reply.error("NOGROUP No such key '" + std::string(args[1]) +
                           "' or consumer group '" + std::string(args[2]) + "'");
  }
  const std::int64_t now = wall_now_ms();
  std::int64_t attempts = count * 10;  // PEL entries looked at, at most
  std::string body;
  protocol::ReplyWriter out(body, ctx.reply.version());
  std::size_t claimed = 0;
  std::vector<StreamId> deleted;
  Consumer* consumer = nullptr;
  auto it = group->pel.lower_bound(start);
  while (attempts > 0 && count > 0 && it != group->pel.end()) {
    --attempts;
    bool exists = false;
    if (storage::Error error = entry_exists(*stream, it->first, exists)) {
      return ctx.reply.error(read_error_text(args[1], error));
    }
    if (!exists) {  // gone from the stream: gone from the PEL
      deleted.push_back(it->first);
      auto next = std::next(it);
      drop_pending(*group, it);
      it = next;
      --count;  // Redis 7.0.15 counts these against COUNT too
      continue;
    }
    if (min_idle != 0 && now - it->second.delivery_time_ms < min_idle) {
      ++it;
      continue;
    }
    if (storage::Error error = claim(*group, it, consumer, args[3], now, now, -1, justid, *stream, out)) {
      return ctx.reply.error(read_error_text(args[1], error));
    }
    ++claimed;
    --count;
    ++it;
  }
  ctx.reply.array(3);
  write_stream_id(ctx.reply, it == group->pel.end() ? StreamId::min() : it->first);
  ctx.reply.array(claimed);
  ctx.reply.buffer().append(body);
  ctx.reply.array(deleted.size());
  for (const StreamId id : deleted) write_stream_id(ctx.reply, id);
}

void xinfo_groups(CommandContext& ctx) {
  const Stream* stream = ctx.shard->keyspace.find(ctx.args[2]);
  if (stream == nullptr) return ctx.reply.error("ERR no such key");
  ctx.reply.array(stream->groups.size());
  for (const auto& [name, group] : stream->groups) {
    ctx.reply.map(6);
    ctx.reply.bulk("name");
    ctx.reply.bulk(name);
    ctx.reply.bulk("consumers");
    ctx.reply.integer(static_cast<std::int64_t>(group.consumers.size()));
    ctx.reply.bulk("pending");
    ctx.reply.integer(static_cast<std::int64_t>(group.pel.size()));
    ctx.reply.bulk("last-delivered-id");
    write_stream_id(ctx.reply, group.last_delivered);
    write_entries_read_and_lag(ctx.reply, *stream, group);
  }
}

void xinfo_consumers(CommandContext& ctx) {
  const Stream* stream = ctx.shard->keyspace.find(ctx.args[2]);
  if (stream == nullptr) return ctx.reply.error("ERR no such key");
  const auto it = stream->groups.find(ctx.args[3]);
  if (it == stream->groups.end()) return reply_no_group(ctx, ctx.args[3], ctx.args[2]);
  const std::int64_t now = wall_now_ms();
  ctx.reply.array(it->second.consumers.size());
  for (const auto& [name, c] : it->second.consumers) {
    ctx.reply.map(3);
    ctx.reply.bulk("name");
    ctx.reply.bulk(name);
    ctx.reply.bulk("pending");
    ctx.reply.integer(static_cast<std::int64_t>(c.pending.size()));
    ctx.reply.bulk("idle");
    ctx.reply.integer(std::max<std::int64_t>(0, now - c.seen_time_ms));
  }
}

}  // namespace cmd
}  // namespace runnel
