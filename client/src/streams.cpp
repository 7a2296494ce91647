// The stream commands' builders and reply parsers (see runnel/client/streams.hpp). Parsers
// take RESP2 and RESP3 shapes alike; each names its command in the UnexpectedReply it
// throws, since a parser is a plain function pointer with no context of its own.
#include <runnel/client/streams.hpp>

#include <charconv>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

namespace runnel::client {

using Type = Reply::Type;

// ---------------------------------------------------------------------------------------------
// StreamId, Entry

namespace {

std::optional<std::uint64_t> parse_decimal(std::string_view text) {
  // from_chars takes no sign or space, but it stops early instead of failing on junk after
  // the digits, hence the end check.
  if (text.empty()) return std::nullopt;
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace

std::optional<StreamId> StreamId::parse(std::string_view text) {
  const auto dash = text.find('-');
  const auto ms = parse_decimal(text.substr(0, dash));
  if (!ms) return std::nullopt;
  if (dash == std::string_view::npos) return StreamId{*ms, 0};
  const auto seq = parse_decimal(text.substr(dash + 1));
  if (!seq) return std::nullopt;
  return StreamId{*ms, *seq};
}

std::string StreamId::to_string() const {
  std::string text = std::to_string(ms);
  text += '-';
  text += std::to_string(seq);
  return text;
}

const std::string* Entry::field(std::string_view name) const {
  for (const auto& [key, value] : fields) {
    if (key == name) return &value;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Reply shapes

namespace {

const char* type_name(Type type) {
  switch (type) {
    case Type::kSimple:
      return "a simple string";
    case Type::kError:
      return "an error";
    case Type::kInteger:
      return "an integer";
    case Type::kBulk:
      return "a bulk string";
    case Type::kNull:
      return "nil";
    case Type::kArray:
      return "an array";
    case Type::kMap:
      return "a map";
    case Type::kSet:
      return "a set";
    case Type::kDouble:
      return "a double";
    case Type::kBoolean:
      return "a boolean";
    case Type::kVerbatim:
      return "a verbatim string";
    case Type::kBigNumber:
      return "a big number";
    case Type::kPush:
      return "a push";
  }
  return "an unknown type";
}

// "an array of 3", "a bulk string \"abc\"": enough to see what came, bounded in length.
std::string describe(const Reply& reply) {
  std::string out = type_name(reply.type);
  if (reply.is_aggregate()) {
    out += " of " + std::to_string(reply.elements.size());
  } else if (reply.type == Type::kInteger || reply.type == Type::kBoolean) {
    out += " " + std::to_string(reply.integer);
  } else if (reply.type != Type::kNull) {
    constexpr std::size_t kShown = 40;
    out += " \"";
    for (char c : std::string_view(reply.str).substr(0, kShown)) {
      out += (c >= 0x20 && c < 0x7f) ? c : '?';
    }
    out += reply.str.size() > kShown ? "...\"" : "\"";
  }
  return out;
}

[[noreturn]] void unexpected(const char* command, std::string_view expected, const Reply& got) {
  std::string what = command;
  what += " reply: expected ";
  what += expected;
  what += ", got ";
  what += describe(got);
  throw UnexpectedReply(what);
}

bool is_text(const Reply& reply) {
  return reply.type == Type::kBulk || reply.type == Type::kSimple || reply.type == Type::kVerbatim;
}

bool is_list(const Reply& reply) {
  return reply.type == Type::kArray || reply.type == Type::kSet;
}

std::string take_text(Reply& reply, const char* command, std::string_view what) {
  if (!is_text(reply)) unexpected(command, what, reply);
  return std::move(reply.str);
}

// A count. Integers mostly; XPENDING's summary sends its per-consumer counts as bulk
// strings, so decimal text is taken too.
std::uint64_t to_count(const Reply& reply, const char* command, std::string_view what) {
  if (reply.type == Type::kInteger && reply.integer >= 0) {
    return static_cast<std::uint64_t>(reply.integer);
  }
  if (is_text(reply) || reply.type == Type::kBigNumber) {
    if (const auto value = parse_decimal(reply.str)) return *value;
  }
  unexpected(command, what, reply);
}

std::optional<std::uint64_t> to_count_or_nil(const Reply& reply, const char* command,
                                             std::string_view what) {
  if (reply.type == Type::kNull) return std::nullopt;
  return to_count(reply, command, what);
}

StreamId to_id(const Reply& reply, const char* command) {
  if (is_text(reply)) {
    if (const auto id = StreamId::parse(reply.str)) return *id;
  }
  unexpected(command, "a stream ID", reply);
}

std::optional<StreamId> to_id_or_nil(const Reply& reply, const char* command) {
  if (reply.type == Type::kNull) return std::nullopt;
  return to_id(reply, command);
}

std::vector<StreamId> to_ids(const Reply& reply, const char* command) {
  if (!is_list(reply)) unexpected(command, "an array of stream IDs", reply);
  std::vector<StreamId> ids;
  ids.reserve(reply.elements.size());
  for (const auto& element : reply.elements) ids.push_back(to_id(element, command));
  return ids;
}

bool to_flag(const Reply& reply, const char* command) {
  if ((reply.type == Type::kInteger || reply.type == Type::kBoolean) &&
      (reply.integer == 0 || reply.integer == 1)) {
    return reply.integer == 1;
  }
  unexpected(command, "0 or 1", reply);
}

// Field names then values, flat: an array in both protocols (a map is taken too, as its
// elements are laid out the same way).
Fields to_fields(Reply&& reply, const char* command) {
  if ((!is_list(reply) && reply.type != Type::kMap) || reply.elements.size() % 2 != 0) {
    unexpected(command, "an entry's fields (field, value, ...)", reply);
  }
  Fields fields;
  fields.reserve(reply.elements.size() / 2);
  for (std::size_t i = 0; i < reply.elements.size(); i += 2) {
    auto name = take_text(reply.elements[i], command, "a field name");
    auto value = take_text(reply.elements[i + 1], command, "a field value");
    fields.emplace_back(std::move(name), std::move(value));
  }
  return fields;
}

// [id, [field, value, ...]], or [id, nil] for an entry deleted while pending; with
// XREADGROUP's CLAIM, [id, fields, idle ms, deliveries].
Entry to_entry(Reply&& reply, const char* command) {
  const bool claimed = reply.elements.size() == 4;
  if (reply.type != Type::kArray || (reply.elements.size() != 2 && !claimed)) {
    unexpected(command, "an entry [id, fields]", reply);
  }
  Entry entry;
  entry.id = to_id(reply.elements[0], command);
  if (reply.elements[1].type == Type::kNull) {
    entry.deleted = true;
  } else {
    entry.fields = to_fields(std::move(reply.elements[1]), command);
  }
  if (claimed) {
    entry.delivery = Entry::Delivery{to_count(reply.elements[2], command, "an idle time"),
                                     to_count(reply.elements[3], command, "a delivery count")};
  }
  return entry;
}

enum class NilElements : bool { refuse, skip };

// A list of entries; nil is an empty list (XRANGE answers nil to COUNT 0). XCLAIM and
// XAUTOCLAIM on Redis 6 put a nil where a claimed entry had been deleted: `skip` drops those.
std::vector<Entry> to_entries(Reply&& reply, const char* command,
                              NilElements nil_elements = NilElements::refuse) {
  if (reply.type == Type::kNull) return {};
  if (reply.type != Type::kArray) unexpected(command, "an array of entries", reply);
  std::vector<Entry> entries;
  entries.reserve(reply.elements.size());
  for (auto& element : reply.elements) {
    if (element.type == Type::kNull && nil_elements == NilElements::skip) continue;
    entries.push_back(to_entry(std::move(element), command));
  }
  return entries;
}

// XINFO's replies: a map in RESP3, a flat [name, value, ...] array in RESP2. Calls `on_field`
// with each name and value; names it does not know are its to ignore.
template <class OnField>
void for_each_field(Reply&& reply, const char* command, OnField&& on_field) {
  if ((reply.type != Type::kMap && reply.type != Type::kArray) || reply.elements.size() % 2 != 0) {
    unexpected(command, "a map or a [name, value, ...] array", reply);
  }
  for (std::size_t i = 0; i < reply.elements.size(); i += 2) {
    if (!is_text(reply.elements[i])) unexpected(command, "a field name", reply.elements[i]);
    on_field(std::string_view(reply.elements[i].str), std::move(reply.elements[i + 1]));
  }
}

template <class T, class ParseOne>
std::vector<T> to_list(Reply&& reply, const char* command, std::string_view what,
                       ParseOne&& parse_one) {
  if (!is_list(reply)) unexpected(command, what, reply);
  std::vector<T> out;
  out.reserve(reply.elements.size());
  for (auto& element : reply.elements) out.push_back(parse_one(std::move(element)));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Parsers, one per reply shape and command

StreamId parse_xadd(Reply&& reply) {
  return to_id(reply, "XADD");
}

std::optional<StreamId> parse_xadd_nomkstream(Reply&& reply) {
  return to_id_or_nil(reply, "XADD");
}

std::vector<Entry> parse_xrange(Reply&& reply) {
  return to_entries(std::move(reply), "XRANGE");
}
std::vector<Entry> parse_xrevrange(Reply&& reply) {
  return to_entries(std::move(reply), "XREVRANGE");
}

// nil when nothing came; a map stream -> entries in RESP3; [[stream, entries], ...] in RESP2.
std::vector<StreamEntries> to_stream_entries(Reply&& reply, const char* command) {
  std::vector<StreamEntries> out;
  if (reply.type == Type::kNull) return out;
  if (reply.type == Type::kMap) {
    if (reply.elements.size() % 2 != 0) unexpected(command, "a map of streams", reply);
    out.reserve(reply.elements.size() / 2);
    for (std::size_t i = 0; i < reply.elements.size(); i += 2) {
      auto stream = take_text(reply.elements[i], command, "a stream name");
      out.push_back({std::move(stream), to_entries(std::move(reply.elements[i + 1]), command)});
    }
    return out;
  }
  if (reply.type != Type::kArray) unexpected(command, "nil, a map or an array of streams", reply);
  out.reserve(reply.elements.size());
  for (auto& element : reply.elements) {
    if (element.type != Type::kArray || element.elements.size() != 2) {
      unexpected(command, "a [stream, entries] pair", element);
    }
    auto stream = take_text(element.elements[0], command, "a stream name");
    out.push_back({std::move(stream), to_entries(std::move(element.elements[1]), command)});
  }
  return out;
}

std::vector<StreamEntries> parse_xread(Reply&& reply) {
  return to_stream_entries(std::move(reply), "XREAD");
}
std::vector<StreamEntries> parse_xreadgroup(Reply&& reply) {
  return to_stream_entries(std::move(reply), "XREADGROUP");
}

Ok to_ok(const Reply& reply, const char* command) {
  if (reply.type != Type::kSimple || reply.str != "OK") unexpected(command, "OK", reply);
  return {};
}

std::uint64_t parse_xack(Reply&& reply) {
  return to_count(reply, "XACK", "a count");
}
Ok parse_xgroup_create(Reply&& reply) {
  return to_ok(reply, "XGROUP CREATE");
}
Ok parse_xgroup_setid(Reply&& reply) {
  return to_ok(reply, "XGROUP SETID");
}
bool parse_xgroup_destroy(Reply&& reply) {
  return to_flag(reply, "XGROUP DESTROY");
}
bool parse_xgroup_createconsumer(Reply&& reply) {
  return to_flag(reply, "XGROUP CREATECONSUMER");
}
std::uint64_t parse_xgroup_delconsumer(Reply&& reply) {
  return to_count(reply, "XGROUP DELCONSUMER", "a count");
}

// [count, smallest, largest, [[consumer, count], ...]]; nil IDs and list when none pending.
PendingSummary parse_xpending_summary(Reply&& reply) {
  constexpr const char* kCommand = "XPENDING";
  if (reply.type != Type::kArray || reply.elements.size() != 4) {
    unexpected(kCommand, "[count, smallest, largest, consumers]", reply);
  }
  PendingSummary summary;
  summary.count = to_count(reply.elements[0], kCommand, "a count");
  summary.smallest = to_id_or_nil(reply.elements[1], kCommand);
  summary.largest = to_id_or_nil(reply.elements[2], kCommand);
  auto& consumers = reply.elements[3];
  if (consumers.type == Type::kNull) return summary;
  if (consumers.type == Type::kMap) {
    // Not what Redis sends, but a RESP3 server could fairly send consumer -> count.
    for_each_field(std::move(consumers), kCommand, [&](std::string_view name, Reply&& count) {
      summary.consumers.emplace_back(std::string(name), to_count(count, kCommand, "a count"));
    });
    return summary;
  }
  if (!is_list(consumers)) unexpected(kCommand, "an array of consumers", consumers);
  summary.consumers.reserve(consumers.elements.size());
  for (auto& pair : consumers.elements) {
    if (pair.type != Type::kArray || pair.elements.size() != 2) {
      unexpected(kCommand, "a [consumer, count] pair", pair);
    }
    auto name = take_text(pair.elements[0], kCommand, "a consumer name");
    summary.consumers.emplace_back(std::move(name),
                                   to_count(pair.elements[1], kCommand, "a count"));
  }
  return summary;
}

// [[id, consumer, idle, deliveries], ...]
std::vector<PendingEntry> parse_xpending_entries(Reply&& reply) {
  constexpr const char* kCommand = "XPENDING";
  return to_list<PendingEntry>(
      std::move(reply), kCommand, "an array of pending entries", [](Reply&& element) {
        if (element.type != Type::kArray || element.elements.size() != 4) {
          unexpected(kCommand, "[id, consumer, idle, deliveries]", element);
        }
        PendingEntry entry;
        entry.id = to_id(element.elements[0], kCommand);
        entry.consumer = take_text(element.elements[1], kCommand, "a consumer name");
        entry.idle_ms = to_count(element.elements[2], kCommand, "an idle time");
        entry.deliveries = to_count(element.elements[3], kCommand, "a delivery count");
        return entry;
      });
}

std::vector<Entry> parse_xclaim(Reply&& reply) {
  return to_entries(std::move(reply), "XCLAIM", NilElements::skip);
}
std::vector<StreamId> parse_xclaim_justid(Reply&& reply) {
  return to_ids(reply, "XCLAIM");
}

// [next, entries, deleted]; Redis 6.2 sends no `deleted`.
void check_autoclaim_shape(const Reply& reply) {
  if (reply.type != Type::kArray || reply.elements.size() < 2 || reply.elements.size() > 3) {
    unexpected("XAUTOCLAIM", "[next, entries, deleted]", reply);
  }
}

AutoClaimResult parse_xautoclaim(Reply&& reply) {
  check_autoclaim_shape(reply);
  AutoClaimResult result;
  result.next = to_id(reply.elements[0], "XAUTOCLAIM");
  result.entries = to_entries(std::move(reply.elements[1]), "XAUTOCLAIM", NilElements::skip);
  if (reply.elements.size() == 3) result.deleted = to_ids(reply.elements[2], "XAUTOCLAIM");
  return result;
}

AutoClaimIdsResult parse_xautoclaim_justid(Reply&& reply) {
  check_autoclaim_shape(reply);
  AutoClaimIdsResult result;
  result.next = to_id(reply.elements[0], "XAUTOCLAIM");
  result.ids = to_ids(reply.elements[1], "XAUTOCLAIM");
  if (reply.elements.size() == 3) result.deleted = to_ids(reply.elements[2], "XAUTOCLAIM");
  return result;
}

StreamInfo parse_xinfo_stream(Reply&& reply) {
  constexpr const char* kCommand = "XINFO STREAM";
  StreamInfo info;
  bool has_length = false;
  for_each_field(std::move(reply), kCommand, [&](std::string_view name, Reply&& value) {
    if (name == "length") {
      info.length = to_count(value, kCommand, "a length");
      has_length = true;
    } else if (name == "radix-tree-keys") {
      info.radix_tree_keys = to_count(value, kCommand, "a count");
    } else if (name == "radix-tree-nodes") {
      info.radix_tree_nodes = to_count(value, kCommand, "a count");
    } else if (name == "last-generated-id") {
      info.last_generated_id = to_id(value, kCommand);
    } else if (name == "max-deleted-entry-id") {
      info.max_deleted_entry_id = to_id(value, kCommand);
    } else if (name == "entries-added") {
      info.entries_added = to_count(value, kCommand, "a count");
    } else if (name == "recorded-first-entry-id") {
      info.recorded_first_entry_id = to_id(value, kCommand);
    } else if (name == "groups") {
      info.groups = to_count(value, kCommand, "a count");
    } else if (name == "first-entry" && value.type != Type::kNull) {
      info.first_entry = to_entry(std::move(value), kCommand);
    } else if (name == "last-entry" && value.type != Type::kNull) {
      info.last_entry = to_entry(std::move(value), kCommand);
    }
  });
  // Every server sends it; without it this is some other map.
  if (!has_length) throw UnexpectedReply("XINFO STREAM reply: no \"length\" field");
  return info;
}

std::vector<GroupInfo> parse_xinfo_groups(Reply&& reply) {
  constexpr const char* kCommand = "XINFO GROUPS";
  return to_list<GroupInfo>(std::move(reply), kCommand, "an array of groups", [](Reply&& group) {
    GroupInfo info;
    bool has_name = false;
    for_each_field(std::move(group), kCommand, [&](std::string_view name, Reply&& value) {
      if (name == "name") {
        info.name = take_text(value, kCommand, "a group name");
        has_name = true;
      } else if (name == "consumers") {
        info.consumers = to_count(value, kCommand, "a count");
      } else if (name == "pending") {
        info.pending = to_count(value, kCommand, "a count");
      } else if (name == "last-delivered-id") {
        info.last_delivered_id = to_id(value, kCommand);
      } else if (name == "entries-read") {
        info.entries_read = to_count_or_nil(value, kCommand, "a count or nil");
      } else if (name == "lag") {
        info.lag = to_count_or_nil(value, kCommand, "a count or nil");
      }
    });
    if (!has_name) throw UnexpectedReply("XINFO GROUPS reply: a group without \"name\"");
    return info;
  });
}

std::vector<ConsumerInfo> parse_xinfo_consumers(Reply&& reply) {
  constexpr const char* kCommand = "XINFO CONSUMERS";
  return to_list<ConsumerInfo>(
      std::move(reply), kCommand, "an array of consumers", [](Reply&& consumer) {
        ConsumerInfo info;
        bool has_name = false;
        for_each_field(std::move(consumer), kCommand, [&](std::string_view name, Reply&& value) {
          if (name == "name") {
            info.name = take_text(value, kCommand, "a consumer name");
            has_name = true;
          } else if (name == "pending") {
            info.pending = to_count(value, kCommand, "a count");
          } else if (name == "idle") {
            info.idle_ms = to_count(value, kCommand, "an idle time");
          } else if (name == "inactive") {
            // Redis 7.2 sends -1 for a consumer that never read or claimed anything.
            if (value.type == Type::kInteger && value.integer == -1) return;
            info.inactive_ms = to_count(value, kCommand, "an inactive time or -1");
          }
        });
        if (!has_name) throw UnexpectedReply("XINFO CONSUMERS reply: a consumer without \"name\"");
        return info;
      });
}

std::uint64_t parse_xlen(Reply&& reply) {
  return to_count(reply, "XLEN", "a length");
}
std::uint64_t parse_xdel(Reply&& reply) {
  return to_count(reply, "XDEL", "a count");
}
std::vector<DeleteResult> to_delete_results(const Reply& reply, const char* command) {
  if (reply.type != Type::kArray) unexpected(command, "an array of -1, 1 or 2", reply);
  std::vector<DeleteResult> out;
  for (const Reply& e : reply.elements) {
    if (e.type != Type::kInteger || (e.integer != -1 && e.integer != 1 && e.integer != 2)) {
      unexpected(command, "-1, 1 or 2", e);
    }
    out.push_back(static_cast<DeleteResult>(e.integer));
  }
  return out;
}
std::vector<DeleteResult> parse_xdelex(Reply&& reply) { return to_delete_results(reply, "XDELEX"); }
std::vector<DeleteResult> parse_xackdel(Reply&& reply) { return to_delete_results(reply, "XACKDEL"); }
std::uint64_t parse_xnack(Reply&& reply) { return to_count(reply, "XNACK", "a count"); }
std::uint64_t parse_xtrim(Reply&& reply) {
  return to_count(reply, "XTRIM", "a count");
}
Ok parse_xsetid(Reply&& reply) {
  return to_ok(reply, "XSETID");
}
std::uint64_t parse_del(Reply&& reply) {
  return to_count(reply, "DEL", "a count");
}
std::string parse_ping(Reply&& reply) {
  return take_text(reply, "PING", "a string");
}

// EXEC of a Transaction: [MULTI's reply, one reply per queued command, EXEC's reply].
TransactionResult parse_exec(Reply&& reply) {
  constexpr const char* kCommand = "MULTI/EXEC";
  if (reply.type != Type::kArray || reply.elements.size() < 2) {
    unexpected(kCommand, "[MULTI, queued..., EXEC] replies", reply);
  }
  auto& replies = reply.elements;
  // MULTI refused means the commands ran on their own and EXEC failed: MULTI says why.
  if (replies.front().is_error()) throw ServerError(std::move(replies.front().str));
  auto& exec = replies.back();
  if (exec.is_error()) {
    // EXECABORT says only that something was refused while queueing; name the first refusal.
    std::string text = std::move(exec.str);
    for (std::size_t i = 1; i + 1 < replies.size(); ++i) {
      if (replies[i].is_error()) {
        text += " [command " + std::to_string(i - 1) + ": " + replies[i].str + "]";
        break;
      }
    }
    throw ServerError(std::move(text));
  }
  TransactionResult result;
  if (exec.type == Type::kNull) {
    result.aborted = true;
    return result;
  }
  if (exec.type != Type::kArray) unexpected(kCommand, "EXEC's array, nil or an error", exec);
  result.replies = std::move(exec.elements);
  return result;
}

// ---------------------------------------------------------------------------------------------
// Arguments shared by several commands

// KEEPREF | DELREF | ACKED
void add_references(Command& command, References references) {
  switch (references) {
    case References::keep: command.arg("KEEPREF"); break;
    case References::remove: command.arg("DELREF"); break;
    case References::acked: command.arg("ACKED"); break;
  }
}

// MAXLEN|MINID [=|~] threshold [LIMIT count]
void add_trim(Command& command, const TrimOptions& trim) {
  if (trim.strategy == TrimOptions::Strategy::maxlen) {
    command.arg("MAXLEN");
    if (trim.approximate) command.arg("~");
    command.arg(trim.maxlen);
  } else {
    command.arg("MINID");
    if (trim.approximate) command.arg("~");
    command.arg(trim.minid.to_string());
  }
  if (trim.limit) command.arg("LIMIT").arg(*trim.limit);
  if (trim.references) add_references(command, *trim.references);
}

Command xadd_command(std::string_view key, const Fields& fields, const XAddOptions& options,
                     bool nomkstream) {
  Command command("XADD", key);
  if (nomkstream) command.arg("NOMKSTREAM");
  if (options.idmp_producer) {
    if (options.idmp_id) {
      command.arg("IDMP").arg(*options.idmp_producer).arg(*options.idmp_id);
    } else {
      command.arg("IDMPAUTO").arg(*options.idmp_producer);
    }
  }
  if (options.trim) add_trim(command, *options.trim);
  if (!options.id_text.empty()) {
    command.arg(options.id_text);
  } else if (options.id) {
    command.arg(options.id->to_string());
  } else {
    command.arg("*");
  }
  for (const auto& [name, value] : fields) command.arg(name).arg(value);
  return command;
}

void add_ids(Command& command, const std::vector<StreamId>& ids) {
  for (const auto& id : ids) command.arg(id.to_string());
}

// [COUNT n] [BLOCK ms], returning the request's block_ms.
std::int64_t add_read_options(Command& command, const std::optional<std::uint64_t>& count,
                              const std::optional<std::chrono::milliseconds>& block) {
  if (count) command.arg("COUNT").arg(*count);
  if (!block) return -1;
  const std::int64_t ms = block->count();
  command.arg("BLOCK").arg(ms);
  // A negative BLOCK is refused by the server at once; it never blocks.
  return ms >= 0 ? ms : -1;
}

void add_streams(Command& command, const StreamCursors& streams) {
  command.arg("STREAMS");
  for (const auto& stream : streams) command.arg(stream.first);
  for (const auto& stream : streams) command.arg(stream.second);
}

Command xclaim_command(std::string_view key, std::string_view group, std::string_view consumer,
                       std::uint64_t min_idle_ms, const std::vector<StreamId>& ids,
                       const XClaimOptions& options, bool justid) {
  Command command("XCLAIM", key, group, consumer, min_idle_ms);
  add_ids(command, ids);
  if (options.idle_ms) command.arg("IDLE").arg(*options.idle_ms);
  if (options.time_ms) command.arg("TIME").arg(*options.time_ms);
  if (options.retry_count) command.arg("RETRYCOUNT").arg(*options.retry_count);
  if (options.force) command.arg("FORCE");
  if (justid) command.arg("JUSTID");
  if (options.last_id) command.arg("LASTID").arg(options.last_id->to_string());
  return command;
}

Command xautoclaim_command(std::string_view key, std::string_view group, std::string_view consumer,
                           std::uint64_t min_idle_ms, StreamId start,
                           std::optional<std::uint64_t> count, bool justid) {
  Command command("XAUTOCLAIM", key, group, consumer, min_idle_ms, start.to_string());
  if (count) command.arg("COUNT").arg(*count);
  if (justid) command.arg("JUSTID");
  return command;
}

Command range_command(std::string_view name, std::string_view key, const RangeBound& first,
                      const RangeBound& second, std::optional<std::uint64_t> count) {
  Command command(name, key, first.text, second.text);
  if (count) command.arg("COUNT").arg(*count);
  return command;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Transaction

Transaction& Transaction::add(const Command& command) {
  // An empty command has no frame, and one made of frames (another transaction) has several:
  // either would put the replies out of step with the commands.
  if (command.empty()) throw std::invalid_argument("a transaction queues one command at a time");
  command.encode(frames_);
  ++size_;
  return *this;
}

Request<TransactionResult> Transaction::request() const {
  std::string frames;
  frames.reserve(frames_.size() + 32);
  Command("MULTI").encode(frames);
  frames += frames_;
  Command("EXEC").encode(frames);
  return {Command::from_frames(std::move(frames)), &parse_exec, size_ + 2, -1};
}

// ---------------------------------------------------------------------------------------------
// Builders

namespace cmd {

Request<StreamId> xadd(std::string_view key, const Fields& fields, const XAddOptions& options) {
  return {xadd_command(key, fields, options, false), &parse_xadd};
}

Request<std::optional<StreamId>> xadd_nomkstream(std::string_view key, const Fields& fields,
                                                 const XAddOptions& options) {
  return {xadd_command(key, fields, options, true), &parse_xadd_nomkstream};
}

Request<std::vector<Entry>> xrange(std::string_view key, const RangeBound& start,
                                   const RangeBound& end, std::optional<std::uint64_t> count) {
  return {range_command("XRANGE", key, start, end, count), &parse_xrange};
}

Request<std::vector<Entry>> xrevrange(std::string_view key, const RangeBound& end,
                                      const RangeBound& start, std::optional<std::uint64_t> count) {
  return {range_command("XREVRANGE", key, end, start, count), &parse_xrevrange};
}

Request<std::vector<StreamEntries>> xread(const StreamCursors& streams,
                                          const XReadOptions& options) {
  Command command("XREAD");
  const auto block_ms = add_read_options(command, options.count, options.block);
  add_streams(command, streams);
  return {std::move(command), &parse_xread, 1, block_ms};
}

Request<std::vector<StreamEntries>> xreadgroup(std::string_view group, std::string_view consumer,
                                               const StreamCursors& streams,
                                               const XReadGroupOptions& options) {
  Command command("XREADGROUP", "GROUP", group, consumer);
  const auto block_ms = add_read_options(command, options.count, options.block);
  if (options.noack) command.arg("NOACK");
  if (options.claim_min_idle_ms) command.arg("CLAIM").arg(*options.claim_min_idle_ms);
  add_streams(command, streams);
  return {std::move(command), &parse_xreadgroup, 1, block_ms};
}

Request<std::uint64_t> xack(std::string_view key, std::string_view group,
                            const std::vector<StreamId>& ids) {
  Command command("XACK", key, group);
  add_ids(command, ids);
  return {std::move(command), &parse_xack};
}

Request<Ok> xgroup_create(std::string_view key, std::string_view group, std::string_view id,
                          bool mkstream, std::optional<std::uint64_t> entries_read) {
  Command command("XGROUP", "CREATE", key, group, id);
  if (mkstream) command.arg("MKSTREAM");
  if (entries_read) command.arg("ENTRIESREAD").arg(*entries_read);
  return {std::move(command), &parse_xgroup_create};
}

Request<Ok> xgroup_setid(std::string_view key, std::string_view group, std::string_view id,
                         std::optional<std::uint64_t> entries_read) {
  Command command("XGROUP", "SETID", key, group, id);
  if (entries_read) command.arg("ENTRIESREAD").arg(*entries_read);
  return {std::move(command), &parse_xgroup_setid};
}

Request<bool> xgroup_destroy(std::string_view key, std::string_view group) {
  return {Command("XGROUP", "DESTROY", key, group), &parse_xgroup_destroy};
}

Request<bool> xgroup_createconsumer(std::string_view key, std::string_view group,
                                    std::string_view consumer) {
  return {Command("XGROUP", "CREATECONSUMER", key, group, consumer), &parse_xgroup_createconsumer};
}

Request<std::uint64_t> xgroup_delconsumer(std::string_view key, std::string_view group,
                                          std::string_view consumer) {
  return {Command("XGROUP", "DELCONSUMER", key, group, consumer), &parse_xgroup_delconsumer};
}

Request<PendingSummary> xpending(std::string_view key, std::string_view group) {
  return {Command("XPENDING", key, group), &parse_xpending_summary};
}

Request<std::vector<PendingEntry>> xpending(std::string_view key, std::string_view group,
                                            const XPendingOptions& options) {
  Command command("XPENDING", key, group);
  if (options.idle_ms) command.arg("IDLE").arg(*options.idle_ms);
  command.arg(options.start.text).arg(options.end.text).arg(options.count);
  if (options.consumer) command.arg(*options.consumer);
  return {std::move(command), &parse_xpending_entries};
}

Request<std::vector<Entry>> xclaim(std::string_view key, std::string_view group,
                                   std::string_view consumer, std::uint64_t min_idle_ms,
                                   const std::vector<StreamId>& ids, const XClaimOptions& options) {
  return {xclaim_command(key, group, consumer, min_idle_ms, ids, options, false), &parse_xclaim};
}

Request<std::vector<StreamId>> xclaim_justid(std::string_view key, std::string_view group,
                                             std::string_view consumer, std::uint64_t min_idle_ms,
                                             const std::vector<StreamId>& ids,
                                             const XClaimOptions& options) {
  return {xclaim_command(key, group, consumer, min_idle_ms, ids, options, true),
          &parse_xclaim_justid};
}

Request<AutoClaimResult> xautoclaim(std::string_view key, std::string_view group,
                                    std::string_view consumer, std::uint64_t min_idle_ms,
                                    StreamId start, std::optional<std::uint64_t> count) {
  return {xautoclaim_command(key, group, consumer, min_idle_ms, start, count, false),
          &parse_xautoclaim};
}

Request<AutoClaimIdsResult> xautoclaim_justid(std::string_view key, std::string_view group,
                                              std::string_view consumer, std::uint64_t min_idle_ms,
                                              StreamId start, std::optional<std::uint64_t> count) {
  return {xautoclaim_command(key, group, consumer, min_idle_ms, start, count, true),
          &parse_xautoclaim_justid};
}

Request<StreamInfo> xinfo_stream(std::string_view key) {
  return {Command("XINFO", "STREAM", key), &parse_xinfo_stream};
}

Request<std::vector<GroupInfo>> xinfo_groups(std::string_view key) {
  return {Command("XINFO", "GROUPS", key), &parse_xinfo_groups};
}

Request<std::vector<ConsumerInfo>> xinfo_consumers(std::string_view key, std::string_view group) {
  return {Command("XINFO", "CONSUMERS", key, group), &parse_xinfo_consumers};
}

Request<std::uint64_t> xlen(std::string_view key) {
  return {Command("XLEN", key), &parse_xlen};
}

Request<std::uint64_t> xdel(std::string_view key, const std::vector<StreamId>& ids) {
  Command command("XDEL", key);
  add_ids(command, ids);
  return {std::move(command), &parse_xdel};
}

Request<std::vector<DeleteResult>> xdelex(std::string_view key, const std::vector<StreamId>& ids,
                                          References references) {
  Command command("XDELEX", key);
  add_references(command, references);
  command.arg("IDS").arg(static_cast<std::uint64_t>(ids.size()));
  add_ids(command, ids);
  return {std::move(command), &parse_xdelex};
}

Request<std::vector<DeleteResult>> xackdel(std::string_view key, std::string_view group,
                                           const std::vector<StreamId>& ids, References references) {
  Command command("XACKDEL", key, group);
  add_references(command, references);
  command.arg("IDS").arg(static_cast<std::uint64_t>(ids.size()));
  add_ids(command, ids);
  return {std::move(command), &parse_xackdel};
}

Request<std::uint64_t> xnack(std::string_view key, std::string_view group, NackMode mode,
                             const std::vector<StreamId>& ids, const XNackOptions& options) {
  Command command("XNACK", key, group, mode == NackMode::silent ? "SILENT" : mode == NackMode::fail ? "FAIL" : "FATAL");
  command.arg("IDS").arg(static_cast<std::uint64_t>(ids.size()));
  add_ids(command, ids);
  if (options.retry_count) command.arg("RETRYCOUNT").arg(*options.retry_count);
  if (options.force) command.arg("FORCE");
  return {std::move(command), &parse_xnack};
}

Ok parse_xcfgset(Reply&& reply) { return to_ok(reply, "XCFGSET"); }

Request<Ok> xcfgset(std::string_view key, std::optional<std::uint64_t> idmp_duration_s,
                    std::optional<std::uint64_t> idmp_maxsize) {
  Command command("XCFGSET", key);
  if (idmp_duration_s) command.arg("IDMP-DURATION").arg(*idmp_duration_s);
  if (idmp_maxsize) command.arg("IDMP-MAXSIZE").arg(*idmp_maxsize);
  return {std::move(command), &parse_xcfgset};
}

Request<std::uint64_t> xtrim(std::string_view key, const TrimOptions& trim) {
  Command command("XTRIM", key);
  add_trim(command, trim);
  return {std::move(command), &parse_xtrim};
}

Request<Ok> xsetid(std::string_view key, StreamId last_id,
                   std::optional<std::uint64_t> entries_added,
                   std::optional<StreamId> max_deleted_id) {
  Command command("XSETID", key, last_id.to_string());
  if (entries_added) command.arg("ENTRIESADDED").arg(*entries_added);
  if (max_deleted_id) command.arg("MAXDELETEDID").arg(max_deleted_id->to_string());
  return {std::move(command), &parse_xsetid};
}

Request<std::uint64_t> del(const std::vector<std::string>& keys) {
  Command command("DEL");
  for (const auto& key : keys) command.arg(key);
  return {std::move(command), &parse_del};
}

Request<std::string> ping() {
  return {Command("PING"), &parse_ping};
}

}  // namespace cmd

}  // namespace runnel::client
