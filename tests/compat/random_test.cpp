// Model-based random testing with Redis as the model: seeded random sequences of stream
// commands go to redis-server and runnel-server alike (pipelined, in batches), and every
// reply is compared byte for byte. A failure prints the seed; RUNNEL_SEED=<n> replays it.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <optional>
#include <random>

#include <runnel/client/connection.hpp>

#include "server_process.hpp"

using runnel::client::Connection;
using runnel::client::encode_command;

namespace {

class Generator {
 public:
  explicit Generator(std::uint64_t seed) : rng_(seed) {}

  std::vector<std::string> next() {
    const std::string key = "k" + std::to_string(pick(0, 2));
    switch (pick(0, 99) / 10) {
      case 0: case 1: case 2: case 3: return xadd(key);
      case 4: return {"XDEL", key, id_near(), id_near()};
      case 5: return xtrim(key);
      case 6: case 7: return range(key, pick(0, 1) == 1);
      case 8: return {"XLEN", key};
      default: return xread();
    }
  }

 private:
  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  // An ID around the ones in use, so deletes and ranges hit and miss.
  std::string id_near() {
    const int ms = pick(0, static_cast<int>(top_ms_) + 2);
    return std::to_string(ms) + "-" + std::to_string(pick(0, 2));
  }

  std::string bound(bool is_start) {
    switch (pick(0, 5)) {
      case 0: return is_start ? "-" : "+";
      case 1: return "(" + id_near();
      case 2: return std::to_string(pick(0, static_cast<int>(top_ms_) + 2));
      default: return id_near();
    }
  }

  std::vector<std::string> trim_args() {
    std::vector<std::string> args;
    const bool approx = pick(0, 2) == 0;
    if (pick(0, 1) == 0) {
      args = {"MAXLEN", approx ? "~" : "=", std::to_string(pick(0, 150))};
    } else {
      args = {"MINID", approx ? "~" : "=", id_near()};
    }
    if (approx && pick(0, 3) == 0) {
      args.push_back("LIMIT");
      args.push_back(std::to_string(pick(0, 300)));
    }
    return args;
  }

  std::vector<std::string> xadd(const std::string& key) {
    std::vector<std::string> cmd = {"XADD", key};
    if (pick(0, 9) == 0) {
      const auto t = trim_args();
      cmd.insert(cmd.end(), t.begin(), t.end());
    }
    const int kind = pick(0, 19);
    if (kind == 0) {
      cmd.push_back(id_near());  // often not above the top: an error
    } else if (kind < 4) {
      top_ms_ += static_cast<std::uint64_t>(pick(0, 1));
      cmd.push_back(std::to_string(top_ms_) + "-*");
    } else {
      top_ms_ += static_cast<std::uint64_t>(pick(1, 3));
      cmd.push_back(std::to_string(top_ms_) + "-" + std::to_string(pick(0, 3)));
    }
    // Each stream has its own value profile, so both node rules get exercised: k0's small
    // values fill nodes to 100 entries, k2's long ones close them at 4096 bytes.
    const int fields = pick(1, 3);
    for (int f = 0; f < fields; ++f) {
      cmd.push_back("f" + std::to_string(pick(0, 3)));
      if (key == "k0") {
        cmd.push_back(std::string(static_cast<std::size_t>(pick(0, 12)), 'a'));
      } else if (key == "k2" && pick(0, 1) == 0) {
        cmd.push_back(std::string(static_cast<std::size_t>(pick(50, 400)), 'L'));
      } else {
        cmd.push_back(value());
      }
    }
    return cmd;
  }

  // Values of every shape Redis's node sizing distinguishes: short and long strings, and
  // strings it stores as integers (or that only look like them: "007", "-0", "+1").
  std::string value() {
    switch (pick(0, 9)) {
      case 0: return std::to_string(pick(-70000, 70000));
      case 1: {
        static const char* kNearInts[] = {"0", "-0", "007", "+1", "127", "128", "-4097",
                                          "9223372036854775807", "9223372036854775808", ""};
        return kNearInts[pick(0, 9)];
      }
      case 2: return std::string(static_cast<std::size_t>(pick(50, 400)), 'L');
      default:
        return std::string(static_cast<std::size_t>(pick(0, 12)), static_cast<char>('a' + pick(0, 25)));
    }
  }

  std::vector<std::string> xtrim(const std::string& key) {
    std::vector<std::string> cmd = {"XTRIM", key};
    const auto t = trim_args();
    cmd.insert(cmd.end(), t.begin(), t.end());
    return cmd;
  }

  std::vector<std::string> range(const std::string& key, bool reverse) {
    std::vector<std::string> cmd = {reverse ? "XREVRANGE" : "XRANGE", key};
    const std::string a = bound(!reverse);
    const std::string b = bound(reverse);
    cmd.push_back(a);
    cmd.push_back(b);
    if (pick(0, 2) > 0) {
      cmd.push_back("COUNT");
      cmd.push_back(std::to_string(pick(-1, 20)));
    }
    return cmd;
  }

  std::vector<std::string> xread() {
    std::vector<std::string> cmd = {"XREAD"};
    if (pick(0, 1) == 0) {
      cmd.push_back("COUNT");
      cmd.push_back(std::to_string(pick(0, 10)));
    }
    cmd.push_back("STREAMS");
    const int n = pick(1, 3);
    for (int i = 0; i < n; ++i) cmd.push_back("k" + std::to_string(pick(0, 2)));
    for (int i = 0; i < n; ++i) cmd.push_back(pick(0, 4) == 0 ? "$" : id_near());
    return cmd;
  }

  std::mt19937_64 rng_;
  std::uint64_t top_ms_ = 1;
};

std::string escape(const std::string& bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

// What every random test starts with: the seed (RUNNEL_SEED replays one), and redis-server
// and runnel-server (at --threads 1 and 4, the test's GENERATE) with a connection to each. Runnel runs with a tiny tail cache
// and fsync always, so the sequences also evict nodes and read them back from the segment
// files, and wait for group commits. (Segments keep their default size: a node closes where
// its segment rolls, which makes '~' trims differ from Redis's there; docs/storage.md.)
struct RandomRun {
  explicit RandomRun(unsigned threads) : runnel_server({"--fsync", "always", "--cache-bytes", "16384"}, threads) {}

  std::uint64_t seed = [] {
    const char* env = std::getenv("RUNNEL_SEED");
    return env ? std::strtoull(env, nullptr, 10) : std::uint64_t{std::random_device{}()};
  }();
  runnel::test::RedisServer redis_server;
  runnel::test::RunnelServer runnel_server;
  Connection redis{"127.0.0.1", redis_server.port, std::chrono::seconds(30)};
  Connection runnel{"127.0.0.1", runnel_server.port, std::chrono::seconds(30)};
};

// Sends `operations` commands from `next()` to both servers, pipelined in batches of 200, and
// requires each pair of replies to be equal once passed through `comparable(command, reply,
// raw)`. `seen(command, redis_reply)` gathers the run's statistics. `redis_side(command)`
// gives what redis-server runs for it, the last reply compared: the command itself, or more
// (to have Redis 7.0 do what a later Redis does as part of it), or a model of a newer command.
using Commands = std::vector<std::vector<std::string>>;
Commands same_command(const std::vector<std::string>& cmd) { return {cmd}; }

template <typename Next, typename Comparable, typename Seen, typename RedisSide = decltype(&same_command)>
void run_against_both(Connection& redis, Connection& runnel, int operations, Next&& next,
                      Comparable&& comparable, Seen&& seen, RedisSide&& redis_side = same_command) {
  constexpr int kBatch = 200;
  for (int done = 0; done < operations; done += kBatch) {
    std::vector<std::vector<std::string>> batch;
    std::string wire, redis_wire;
    std::vector<std::size_t> skipped;  // replies redis-server sends before the compared one
    for (int i = 0; i < kBatch; ++i) {
      batch.push_back(next());
      std::vector<std::string_view> views(batch.back().begin(), batch.back().end());
      runnel::client::encode_command(views, wire);
      const Commands on_redis = redis_side(batch.back());
      skipped.push_back(on_redis.size() - 1);
      for (const auto& command : on_redis) {
        std::vector<std::string_view> parts(command.begin(), command.end());
        runnel::client::encode_command(parts, redis_wire);
      }
    }
    redis.send_raw(redis_wire);
    runnel.send_raw(wire);
    for (int i = 0; i < kBatch; ++i) {
      const auto& cmd = batch[static_cast<std::size_t>(i)];
      for (std::size_t k = 0; k < skipped[static_cast<std::size_t>(i)]; ++k) (void)redis.read_reply();
      std::string expected_raw, actual_raw;
      const auto expected_reply = redis.read_reply(&expected_raw);
      const auto actual_reply = runnel.read_reply(&actual_raw);
      seen(cmd, expected_reply);
      const std::string expected = comparable(cmd, expected_reply, expected_raw);
      const std::string actual = comparable(cmd, actual_reply, actual_raw);
      if (expected != actual) {
        std::string command;
        for (const auto& a : cmd) command += a + " ";
        INFO("operation " << done + i << ": " << command);
        INFO("redis:  " << escape(expected));
        INFO("runnel: " << escape(actual));
        REQUIRE(actual == expected);
      }
    }
  }
}

}  // namespace

TEST_CASE("Random stream command sequences get the same replies as redis-server", "[random]") {
  constexpr int kOperations = 24000;
  const unsigned threads = GENERATE(1u, 4u);
  RandomRun run(threads);
  INFO("--threads " << threads << ", seed " << run.seed << " (replay with RUNNEL_SEED=" << run.seed << ")");
  Generator gen(run.seed);
  // What the replies were, so the test shows it exercised the streams and not only errors.
  int errors = 0, ids = 0, nonempty_arrays = 0, trimmed = 0;
  using Type = runnel::protocol::Reply::Type;
  run_against_both(
      run.redis, run.runnel, kOperations, [&] { return gen.next(); },
      [](const auto&, const auto&, const std::string& raw) { return raw; },
      [&](const std::vector<std::string>& cmd, const runnel::protocol::Reply& reply) {
        errors += reply.type == Type::kError;
        ids += reply.type == Type::kBulk;
        nonempty_arrays += reply.type == Type::kArray && !reply.elements.empty();
        trimmed += cmd[0] == "XTRIM" && reply.integer > 0;
      });
  INFO("errors " << errors << ", ids " << ids << ", non-empty arrays " << nonempty_arrays
                 << ", trims that removed entries " << trimmed);
  CHECK(ids > kOperations / 5);
  CHECK(nonempty_arrays > kOperations / 10);
  CHECK(trimmed > 100);
  CHECK(errors < kOperations / 10);
  // Bounded in count (above) and compared to the end: the final states agree too.
  for (const char* key : {"k0", "k1", "k2"}) {
    std::string expected, actual;
    run.redis.call({"XRANGE", key, "-", "+"}, &expected);
    run.runnel.call({"XRANGE", key, "-", "+"}, &actual);
    REQUIRE(actual == expected);
  }
}


TEST_CASE("Streams are split into nodes where redis-server splits them", "[random]") {
  runnel::test::RedisServer redis_server;
  runnel::test::RunnelServer runnel_server;
  Connection redis("127.0.0.1", redis_server.port);
  Connection runnel("127.0.0.1", runnel_server.port);
  // Value shapes around every threshold of the listpack encoding: string lengths near 63/64
  // and 4095/4096 bytes, integers near each encoding width, and the 4096-byte node limit.
  std::vector<std::string> values;
  for (int len : {0, 1, 10, 40, 61, 62, 63, 64, 65, 100, 126, 127, 128, 129, 500, 1000, 2000,
                  4000, 4094, 4095, 4096, 4097, 5000}) {
    values.push_back(std::string(static_cast<std::size_t>(len), 'v'));
  }
  for (long long v : {0LL, 127LL, 128LL, -1LL, -4096LL, -4097LL, 4095LL, 4096LL, 32767LL, 32768LL,
                      -8388608LL, 8388608LL, 2147483647LL, 2147483648LL, -9223372036854775807LL - 1}) {
    values.push_back(std::to_string(v));
  }
  for (std::size_t i = 0; i < values.size(); ++i) {
    const std::string key = "n" + std::to_string(i);
    // After each XADD, the node count: a boundary one entry off shows at once.
    std::string wire;
    for (int n = 1; n <= 260; ++n) {
      // Every seventh entry has its own field names, so entries are not all "same fields".
      const std::string field = n % 7 == 0 ? "other" : "field";
      wire += encode_command({"XADD", key, std::to_string(n) + "-" + std::to_string(n % 3), field,
                              values[i], "f2", values[i]});
      wire += encode_command({"XINFO", "STREAM", key});
    }
    redis.send_raw(wire);
    runnel.send_raw(wire);
    INFO("value of " << values[i].size() << " bytes: " << values[i].substr(0, 20));
    for (int n = 1; n <= 260; ++n) {
      std::string a, b;
      redis.read_reply(&a);
      runnel.read_reply(&b);
      REQUIRE(a == b);
      const auto nodes = [](const runnel::protocol::Reply& info) {
        for (std::size_t k = 0; k + 1 < info.elements.size(); k += 2) {
          if (info.elements[k].str == "radix-tree-keys") return info.elements[k + 1].integer;
        }
        return std::int64_t{-1};
      };
      const auto redis_nodes = nodes(redis.read_reply());
      const auto runnel_nodes = nodes(runnel.read_reply());
      INFO("after entry " << n);
      REQUIRE(runnel_nodes == redis_nodes);
    }
  }
}

namespace {

// Random consumer-group work: groups created, set, destroyed; consumers reading, claiming,
// acknowledging; the stream added to, deleted from and trimmed under them.
class GroupGenerator {
 public:
  // `newer`: also Redis 8.2's XDELEX and XACKDEL, and KEEPREF/DELREF/ACKED on XTRIM and XADD.
  GroupGenerator(std::uint64_t seed, bool newer) : rng_(seed), newer_(newer) {}

  std::vector<std::string> next() {
    const std::string key = "q" + std::to_string(pick(0, 1));
    const std::string group = pick(0, 3) == 0 ? "gb" : "ga";
    const std::string consumer = "c" + std::to_string(pick(0, 3));
    if (newer_ && pick(0, 99) < 20) return newer(key, group);
    switch (pick(0, 99)) {
      case 0: case 1: case 2:
        return {"XGROUP", "CREATE", key, group, pick(0, 1) ? "$" : id_near(), "MKSTREAM"};
      case 3: return {"XGROUP", "SETID", key, group, pick(0, 1) ? "$" : id_near()};
      case 4: return {"XGROUP", "DESTROY", key, group};
      case 5: return {"XGROUP", "CREATECONSUMER", key, group, consumer};
      case 6: return {"XGROUP", "DELCONSUMER", key, group, consumer};
      case 7: case 8: return {"XDEL", key, id_near()};
      case 9: return {"XTRIM", key, "MAXLEN", pick(0, 1) ? "~" : "=", std::to_string(pick(0, 60))};
      case 10: case 11: case 12: case 13: return {"XPENDING", key, group};
      case 14: case 15: {
        std::vector<std::string> cmd = {"XPENDING", key, group, "-", "+", std::to_string(pick(1, 20))};
        if (pick(0, 1)) cmd.push_back(consumer);
        return cmd;
      }
      case 16: case 17: return {"XINFO", "GROUPS", key};
      case 18: return {"XINFO", "CONSUMERS", key, group};
      default: break;
    }
    const int kind = pick(0, 9);
    if (kind < 3) {
      top_ms_ += static_cast<std::uint64_t>(pick(1, 3));
      return {"XADD", key, std::to_string(top_ms_) + "-1", "f", std::to_string(pick(0, 999))};
    }
    if (kind < 6) {
      std::vector<std::string> cmd = {"XREADGROUP", "GROUP", group, consumer};
      if (pick(0, 2)) {
        cmd.push_back("COUNT");
        cmd.push_back(std::to_string(pick(1, 10)));
      }
      if (pick(0, 7) == 0) cmd.push_back("NOACK");
      cmd.push_back("STREAMS");
      cmd.push_back(key);
      cmd.push_back(pick(0, 4) == 0 ? "0" : ">");
      return cmd;
    }
    if (kind < 8) {
      std::vector<std::string> cmd = {"XACK", key, group};
      for (int i = pick(1, 4); i > 0; --i) cmd.push_back(id_recent());
      return cmd;
    }
    if (kind == 8) {
      std::vector<std::string> cmd = {"XCLAIM", key, group, consumer, "0"};
      for (int i = pick(1, 3); i > 0; --i) cmd.push_back(id_near());
      if (pick(0, 2) == 0) cmd.push_back("JUSTID");
      if (pick(0, 4) == 0) cmd.push_back("FORCE");
      if (pick(0, 4) == 0) {
        cmd.push_back("RETRYCOUNT");
        cmd.push_back(std::to_string(pick(0, 5)));
      }
      return cmd;
    }
    std::vector<std::string> cmd = {"XAUTOCLAIM", key, group, consumer, "0", pick(0, 1) ? "0" : id_near(),
                                    "COUNT", std::to_string(pick(1, 8))};
    if (pick(0, 2) == 0) cmd.push_back("JUSTID");
    return cmd;
  }

 private:
  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  std::string id_near() { return std::to_string(pick(0, static_cast<int>(top_ms_) + 1)) + "-1"; }

  std::vector<std::string> newer(const std::string& key, const std::string& group) {
    static const char* kPolicies[] = {"KEEPREF", "DELREF", "ACKED"};
    const std::string policy = kPolicies[pick(0, 2)];
    std::vector<std::string> ids;
    for (int i = pick(1, 3); i > 0; --i) ids.push_back(pick(0, 1) ? id_recent() : id_near());
    auto with_ids = [&](std::vector<std::string> cmd) {
      if (pick(0, 3) > 0) cmd.push_back(policy);  // none: KEEPREF
      cmd.push_back("IDS");
      cmd.push_back(std::to_string(ids.size()));
      cmd.insert(cmd.end(), ids.begin(), ids.end());
      return cmd;
    };
    switch (pick(0, 3)) {
      case 0: return with_ids({"XDELEX", key});
      case 1: return with_ids({"XACKDEL", key, group});
      case 2: {
        std::vector<std::string> cmd = {"XTRIM", key};
        if (pick(0, 1)) {
          cmd.insert(cmd.end(), {"MAXLEN", pick(0, 1) ? "~" : "=", std::to_string(pick(0, 60))});
        } else {
          cmd.insert(cmd.end(), {"MINID", pick(0, 1) ? "~" : "=", id_near()});
        }
        cmd.push_back(policy);
        return cmd;
      }
      default:
        top_ms_ += static_cast<std::uint64_t>(pick(1, 3));
        return {"XADD", key, policy, "MAXLEN", "=", std::to_string(pick(5, 60)), std::to_string(top_ms_) + "-1", "f", "v"};
    }
  }
  // Near the top, where the entries just delivered (and so pending) are.
  std::string id_recent() {
    const int top = static_cast<int>(top_ms_);
    return std::to_string(pick(std::max(0, top - 40), top)) + "-1";
  }

  std::mt19937_64 rng_;
  bool newer_;
  std::uint64_t top_ms_ = 1;
};

// Redis 7.2 makes the consumer of every XREADGROUP, XCLAIM and XAUTOCLAIM that gets past its
// checks, even one that reads or claims nothing; 7.0 made it only when it did. Runnel does as
// 7.2 (docs/compatibility.md): redis-server 7.0 is told to make the consumer first.
Commands make_consumer_as_7_2(const std::vector<std::string>& cmd) {
  if (cmd[0] == "XREADGROUP") return {{"XGROUP", "CREATECONSUMER", cmd.end()[-2], cmd[2], cmd[3]}, cmd};
  if (cmd[0] == "XCLAIM" || cmd[0] == "XAUTOCLAIM") return {{"XGROUP", "CREATECONSUMER", cmd[1], cmd[2], cmd[3]}, cmd};
  return {cmd};
}

// The bytes to compare: the reply as sent, but for the idle times XPENDING (extended form)
// and XINFO CONSUMERS report, which differ between two servers by nature, and XINFO
// CONSUMERS' 'inactive', which Redis 7.0 does not have (redis72_replies.txt checks it).
std::string comparable(const std::vector<std::string>& cmd, const runnel::protocol::Reply& reply,
                       const std::string& raw) {
  using runnel::protocol::Reply;
  const bool pending_ext = cmd[0] == "XPENDING" && cmd.size() > 3;
  const bool consumers = cmd[0] == "XINFO" && cmd[1] == "CONSUMERS";
  if (!pending_ext && !consumers) return raw;
  Reply copy = reply;
  for (Reply& e : copy.elements) {
    if (pending_ext && e.elements.size() == 4) e.elements[2] = Reply{Reply::Type::kSimple, "<idle>", 0, {}};
    if (consumers && e.elements.size() == 8 && e.elements[6].str == "inactive") e.elements.resize(6);
    if (consumers && e.elements.size() == 6) e.elements[5] = Reply{Reply::Type::kSimple, "<idle>", 0, {}};
  }
  return runnel::protocol::to_display_string(copy);
}

}  // namespace

TEST_CASE("Random consumer-group sequences get the same replies as redis-server", "[random]") {
  constexpr int kOperations = 24000;
  const unsigned threads = GENERATE(1u, 4u);
  RandomRun run(threads);
  INFO("--threads " << threads << ", seed " << run.seed << " (replay with RUNNEL_SEED=" << run.seed << ")");
  GroupGenerator gen(run.seed, false);
  int delivered = 0, acked = 0, claimed = 0, errors = 0;
  run_against_both(
      run.redis, run.runnel, kOperations, [&] { return gen.next(); }, comparable,
      [&](const std::vector<std::string>& cmd, const runnel::protocol::Reply& reply) {
        errors += reply.is_error();
        delivered += cmd[0] == "XREADGROUP" && reply.type == runnel::protocol::Reply::Type::kArray;
        if (cmd[0] == "XACK") acked += static_cast<int>(reply.integer);
        claimed += (cmd[0] == "XCLAIM" || cmd[0] == "XAUTOCLAIM") && !reply.is_error();
      },
      make_consumer_as_7_2);
  INFO("reads that delivered " << delivered << ", acknowledged " << acked << ", claims " << claimed
                               << ", errors " << errors);
  CHECK(delivered > 1000);
  CHECK(acked > 500);
  CHECK(claimed > 1000);
  CHECK(errors < kOperations / 4);
}

namespace {

// Redis 8.2's reference rules (docs/compatibility.md), as a model that runs inside
// redis-server 7.0 on its own streams, with the commands 7.0 has. The same rules, said the
// same plain way, are the reference of the op-level test in tests/broker/stream_ops_test.cpp.
// ARGV: the command, the policy, then XDELEX's IDs; XACKDEL's group and IDs; XTRIM's
// strategy and threshold; XADD's strategy, threshold, ID and field/value pairs.
constexpr const char* kRefModel = R"lua(
local key, op, policy = KEYS[1], ARGV[1], ARGV[2]
local function parse(id) local ms, seq = string.match(id, '^(%d+)-(%d+)$') return {tonumber(ms), tonumber(seq)} end
local function less(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end
local function groups()
  local out = {}
  if redis.call('EXISTS', key) == 0 then return out end
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    local group = {}
    for i = 1, #g, 2 do group[g[i]] = g[i + 1] end
    out[#out + 1] = {name = group['name'], last = parse(group['last-delivered-id'])}
  end
  return out
end
-- Referenced: some group has not read it yet, or holds it pending.
local function referenced(gs, id)
  for _, g in ipairs(gs) do
    if less(g.last, parse(id)) then return true end
    if #redis.call('XPENDING', key, g.name, id, id, 1) > 0 then return true end
  end
  return false
end
local function drop_refs(gs, id) for _, g in ipairs(gs) do redis.call('XACK', key, g.name, id) end end
local function erase(gs, id)
  if policy == 'ACKED' and referenced(gs, id) then return 2 end
  if policy == 'DELREF' then drop_refs(gs, id) end
  return redis.call('XDEL', key, id) == 1 and 1 or -1
end
-- Oldest first, each entry goes unless ACKED finds it referenced, until the request is met;
-- exact whatever '~' says. A trim moves no max-deleted-entry-id, so XDEL's is put back.
local function trim(strategy, threshold)
  local entries = redis.call('XRANGE', key, '-', '+')
  local gs, size, gone = groups(), #entries, {}
  for _, e in ipairs(entries) do
    if strategy == 'MAXLEN' and size <= tonumber(threshold) then break end
    if strategy == 'MINID' and not less(parse(e[1]), parse(threshold)) then break end
    if not (policy == 'ACKED' and referenced(gs, e[1])) then
      gone[#gone + 1] = e[1]
      size = size - 1
    end
  end
  if #gone == 0 then return 0 end
  local info = {}
  local raw = redis.call('XINFO', 'STREAM', key)
  for i = 1, #raw, 2 do info[raw[i]] = raw[i + 1] end
  for _, id in ipairs(gone) do redis.call('XDEL', key, id) end
  redis.call('XSETID', key, info['last-generated-id'], 'ENTRIESADDED', info['entries-added'],
             'MAXDELETEDID', info['max-deleted-entry-id'])
  if policy == 'DELREF' then  -- every pending ID below the first entry left goes
    local first = redis.call('XRANGE', key, '-', '+', 'COUNT', 1)[1]
    for _, g in ipairs(gs) do
      for _, p in ipairs(redis.call('XPENDING', key, g.name, '-', '+', 1000000)) do
        if first == nil or less(parse(p[1]), parse(first[1])) then redis.call('XACK', key, g.name, p[1]) end
      end
    end
  end
  return #gone
end
if op == 'XDELEX' then
  local out, exists, gs = {}, redis.call('EXISTS', key) == 1, groups()
  for i = 3, #ARGV do out[#out + 1] = exists and erase(gs, ARGV[i]) or -1 end
  return out
elseif op == 'XACKDEL' then
  local out, gs = {}, groups()
  for i = 4, #ARGV do
    if redis.call('XACK', key, ARGV[3], ARGV[i]) == 0 then
      out[#out + 1] = -1
    elseif policy == 'ACKED' and referenced(gs, ARGV[i]) then
      out[#out + 1] = 2
    else
      if policy == 'DELREF' then drop_refs(gs, ARGV[i]) end
      redis.call('XDEL', key, ARGV[i])
      out[#out + 1] = 1
    end
  end
  return out
elseif op == 'XTRIM' then
  return trim(ARGV[3], ARGV[4])
else
  local id = redis.call('XADD', key, unpack(ARGV, 5))
  trim(ARGV[3], ARGV[4])
  return id
end
)lua";

// What redis-server runs for a command of GroupGenerator's: the model above (loaded as
// `sha`) for the newer ones, the 7.2 consumer rule for the others.
Commands newer_on_redis(const std::string& sha, const std::vector<std::string>& cmd) {
  auto model = [&](std::initializer_list<std::string> head, std::size_t ids_from) {
    std::vector<std::string> out = {"EVALSHA", sha, "1", cmd[1]};
    out.insert(out.end(), head);
    std::size_t i = ids_from;
    if (cmd[i] != "IDS") ++i;  // the policy word
    out.insert(out.end(), cmd.begin() + static_cast<std::ptrdiff_t>(i) + 2, cmd.end());
    return Commands{out};
  };
  auto policy_at = [&](std::size_t i) { return cmd[i] == "IDS" ? std::string("KEEPREF") : cmd[i]; };
  if (cmd[0] == "XDELEX") return model({"XDELEX", policy_at(2)}, 2);
  if (cmd[0] == "XACKDEL") return model({"XACKDEL", policy_at(3), cmd[2]}, 3);
  if (cmd[0] == "XTRIM" && cmd.size() == 6) {  // KEEPREF is the trim of before, '~' included
    if (cmd[5] == "KEEPREF") return {{cmd.begin(), cmd.end() - 1}};
    return {{"EVALSHA", sha, "1", cmd[1], "XTRIM", cmd[5], cmd[2], cmd[4]}};
  }
  if (cmd[0] == "XADD" && cmd.size() == 9) {
    return {{"EVALSHA", sha, "1", cmd[1], "XADD", cmd[2], cmd[3], cmd[5], cmd[6], cmd[7], cmd[8]}};
  }
  return make_consumer_as_7_2(cmd);
}

}  // namespace

TEST_CASE("Random group sequences with XDELEX, XACKDEL and KEEPREF/DELREF/ACKED trims agree with a model of Redis 8.2",
          "[random][newer]") {
  // The model runs inside redis-server (kRefModel): for everything else redis-server answers
  // itself, so the newer commands are checked amid all the 7.0 group work, on Runnel's disk
  // and cache paths, at one and four shards.
  constexpr int kOperations = 24000;
  const unsigned threads = GENERATE(1u, 4u);
  RandomRun run(threads);
  INFO("--threads " << threads << ", seed " << run.seed << " (replay with RUNNEL_SEED=" << run.seed << ")");
  const std::string sha = run.redis.call({"SCRIPT", "LOAD", kRefModel}).str;
  REQUIRE(sha.size() == 40);
  GroupGenerator gen(run.seed, true);
  int codes[3] = {0, 0, 0}, trimmed = 0, errors = 0;  // -1, 1, 2: every outcome is reached
  run_against_both(
      run.redis, run.runnel, kOperations, [&] { return gen.next(); }, comparable,
      [&](const std::vector<std::string>& cmd, const runnel::protocol::Reply& reply) {
        errors += reply.is_error();
        if (cmd[0] == "XDELEX" || cmd[0] == "XACKDEL") {
          for (const auto& code : reply.elements) ++codes[code.integer == -1 ? 0 : code.integer == 1 ? 1 : 2];
        }
        trimmed += cmd[0] == "XTRIM" && reply.integer > 0;
      },
      [&](const std::vector<std::string>& cmd) { return newer_on_redis(sha, cmd); });
  INFO("codes -1/1/2: " << codes[0] << "/" << codes[1] << "/" << codes[2] << ", trims that removed entries "
                        << trimmed << ", errors " << errors);
  CHECK(codes[0] > 100);
  CHECK(codes[1] > 100);
  CHECK(codes[2] > 100);
  CHECK(trimmed > 50);
  CHECK(errors < kOperations / 4);
}

namespace {

// Strings, expiry and streams over six keys, so that every command meets keys of both types,
// keys with and without a TTL, and keys just deleted by one already past (issue 19).
class MixedGenerator {
 public:
  explicit MixedGenerator(std::uint64_t seed) : rng_(seed) {}

  std::vector<std::string> next() {
    const std::string k = key();
    switch (pick(0, 33)) {
      case 0: return {"SET", k, value()};
      case 1: return {"SET", k, value(), "EX", "1000"};
      case 2: return {"SET", k, value(), pick(0, 1) ? "NX" : "XX"};
      case 3: return {"SET", k, value(), "KEEPTTL"};
      case 4: return {"SET", k, value(), "GET"};
      case 5: return {"SET", k, value(), "PXAT", pick(0, 1) ? "1" : "4102444800000"};
      case 6: return {"GET", k};
      case 7: return {"GETDEL", k};
      case 8: return {"GETEX", k, pick(0, 1) ? "PERSIST" : "EX", "1000"};
      case 9: return {"GETSET", k, value()};
      case 10: return {"MGET", k, key(), key()};
      case 11: return {"MSET", k, value(), key(), value()};
      case 12: return {"MSETNX", k, value(), key(), value()};
      case 13: return {"SETNX", k, value()};
      case 14: return {"INCR", k};
      case 15: return {"INCRBY", k, std::to_string(pick(-50, 50))};
      case 16: return {"INCRBYFLOAT", k, "1.5"};
      case 17: return {"APPEND", k, value()};
      case 18: return {"STRLEN", k};
      case 19: return {"GETRANGE", k, std::to_string(pick(-5, 5)), std::to_string(pick(-5, 5))};
      case 20: return {"SETRANGE", k, std::to_string(pick(0, 6)), value()};
      case 21: {
        const char* flags[] = {"NX", "XX", "GT", "LT"};
        std::vector<std::string> cmd{"EXPIRE", k, std::to_string(pick(500, 2000))};
        if (pick(0, 1)) cmd.emplace_back(flags[pick(0, 3)]);
        return cmd;
      }
      case 22: return {"PEXPIRE", k, pick(0, 3) ? "900000" : "0"};
      case 23: return {"EXPIREAT", k, pick(0, 2) ? "4102444800" : "1"};
      case 24: return {"PERSIST", k};
      case 25: return {pick(0, 1) ? "TTL" : "PEXPIRETIME", k};
      case 26: case 27: return {"XADD", k, std::to_string(++id_) + "-1", "f", value()};
      case 28: return {"XLEN", k};
      case 29: return {"XRANGE", k, "-", "+"};
      case 30: return {"TYPE", k};
      case 31: return {"EXISTS", k, key()};
      case 32: return {pick(0, 1) ? "DEL" : "RENAME", k, key()};
      default: return {"COPY", k, key(), "REPLACE"};
    }
  }

 private:
  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  std::string key() { return "m" + std::to_string(pick(0, 5)); }
  std::string value() {
    const char* values[] = {"1", "10", "-5", "abc", "3.5", "", "xyz123"};
    return values[pick(0, 6)];
  }

  std::mt19937_64 rng_;
  int id_ = 0;
};

}  // namespace

TEST_CASE("Random sequences mixing strings, expiry and streams get the same replies as redis-server",
          "[random][strings]") {
  constexpr int kOperations = 20000;
  const unsigned threads = GENERATE(1u, 3u);
  RandomRun run(threads);
  INFO("--threads " << threads << ", seed " << run.seed << " (replay with RUNNEL_SEED=" << run.seed << ")");
  MixedGenerator gen(run.seed);
  int wrong_type = 0, strings = 0, expired = 0, ttls = 0;
  using Type = runnel::protocol::Reply::Type;
  run_against_both(
      run.redis, run.runnel, kOperations, [&] { return gen.next(); },
      [](const std::vector<std::string>& cmd, const runnel::protocol::Reply& reply, const std::string& raw) {
        // A relative TTL's remaining time depends on when each server ran it: compared by sign.
        if ((cmd[0] == "TTL" || cmd[0] == "PEXPIRETIME") && reply.type == Type::kInteger && reply.integer > 0) {
          if (cmd[0] == "TTL") return std::string(":ttl");
          return reply.integer == 4102444800000 ? raw : std::string(":relative");
        }
        return raw;
      },
      [&](const std::vector<std::string>& cmd, const runnel::protocol::Reply& reply) {
        wrong_type += reply.type == Type::kError && reply.str.rfind("WRONGTYPE", 0) == 0;
        strings += cmd[0] == "GET" && reply.type == Type::kBulk;
        expired += (cmd[0] == "EXPIREAT" && cmd[2] == "1" && reply.integer == 1) ||
                   (cmd[0] == "PEXPIRE" && cmd[2] == "0" && reply.integer == 1);
        ttls += cmd[0] == "TTL" && reply.type == Type::kInteger && reply.integer > 0;
      });
  INFO("WRONGTYPE " << wrong_type << ", GET hits " << strings << ", expired by a past time " << expired
                    << ", TTLs seen " << ttls);
  CHECK(wrong_type > 200);
  CHECK(strings > 100);
  CHECK(expired > 50);
  CHECK(ttls > 50);
  for (int i = 0; i < 6; ++i) {
    const std::string key = "m" + std::to_string(i);
    for (const char* command : {"TYPE", "GET", "XLEN"}) {
      std::string expected, actual;
      run.redis.call({command, key}, &expected);
      run.runnel.call({command, key}, &actual);
      REQUIRE(actual == expected);
    }
  }
}
