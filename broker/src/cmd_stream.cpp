// Stream commands: XADD, XLEN, XRANGE, XREVRANGE, XDEL, XTRIM, XSETID, XINFO STREAM, and
// the per-shard parts of XREAD. Each runs on the shard that owns its key. Argument checks
// follow Redis 7.0's order, since that decides which error a client sees.

#include "command.hpp"
#include "stream_args.hpp"
#include "stream_read.hpp"
#include "stream_reply.hpp"

namespace runnel {
namespace {

using storage::TrimSpec;

// Redis's default LIMIT for '~' trims: 100 nodes of stream-node-max-entries.
constexpr std::uint64_t kDefaultApproxLimit = 100 * 100;

// --- XADD / XTRIM options ------------------------------------------------------------------

struct AddTrimArgs {
  std::optional<TrimSpec> trim;
  RefPolicy policy = RefPolicy::kKeep;  // Redis 8.2's KEEPREF | DELREF | ACKED
  bool policy_given = false;
  bool no_mkstream = false;
  // IDMP producer-id idempotent-id, or IDMPAUTO producer-id (Redis 8.6).
  std::optional<std::string_view> idmp_pid;
  std::optional<std::string_view> idmp_iid;  // none: IDMPAUTO
  std::optional<ParsedId> id;  // XADD: nullopt for '*'
  std::size_t id_pos = 0;      // XADD: where the ID is
};

// Parses [NOMKSTREAM] [KEEPREF|DELREF|ACKED] [MAXLEN|MINID [=|~] threshold [LIMIT count]]
// (and XADD's ID), in any order, the way Redis's streamParseAddOrTrimArgsOrReply does. A
// second policy word is XADD's ID (an invalid one) or XTRIM's syntax error, as there.
// Returns the error, or empty.
std::string parse_add_trim(std::span<const std::string_view> args, bool xadd, AddTrimArgs& out) {
  bool limit_given = false;
  std::int64_t limit = 0;
  std::size_t i = 2;
  for (; i < args.size(); ++i) {
    const std::size_t more = args.size() - 1 - i;
    const std::string_view opt = args[i];
    const bool maxlen = equals_ignore_case(opt, "maxlen");
    if (xadd && opt == "*") {
      break;
    } else if (!out.policy_given && parse_ref_policy(opt, out.policy)) {
      out.policy_given = true;
    } else if (xadd && equals_ignore_case(opt, "idmpauto") && more >= 1) {
      if (out.idmp_pid) return "ERR syntax error, IDMP/IDMPAUTO specified multiple times";
      if (args[i + 1].empty()) return "ERR syntax error, IDMPAUTO requires a non-empty producer ID";
      out.idmp_pid = args[++i];
    } else if (xadd && equals_ignore_case(opt, "idmp") && more >= 2) {
      if (out.idmp_pid) return "ERR syntax error, IDMP/IDMPAUTO specified multiple times";
      if (args[i + 1].empty()) return "ERR syntax error, IDMP requires a non-empty producer ID";
      if (args[i + 2].empty()) return "ERR syntax error, IDMP requires a non-empty idempotent ID";
      out.idmp_pid = args[i + 1];
      out.idmp_iid = args[i + 2];
      i += 2;
    } else if ((maxlen || equals_ignore_case(opt, "minid")) && more) {
      if (out.trim) {
        return "ERR syntax error, MAXLEN and MINID options at the same time are not compatible";
      }
      TrimSpec spec;
      spec.strategy = maxlen ? TrimSpec::Strategy::kMaxLen : TrimSpec::Strategy::kMinId;
      if (more >= 2 && args[i + 1] == "~") {
        spec.approx = true;
        ++i;
      } else if (more >= 2 && args[i + 1] == "=") {
        ++i;
      }
      if (maxlen) {
        std::int64_t n = 0;
        if (!parse_int64(args[i + 1], n)) return std::string(kNotInteger);
        if (n < 0) return "ERR The MAXLEN argument must be >= 0.";
        spec.max_len = static_cast<std::uint64_t>(n);
      } else {
        const auto id = parse_id_arg(args[i + 1], 0, true);
        if (!id) return std::string(kInvalidStreamId);
        spec.min_id = id->id;
      }
      ++i;
      out.trim = spec;
    } else if (equals_ignore_case(opt, "limit") && more) {
      if (!parse_int64(args[i + 1], limit)) return std::string(kNotInteger);
      if (limit < 0) return "ERR The LIMIT argument must be >= 0.";
      limit_given = true;
      ++i;
    } else if (xadd && equals_ignore_case(opt, "nomkstream")) {
      out.no_mkstream = true;
    } else if (xadd) {
      out.id = parse_id_arg(opt, 0, true, true);
      if (!out.id) return std::string(kInvalidStreamId);
      if (out.idmp_pid) return "ERR syntax error, IDMP/IDMPAUTO can be used only with auto-generated IDs";
      break;
    } else {
      return "ERR syntax error";
    }
  }
  if (limit != 0 && !out.trim) {
    return "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy";
  }
  if (!xadd && !out.trim) return "ERR syntax error, XTRIM must be called with a trimming strategy";
  if (limit_given && !(out.trim && out.trim->approx)) {
    return "ERR syntax error, LIMIT cannot be used without the special ~ option";
  }
  if (out.trim) {
    out.trim->limit = limit_given ? static_cast<std::uint64_t>(limit)
                                  : (out.trim->approx ? kDefaultApproxLimit : 0);
  }
  out.id_pos = i;
  return {};
}

// --- XRANGE --------------------------------------------------------------------------------

void range(CommandContext& ctx, bool reverse) {
  const auto& args = ctx.args;
  // XREVRANGE takes the end first.
  const Result<StreamId> start = parse_range_start(reverse ? args[3] : args[2]);
  if (!start) return ctx.reply.error(start.error().text);
  const Result<StreamId> end = parse_range_end(reverse ? args[2] : args[3]);
  if (!end) return ctx.reply.error(end.error().text);
  std::int64_t count = -1;
  for (std::size_t i = 4; i < args.size(); ++i) {
    if (equals_ignore_case(args[i], "COUNT") && i + 1 < args.size()) {
      if (!parse_int64(args[i + 1], count)) return ctx.reply.error(kNotInteger);
      if (count < 0) count = 0;
      ++i;
    } else {
      return ctx.reply.error("ERR syntax error");
    }
  }
  const Stream* stream = ctx.shard->keyspace.find(args[1]);
  if (stream == nullptr) return ctx.reply.array(0);
  if (count == 0) return ctx.reply.null_array();
  const Result<Entries> entries =
      stream->range(*start, *end, reverse, count < 0 ? 0 : static_cast<std::size_t>(count));
  if (!entries) return write_error(ctx.reply, args[1], entries.error());
  write_entries(ctx.reply, *entries);
}

// --- XINFO STREAM --------------------------------------------------------------------------

// A group as XINFO STREAM FULL shows it: its pending entries and its consumers, each list cut
// at `count` (0: all). Times are absolute milliseconds.
void write_group_full(protocol::ReplyWriter& r, const Stream& s, const std::string& name,
                      const ConsumerGroup& group, std::size_t count) {
  auto limit = [&](std::size_t n) { return count == 0 ? n : std::min(n, count); };
  const auto& pel = group.pel();
  r.map(8);
  r.bulk("name");
  r.bulk(name);
  r.bulk("last-delivered-id");
  write_stream_id(r, group.last_delivered());
  write_entries_read_and_lag(r, s, group);
  r.bulk("pel-count");
  r.integer(static_cast<std::int64_t>(pel.size()));
  r.bulk("nacked-count");  // Redis 8.8
  r.integer(static_cast<std::int64_t>(group.nacked()));
  r.bulk("pending");
  r.array(limit(pel.size()));
  std::size_t n = 0;
  for (auto it = pel.begin(); it != pel.end() && n < limit(pel.size()); ++it, ++n) {
    r.array(4);
    write_stream_id(r, it->first);
    r.bulk(it->second.owner != nullptr ? std::string_view(it->second.owner->name) : std::string_view());
    r.integer(it->second.delivery_time_ms);
    r.integer(static_cast<std::int64_t>(it->second.delivery_count));
  }
  r.bulk("consumers");
  r.array(group.consumers().size());
  for (const auto& [consumer_name, c] : group.consumers()) {
    r.map(5);
    r.bulk("name");
    r.bulk(consumer_name);
    r.bulk("seen-time");
    r.integer(c.seen_time_ms);
    r.bulk("active-time");
    r.integer(c.active_time_ms);
    r.bulk("pel-count");
    r.integer(static_cast<std::int64_t>(c.pending.size()));
    r.bulk("pending");
    r.array(limit(c.pending.size()));
    std::size_t k = 0;
    for (auto id = c.pending.begin(); id != c.pending.end() && k < limit(c.pending.size()); ++id, ++k) {
      const PendingEntry& p = pel.at(*id);
      r.array(3);
      write_stream_id(r, *id);
      r.integer(p.delivery_time_ms);
      r.integer(static_cast<std::int64_t>(p.delivery_count));
    }
  }
}

// XINFO STREAM's reply. Its entries (FULL) or first and last entry are read before anything
// is written: a read that fails makes the reply an error, never half a map.
void write_stream_info(CommandContext& ctx, const Stream& s, bool full, std::size_t count) {
  Result<Entries> entries = Entries{};
  Result<Entries> first = Entries{}, last = Entries{};
  if (full) {
    entries = s.range(StreamId::min(), StreamId::max(), false, count);
    if (!entries) return write_error(ctx.reply, ctx.args[2], entries.error());
  } else {
    first = s.range(StreamId::min(), StreamId::max(), false, 1);
    if (first) last = s.range(StreamId::min(), StreamId::max(), true, 1);
    if (!first) return write_error(ctx.reply, ctx.args[2], first.error());
    if (!last) return write_error(ctx.reply, ctx.args[2], last.error());
  }
  protocol::ReplyWriter& r = ctx.reply;
  const Idempotency* idmp = s.idempotency();
  r.map((full ? 9 : 10) + (idmp != nullptr ? 6 : 0));
  r.bulk("length");
  r.integer(static_cast<std::int64_t>(s.length()));
  // radix-tree-keys is Redis's node count, which Runnel's nodes reproduce. radix-tree-nodes
  // counts Redis's rax internals; Runnel has no rax and reports the node count there too.
  r.bulk("radix-tree-keys");
  r.integer(static_cast<std::int64_t>(s.entries().node_count()));
  r.bulk("radix-tree-nodes");
  r.integer(static_cast<std::int64_t>(s.entries().node_count()));
  r.bulk("last-generated-id");
  write_stream_id(r, s.last_id());
  r.bulk("max-deleted-entry-id");
  write_stream_id(r, s.max_deleted_id());
  r.bulk("entries-added");
  r.integer(static_cast<std::int64_t>(s.entries_added()));
  r.bulk("recorded-first-entry-id");
  write_stream_id(r, s.first_id());
  if (idmp != nullptr) {  // Redis 8.6's fields, once the stream has used idempotent producers
    r.bulk("idmp-duration");
    r.integer(idmp->duration_s());
    r.bulk("idmp-maxsize");
    r.integer(idmp->max_size());
    r.bulk("pids-tracked");
    r.integer(static_cast<std::int64_t>(idmp->producers()));
    r.bulk("iids-tracked");
    r.integer(static_cast<std::int64_t>(idmp->ids()));
    r.bulk("iids-added");
    r.integer(static_cast<std::int64_t>(idmp->added()));
    r.bulk("iids-duplicates");
    r.integer(static_cast<std::int64_t>(idmp->duplicates()));
  }
  if (full) {
    r.bulk("entries");
    write_entries(r, *entries);
    r.bulk("groups");
    r.array(s.groups().size());
    for (const auto& [name, group] : s.groups()) write_group_full(r, s, name, group, count);
    return;
  }
  r.bulk("groups");
  r.integer(static_cast<std::int64_t>(s.groups().size()));
  for (const Entries* end : {&*first, &*last}) {
    r.bulk(end == &*first ? "first-entry" : "last-entry");
    if (end->empty()) {
      r.null();
    } else {
      write_entry(r, *end, end->items().front());
    }
  }
}

}  // namespace

namespace cmd {

void xadd(CommandContext& ctx) {
  const auto& args = ctx.args;
  AddTrimArgs parsed;
  if (const std::string error = parse_add_trim(args, true, parsed); !error.empty()) {
    return ctx.reply.error(error);
  }
  const std::size_t fields_pos = parsed.id_pos + 1;
  if (args.size() < fields_pos + 2 || (args.size() - fields_pos) % 2 != 0) {
    return reply_arity_error(ctx.reply, "xadd");
  }
  if (parsed.id && parsed.id->seq_given && parsed.id->id == StreamId::min()) {
    return ctx.reply.error("ERR The ID specified in XADD must be greater than 0-0");
  }
  Stream* stream = ctx.shard->keyspace.find(args[1]);
  if (stream == nullptr && parsed.no_mkstream) return ctx.reply.null();
  const NewId given{parsed.id ? parsed.id->id : StreamId{}, parsed.id ? parsed.id->seq_given : true};
  const NewId* given_ptr = parsed.id ? &given : nullptr;
  const std::int64_t now = wall_now_ms();
  if (stream == nullptr) {
    // The ID is checked before the stream is made, so a refused one makes nothing.
    if (const Result<StreamId> id = Stream::next_id(StreamId::min(), given_ptr, now); !id) {
      return ctx.reply.error(id.error().text);
    }
    Result<Stream*> created = ctx.shard->keyspace.find_or_create(args[1]);
    if (!created) return write_error(ctx.reply, args[1], created.error());
    stream = *created;
  }
  const auto fields = args.subspan(fields_pos);
  std::string auto_iid;
  if (parsed.idmp_pid) {
    // A retried XADD: the first one's ID, nothing added, nothing trimmed (Redis 8.6).
    if (!parsed.idmp_iid) auto_iid = Idempotency::auto_id(fields);
    const std::string_view iid = parsed.idmp_iid ? *parsed.idmp_iid : std::string_view(auto_iid);
    if (const auto first = stream->idmp_duplicate(*parsed.idmp_pid, iid, now)) return write_stream_id(ctx.reply, *first);
  }
  OpError trim_error;
  const Result<StreamId> id = stream->add(given_ptr, fields, parsed.trim, now, parsed.policy, &trim_error);
  if (!id) return ctx.reply.error(id.error().text);
  if (parsed.idmp_pid) {
    stream->idmp_record(*parsed.idmp_pid, parsed.idmp_iid ? *parsed.idmp_iid : std::string_view(auto_iid), *id, now);
  }
  // The entry is in: its ID is the reply. A trim that could not read entries back is counted
  // and logged (error_text), and stopped where it was.
  if (trim_error.cause) (void)error_text(args[1], trim_error);
  write_stream_id(ctx.reply, *id);
  ctx.shard->signal_modified(args[1]);
  ctx.shard->signal_ready(args[1]);
}

void xlen(CommandContext& ctx) {
  const Stream* stream = ctx.shard->keyspace.find(ctx.args[1]);
  ctx.reply.integer(stream ? static_cast<std::int64_t>(stream->length()) : 0);
}

void xrange(CommandContext& ctx) { range(ctx, false); }
void xrevrange(CommandContext& ctx) { range(ctx, true); }

void xdel(CommandContext& ctx) {
  const auto& args = ctx.args;
  Stream* stream = ctx.shard->keyspace.find(args[1]);
  if (stream == nullptr) return ctx.reply.integer(0);
  // Every ID is checked before any is deleted, so a bad one deletes nothing.
  std::vector<StreamId> ids;
  for (std::size_t i = 2; i < args.size(); ++i) {
    const auto id = parse_id_arg(args[i], 0, true);
    if (!id) return ctx.reply.error(kInvalidStreamId);
    ids.push_back(id->id);
  }
  const std::uint64_t deleted = stream->erase(ids);
  if (deleted > 0) ctx.shard->signal_modified(args[1]);
  ctx.reply.integer(static_cast<std::int64_t>(deleted));
}

// XDELEX key [KEEPREF|DELREF|ACKED] IDS numids id... (Redis 8.2).
void xdelex(CommandContext& ctx) {
  const auto& args = ctx.args;
  AckDelArgs parsed;
  if (const std::string error = parse_ack_del_args(args, 2, parsed); !error.empty()) return ctx.reply.error(error);
  Stream* stream = ctx.shard->keyspace.find(args[1]);
  std::vector<StreamId> ids;
  if (stream == nullptr) {  // as Redis: a -1 per ID, the IDs not looked at
    return write_delete_codes(ctx.reply, std::vector<DeleteCode>(parsed.count, DeleteCode::kNotFound));
  }
  for (std::size_t i = 0; i < parsed.count; ++i) {  // every ID first: a bad one deletes nothing
    const auto id = parse_id_arg(args[parsed.first_id + i], 0, true);
    if (!id) return ctx.reply.error(kInvalidStreamId);
    ids.push_back(id->id);
  }
  const std::uint64_t length = stream->length();
  const std::vector<DeleteCode> codes = stream->erase(ids, parsed.policy);
  if (stream->length() != length) ctx.shard->signal_modified(args[1]);
  write_delete_codes(ctx.reply, codes);
}

// XCFGSET key [IDMP-DURATION seconds] [IDMP-MAXSIZE n] (Redis 8.6).
void xcfgset(CommandContext& ctx) {
  const auto& args = ctx.args;
  Stream* stream = ctx.shard->keyspace.find(args[1]);
  if (stream == nullptr) return ctx.reply.error(errors::kNoSuchKey);
  std::optional<std::int64_t> duration, max_size;
  for (std::size_t i = 2; i < args.size(); i += 2) {
    const bool is_duration = equals_ignore_case(args[i], "IDMP-DURATION");
    if ((!is_duration && !equals_ignore_case(args[i], "IDMP-MAXSIZE")) || i + 1 >= args.size()) {
      return ctx.reply.error("ERR syntax error");
    }
    std::optional<std::int64_t>& value = is_duration ? duration : max_size;
    if (value) {
      return ctx.reply.error(is_duration ? "ERR IDMP-DURATION specified multiple times"
                                         : "ERR IDMP-MAXSIZE specified multiple times");
    }
    std::int64_t n = 0;
    if (!parse_int64(args[i + 1], n)) return ctx.reply.error(kNotInteger);
    if (is_duration && (n < 1 || n > Idempotency::kMaxDuration)) {
      return ctx.reply.error("ERR IDMP-DURATION must be between 1 and 86400 seconds");
    }
    if (!is_duration && (n < 1 || n > Idempotency::kMaxMaxSize)) {
      return ctx.reply.error("ERR IDMP-MAXSIZE must be between 1 and 10000 entries");
    }
    value = n;
  }
  if (!duration && !max_size) return ctx.reply.error("ERR At least one parameter must be specified");
  stream->idmp_configure(duration, max_size);
  ctx.reply.ok();
}

void xtrim(CommandContext& ctx) {
  AddTrimArgs parsed;
  if (const std::string error = parse_add_trim(ctx.args, false, parsed); !error.empty()) {
    return ctx.reply.error(error);
  }
  Stream* stream = ctx.shard->keyspace.find(ctx.args[1]);
  if (stream == nullptr) return ctx.reply.integer(0);
  const std::uint64_t length = stream->length();
  const Result<std::uint64_t> removed = stream->trim(*parsed.trim, parsed.policy);
  if (stream->length() != length) ctx.shard->signal_modified(ctx.args[1]);  // WATCH
  if (!removed) return write_error(ctx.reply, ctx.args[1], removed.error());
  ctx.reply.integer(static_cast<std::int64_t>(*removed));
}

void xsetid(CommandContext& ctx) {
  const auto& args = ctx.args;
  const auto id = parse_id_arg(args[2], 0, true);
  if (!id) return ctx.reply.error(kInvalidStreamId);
  std::int64_t entries_added = -1;
  std::optional<StreamId> max_deleted;
  for (std::size_t i = 3; i < args.size(); i += 2) {
    const bool more = i + 1 < args.size();
    if (equals_ignore_case(args[i], "ENTRIESADDED") && more) {
      if (!parse_int64(args[i + 1], entries_added)) return ctx.reply.error(kNotInteger);
      if (entries_added < 0) return ctx.reply.error("ERR entries_added must be positive");
    } else if (equals_ignore_case(args[i], "MAXDELETEDID") && more) {
      const auto parsed = parse_id_arg(args[i + 1], 0, true);
      if (!parsed) return ctx.reply.error(kInvalidStreamId);
      if (id->id < parsed->id) {
        return ctx.reply.error(
            "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id");
      }
      max_deleted = parsed->id;
    } else {
      return ctx.reply.error("ERR syntax error");
    }
  }
  Stream* stream = ctx.shard->keyspace.find(args[1]);
  if (stream == nullptr) return ctx.reply.error(errors::kNoSuchKey);
  if (id->id < stream->max_deleted_id()) {  // Redis 7.2
    return ctx.reply.error("ERR The ID specified in XSETID is smaller than current max_deleted_entry_id");
  }
  if (const Result<void> set = stream->set_id(id->id, entries_added, max_deleted); !set) {
    return ctx.reply.error(set.error().text);
  }
  ctx.reply.ok();  // Redis 7.0 does not count XSETID as a change for WATCH
}

void xinfo_stream(CommandContext& ctx) {
  const Stream* stream = ctx.shard->keyspace.find(ctx.args[2]);
  if (stream == nullptr) return ctx.reply.error(errors::kNoSuchKey);
  const auto options = ctx.args.subspan(3);
  if (options.empty()) return write_stream_info(ctx, *stream, false, 0);
  if ((options.size() != 1 && options.size() != 3) || !equals_ignore_case(options[0], "FULL")) {
    return reply_subcommand_syntax_error(ctx);
  }
  std::int64_t count = 10;
  if (options.size() == 3) {
    if (!equals_ignore_case(options[1], "COUNT")) return reply_subcommand_syntax_error(ctx);
    if (!parse_int64(options[2], count)) return ctx.reply.error(kNotInteger);
    if (count < 0) count = 10;
  }
  write_stream_info(ctx, *stream, true, static_cast<std::size_t>(count));
}

void xinfo_help(CommandContext& ctx) {
  reply_help(ctx, {"CONSUMERS <key> <groupname>", "    Show consumers of <groupname>.",
                   "GROUPS <key>", "    Show the stream consumer groups.",
                   "STREAM <key> [FULL [COUNT <count>]", "    Show information about the stream."});
}

}  // namespace cmd

// --- XREAD: the parts that run on the shards -------------------------------------------------

namespace xread {

std::string parse(std::span<const std::string_view> args, bool xreadgroup, Request& out) {
  out.group_mode = xreadgroup;
  bool has_group = false;
  std::size_t streams_at = 0;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::size_t more = args.size() - i - 1;
    const std::string_view opt = args[i];
    if (equals_ignore_case(opt, "BLOCK") && more) {
      std::int64_t ms = 0;
      if (!parse_int64(args[++i], ms)) return "ERR timeout is not an integer or out of range";
      if (ms < 0) return "ERR timeout is negative";
      out.block_ms = ms;
    } else if (equals_ignore_case(opt, "COUNT") && more) {
      if (!parse_int64(args[++i], out.count)) return std::string(kNotInteger);
      if (out.count < 0) out.count = 0;
    } else if (equals_ignore_case(opt, "STREAMS") && more) {
      streams_at = i + 1;
      if ((args.size() - streams_at) % 2 != 0) {
        // Redis 7.2 names the command; Redis 8 adds XREAD's '+'.
        return xreadgroup ? "ERR Unbalanced 'xreadgroup' list of streams: for each stream key an ID or '>' "
                            "must be specified."
                          : "ERR Unbalanced 'xread' list of streams: for each stream key an ID, '+', or '$' "
                            "must be specified.";
      }
      break;
    } else if (equals_ignore_case(opt, "GROUP") && more >= 2) {
      if (!xreadgroup) {
        return "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.";
      }
      out.group = args[i + 1];
      out.consumer = args[i + 2];
      has_group = true;
      i += 2;
    } else if (equals_ignore_case(opt, "CLAIM") && more) {  // Redis 8.4
      if (!xreadgroup) {
        return "ERR The CLAIM option is only supported by XREADGROUP. You called XREAD instead.";
      }
      std::int64_t ms = 0;
      if (!parse_int64(args[++i], ms)) return "ERR min-idle-time is not an integer or out of range";
      if (ms < 0) return "ERR min-idle-time must be a positive integer";
      out.claim_min_idle = ms;
    } else if (equals_ignore_case(opt, "NOACK")) {
      if (!xreadgroup) {
        return "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.";
      }
      out.noack = true;
    } else {
      return "ERR syntax error";
    }
  }
  if (streams_at == 0) return "ERR syntax error";
  if (xreadgroup && !has_group) return "ERR Missing GROUP option for XREADGROUP";
  const std::size_t n = args.size() - streams_at;
  out.last_entry.assign(n / 2, 0);
  for (std::size_t k = 0; k < n / 2; ++k) {
    out.keys.emplace_back(args[streams_at + k]);
    const std::string_view id = args[streams_at + n / 2 + k];
    if (xreadgroup) {
      std::string error;
      std::optional<StreamId> parsed;
      if (id == "$") {
        error =
            "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the "
            "history of this consumer by specifying a proper ID, or use the > ID to get new "
            "messages. The $ ID would just return an empty result set.";
      } else if (id == "+") {  // Redis 7.4
        error =
            "ERR The + ID is meaningless in the context of XREADGROUP: you want to read the "
            "history of this consumer by specifying a proper ID, or use the > ID to get new "
            "messages. The + ID would just return an empty result set.";
      } else if (id != ">") {
        const auto p = parse_id_arg(id, 0, true);
        if (p) {
          // Redis marks '>' with the largest ID, so that ID, given outright, reads new
          // entries too.
          if (p->id != StreamId::max()) parsed = p->id;
        } else {
          error = std::string(kInvalidStreamId);
        }
      }
      out.ids.push_back(parsed);
      out.id_errors.push_back(std::move(error));
    } else if (id == "$") {
      out.ids.emplace_back(std::nullopt);
    } else if (id == "+") {  // Redis 7.4: the stream's last entry
      out.ids.emplace_back(StreamId::min());
      out.last_entry[k] = 1;
    } else if (id == ">") {
      return "ERR The > ID can be specified only when calling XREADGROUP using the GROUP "
             "<group> <consumer> option.";
    } else {
      const auto parsed = parse_id_arg(id, 0, true);
      if (!parsed) return std::string(kInvalidStreamId);
      out.ids.emplace_back(parsed->id);
    }
  }
  return {};
}

void check_groups(Shard& shard, const Request& request, std::span<const std::size_t> indices,
                  std::vector<char>& ok) {
  for (const std::size_t i : indices) {
    shard.expire_if_due(request.keys[i]);
    const Stream* stream = shard.keyspace.find(request.keys[i]);
    ok[i] = stream != nullptr && stream->group(request.group) != nullptr;
    if (shard.keyspace.type_of(request.keys[i]) == KeyType::kString) ok[i] = 2;  // WRONGTYPE
  }
}

std::string first_error(const Request& request, const std::vector<char>& ok) {
  for (std::size_t i = 0; i < request.keys.size(); ++i) {
    if (ok[i] == 2) return std::string(kWrongType);
    if (!ok[i]) return errors::no_group(request.keys[i], request.group, errors::NoGroupIn::kReadGroup).text;
    if (!request.id_errors[i].empty()) return request.id_errors[i];
  }
  return {};
}

namespace {

// XREADGROUP's part on a shard: new entries for '>', the consumer's history for an ID.
bool read_groups_on_shard(Shard& shard, Request& request, std::span<const std::size_t> indices,
                          KeyResults& results) {
  bool found = false;
  const std::int64_t now = wall_now_ms();
  const auto count = static_cast<std::size_t>(request.count);
  for (const std::size_t i : indices) {
    Stream* stream = shard.keyspace.find(request.keys[i]);
    if (stream == nullptr) {  // deleted since the check
      if (request.gone_error.empty()) request.gone_error = errors::kKeyGone;
      continue;
    }
    ConsumerGroup* group = stream->group(request.group);
    if (group == nullptr) {  // destroyed since the check
      if (request.gone_error.empty()) request.gone_error = errors::kGroupGone;
      continue;
    }
    // Redis 7.2: the consumer is made (or seen) by every attempt, even one that finds nothing.
    Consumer& consumer = group->consumer(request.consumer, now);
    Result<Entries> read = Entries{};
    if (request.ids[i]) {  // history: always answered, even when empty (CLAIM ignored)
      read = stream->deliver_history(*group, consumer, *request.ids[i], count, now);
    } else if (request.claim_min_idle) {
      read = stream->deliver_claiming(*group, consumer, *request.claim_min_idle, count, request.noack, now);
      if (read && read->empty()) {
        if (const auto at = stream->next_claimable(*group, *request.claim_min_idle, now)) {
          request.claim_wake_ms = std::min(request.claim_wake_ms.value_or(*at), *at);
        } else if (!request.claim_wake_ms) {
          // Nothing pending: what is delivered from now on is claimable min-idle after (a
          // look at least 10 ms on, so CLAIM 0 on an empty PEL does not spin).
          request.claim_wake_ms = now + std::max<std::int64_t>(*request.claim_min_idle, 10);
        }
        continue;
      }
    } else if (stream->has_new_for(*group)) {
      read = stream->deliver_new(*group, consumer, count, request.noack, now);
    } else {
      continue;
    }
    if (!read) {  // nothing delivered from this key: its group stays where it was
      if (request.read_error.empty()) request.read_error = error_text(request.keys[i], read.error());
      continue;
    }
    results[i] = std::move(*read);
    found = true;
  }
  return found;
}

// XREAD's part on a shard: entries above each key's ID ('$': the top as it is now).
bool read_streams_on_shard(Shard& shard, Request& request, std::span<const std::size_t> indices,
                           KeyResults& results, const std::shared_ptr<StreamWaiter>& waiter) {
  bool found = false;
  for (const std::size_t i : indices) {
    shard.expire_if_due(request.keys[i]);
    if (shard.keyspace.type_of(request.keys[i]) == KeyType::kString) {
      if (request.read_error.empty()) request.read_error = kWrongType;
      continue;
    }
    const Stream* stream = shard.keyspace.find(request.keys[i]);
    const StreamId after = request.ids[i].value_or(stream ? stream->last_id() : StreamId::min());
    if (waiter) waiter->after[i] = after;
    if (stream == nullptr || !stream->has_after(after)) continue;
    // '+': the last entry alone, whatever COUNT says (an empty stream blocks, and is worked
    // out again when it is served).
    Result<Entries> read = request.last_entry[i]
                               ? stream->range(StreamId::min(), StreamId::max(), true, 1)
                               : stream->read_after(after, static_cast<std::size_t>(request.count));
    if (!read) {
      if (request.read_error.empty()) request.read_error = error_text(request.keys[i], read.error());
      continue;
    }
    results[i] = std::move(*read);
    found = true;
  }
  return found;
}

}  // namespace

bool run_on_shard(Shard& shard, Request& request, std::span<const std::size_t> indices, KeyResults& results,
                  const std::shared_ptr<StreamWaiter>& waiter) {
  const bool found = request.group_mode ? read_groups_on_shard(shard, request, indices, results)
                                        : read_streams_on_shard(shard, request, indices, results, waiter);
  if (!found && waiter && !request.found_elsewhere && request.read_error.empty()) {
    for (const std::size_t i : indices) shard.blocked.add(request.keys[i], i, waiter);
    request.registered_shards.push_back(shard.index);
  }
  request.found_elsewhere = request.found_elsewhere || found;
  return found;
}

void write_reply(protocol::ReplyWriter& reply, const Request& request, const KeyResults& results) {
  if (!request.read_error.empty()) return reply.error(request.read_error);
  std::vector<KeyEntries> keyed;
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (results[i]) keyed.push_back(KeyEntries{request.keys[i], &*results[i]});
  }
  write_keyed_entries(reply, keyed);
}

}  // namespace xread
}  // namespace runnel
