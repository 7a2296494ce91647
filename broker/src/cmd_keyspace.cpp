// Keyspace commands. DEL, UNLINK, EXISTS, DBSIZE, KEYS and FLUSHALL run a part on every shard
// and gather; TYPE runs on the key's owner; SCAN on the shard its cursor names.
#include <cerrno>
#include <cstdlib>

#include "command.hpp"
#include "glob.hpp"
#include "stream_args.hpp"

namespace runnel {
namespace {

// Which shard owns a key (the same rule the connection uses to route).
unsigned owner_of(std::string_view key, unsigned shard_count) {
  return static_cast<unsigned>(key_hash(key) % shard_count);
}

// A SCAN cursor: the key hash to resume from (low 8 bits cleared), with (shard + 1) in the
// low 8 bits, so no cursor but the final one is 0. Shards are walked in order within one
// call until COUNT keys were visited. At most 255 shards.
std::uint64_t encode_cursor(unsigned shard, std::uint64_t from_hash) {
  return (from_hash & ~std::uint64_t{0xff}) | (shard + 1);
}

struct ScanArgs {
  std::uint64_t cursor = 0;
  std::int64_t count = 10;
  std::optional<std::string_view> pattern;
  std::optional<std::string_view> type;
};

// Redis's parseScanCursorOrReply: strtoul's rules, but no leading space.
bool parse_cursor(std::string_view text, std::uint64_t& cursor) {
  const std::string copy(text.substr(0, text.find('\0')));
  if (!copy.empty() && std::isspace(static_cast<unsigned char>(copy[0]))) return false;
  errno = 0;
  char* end = nullptr;
  cursor = std::strtoull(copy.c_str(), &end, 10);
  return *end == '\0' && errno != ERANGE;
}

// Returns the error to reply with, or an empty string.
std::string parse_scan_args(std::span<const std::string_view> args, ScanArgs& out) {
  if (!parse_cursor(args[1], out.cursor)) return "ERR invalid cursor";
  for (std::size_t i = 2; i < args.size(); i += 2) {
    if (i + 1 >= args.size()) return "ERR syntax error";
    if (equals_ignore_case(args[i], "COUNT")) {
      if (!parse_int64(args[i + 1], out.count)) {
        return std::string(kNotInteger);
      }
      if (out.count < 1) return "ERR syntax error";
    } else if (equals_ignore_case(args[i], "MATCH")) {
      out.pattern = args[i + 1];
    } else if (equals_ignore_case(args[i], "TYPE")) {
      out.type = args[i + 1];
    } else {
      return "ERR syntax error";
    }
  }
  return {};
}

}  // namespace

namespace cmd {

void dbsize_part(ShardPartContext& ctx) {
  // Keys past their time and not deleted yet are not counted (Redis 7.0 would count them).
  const Keyspace& keyspace = ctx.shard.keyspace;
  ctx.gather.count += static_cast<std::int64_t>(keyspace.size() - keyspace.expired_count(unix_now_ms()));
}

void info_part(ShardPartContext& ctx) {
  dbsize_part(ctx);
  ctx.gather.blocked_registrations += ctx.shard.blocked.registrations();
  ctx.gather.expires += ctx.shard.keyspace.volatile_count();
  ctx.gather.expired_keys += ctx.shard.expired_keys;
  ctx.gather.shard_command_stats.push_back(ctx.shard.command_stats);  // read on its thread
  for (int k = 0; k < 3; ++k) ctx.shard.pubsub.names(static_cast<ChannelKind>(k), {}, ctx.gather.pubsub_names[k]);
  if (ctx.shard.storage != nullptr) {
    ctx.shard.storage->add_figures(ctx.gather.storage);
    ctx.shard.durability->add_figures(ctx.gather.storage);
  }
  ctx.gather.shard_lines += "shard" + std::to_string(ctx.shard.index) +
                            ":keys=" + std::to_string(ctx.shard.keyspace.size()) +
                            ",commands=" + std::to_string(ctx.shard.commands) +
                            ",hops_waiting=" + std::to_string(ctx.shard.hops_waiting.load()) +
                            ",connections=" + std::to_string(ctx.shard.connections.load()) +
                            ",connections_moved_in=" + std::to_string(ctx.shard.connections_moved_in.load()) + "\r\n";
}

void del_part(ShardPartContext& ctx) {
  for (std::size_t i = 1; i < ctx.args.size(); ++i) {
    if (owner_of(ctx.args[i], ctx.shard_count) != ctx.shard.index) continue;
    if (ctx.shard.expire_if_due(ctx.args[i])) continue;  // gone already: not counted
    if (ctx.shard.delete_key(ctx.args[i])) ++ctx.gather.count;
  }
}

void exists_part(ShardPartContext& ctx) {
  for (std::size_t i = 1; i < ctx.args.size(); ++i) {
    if (owner_of(ctx.args[i], ctx.shard_count) != ctx.shard.index) continue;
    ctx.shard.expire_if_due(ctx.args[i]);
    if (ctx.shard.keyspace.lookup(ctx.args[i]) != nullptr) ++ctx.gather.count;
  }
}

void keys_part(ShardPartContext& ctx) {
  const std::string_view pattern = ctx.args[1];
  ctx.shard.keyspace.for_each([&](const std::string& key, const KeyValue&) {
    if (glob_match(pattern, key)) ctx.gather.keys.push_back(key);
  });
}

void flush_part(ShardPartContext& ctx) {
  // Validation happens here too, so that a bad argument flushes nothing on any shard.
  if (ctx.args.size() > 2) return;
  if (ctx.args.size() == 2 && !equals_ignore_case(ctx.args[1], "ASYNC") &&
      !equals_ignore_case(ctx.args[1], "SYNC")) {
    return;
  }
  ctx.shard.signal_all_modified();
  ctx.shard.keyspace.clear();
  ctx.shard.blocked.all_deleted();
}

void reply_count(CommandContext& ctx) { ctx.reply.integer(ctx.gather->count); }

void keys(CommandContext& ctx) {
  ctx.reply.array(ctx.gather->keys.size());
  for (const std::string& key : ctx.gather->keys) ctx.reply.bulk(key);
}

void flushall(CommandContext& ctx) {
  if (ctx.args.size() > 2 ||
      (ctx.args.size() == 2 && !equals_ignore_case(ctx.args[1], "ASYNC") &&
       !equals_ignore_case(ctx.args[1], "SYNC"))) {
    return ctx.reply.error("ERR syntax error");
  }
  ctx.reply.ok();
}

void type(CommandContext& ctx) {
  switch (ctx.shard->keyspace.type_of(ctx.args[1])) {
    case KeyType::kNone: return ctx.reply.simple("none");
    case KeyType::kString: return ctx.reply.simple("string");
    case KeyType::kStream: return ctx.reply.simple("stream");
  }
}

void scan_part(ShardPartContext& ctx) {
  ScanArgs a;
  Gather& g = ctx.gather;
  if (g.done || !parse_scan_args(ctx.args, a).empty()) return;
  unsigned first_shard = 0;
  if (a.cursor != 0) {
    const std::uint64_t tag = a.cursor & 0xff;
    if (tag == 0 || tag > ctx.shard_count) {  // not a cursor of ours: the walk is over
      g.done = true;
      return;
    }
    first_shard = static_cast<unsigned>(tag - 1);
  }
  if (ctx.shard.index < first_shard) return;
  if (g.count >= a.count) {  // the earlier shards used up COUNT: resume at this one
    g.cursor = encode_cursor(ctx.shard.index, 0);
    g.done = true;
    return;
  }
  const std::uint64_t from = ctx.shard.index == first_shard ? a.cursor & ~std::uint64_t{0xff} : 0;
  struct Visitor {
    Gather& g;
    const ScanArgs& a;
    void operator()(const std::string& key, const KeyValue& value) {
      ++g.count;
      const bool type_matches = !a.type || equals_ignore_case(*a.type, value.is_stream() ? "stream" : "string");
      if (type_matches && (!a.pattern || glob_match(*a.pattern, key))) g.keys.push_back(key);
    }
    void skipped() { ++g.count; }  // past its time: counted, as Redis's scan counts it, but not shown
    [[nodiscard]] bool more() const { return g.count < a.count; }
  };
  const std::uint64_t resume = ctx.shard.keyspace.walk(from, Visitor{g, a});
  if (resume != 0) {
    g.cursor = encode_cursor(ctx.shard.index, resume);
    g.done = true;
  }
}

void scan(CommandContext& ctx) {
  ScanArgs a;
  if (const std::string error = parse_scan_args(ctx.args, a); !error.empty()) {
    return ctx.reply.error(error);
  }
  ctx.reply.array(2);
  ctx.reply.bulk(std::to_string(ctx.gather->cursor));
  ctx.reply.array(ctx.gather->keys.size());
  for (const std::string& key : ctx.gather->keys) ctx.reply.bulk(key);
}

}  // namespace cmd
}  // namespace runnel
