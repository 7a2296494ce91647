// Strings, the subset stream applications use beside streams, and key expiry (TTLs) for keys
// of every type. Replies and errors follow Redis 7.0's t_string.c and expire.c, checked
// against redis-server by tests/compat/scenarios/strings.txt and expire.txt.
//
// A string lives in memory (keyspace.hpp); each write is reported to the shard's keys
// journal (persistence.hpp) and its reply waits for the disk as an XADD's does.
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>

#include "command.hpp"

namespace runnel {
namespace {

constexpr std::string_view kSyntaxError = "ERR syntax error";
constexpr std::string_view kTooBig = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

std::string expire_time_error(std::string_view command) {
  return "ERR invalid expire time in '" + to_lower(command) + "' command";
}

// The string at the live `key`: the value, or null when there is none. A stream there is
// WRONGTYPE: the reply is written and `wrong` set.
KeyValue* string_at(CommandContext& ctx, std::string_view key, bool& wrong) {
  KeyValue* value = ctx.shard->keyspace.lookup(key);
  wrong = value != nullptr && value->is_stream();
  if (wrong) ctx.reply.error(kWrongType);
  return wrong ? nullptr : value;
}

// checkStringLength: a string may not grow past proto-max-bulk-len.
bool length_allowed(CommandContext& ctx, std::uint64_t length) {
  if (length <= ctx.server.config.snapshot().proto_max_bulk_len) return true;
  ctx.reply.error(kTooBig);
  return false;
}

// --- SET's and GETEX's options (parseExtendedStringArgumentsOrReply) ---------------------------

enum SetFlag : unsigned {
  kNx = 1, kXx = 2, kGet = 4, kKeepTtl = 8, kPersist = 16, kEx = 32, kPx = 64, kExat = 128, kPxat = 256,
};
constexpr unsigned kAnyExpire = kEx | kPx | kExat | kPxat;

struct StringOptions {
  unsigned flags = 0;
  std::optional<std::string_view> expire;  // the argument of EX, PX, EXAT or PXAT
};

// `from`: the first option's index. `for_set`: SET's options, else GETEX's.
bool parse_string_options(CommandContext& ctx, std::size_t from, bool for_set, StringOptions& out) {
  const auto& args = ctx.args;
  for (std::size_t j = from; j < args.size(); ++j) {
    const std::string_view opt = args[j];
    const bool has_next = j + 1 < args.size();
    unsigned& f = out.flags;
    if (equals_ignore_case(opt, "NX") && !(f & kXx) && for_set) {
      f |= kNx;
    } else if (equals_ignore_case(opt, "XX") && !(f & kNx) && for_set) {
      f |= kXx;
    } else if (equals_ignore_case(opt, "GET") && for_set) {
      f |= kGet;
    } else if (equals_ignore_case(opt, "KEEPTTL") && !(f & (kPersist | kAnyExpire)) && for_set) {
      f |= kKeepTtl;
    } else if (equals_ignore_case(opt, "PERSIST") && !for_set && !(f & (kAnyExpire | kKeepTtl))) {
      f |= kPersist;
    } else if (has_next && !(f & (kKeepTtl | kPersist)) &&
               ((equals_ignore_case(opt, "EX") && !(f & (kExat | kPx | kPxat))) ||
                (equals_ignore_case(opt, "PX") && !(f & (kEx | kExat | kPxat))) ||
                (equals_ignore_case(opt, "EXAT") && !(f & (kEx | kPx | kPxat))) ||
                (equals_ignore_case(opt, "PXAT") && !(f & (kEx | kExat | kPx))))) {
      f |= equals_ignore_case(opt, "EX") ? kEx : equals_ignore_case(opt, "PX") ? kPx
           : equals_ignore_case(opt, "EXAT")                                     ? kExat
                                                                                 : kPxat;
      out.expire = args[++j];
    } else {
      ctx.reply.error(kSyntaxError);
      return false;
    }
  }
  return true;
}

// getExpireMillisecondsOrReply: the absolute time in ms, or nullopt with the error sent.
std::optional<std::int64_t> expire_ms(CommandContext& ctx, std::string_view text, unsigned flags) {
  std::int64_t ms = 0;
  if (!parse_int64(text, ms)) {
    ctx.reply.error(kNotInteger);
    return std::nullopt;
  }
  const bool seconds = (flags & (kEx | kExat)) != 0;
  if (ms <= 0 || (seconds && ms > std::numeric_limits<std::int64_t>::max() / 1000)) {
    ctx.reply.error(expire_time_error(ctx.spec.name));
    return std::nullopt;
  }
  if (seconds) ms *= 1000;
  if (flags & (kEx | kPx)) {
    // Redis adds without a check and refuses what wrapped to <= 0.
    ms = static_cast<std::int64_t>(static_cast<std::uint64_t>(ms) + static_cast<std::uint64_t>(unix_now_ms()));
  }
  if (ms <= 0) {
    ctx.reply.error(expire_time_error(ctx.spec.name));
    return std::nullopt;
  }
  return ms;
}

// setGenericCommand.
enum class SetReply { kOk, kOneZero };
void set_generic(CommandContext& ctx, std::string_view key, std::string_view value, const StringOptions& options,
                 SetReply style) {
  std::int64_t at = 0;
  if (options.expire) {
    const std::optional<std::int64_t> ms = expire_ms(ctx, *options.expire, options.flags);
    if (!ms) return;
    at = *ms;
  }
  Keyspace& keyspace = ctx.shard->keyspace;
  KeyValue* existing = keyspace.lookup(key);
  if (options.flags & kGet) {
    if (existing != nullptr && existing->is_stream()) return ctx.reply.error(kWrongType);
    if (existing == nullptr) {
      ctx.reply.null();
    } else {
      ctx.reply.bulk(existing->string);
    }
  }
  const bool found = existing != nullptr;
  if (((options.flags & kNx) && found) || ((options.flags & kXx) && !found)) {
    if (options.flags & kGet) return;
    return style == SetReply::kOk ? ctx.reply.null() : ctx.reply.integer(0);
  }
  bool keep_ttl = (options.flags & kKeepTtl) != 0;
  if (found && existing->is_stream()) {  // SET replaces any type; KEEPTTL keeps the stream's TTL
    if (keep_ttl) at = existing->expires_at;
    keep_ttl = false;
    ctx.shard->delete_key(key);
  }
  keyspace.set_string(key, std::string(value), at, keep_ttl);
  ctx.shard->signal_modified(key);
  if (options.flags & kGet) return;
  if (style == SetReply::kOk) return ctx.reply.ok();
  ctx.reply.integer(1);
}

// INCR, INCRBY, DECR, DECRBY (incrDecrCommand).
void incr_by(CommandContext& ctx, std::int64_t by) {
  const std::string_view key = ctx.args[1];
  bool wrong = false;
  KeyValue* value = string_at(ctx, key, wrong);
  if (wrong) return;
  std::int64_t old = 0;
  if (value != nullptr && !parse_int64(value->string, old)) return ctx.reply.error(kNotInteger);
  if ((by < 0 && old < 0 && by < std::numeric_limits<std::int64_t>::min() - old) ||
      (by > 0 && old > 0 && by > std::numeric_limits<std::int64_t>::max() - old)) {
    return ctx.reply.error("ERR increment or decrement would overflow");
  }
  const std::int64_t result = old + by;
  if (value == nullptr) {
    ctx.shard->keyspace.set_string(key, std::to_string(result), 0);
  } else {
    const std::size_t before = value->string.size();
    value->string = std::to_string(result);
    ctx.shard->keyspace.string_changed(key, *value, before);
  }
  ctx.shard->signal_modified(key);
  ctx.reply.integer(result);
}

// string2ld: Redis's reading of a long double, strict.
bool parse_long_double(std::string_view text, long double& out) {
  if (text.empty() || text.size() >= 5 * 1024) return false;
  const std::string copy(text);
  errno = 0;
  char* end = nullptr;
  out = std::strtold(copy.c_str(), &end);
  if (std::isspace(static_cast<unsigned char>(copy[0])) || *end != '\0' ||
      static_cast<std::size_t>(end - copy.c_str()) != copy.size() || errno == EINVAL ||
      (errno == ERANGE && (out == HUGE_VALL || out == -HUGE_VALL || std::fpclassify(out) == FP_ZERO)) ||
      std::isnan(out)) {
    return false;
  }
  return true;
}

// ld2string's human-friendly form: 17 decimals, trailing zeros (and a bare point) dropped.
std::string format_long_double(long double value) {
  char buf[5 * 1024];
  int length = std::snprintf(buf, sizeof(buf), "%.17Lf", value);
  if (length < 0 || static_cast<std::size_t>(length) + 1 > sizeof(buf)) return {};
  if (std::memchr(buf, '.', static_cast<std::size_t>(length)) != nullptr) {
    while (buf[length - 1] == '0') --length;
    if (buf[length - 1] == '.') --length;
  }
  if (length == 2 && buf[0] == '-' && buf[1] == '0') {
    buf[0] = '0';
    length = 1;
  }
  return std::string(buf, static_cast<std::size_t>(length));
}

// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (expireGenericCommand): `base` is now for the relative
// ones, 0 for the absolute.
void expire_generic(CommandContext& ctx, std::int64_t base, bool seconds) {
  bool nx = false, xx = false, gt = false, lt = false;
  for (std::size_t j = 3; j < ctx.args.size(); ++j) {
    const std::string_view opt = ctx.args[j];
    if (equals_ignore_case(opt, "NX")) {
      nx = true;
    } else if (equals_ignore_case(opt, "XX")) {
      xx = true;
    } else if (equals_ignore_case(opt, "GT")) {
      gt = true;
    } else if (equals_ignore_case(opt, "LT")) {
      lt = true;
    } else {
      return ctx.reply.error("ERR Unsupported option " + std::string(opt.substr(0, opt.find('\0'))));
    }
  }
  if (nx && (xx || gt || lt)) {
    return ctx.reply.error("ERR NX and XX, GT or LT options at the same time are not compatible");
  }
  if (gt && lt) return ctx.reply.error("ERR GT and LT options at the same time are not compatible");
  std::int64_t when = 0;
  if (!parse_int64(ctx.args[2], when)) return ctx.reply.error(kNotInteger);
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
  if (seconds) {
    if (when > kMax / 1000 || when < kMin / 1000) return ctx.reply.error(expire_time_error(ctx.spec.name));
    when *= 1000;
  }
  if (when > kMax - base) return ctx.reply.error(expire_time_error(ctx.spec.name));
  when += base;
  const std::string_view key = ctx.args[1];
  KeyValue* value = ctx.shard->keyspace.lookup(key);
  if (value == nullptr) return ctx.reply.integer(0);
  const std::int64_t current = value->expires_at == 0 ? -1 : value->expires_at;
  if ((nx && current != -1) || (xx && current == -1) || (gt && (when <= current || current == -1)) ||
      (lt && current != -1 && when >= current)) {
    return ctx.reply.integer(0);
  }
  if (when <= unix_now_ms()) {
    ctx.shard->delete_key(key);  // already past: deleted, as Redis does
  } else {
    ctx.shard->keyspace.set_expiry(key, *value, when);
    ctx.shard->signal_modified(key);
  }
  ctx.reply.integer(1);
}

// TTL, PTTL, EXPIRETIME, PEXPIRETIME (ttlGenericCommand).
void ttl_generic(CommandContext& ctx, bool ms, bool absolute) {
  const KeyValue* value = ctx.shard->keyspace.lookup(ctx.args[1]);
  if (value == nullptr) return ctx.reply.integer(-2);
  if (value->expires_at == 0) return ctx.reply.integer(-1);
  std::int64_t ttl = absolute ? value->expires_at : value->expires_at - unix_now_ms();
  if (ttl < 0) ttl = 0;
  ctx.reply.integer(ms ? ttl : (ttl + 500) / 1000);
}

}  // namespace

namespace cmd {

void set(CommandContext& ctx) {
  StringOptions options;
  if (!parse_string_options(ctx, 3, true, options)) return;
  set_generic(ctx, ctx.args[1], ctx.args[2], options, SetReply::kOk);
}

void setnx(CommandContext& ctx) {
  set_generic(ctx, ctx.args[1], ctx.args[2], StringOptions{kNx, std::nullopt}, SetReply::kOneZero);
}

void setex(CommandContext& ctx) {
  set_generic(ctx, ctx.args[1], ctx.args[3], StringOptions{kEx, ctx.args[2]}, SetReply::kOk);
}

void psetex(CommandContext& ctx) {
  set_generic(ctx, ctx.args[1], ctx.args[3], StringOptions{kPx, ctx.args[2]}, SetReply::kOk);
}

void get(CommandContext& ctx) {
  bool wrong = false;
  const KeyValue* value = string_at(ctx, ctx.args[1], wrong);
  if (wrong) return;
  if (value == nullptr) return ctx.reply.null();
  ctx.reply.bulk(value->string);
}

void getdel(CommandContext& ctx) {
  bool wrong = false;
  const KeyValue* value = string_at(ctx, ctx.args[1], wrong);
  if (wrong) return;
  if (value == nullptr) return ctx.reply.null();
  ctx.reply.bulk(value->string);
  ctx.shard->delete_key(ctx.args[1]);
}

void getex(CommandContext& ctx) {
  StringOptions options;
  if (!parse_string_options(ctx, 2, false, options)) return;
  const std::string_view key = ctx.args[1];
  bool wrong = false;
  KeyValue* value = string_at(ctx, key, wrong);
  if (wrong) return;
  if (value == nullptr) return ctx.reply.null();
  std::int64_t at = 0;
  if (options.expire) {
    const std::optional<std::int64_t> ms = expire_ms(ctx, *options.expire, options.flags);
    if (!ms) return;
    at = *ms;
  }
  ctx.reply.bulk(value->string);
  if ((options.flags & (kExat | kPxat)) && at <= unix_now_ms()) {
    ctx.shard->delete_key(key);
  } else if (options.expire) {
    ctx.shard->keyspace.set_expiry(key, *value, at);
    ctx.shard->signal_modified(key);
  } else if ((options.flags & kPersist) && value->expires_at != 0) {
    ctx.shard->keyspace.set_expiry(key, *value, 0);
    ctx.shard->signal_modified(key);
  }
}

void getset(CommandContext& ctx) {
  const std::string_view key = ctx.args[1];
  bool wrong = false;
  KeyValue* value = string_at(ctx, key, wrong);
  if (wrong) return;
  if (value == nullptr) {
    ctx.reply.null();
  } else {
    ctx.reply.bulk(value->string);
  }
  ctx.shard->keyspace.set_string(key, std::string(ctx.args[2]), 0);
  ctx.shard->signal_modified(key);
}

void incr(CommandContext& ctx) { incr_by(ctx, 1); }
void decr(CommandContext& ctx) { incr_by(ctx, -1); }

void incrby(CommandContext& ctx) {
  std::int64_t by = 0;
  if (!parse_int64(ctx.args[2], by)) return ctx.reply.error(kNotInteger);
  incr_by(ctx, by);
}

void decrby(CommandContext& ctx) {
  std::int64_t by = 0;
  if (!parse_int64(ctx.args[2], by)) return ctx.reply.error(kNotInteger);
  if (by == std::numeric_limits<std::int64_t>::min()) return ctx.reply.error("ERR decrement would overflow");
  incr_by(ctx, -by);
}

void incrbyfloat(CommandContext& ctx) {
  const std::string_view key = ctx.args[1];
  bool wrong = false;
  KeyValue* value = string_at(ctx, key, wrong);
  if (wrong) return;
  long double old = 0;
  long double by = 0;
  if ((value != nullptr && !parse_long_double(value->string, old)) || !parse_long_double(ctx.args[2], by)) {
    return ctx.reply.error("ERR value is not a valid float");
  }
  const long double result = old + by;
  if (std::isnan(result) || std::isinf(result)) return ctx.reply.error("ERR increment would produce NaN or Infinity");
  std::string text = format_long_double(result);
  if (value == nullptr) {
    ctx.shard->keyspace.set_string(key, text, 0);
  } else {
    const std::size_t before = value->string.size();
    value->string = text;
    ctx.shard->keyspace.string_changed(key, *value, before);
  }
  ctx.shard->signal_modified(key);
  ctx.reply.bulk(text);
}

void append(CommandContext& ctx) {
  const std::string_view key = ctx.args[1];
  const std::string_view more = ctx.args[2];
  bool wrong = false;
  KeyValue* value = string_at(ctx, key, wrong);
  if (wrong) return;
  if (value == nullptr) {
    ctx.shard->keyspace.set_string(key, std::string(more), 0);
    ctx.shard->signal_modified(key);
    return ctx.reply.integer(static_cast<std::int64_t>(more.size()));
  }
  if (!length_allowed(ctx, value->string.size() + more.size())) return;
  const std::size_t before = value->string.size();
  value->string.append(more);
  ctx.shard->keyspace.string_changed(key, *value, before);
  ctx.shard->signal_modified(key);
  ctx.reply.integer(static_cast<std::int64_t>(value->string.size()));
}

void strlen(CommandContext& ctx) {
  bool wrong = false;
  const KeyValue* value = string_at(ctx, ctx.args[1], wrong);
  if (wrong) return;
  ctx.reply.integer(value == nullptr ? 0 : static_cast<std::int64_t>(value->string.size()));
}

void getrange(CommandContext& ctx) {
  std::int64_t start = 0;
  std::int64_t end = 0;
  if (!parse_int64(ctx.args[2], start) || !parse_int64(ctx.args[3], end)) return ctx.reply.error(kNotInteger);
  bool wrong = false;
  const KeyValue* value = string_at(ctx, ctx.args[1], wrong);
  if (wrong) return;
  if (value == nullptr) return ctx.reply.bulk("");
  const auto length = static_cast<std::int64_t>(value->string.size());
  if (start < 0 && end < 0 && start > end) return ctx.reply.bulk("");
  if (start < 0) start += length;
  if (end < 0) end += length;
  if (start < 0) start = 0;
  if (end < 0) end = 0;
  if (end >= length) end = length - 1;
  if (start > end || length == 0) return ctx.reply.bulk("");
  ctx.reply.bulk(std::string_view(value->string).substr(static_cast<std::size_t>(start),
                                                        static_cast<std::size_t>(end - start + 1)));
}

void setrange(CommandContext& ctx) {
  const std::string_view key = ctx.args[1];
  const std::string_view patch = ctx.args[3];
  std::int64_t offset = 0;
  if (!parse_int64(ctx.args[2], offset)) return ctx.reply.error(kNotInteger);
  if (offset < 0) return ctx.reply.error("ERR offset is out of range");
  bool wrong = false;
  KeyValue* value = string_at(ctx, key, wrong);
  if (wrong) return;
  if (patch.empty()) return ctx.reply.integer(value == nullptr ? 0 : static_cast<std::int64_t>(value->string.size()));
  const auto size = static_cast<std::uint64_t>(offset) + patch.size();
  if (!length_allowed(ctx, size)) return;
  const std::size_t before = value == nullptr ? 0 : value->string.size();
  // A few bytes of request can ask for 512 MB of zeros: the growth itself must fit under
  // --maxmemory-strings, not only what was there before the command.
  const std::int64_t limit = ctx.server.maxmemory_strings.load(std::memory_order_relaxed);
  if (limit > 0 && size > before &&
      ctx.server.string_bytes.load(std::memory_order_relaxed) + static_cast<std::int64_t>(size - before) > limit) {
    return ctx.reply.error(kStringsOom);
  }
  if (value == nullptr) {
    ctx.shard->keyspace.set_string(key, std::string(), 0);
    value = ctx.shard->keyspace.lookup(key);
  }
  if (value->string.size() < size) value->string.resize(size, '\0');
  value->string.replace(static_cast<std::size_t>(offset), patch.size(), patch);
  ctx.shard->keyspace.string_changed(key, *value, before);
  ctx.shard->signal_modified(key);
  ctx.reply.integer(static_cast<std::int64_t>(value->string.size()));
}

// MGET: each shard reads the keys it owns; a missing key, or one of another type, is nil.
void mget_part(ShardPartContext& ctx) {
  if (ctx.gather.values.empty()) ctx.gather.values.resize(ctx.args.size() - 1);
  for (std::size_t i = 1; i < ctx.args.size(); ++i) {
    if (key_hash(ctx.args[i]) % ctx.shard_count != ctx.shard.index) continue;
    ctx.shard.expire_if_due(ctx.args[i]);
    const KeyValue* value = ctx.shard.keyspace.lookup(ctx.args[i]);
    if (value != nullptr && !value->is_stream()) ctx.gather.values[i - 1] = value->string;
  }
}

void mget(CommandContext& ctx) {
  ctx.reply.array(ctx.args.size() - 1);
  for (std::size_t i = 0; i + 1 < ctx.args.size(); ++i) {
    if (i < ctx.gather->values.size() && ctx.gather->values[i]) {
      ctx.reply.bulk(*ctx.gather->values[i]);
    } else {
      ctx.reply.null();
    }
  }
}

// MSET and MSETNX, with every key's shard held (route kKeys): all keys are set at once, or
// (MSETNX) none when any exists.
namespace {
void mset_generic(KeysContext& ctx, bool nx) {
  if (ctx.args.size() % 2 == 0) return reply_arity_error(ctx.reply, nx ? "msetnx" : "mset");
  if (strings_over_limit(ctx.state)) return ctx.reply.error(kStringsOom);
  const auto owner = [&](std::string_view key) -> Shard& { return *ctx.shards[key_hash(key) % ctx.shard_count]; };
  for (std::size_t i = 1; i < ctx.args.size(); i += 2) {
    Shard& shard = owner(ctx.args[i]);
    shard.expire_if_due(ctx.args[i]);
    if (nx && shard.keyspace.lookup(ctx.args[i]) != nullptr) return ctx.reply.integer(0);
  }
  for (std::size_t i = 1; i < ctx.args.size(); i += 2) {
    Shard& shard = owner(ctx.args[i]);
    if (shard.keyspace.find(ctx.args[i]) != nullptr) shard.delete_key(ctx.args[i]);
    shard.keyspace.set_string(ctx.args[i], std::string(ctx.args[i + 1]), 0);
    shard.signal_modified(ctx.args[i]);
    ctx.wrote[shard.index] = 1;
  }
  if (nx) return ctx.reply.integer(1);
  ctx.reply.ok();
}
}  // namespace

void mset(KeysContext& ctx) { mset_generic(ctx, false); }
void msetnx(KeysContext& ctx) { mset_generic(ctx, true); }

// --- expiry ---

void expire(CommandContext& ctx) { expire_generic(ctx, unix_now_ms(), true); }
void pexpire(CommandContext& ctx) { expire_generic(ctx, unix_now_ms(), false); }
void expireat(CommandContext& ctx) { expire_generic(ctx, 0, true); }
void pexpireat(CommandContext& ctx) { expire_generic(ctx, 0, false); }
void ttl(CommandContext& ctx) { ttl_generic(ctx, false, false); }
void pttl(CommandContext& ctx) { ttl_generic(ctx, true, false); }
void expiretime(CommandContext& ctx) { ttl_generic(ctx, false, true); }
void pexpiretime(CommandContext& ctx) { ttl_generic(ctx, true, true); }

void persist(CommandContext& ctx) {
  KeyValue* value = ctx.shard->keyspace.lookup(ctx.args[1]);
  if (value == nullptr || value->expires_at == 0) return ctx.reply.integer(0);
  ctx.shard->keyspace.set_expiry(ctx.args[1], *value, 0);
  ctx.shard->signal_modified(ctx.args[1]);
  ctx.reply.integer(1);
}

}  // namespace cmd
}  // namespace runnel
