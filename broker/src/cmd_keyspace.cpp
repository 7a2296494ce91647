// Keyspace commands. DEL, UNLINK, EXISTS, DBSIZE, KEYS and FLUSHALL run a part on every shard
// and gather; TYPE runs on the key's owner; SCAN on the shard its cursor names.
#include "command.hpp"
#include "glob.hpp"
#include "stream_args.hpp"

namespace runnel {
namespace {

// Which shard owns a key (the same rule the connection uses to route).
unsigned owner_of(std::string_view key, unsigned shard_count) {
  return static_cast<unsigned>(key_hash(key) % shard_count);
}

// A SCAN cursor: the hash to resume from (low 8 bits cleared) with (shard + 1) in the low
// 8 bits, so a cursor is never 0 until the walk is over. At most 255 shards.
struct ScanCursor {
  unsigned shard;
  std::uint64_t from_hash;
};

std::optional<ScanCursor> decode_cursor(std::string_view text, unsigned shard_count) {
  std::uint64_t raw = 0;
  if (!redis_string2ull(text, raw)) return std::nullopt;
  if (raw == 0) return ScanCursor{0, 0};
  const auto shard = static_cast<unsigned>(raw & 0xff);
  // A cursor from nowhere (or from a server with more shards) restarts at the first shard.
  if (shard == 0 || shard > shard_count) return ScanCursor{0, 0};
  return ScanCursor{shard - 1, raw & ~std::uint64_t{0xff}};
}

std::uint64_t encode_cursor(unsigned shard, std::uint64_t from_hash) {
  return (from_hash & ~std::uint64_t{0xff}) | (shard + 1);
}

}  // namespace

namespace cmd {

void dbsize_part(ShardPartContext& ctx) {
  ctx.gather.count += static_cast<std::int64_t>(ctx.shard.keyspace.size());
}

void del_part(ShardPartContext& ctx) {
  for (std::size_t i = 1; i < ctx.args.size(); ++i) {
    if (owner_of(ctx.args[i], ctx.shard_count) != ctx.shard.index) continue;
    if (ctx.shard.keyspace.erase(ctx.args[i])) ++ctx.gather.count;
  }
}

void exists_part(ShardPartContext& ctx) {
  for (std::size_t i = 1; i < ctx.args.size(); ++i) {
    if (owner_of(ctx.args[i], ctx.shard_count) != ctx.shard.index) continue;
    if (ctx.shard.keyspace.find(ctx.args[i]) != nullptr) ++ctx.gather.count;
  }
}

void keys_part(ShardPartContext& ctx) {
  const std::string_view pattern = ctx.args[1];
  ctx.shard.keyspace.for_each([&](const std::string& key, const Stream&) {
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
  ctx.shard.keyspace.clear();
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
  ctx.reply.simple(ctx.shard->keyspace.find(ctx.args[1]) ? "stream" : "none");
}

int scan_pick_shard(std::span<const std::string_view> args, unsigned shard_count) {
  const auto cursor = decode_cursor(args[1], shard_count);
  return cursor ? static_cast<int>(cursor->shard) : -1;
}

void scan(CommandContext& ctx) {
  const auto& args = ctx.args;
  const unsigned shard_count = ctx.server.shard_count;
  const auto cursor = decode_cursor(args[1], shard_count);
  if (!cursor) return ctx.reply.error("ERR invalid cursor");
  std::int64_t count = 10;
  std::optional<std::string_view> pattern, type;
  for (std::size_t i = 2; i < args.size(); i += 2) {
    if (i + 1 >= args.size()) return ctx.reply.error("ERR syntax error");
    if (equals_ignore_case(args[i], "COUNT")) {
      if (!parse_int64(args[i + 1], count)) {
        return ctx.reply.error("ERR value is not an integer or out of range");
      }
      if (count < 1) return ctx.reply.error("ERR syntax error");
    } else if (equals_ignore_case(args[i], "MATCH")) {
      pattern = args[i + 1];
    } else if (equals_ignore_case(args[i], "TYPE")) {
      type = args[i + 1];
    } else {
      return ctx.reply.error("ERR syntax error");
    }
  }
  std::vector<std::string> found;
  std::int64_t visited = 0;
  struct Visitor {
    std::vector<std::string>& found;
    std::int64_t& visited;
    std::int64_t count;
    const std::optional<std::string_view>& pattern;
    bool type_matches;
    void operator()(const std::string& key, const Stream&) {
      ++visited;
      if (!type_matches) return;
      if (pattern && !glob_match(*pattern, key)) return;
      found.push_back(key);
    }
    [[nodiscard]] bool more() const { return visited < count; }
  };
  // Every key in Runnel is a stream.
  const bool type_matches = !type || equals_ignore_case(*type, "stream");
  Visitor visitor{found, visited, count, pattern, type_matches};
  const std::uint64_t resume = ctx.shard->keyspace.walk(cursor->from_hash, visitor);
  std::uint64_t next = 0;
  if (resume != 0) {
    next = encode_cursor(cursor->shard, resume);
  } else if (cursor->shard + 1 < shard_count) {
    next = encode_cursor(cursor->shard + 1, 0);
  }
  ctx.reply.array(2);
  ctx.reply.bulk(std::to_string(next));
  ctx.reply.array(found.size());
  for (const std::string& key : found) ctx.reply.bulk(key);
}

}  // namespace cmd
}  // namespace runnel
