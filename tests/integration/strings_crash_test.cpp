// Strings and TTLs across kill -9: writers pipeline SET (with and without EXAT, PX), APPEND,
// INCR, EXPIREAT, PERSIST and DEL over keys they own, while the test kills the server at
// random moments and restarts it, sometimes with another --threads (the keys journals are
// then folded onto their new shards). After each restart every key must be in the state of
// its last acknowledged command, or of a later command that was sent and not yet answered;
// keys whose short TTL has passed must be gone, and DBSIZE must not count them.
#include <catch2/catch.hpp>

#include <signal.h>

#include <array>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <runnel/client/connection.hpp>

#include "server_process.hpp"

using runnel::client::Connection;
using runnel::protocol::Reply;

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A key's state: its value (none: no key) and the time it expires at in ms (-1: never).
struct State {
  std::optional<std::string> value;
  std::int64_t expires_at = -1;
  bool approximate = false;  // a PX deadline, worked out by the client: within a second
};

// Per key: the states after each command sent since the last check, the first being the
// state the last check found; `acked` is the index of the last answered one.
struct History {
  std::vector<State> states{State{}};
  std::size_t acked = 0;
};

struct Model {
  std::mutex mutex;
  std::map<std::string, History> keys;
  std::uint64_t answered = 0;
};

bool matches(const State& want, const std::optional<std::string>& value, std::int64_t pexpiretime, std::int64_t now) {
  // A key whose deadline has passed is gone.
  if (want.value && want.expires_at != -1 && want.expires_at + (want.approximate ? 1000 : 0) <= now) {
    return !value;
  }
  if (want.value != value) {
    // A short TTL may have run out (the client's deadline is a guess within a second).
    return !value && want.approximate && want.expires_at - 1000 <= now;
  }
  if (!value) return true;
  if (want.approximate) return pexpiretime > 0 && std::llabs(pexpiretime - want.expires_at) < 1000;
  return pexpiretime == want.expires_at;
}

// One writer: its own keys, pipelined commands in batches of 16, until the connection breaks.
void write(std::uint16_t port, int worker, unsigned seed, Model& model) {
  std::mt19937 rng(seed);
  try {
    Connection c("127.0.0.1", port, std::chrono::seconds(5));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (int batch = 0; batch < 100000 && std::chrono::steady_clock::now() < deadline; ++batch) {
      std::vector<std::string> sent;
      {
        std::lock_guard lock(model.mutex);
        for (int i = 0; i < 16; ++i) {
          // Keys 0 to 9 get short TTLs, and nothing that builds on a value that may have
          // expired meanwhile; the others get every command but PX.
          const unsigned index = rng() % 60;
          const std::string key = "w" + std::to_string(worker) + ":" + std::to_string(index);
          History& h = model.keys[key];
          State next = h.states.back();
          const std::string value = "v" + std::to_string(batch) + "." + std::to_string(i);
          const std::int64_t far = (now_ms() / 1000 + 100000 + rng() % 100000) * 1000;
          const unsigned op = index < 10 ? std::array<unsigned, 3>{0, 2, 5}[rng() % 3] : std::array<unsigned, 7>{0, 1, 3, 4, 5, 6, 7}[rng() % 7];
          switch (op) {
            case 0:
              c.send({"SET", key, value});
              next = State{value, -1, false};
              break;
            case 1:
              c.send({"SET", key, value, "EXAT", std::to_string(far / 1000)});
              next = State{value, far, false};
              break;
            case 2:
              c.send({"SET", key, value, "PX", "150"});
              next = State{value, now_ms() + 150, true};
              break;
            case 3:
              c.send({"EXPIREAT", key, std::to_string(far / 1000)});
              if (next.value) next = State{next.value, far, false};
              break;
            case 4:
              c.send({"PERSIST", key});
              if (next.value) next = State{next.value, -1, false};
              break;
            case 5:
              c.send({"DEL", key});
              next = State{};
              break;
            default:
              c.send({"APPEND", key, "+"});
              next.value = next.value.value_or("") + "+";
              break;
          }
          h.states.push_back(next);
          sent.push_back(key);
        }
      }
      for (const std::string& key : sent) {
        const Reply r = c.read_reply();
        if (r.type == Reply::Type::kError) return;
        std::lock_guard lock(model.mutex);
        History& h = model.keys[key];
        ++model.answered;
        // Replies come in order: the first unanswered state of this key is answered now.
        ++h.acked;
      }
    }
  } catch (const runnel::client::ConnectionError&) {
    // Killed: the model holds what was answered, and what was sent after it.
  }
}

runnel::test::ServerProcess start(const runnel::test::TempDir& dir, std::uint16_t port, unsigned threads,
                                  const std::string& fsync) {
  return runnel::test::ServerProcess({runnel::test::runnel_server_path(), "--port", std::to_string(port), "--dir",
                                      (dir.path() / "data").string(), "--threads", std::to_string(threads),
                                      "--fsync", fsync},
                                     port, (dir.path() / "server.log").string());
}

// Checks every key against its history, then makes what was found the base of the next run.
void check(std::uint16_t port, Model& model) {
  Connection c("127.0.0.1", port);
  std::lock_guard lock(model.mutex);
  std::int64_t live = 0;
  for (auto& [key, h] : model.keys) {
    INFO("key " << key << ", " << h.states.size() << " states, acked " << h.acked);
    const Reply got = c.call({"GET", key});
    const Reply pexpiretime = c.call({"PEXPIRETIME", key});
    const std::int64_t now = now_ms();
    std::optional<std::string> value;
    if (got.type == Reply::Type::kBulk) value = got.str;
    bool ok = false;
    for (std::size_t j = h.acked; j < h.states.size() && !ok; ++j) {
      ok = matches(h.states[j], value, pexpiretime.integer, now);
    }
    INFO("found " << (value ? *value : "(none)") << " expiring at " << pexpiretime.integer);
    std::string states;
    for (const State& st : h.states) states += st.value.value_or("(none)") + "@" + std::to_string(st.expires_at) + " ";
    INFO("states " << states);
    INFO("last acknowledged " << h.states[h.acked].value.value_or("(none)") << " expiring at "
                              << h.states[h.acked].expires_at);
    CHECK(ok);
    if (value) ++live;
    h.states = {State{value, value ? pexpiretime.integer : -1, false}};
    h.acked = 0;
  }
  // Keys past their time are not counted (a second's grace for the PX ones in flight).
  const std::int64_t dbsize = c.call({"DBSIZE"}).integer;
  CHECK(dbsize <= live);
  CHECK(dbsize >= live - static_cast<std::int64_t>(model.keys.size()) / 4);
}

void crash_strings(const std::string& fsync, int kills) {
  runnel::test::TempDir dir("runnel-strings-crash");
  const std::uint16_t port = runnel::test::free_port();
  Model model;
  std::mt19937 rng(std::random_device{}());
  for (int run = 0; run < kills; ++run) {
    INFO("run " << run);
    const unsigned threads = 2 + run % 2;  // 2, 3, 2...: the journals move between shards
    auto server = start(dir, port, threads, fsync);
    check(port, model);
    std::vector<std::thread> writers;
    for (int w = 0; w < 3; ++w) writers.emplace_back(write, port, w, static_cast<unsigned>(rng()), std::ref(model));
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 400));
    REQUIRE(::kill(server.pid(), SIGKILL) == 0);
    for (auto& t : writers) t.join();
  }
  auto server = start(dir, port, 2, fsync);
  check(port, model);
  CHECK(model.answered > 2000);  // the test did work
}

}  // namespace

TEST_CASE("Strings and TTLs acknowledged survive kill -9 under fsync always, across --threads changes",
          "[crash][strings]") {
  crash_strings("always", 8);
}

TEST_CASE("Strings and TTLs acknowledged survive kill -9 under fsync everysec", "[crash][strings]") {
  crash_strings("everysec", 6);
}
