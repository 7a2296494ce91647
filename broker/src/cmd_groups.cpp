// Consumer-group commands: XGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM, XINFO GROUPS and XINFO
// CONSUMERS, each parse, op (streams/stream.hpp), encode (stream_reply.hpp). All run on the
// shard that owns the stream. Argument checks follow Redis 7.0's order (t_stream.c), since
// that decides which error a client sees.

#include "command.hpp"
#include "stream_args.hpp"
#include "stream_reply.hpp"

namespace runnel {
namespace {

using errors::NoGroupIn;

// The group `name` of the stream at `key`, or null when either is missing.
ConsumerGroup* find_group(Shard& shard, std::string_view key, std::string_view name, Stream** stream_out = nullptr) {
  Stream* stream = shard.keyspace.find(key);
  if (stream_out) *stream_out = stream;
  return stream == nullptr ? nullptr : stream->group(name);
}

void reply_no_group(CommandContext& ctx, std::string_view key, std::string_view group, NoGroupIn where) {
  ctx.reply.error(errors::no_group(key, group, where).text);
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
  *group = stream->group(ctx.args[3]);
  if (*group == nullptr && group_required) {
    reply_no_group(ctx, ctx.args[2], ctx.args[3], NoGroupIn::kGroupCommand);
    return nullptr;
  }
  return stream;
}

// Every ID of args[from..], or false after replying with the error: a bad one changes nothing.
bool parse_ids(CommandContext& ctx, std::size_t from, std::vector<StreamId>& ids) {
  for (std::size_t i = from; i < ctx.args.size(); ++i) {
    const auto id = parse_id_arg(ctx.args[i], 0, true);
    if (!id) {
      ctx.reply.error(kInvalidStreamId);
      return false;
    }
    ids.push_back(id->id);
  }
  return true;
}

}  // namespace

namespace cmd {

void xgroup_create(CommandContext& ctx) {
  GroupOptions options;
  if (!parse_group_options(ctx, true, options)) return;
  Stream* stream = ctx.shard->keyspace.find(ctx.args[2]);
  if (stream == nullptr && !options.mkstream) return ctx.reply.error(kKeyMustExist);
  StreamId id;
  if (ctx.args[4] == "$") {
    id = stream ? stream->last_id() : StreamId::min();
  } else {
    const auto parsed = parse_id_arg(ctx.args[4], 0, true);
    if (!parsed) return ctx.reply.error(kInvalidStreamId);
    id = parsed->id;
  }
  if (stream == nullptr) {
    Result<Stream*> created = ctx.shard->keyspace.find_or_create(ctx.args[2]);
    if (!created) return write_error(ctx.reply, ctx.args[2], created.error());
    stream = *created;
    ctx.shard->signal_modified(ctx.args[2]);
  }
  if (const Result<ConsumerGroup*> group = stream->create_group(ctx.args[3], id, options.entries_read); !group) {
    return ctx.reply.error(group.error().text);
  }
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
    id = stream->last_id();
  } else {
    const auto parsed = parse_id_arg(ctx.args[4], 0, false);
    if (!parsed) return ctx.reply.error(kInvalidStreamId);
    id = parsed->id;
  }
  group->set_position(id, options.entries_read);
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
  if (group->find_consumer(ctx.args[4]) != nullptr) return ctx.reply.integer(0);  // not seen by this
  group->consumer(ctx.args[4], wall_now_ms());
  ctx.reply.integer(1);
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
  Stream* stream = nullptr;
  ConsumerGroup* group = find_group(*ctx.shard, ctx.args[1], ctx.args[2], &stream);
  if (group == nullptr) return ctx.reply.integer(0);
  // Every ID is checked first: once some are acknowledged, the reply cannot be an error.
  std::vector<StreamId> ids;
  if (!parse_ids(ctx, 3, ids)) return;
  ctx.reply.integer(static_cast<std::int64_t>(stream->ack(*group, ids)));
}

// XACKDEL key group [KEEPREF|DELREF|ACKED] IDS numids id... (Redis 8.2). A missing key or
// group is not NOGROUP here: a -1 per ID, as Redis answers.
void xackdel(CommandContext& ctx) {
  const auto& args = ctx.args;
  AckDelArgs parsed;
  if (const std::string error = parse_ack_del_args(args, 3, parsed); !error.empty()) return ctx.reply.error(error);
  Stream* stream = nullptr;
  ConsumerGroup* group = find_group(*ctx.shard, args[1], args[2], &stream);
  if (group == nullptr) {
    return write_delete_codes(ctx.reply, std::vector<DeleteCode>(parsed.count, DeleteCode::kNotFound));
  }
  std::vector<StreamId> ids;
  for (std::size_t i = 0; i < parsed.count; ++i) {
    const auto id = parse_id_arg(args[parsed.first_id + i], 0, true);
    if (!id) return ctx.reply.error(kInvalidStreamId);
    ids.push_back(id->id);
  }
  const std::uint64_t length = stream->length();
  const std::vector<DeleteCode> codes = stream->ack_and_erase(*group, ids, parsed.policy);
  if (stream->length() != length) ctx.shard->signal_modified(args[1]);
  write_delete_codes(ctx.reply, codes);
}

// XNACK key group SILENT|FAIL|FATAL IDS numids id... [RETRYCOUNT n] [FORCE] (Redis 8.8), its
// checks in Redis's order: the group, the mode, then the options left to right.
void xnack(CommandContext& ctx) {
  const auto& args = ctx.args;
  Stream* stream = nullptr;
  ConsumerGroup* group = find_group(*ctx.shard, args[1], args[2], &stream);
  if (group == nullptr) return reply_no_group(ctx, args[1], args[2], NoGroupIn::kKeyOrGroup);
  Stream::NackMode mode;
  if (equals_ignore_case(args[3], "SILENT")) {
    mode = Stream::NackMode::kSilent;
  } else if (equals_ignore_case(args[3], "FAIL")) {
    mode = Stream::NackMode::kFail;
  } else if (equals_ignore_case(args[3], "FATAL")) {
    mode = Stream::NackMode::kFatal;
  } else {
    return ctx.reply.error("ERR mode must be SILENT, FAIL, or FATAL");
  }
  std::size_t first_id = 0, count = 0;
  std::optional<std::uint64_t> retry_count;
  bool force = false;
  for (std::size_t i = 4; i < args.size();) {
    if (equals_ignore_case(args[i], "IDS") && i + 1 < args.size()) {
      std::int64_t n = 0;
      if (!parse_int64(args[i + 1], n) || n < 1 || n > INT32_MAX) {
        return ctx.reply.error("ERR numids must be a positive integer");
      }
      if (static_cast<std::uint64_t>(n) > args.size() - i - 2) {
        return ctx.reply.error("ERR number of IDs doesn't match numids");
      }
      first_id = i + 2;
      count = static_cast<std::size_t>(n);
      i = first_id + count;
    } else if (equals_ignore_case(args[i], "RETRYCOUNT") && i + 1 < args.size()) {
      std::int64_t n = 0;
      if (!parse_int64(args[i + 1], n)) return ctx.reply.error(kNotInteger);
      if (n < 0) return ctx.reply.error("ERR Invalid RETRYCOUNT value, must be >= 0");
      retry_count = static_cast<std::uint64_t>(n);
      i += 2;
    } else if (equals_ignore_case(args[i], "FORCE")) {
      force = true;
      ++i;
    } else {
      return ctx.reply.error("ERR Unrecognized XNACK option '" + std::string(args[i]) + "'");
    }
  }
  if (count == 0) return ctx.reply.error("ERR syntax error, expected IDS keyword");
  std::vector<StreamId> ids;
  for (std::size_t i = 0; i < count; ++i) {
    const auto id = parse_id_arg(args[first_id + i], 0, true);
    if (!id) return ctx.reply.error(kInvalidStreamId);
    ids.push_back(id->id);
  }
  const Result<std::uint64_t> nacked = stream->nack(*group, ids, mode, retry_count, force);
  if (!nacked) return write_error(ctx.reply, args[1], nacked.error());
  if (*nacked > 0) ctx.shard->signal_ready(args[1]);  // a blocked CLAIM reader may take them
  ctx.reply.integer(static_cast<std::int64_t>(*nacked));
}

void xpending(CommandContext& ctx) {
  const auto& args = ctx.args;
  const bool summary = args.size() == 3;
  if (!summary && (args.size() < 6 || args.size() > 9)) return ctx.reply.error("ERR syntax error");
  PendingQuery query;
  if (!summary) {
    std::size_t at = 3;
    if (equals_ignore_case(args[3], "IDLE")) {
      if (!parse_int64(args[4], query.min_idle_ms)) return ctx.reply.error(kNotInteger);
      if (args.size() < 8) return ctx.reply.error("ERR syntax error");
      at += 2;
    }
    std::int64_t count = 0;
    if (!parse_int64(args[at + 2], count)) return ctx.reply.error(kNotInteger);
    query.count = count < 0 ? 0 : static_cast<std::size_t>(count);
    const Result<StreamId> start = parse_range_start(args[at]);
    if (!start) return ctx.reply.error(start.error().text);
    const Result<StreamId> end = parse_range_end(args[at + 1]);
    if (!end) return ctx.reply.error(end.error().text);
    query.start = *start;
    query.end = *end;
    if (at + 3 < args.size()) query.consumer = args[at + 3];
  }
  const ConsumerGroup* group = find_group(*ctx.shard, args[1], args[2]);
  if (group == nullptr) return reply_no_group(ctx, args[1], args[2], NoGroupIn::kKeyOrGroup);
  if (summary) return write_pending_summary(ctx.reply, group->pending_summary());
  write_pending(ctx.reply, group->pending(query, wall_now_ms()));
}

void xclaim(CommandContext& ctx) {
  const auto& args = ctx.args;
  Stream* stream = nullptr;
  ConsumerGroup* group = find_group(*ctx.shard, args[1], args[2], &stream);
  if (group == nullptr) return reply_no_group(ctx, args[1], args[2], NoGroupIn::kKeyOrGroup);
  ClaimSpec spec;
  spec.consumer = args[3];
  if (!parse_int64(args[4], spec.min_idle_ms)) {
    return ctx.reply.error("ERR Invalid min-idle-time argument for XCLAIM");
  }
  if (spec.min_idle_ms < 0) spec.min_idle_ms = 0;
  // The IDs run until the first argument that is not one; options follow.
  std::size_t j = 5;
  for (; j < args.size(); ++j) {
    const auto id = parse_id_arg(args[j], 0, true);
    if (!id) break;
    spec.ids.push_back(id->id);
  }
  const std::int64_t now = wall_now_ms();
  for (; j < args.size(); ++j) {
    const bool more = j + 1 < args.size();
    const std::string_view opt = args[j];
    auto number = [&](std::string_view what, std::int64_t& value) {
      if (parse_int64(args[++j], value)) return true;
      ctx.reply.error("ERR Invalid " + std::string(what) + " option argument for XCLAIM");
      return false;
    };
    if (equals_ignore_case(opt, "FORCE")) {
      spec.force = true;
    } else if (equals_ignore_case(opt, "JUSTID")) {
      spec.justid = true;
    } else if (equals_ignore_case(opt, "IDLE") && more) {
      if (!number("IDLE", spec.delivery_time_ms)) return;
      spec.delivery_time_ms = now - spec.delivery_time_ms;
    } else if (equals_ignore_case(opt, "TIME") && more) {
      if (!number("TIME", spec.delivery_time_ms)) return;
    } else if (equals_ignore_case(opt, "RETRYCOUNT") && more) {
      if (!number("RETRYCOUNT", spec.retry_count)) return;
    } else if (equals_ignore_case(opt, "LASTID") && more) {
      const auto id = parse_id_arg(args[++j], 0, true);
      if (!id) return ctx.reply.error(kInvalidStreamId);
      spec.last_id = id->id;
    } else {
      return ctx.reply.error("ERR Unrecognized XCLAIM option '" + std::string(opt) + "'");
    }
  }
  const Result<Claimed> claimed = stream->claim(*group, spec, now);
  if (!claimed) return write_error(ctx.reply, args[1], claimed.error());
  write_claimed(ctx.reply, *claimed, spec.justid);
}

void xautoclaim(CommandContext& ctx) {
  const auto& args = ctx.args;
  AutoClaimSpec spec;
  spec.consumer = args[3];
  if (!parse_int64(args[4], spec.min_idle_ms)) {
    return ctx.reply.error("ERR Invalid min-idle-time argument for XAUTOCLAIM");
  }
  if (spec.min_idle_ms < 0) spec.min_idle_ms = 0;
  const Result<StreamId> start = parse_range_start(args[5]);
  if (!start) return ctx.reply.error(start.error().text);
  spec.start = *start;
  for (std::size_t j = 6; j < args.size(); ++j) {
    if (equals_ignore_case(args[j], "COUNT") && j + 1 < args.size()) {
      // Redis bounds COUNT so that its buffer of COUNT stream IDs (16 bytes each) fits.
      if (!parse_int64(args[j + 1], spec.count) || spec.count < 1 || spec.count > INT64_MAX / 16) {
        return ctx.reply.error("ERR COUNT must be > 0");
      }
      ++j;
    } else if (equals_ignore_case(args[j], "JUSTID")) {
      spec.justid = true;
    } else {
      return ctx.reply.error("ERR syntax error");
    }
  }
  Stream* stream = nullptr;
  ConsumerGroup* group = find_group(*ctx.shard, args[1], args[2], &stream);
  if (group == nullptr) return reply_no_group(ctx, args[1], args[2], NoGroupIn::kKeyOrGroup);
  const Result<AutoClaimed> claimed = stream->autoclaim(*group, spec, wall_now_ms());
  if (!claimed) return write_error(ctx.reply, args[1], claimed.error());
  write_autoclaimed(ctx.reply, *claimed, spec.justid);
}

void xinfo_groups(CommandContext& ctx) {
  const Stream* stream = ctx.shard->keyspace.find(ctx.args[2]);
  if (stream == nullptr) return ctx.reply.error(errors::kNoSuchKey);
  ctx.reply.array(stream->groups().size());
  for (const auto& [name, group] : stream->groups()) {
    ctx.reply.map(6);
    ctx.reply.bulk("name");
    ctx.reply.bulk(name);
    ctx.reply.bulk("consumers");
    ctx.reply.integer(static_cast<std::int64_t>(group.consumers().size()));
    ctx.reply.bulk("pending");
    ctx.reply.integer(static_cast<std::int64_t>(group.pel().size()));
    ctx.reply.bulk("last-delivered-id");
    write_stream_id(ctx.reply, group.last_delivered());
    write_entries_read_and_lag(ctx.reply, *stream, group);
  }
}

void xinfo_consumers(CommandContext& ctx) {
  const Stream* stream = ctx.shard->keyspace.find(ctx.args[2]);
  if (stream == nullptr) return ctx.reply.error(errors::kNoSuchKey);
  const ConsumerGroup* group = stream->group(ctx.args[3]);
  if (group == nullptr) return reply_no_group(ctx, ctx.args[2], ctx.args[3], NoGroupIn::kGroupCommand);
  const std::int64_t now = wall_now_ms();
  ctx.reply.array(group->consumers().size());
  for (const auto& [name, c] : group->consumers()) {
    // Redis 7.2: idle since the last attempt, inactive since the last success (-1: never).
    ctx.reply.map(4);
    ctx.reply.bulk("name");
    ctx.reply.bulk(name);
    ctx.reply.bulk("pending");
    ctx.reply.integer(static_cast<std::int64_t>(c.pending.size()));
    ctx.reply.bulk("idle");
    ctx.reply.integer(std::max<std::int64_t>(0, now - c.seen_time_ms));
    ctx.reply.bulk("inactive");
    ctx.reply.integer(c.active_time_ms == -1 ? -1 : now - c.active_time_ms);
  }
}

}  // namespace cmd
}  // namespace runnel
