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
  bool no_mkstream = false;
  std::optional<ParsedId> id;  // XADD: nullopt for '*'
  std::size_t id_pos = 0;      // XADD: where the ID is
};

// Parses [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] (and XADD's ID), the way
// Redis's streamParseAddOrTrimArgsOrReply does. Returns the error, or empty.
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

std::uint64_t trim_stream(Stream& stream, const TrimSpec& spec) {
  const std::uint64_t removed = stream.entries().trim(spec);
  stream.refresh_first_id();
  return removed;
}

// The ID XADD gives a new entry: `*` takes the clock (never going back: with the clock behind
// the top, it keeps the top's ms and bumps the sequence), `<ms>-*` the next sequence in ms.
enum class NewIdError { kNone, kExhausted, kNotGreater, kSeqOverflow };

NewIdError next_id(StreamId last, const ParsedId* explicit_id, StreamId& out) {
  if (last == StreamId::max()) return NewIdError::kExhausted;
  if (explicit_id == nullptr) {
    const auto ms = static_cast<std::uint64_t>(wall_now_ms());
    if (ms > last.ms) {
      out = {ms, 0};
      return NewIdError::kNone;
    }
    out = *last.next();
    return NewIdError::kNone;
  }
  if (!explicit_id->seq_given) {
    const std::uint64_t ms = explicit_id->id.ms;
    if (ms == last.ms) {
      if (last.seq == UINT64_MAX) return NewIdError::kSeqOverflow;
      out = {ms, last.seq + 1};
    } else {
      out = {ms, 0};
    }
  } else {
    out = explicit_id->id;
  }
  return out <= last ? NewIdError::kNotGreater : NewIdError::kNone;
}

// --- XRANGE --------------------------------------------------------------------------------

// XRANGE/XREVRANGE interval bounds: "-", "+", "<ms>", "<ms>-<seq>" and exclusive "(<id>".
bool parse_bound(std::string_view text, std::uint64_t missing_seq, StreamId& id, bool& exclusive) {
  exclusive = text.size() > 1 && text[0] == '(';
  const auto parsed = exclusive ? parse_id_arg(text.substr(1), missing_seq, true)
                                : parse_id_arg(text, missing_seq, false);
  if (!parsed) return false;
  id = parsed->id;
  return true;
}

void range(CommandContext& ctx, bool reverse) {
  const auto& args = ctx.args;
  // XREVRANGE takes the end first.
  const std::string_view start_arg = reverse ? args[3] : args[2];
  const std::string_view end_arg = reverse ? args[2] : args[3];
  StreamId start, end;
  bool start_exclusive = false, end_exclusive = false;
  if (!parse_bound(start_arg, 0, start, start_exclusive)) return ctx.reply.error(kInvalidStreamId);
  if (start_exclusive) {
    const auto next = start.next();
    if (!next) return ctx.reply.error("ERR invalid start ID for the interval");
    start = *next;
  }
  if (!parse_bound(end_arg, UINT64_MAX, end, end_exclusive)) return ctx.reply.error(kInvalidStreamId);
  if (end_exclusive) {
    const auto prev = end.prev();
    if (!prev) return ctx.reply.error("ERR invalid end ID for the interval");
    end = *prev;
  }
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
  Stream* stream = ctx.shard->keyspace.find(args[1]);
  if (stream == nullptr) return ctx.reply.array(0);
  if (count == 0) return ctx.reply.null_array();
  if (const storage::Error error = write_range(ctx.reply, stream->entries(), start, end, reverse,
                                              count < 0 ? 0 : static_cast<std::size_t>(count))) {
    ctx.reply.error(read_error_text(args[1], error));
  }
}

// --- XINFO STREAM --------------------------------------------------------------------------

// A group as XINFO STREAM FULL shows it: its pending entries and its consumers, each list cut
// at `count` (0: all). Times are absolute milliseconds.
void write_group_full(protocol::ReplyWriter& r, const Stream& s, const std::string& name,
                      const ConsumerGroup& group, std::size_t count) {
  auto limit = [&](std::size_t n) { return count == 0 ? n : std::min(n, count); };
  r.map(7);
  r.bulk("name");
  r.bulk(name);
  r.bulk("last-delivered-id");
  write_stream_id(r, group.last_delivered);
  write_entries_read_and_lag(r, s, group);
  r.bulk("pel-count");
  r.integer(static_cast<std::int64_t>(group.pel.size()));
  r.bulk("pending");
  r.array(limit(group.pel.size()));
  std::size_t n = 0;
  for (auto it = group.pel.begin(); it != group.pel.end() && n < limit(group.pel.size()); ++it, ++n) {
    r.array(4);
    write_stream_id(r, it->first);
    r.bulk(it->second.owner->name);
    r.integer(it->second.delivery_time_ms);
    r.integer(static_cast<std::int64_t>(it->second.delivery_count));
  }
  r.bulk("consumers");
  r.array(group.consumers.size());
  for (const auto& [consumer_name, c] : group.consumers) {
    r.map(4);
    r.bulk("name");
    r.bulk(consumer_name);
    r.bulk("seen-time");
    r.integer(c.seen_time_ms);
    r.bulk("pel-count");
    r.integer(static_cast<std::int64_t>(c.pending.size()));
    r.bulk("pending");
    r.array(limit(c.pending.size()));
    std::size_t k = 0;
    for (auto id = c.pending.begin(); id != c.pending.end() && k < limit(c.pending.size()); ++id, ++k) {
      const PendingEntry& p = group.pel.at(*id);
      r.array(3);
      write_stream_id(r, *id);
      r.integer(p.delivery_time_ms);
      r.integer(static_cast<std::int64_t>(p.delivery_count));
    }
  }
}

storage::Error render_stream_info(protocol::ReplyWriter& r, const Stream& s, bool full, std::size_t count);

// XINFO STREAM's reply, rendered aside first: a read of the first or last entry, or of the
// entries of FULL, that fails makes the reply an error, never half a map.
void write_stream_info(CommandContext& ctx, const Stream& s, bool full, std::size_t count) {
  std::string body;
  protocol::ReplyWriter r(body, ctx.reply.version());
  if (const storage::Error error = render_stream_info(r, s, full, count)) {
    return ctx.reply.error(read_error_text(ctx.args[2], error));
  }
  ctx.reply.buffer().append(body);
}

storage::Error render_stream_info(protocol::ReplyWriter& r, const Stream& s, bool full, std::size_t count) {
  r.map(full ? 9 : 10);
  r.bulk("length");
  r.integer(static_cast<std::int64_t>(s.length()));
  // radix-tree-keys is Redis's node count, which Runnel's nodes reproduce. radix-tree-nodes
  // counts Redis's rax internals; Runnel has no rax and reports the node count there too.
  r.bulk("radix-tree-keys");
  r.integer(static_cast<std::int64_t>(s.entries().node_count()));
  r.bulk("radix-tree-nodes");
  r.integer(static_cast<std::int64_t>(s.entries().node_count()));
  r.bulk("last-generated-id");
  write_stream_id(r, s.last_id);
  r.bulk("max-deleted-entry-id");
  write_stream_id(r, s.max_deleted_id);
  r.bulk("entries-added");
  r.integer(static_cast<std::int64_t>(s.entries_added));
  r.bulk("recorded-first-entry-id");
  write_stream_id(r, s.first_id);
  if (full) {
    r.bulk("entries");
    if (storage::Error error = write_range(r, s.entries(), StreamId::min(), StreamId::max(), false, count)) {
      return error;
    }
    r.bulk("groups");
    r.array(s.groups.size());
    for (const auto& [name, group] : s.groups) write_group_full(r, s, name, group, count);
    return {};
  }
  r.bulk("groups");
  r.integer(static_cast<std::int64_t>(s.groups.size()));
  for (const bool last : {false, true}) {
    r.bulk(last ? "last-entry" : "first-entry");
    bool emitted = false;
    storage::Error error = s.entries().scan(StreamId::min(), StreamId::max(), last, [&](const storage::EntryView& e) {
      write_entry(r, e);
      emitted = true;
      return false;
    });
    if (error) return error;
    if (!emitted) r.null();
  }
  return {};
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
  Stream* existing = ctx.shard->keyspace.find(args[1]);
  if (existing == nullptr && parsed.no_mkstream) return ctx.reply.null();
  StreamId id;
  switch (next_id(existing ? existing->last_id : StreamId::min(), parsed.id ? &*parsed.id : nullptr,
                  id)) {
    case NewIdError::kNone: break;
    case NewIdError::kExhausted:
      return ctx.reply.error(
          "ERR The stream has exhausted the last possible ID, unable to add more items");
    case NewIdError::kSeqOverflow:  // Redis 7.0 reports this case with this text
      return ctx.reply.error("ERR Elements are too large to be stored");
    case NewIdError::kNotGreater:
      return ctx.reply.error(
          "ERR The ID specified in XADD is equal or smaller than the target stream top item");
  }
  std::string error;
  Stream* created = existing ? existing : ctx.shard->keyspace.find_or_create(args[1], error);
  if (created == nullptr) return ctx.reply.error("MISCONF " + error);
  Stream& stream = *created;
  stream.entries().append(id, args.subspan(fields_pos));
  stream.last_id = id;
  ++stream.entries_added;
  if (stream.length() == 1) stream.first_id = id;
  write_stream_id(ctx.reply, id);
  if (parsed.trim) trim_stream(stream, *parsed.trim);
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
  std::int64_t deleted = 0;
  for (const StreamId id : ids) {
    if (!stream->entries().erase(id)) continue;
    ++deleted;
    if (id > stream->max_deleted_id) stream->max_deleted_id = id;
  }
  if (deleted > 0) {
    stream->refresh_first_id();
    ctx.shard->signal_modified(args[1]);
  }
  ctx.reply.integer(deleted);
}

void xtrim(CommandContext& ctx) {
  AddTrimArgs parsed;
  if (const std::string error = parse_add_trim(ctx.args, false, parsed); !error.empty()) {
    return ctx.reply.error(error);
  }
  Stream* stream = ctx.shard->keyspace.find(ctx.args[1]);
  if (stream == nullptr) return ctx.reply.integer(0);
  const std::uint64_t removed = trim_stream(*stream, *parsed.trim);
  if (removed > 0) ctx.shard->signal_modified(ctx.args[1]);
  ctx.reply.integer(static_cast<std::int64_t>(removed));
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
  if (stream == nullptr) return ctx.reply.error("ERR no such key");
  if (stream->length() > 0) {
    if (id->id < *stream->entries().last_id()) {
      return ctx.reply.error(
          "ERR The ID specified in XSETID is smaller than the target stream top item");
    }
    if (entries_added != -1 && stream->length() > static_cast<std::uint64_t>(entries_added)) {
      return ctx.reply.error(
          "ERR The entries_added specified in XSETID is smaller than the target stream length");
    }
  }
  stream->last_id = id->id;
  if (entries_added != -1) stream->entries_added = static_cast<std::uint64_t>(entries_added);
  if (max_deleted && *max_deleted != StreamId::min()) stream->max_deleted_id = *max_deleted;
  ctx.reply.ok();  // Redis 7.0 does not count XSETID as a change for WATCH
}

void xinfo_stream(CommandContext& ctx) {
  const Stream* stream = ctx.shard->keyspace.find(ctx.args[2]);
  if (stream == nullptr) return ctx.reply.error("ERR no such key");
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
        return "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be "
               "specified.";
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
    const Stream* stream = shard.keyspace.find(request.keys[i]);
    ok[i] = stream != nullptr && stream->groups.find(request.group) != stream->groups.end();
  }
}

std::string first_error(const Request& request, const std::vector<char>& ok) {
  for (std::size_t i = 0; i < request.keys.size(); ++i) {
    if (!ok[i]) {
      return "NOGROUP No such key '" + request.keys[i] + "' or consumer group '" +
             request.group + "' in XREADGROUP with GROUP option";
    }
    if (!request.id_errors[i].empty()) return request.id_errors[i];
  }
  return {};
}

namespace {

// XREADGROUP's part on a shard: new entries for '>', the consumer's history for an ID.
bool read_groups_on_shard(Shard& shard, Request& request, std::span<const std::size_t> indices,
                          std::vector<std::string>& results, protocol::RespVersion resp) {
  bool found = false;
  const std::int64_t now = wall_now_ms();
  const auto count = static_cast<std::size_t>(request.count);
  for (const std::size_t i : indices) {
    Stream* stream = shard.keyspace.find(request.keys[i]);
    if (stream == nullptr) {  // deleted since the check
      if (request.gone_error.empty()) request.gone_error = "UNBLOCKED the stream key no longer exists";
      continue;
    }
    auto it = stream->groups.find(request.group);
    if (it == stream->groups.end()) {  // destroyed since the check
      if (request.gone_error.empty()) {
        request.gone_error = "NOGROUP the consumer group this client was blocked on no longer exists";
      }
      continue;
    }
    ConsumerGroup& group = it->second;
    protocol::ReplyWriter out(results[i], resp);
    storage::Error error;
    if (request.ids[i]) {  // history: always answered, even when empty
      Consumer& consumer = *group.consumer(request.consumer, true, now);
      error = deliver_history(out, *stream, group, consumer, *request.ids[i], count);
    } else if (stream->length() > 0 && *stream->entries().last_id() > group.last_delivered) {
      Consumer& consumer = *group.consumer(request.consumer, true, now);
      error = deliver_new(out, *stream, group, consumer, count, request.noack);
    } else {
      continue;
    }
    if (error) {  // nothing delivered from this key: its group stays where it was
      if (request.read_error.empty()) request.read_error = read_error_text(request.keys[i], error);
      results[i].clear();
      continue;
    }
    found = true;
  }
  return found;
}

// XREAD's part on a shard: entries above each key's ID ('$': the top as it is now).
bool read_streams_on_shard(Shard& shard, Request& request,
                           std::span<const std::size_t> indices, std::vector<std::string>& results,
                           protocol::RespVersion resp, const std::shared_ptr<StreamWaiter>& waiter) {
  bool found = false;
  for (const std::size_t i : indices) {
    const Stream* stream = shard.keyspace.find(request.keys[i]);
    const StreamId after = request.ids[i].value_or(stream ? stream->last_id : StreamId::min());
    if (waiter) waiter->after[i] = after;
    if (stream == nullptr || stream->length() == 0 || !(*stream->entries().last_id() > after)) {
      continue;
    }
    protocol::ReplyWriter out(results[i], resp);
    if (const storage::Error error = write_range(out, stream->entries(), *after.next(), StreamId::max(), false,
                                                static_cast<std::size_t>(request.count))) {
      if (request.read_error.empty()) request.read_error = read_error_text(request.keys[i], error);
      continue;
    }
    found = true;
  }
  return found;
}

}  // namespace

bool run_on_shard(Shard& shard, Request& request, std::span<const std::size_t> indices,
                  std::vector<std::string>& results, protocol::RespVersion resp,
                  const std::shared_ptr<StreamWaiter>& waiter) {
  const bool found = request.group_mode
                         ? read_groups_on_shard(shard, request, indices, results, resp)
                         : read_streams_on_shard(shard, request, indices, results, resp, waiter);
  if (!found && waiter && !request.found_elsewhere && request.read_error.empty()) {
    for (const std::size_t i : indices) shard.blocked.add(request.keys[i], i, waiter);
    request.registered_shards.push_back(shard.index);
  }
  request.found_elsewhere = request.found_elsewhere || found;
  return found;
}

void write_reply(protocol::ReplyWriter& reply, const Request& request,
                 const std::vector<std::string>& results) {
  if (!request.read_error.empty()) return reply.error(request.read_error);
  std::size_t with_data = 0;
  for (const std::string& r : results) with_data += r.empty() ? 0 : 1;
  if (with_data == 0) return reply.null_array();
  if (reply.version() == protocol::RespVersion::kResp3) {
    reply.map(with_data);
  } else {
    reply.array(with_data);
  }
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (results[i].empty()) continue;
    if (reply.version() != protocol::RespVersion::kResp3) reply.array(2);
    reply.bulk(request.keys[i]);
    reply.buffer().append(results[i]);
  }
}

}  // namespace xread
}  // namespace runnel
