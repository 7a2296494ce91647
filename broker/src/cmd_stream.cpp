// Stream commands: XADD, XLEN, XRANGE, XREVRANGE. Each runs on the shard that owns its key.
#include <chrono>

#include "command.hpp"
#include "stream_args.hpp"

namespace runnel {
namespace {

using storage::EntryView;
using storage::FieldCursor;

std::uint64_t now_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

void write_id(protocol::ReplyWriter& reply, StreamId id) {
  char buf[48];
  reply.bulk(std::string_view(buf, id.format(buf)));
}

void write_entry(protocol::ReplyWriter& reply, const EntryView& entry) {
  reply.array(2);
  write_id(reply, entry.id);
  FieldCursor fields(entry.payload);
  reply.array(fields.count());
  std::string_view field;
  while (fields.next(field)) reply.bulk(field);
}

// The ID XADD gives a new entry: `*` takes the clock (never going back: with the clock behind
// the top, it keeps the top's ms and bumps the sequence), `<ms>-*` the next sequence in ms.
enum class NewIdError { kNone, kExhausted, kNotGreater, kSeqOverflow };

NewIdError next_id(StreamId last, const ParsedId* explicit_id, StreamId& out) {
  if (last == StreamId::max()) return NewIdError::kExhausted;
  if (explicit_id == nullptr) {
    const std::uint64_t ms = now_ms();
    if (ms > last.ms) {
      out = {ms, 0};
      return NewIdError::kNone;
    }
    const auto next = last.next();
    if (!next) return NewIdError::kExhausted;
    out = *next;
    return NewIdError::kNone;
  }
  if (!explicit_id->seq_given) {
    const std::uint64_t ms = explicit_id->id.ms;
    if (ms == last.ms) {
      if (last.seq == UINT64_MAX) return NewIdError::kSeqOverflow;
      out = {ms, last.seq + 1};
    } else if (ms > last.ms) {
      out = {ms, 0};
    } else {
      return NewIdError::kNotGreater;
    }
    return NewIdError::kNone;
  }
  if (explicit_id->id <= last) return NewIdError::kNotGreater;
  out = explicit_id->id;
  return NewIdError::kNone;
}

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
  if (!parse_bound(start_arg, 0, start, start_exclusive) ||
      !parse_bound(end_arg, UINT64_MAX, end, end_exclusive)) {
    return ctx.reply.error(kInvalidStreamId);
  }
  if (start_exclusive) {
    const auto next = start.next();
    if (!next) return ctx.reply.error("ERR invalid start ID for the interval");
    start = *next;
  }
  if (end_exclusive) {
    const auto prev = end.prev();
    if (!prev) return ctx.reply.error("ERR invalid end ID for the interval");
    end = *prev;
  }
  std::int64_t count = -1;
  for (std::size_t i = 4; i < args.size(); ++i) {
    if (equals_ignore_case(args[i], "COUNT") && i + 1 < args.size()) {
      if (!parse_int64(args[i + 1], count)) {
        return ctx.reply.error("ERR value is not an integer or out of range");
      }
      if (count < 0) count = 0;
      ++i;
    } else {
      return ctx.reply.error("ERR syntax error");
    }
  }
  Stream* stream = ctx.shard->keyspace.find(args[1]);
  if (stream == nullptr) return ctx.reply.array(0);
  if (count == 0) return ctx.reply.null_array();
  if (start > end) return ctx.reply.array(0);
  // The count is known only after the scan: collect, then write.
  std::string body;
  protocol::ReplyWriter out(body, ctx.reply.version());
  std::size_t emitted = 0;
  stream->entries().scan(start, end, reverse, [&](const EntryView& entry) {
    write_entry(out, entry);
    ++emitted;
    return count < 0 || emitted < static_cast<std::size_t>(count);
  });
  ctx.reply.array(emitted);
  ctx.reply.buffer().append(body);
}

}  // namespace

namespace cmd {

void xadd(CommandContext& ctx) {
  const auto& args = ctx.args;
  const std::size_t id_pos = 2;
  if ((args.size() - id_pos - 1) % 2 != 0) return reply_arity_error(ctx.reply, "xadd");
  std::optional<ParsedId> explicit_id;
  if (args[id_pos] != "*") {
    explicit_id = parse_id_arg(args[id_pos], 0, true, true);
    if (!explicit_id) return ctx.reply.error(kInvalidStreamId);
    if (explicit_id->seq_given && explicit_id->id == StreamId::min()) {
      return ctx.reply.error("ERR The ID specified in XADD must be greater than 0-0");
    }
  }
  Stream* existing = ctx.shard->keyspace.find(args[1]);
  StreamId id;
  switch (next_id(existing ? existing->last_id : StreamId::min(),
                  explicit_id ? &*explicit_id : nullptr, id)) {
    case NewIdError::kNone: break;
    case NewIdError::kExhausted:
      return ctx.reply.error(
          "ERR The stream has exhausted the last possible ID, unable to add more items");
    case NewIdError::kSeqOverflow:  // Redis 7.0 reports EDOM here with this text
      return ctx.reply.error("ERR Elements are too large to be stored");
    case NewIdError::kNotGreater:
      return ctx.reply.error(
          "ERR The ID specified in XADD is equal or smaller than the target stream top item");
  }
  Stream& stream = existing ? *existing : ctx.shard->keyspace.find_or_create(args[1]);
  stream.entries().append(id, args.subspan(id_pos + 1));
  stream.last_id = id;
  ++stream.entries_added;
  write_id(ctx.reply, id);
}

void xlen(CommandContext& ctx) {
  const Stream* stream = ctx.shard->keyspace.find(ctx.args[1]);
  ctx.reply.integer(stream ? static_cast<std::int64_t>(stream->length()) : 0);
}

void xrange(CommandContext& ctx) { range(ctx, false); }
void xrevrange(CommandContext& ctx) { range(ctx, true); }

}  // namespace cmd
}  // namespace runnel
