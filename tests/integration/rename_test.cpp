// RENAME's durability: the new name survives a kill -9 under every --fsync policy, with
// streams moving between shards while they are written; a crash between a RENAME's two
// steps leaves the renamed stream, not two; and a stream moved to another shard reads back
// whole from its files there.
#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <runnel/client/connection.hpp>

#include "server_process.hpp"

using runnel::client::Connection;
using runnel::protocol::Reply;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

runnel::test::ServerProcess start(const runnel::test::TempDir& dir, std::uint16_t port, const std::string& fsync,
                                  bool wal_only) {
  return runnel::test::ServerProcess(
      {runnel::test::runnel_server_path(), "--port", std::to_string(port), "--dir", (dir.path() / "data").string(),
       "--threads", "2", "--fsync", fsync, "--segment-bytes", "262144", "--cache-bytes",
       wal_only ? "1073741824" : "65536"},
      port, (dir.path() / "server.log").string());
}

// What the clients saw acknowledged, across every run.
struct Ledger {
  std::mutex mutex;
  std::set<std::string> sent;     // every value an XADD carried
  std::set<std::string> added;    // XADD replied
  std::set<std::string> deleted;  // in a stream whose DEL replied 1
  std::set<std::string> doubt;    // in a stream whose DEL was sent, not replied
};

// Every value in every stream, with how often it appears.
std::map<std::string, int> all_values(Connection& c) {
  std::map<std::string, int> seen;
  const Reply keys = c.call({"KEYS", "*"});
  for (const Reply& key : keys.elements) {
    const Reply entries = c.call({"XRANGE", key.str, "-", "+"});
    INFO(key.str << ": " << entries.str);
    REQUIRE(entries.is_aggregate());
    for (const Reply& entry : entries.elements) ++seen[entry.elements.at(1).elements.at(1).str];
  }
  return seen;
}

// XADDs to "live", pipelined 8 at a time, until the connection breaks (or 5 s pass).
void produce(std::uint16_t port, int run, Ledger& ledger) {
  try {
    Connection c("127.0.0.1", port, 5s);
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    for (int batch = 0; batch < 100000 && std::chrono::steady_clock::now() < deadline; ++batch) {
      std::vector<std::string> values;
      for (int i = 0; i < 8; ++i) {
        values.push_back("r" + std::to_string(run) + "b" + std::to_string(batch) + "i" + std::to_string(i));
        {
          std::lock_guard lock(ledger.mutex);
          ledger.sent.insert(values.back());
        }
        c.send({"XADD", "live", "*", "v", values.back()});
      }
      for (const std::string& v : values) {
        const Reply r = c.read_reply();
        if (r.type != Reply::Type::kBulk) return;
        std::lock_guard lock(ledger.mutex);
        ledger.added.insert(v);
      }
    }
  } catch (const runnel::client::ConnectionError&) {
  }
}

// Moves "live" away under new names and back, and deletes streams parked long enough, until
// the connection breaks (or 5 s pass). At --threads 2 about half the moves cross shards.
void rename_around(std::uint16_t port, int run, Ledger& ledger) {
  try {
    Connection c("127.0.0.1", port, 5s);
    std::vector<std::string> parked;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    for (int step = 0; step < 100000 && std::chrono::steady_clock::now() < deadline; ++step) {
      std::this_thread::sleep_for(2ms);
      const std::string name = "p" + std::to_string(run) + "-" + std::to_string(step);
      if (step % 2 == 0) {
        const Reply r = c.call({"RENAME", "live", name});
        if (r.str == "OK") parked.push_back(name);
      } else if (!parked.empty()) {
        // Back under "live", unless the producer made a new one meanwhile.
        const Reply r = c.call({"RENAMENX", parked.back(), "live"});
        if (r.integer == 1) parked.pop_back();
      }
      if (step % 4 == 3 && parked.size() > 2) {
        // A stream nobody writes or moves any more: its values go with its DEL.
        const std::string victim = parked.front();
        parked.erase(parked.begin());
        const Reply entries = c.call({"XRANGE", victim, "-", "+"});
        std::vector<std::string> values;
        for (const Reply& entry : entries.elements) values.push_back(entry.elements.at(1).elements.at(1).str);
        {
          std::lock_guard lock(ledger.mutex);
          ledger.doubt.insert(values.begin(), values.end());
        }
        const Reply del = c.call({"DEL", victim});
        std::lock_guard lock(ledger.mutex);
        if (del.integer == 1) {
          for (const std::string& v : values) {
            ledger.doubt.erase(v);
            ledger.deleted.insert(v);
          }
        }
      }
    }
  } catch (const runnel::client::ConnectionError&) {
  }
}

void check_ledger(std::uint16_t port, Ledger& ledger) {
  Connection c("127.0.0.1", port);
  const auto seen = all_values(c);
  std::lock_guard lock(ledger.mutex);
  for (const auto& [value, count] : seen) {
    INFO("value " << value);
    CHECK(count == 1);                         // never in two streams, never twice
    CHECK(ledger.sent.contains(value));        // nothing made up
    CHECK_FALSE(ledger.deleted.contains(value));  // nothing deleted comes back
  }
  for (const std::string& value : ledger.added) {
    if (ledger.deleted.contains(value) || ledger.doubt.contains(value)) continue;
    INFO("acknowledged value " << value);
    CHECK(seen.contains(value));
  }
}

void rename_crash_cycles(const std::string& fsync, bool wal_only, int kills) {
  if (wal_only) ::setenv("RUNNEL_TEST_WAL_ONLY", "1", 1);
  runnel::test::TempDir dir("runnel-rename-crash");
  const std::uint16_t port = runnel::test::free_port();
  Ledger ledger;
  std::mt19937 rng(std::random_device{}());
  std::size_t renamed_streams = 0;
  for (int run = 0; run < kills; ++run) {
    INFO("run " << run);
    auto server = start(dir, port, fsync, wal_only);
    check_ledger(port, ledger);
    std::thread producer(produce, port, run, std::ref(ledger));
    std::thread renamer(rename_around, port, run, std::ref(ledger));
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 400));
    {
      Connection c("127.0.0.1", port);
      renamed_streams += c.call({"KEYS", "p*"}).elements.size();
    }
    REQUIRE(::kill(server.pid(), SIGKILL) == 0);
    producer.join();
    renamer.join();
  }
  auto server = start(dir, port, fsync, wal_only);
  check_ledger(port, ledger);
  // The test did work: writes were acknowledged, streams moved and deleted.
  CHECK(ledger.added.size() > 1000);
  CHECK(renamed_streams > 10);
  CHECK(ledger.deleted.size() > 100);
  ::unsetenv("RUNNEL_TEST_WAL_ONLY");
}

}  // namespace

TEST_CASE("Streams renamed across shards while written keep every acknowledged entry through kill -9 under always",
          "[rename][crash][always]") {
  rename_crash_cycles("always", false, 6);
}

TEST_CASE("The same holds when only the write-ahead log was written before each kill", "[rename][crash][walonly]") {
  rename_crash_cycles("always", true, 6);
}

TEST_CASE("The same holds under fsync everysec", "[rename][crash][everysec]") { rename_crash_cycles("everysec", false, 6); }

TEST_CASE("A RENAME onto an existing key cut by a crash between its steps keeps the renamed stream", "[rename][crash]") {
  runnel::test::TempDir dir("runnel-rename-cut");
  const std::uint16_t port = runnel::test::free_port();
  const fs::path streams = dir.path() / "data" / "streams";
  auto folders = [&] {
    std::size_t n = 0;
    for (const auto& entry : fs::directory_iterator(streams)) n += entry.path().filename().string()[0] != '.';
    return n;
  };
  {
    ::setenv("RUNNEL_TEST_RENAME_CRASH", "1", 1);
    auto server = start(dir, port, "always", false);
    ::unsetenv("RUNNEL_TEST_RENAME_CRASH");
    Connection c("127.0.0.1", port, 5s);
    REQUIRE(c.call({"XADD", "from", "1-1", "f", "renamed"}).str == "1-1");
    REQUIRE(c.call({"XADD", "to", "1-1", "f", "replaced"}).str == "1-1");
    REQUIRE(folders() == 2);
    c.send({"RENAME", "from", "to"});
    CHECK_THROWS_AS(c.read_reply(), runnel::client::ConnectionError);  // no reply: it died there
    for (int i = 0; i < 500 && !server.exited(); ++i) std::this_thread::sleep_for(10ms);
    REQUIRE(server.exited());
    CHECK(folders() == 2);  // both folders name "to" now
  }
  auto server = start(dir, port, "always", false);
  Connection c("127.0.0.1", port);
  const Reply entries = c.call({"XRANGE", "to", "-", "+"});
  REQUIRE(entries.elements.size() == 1);
  CHECK(entries.elements[0].elements.at(1).elements.at(1).str == "renamed");
  CHECK(c.call({"EXISTS", "from"}).integer == 0);
  CHECK(c.call({"DBSIZE"}).integer == 1);
  CHECK(folders() == 1);
  CHECK(server.log().find("both hold stream 'to'") != std::string::npos);
}

TEST_CASE("A stream renamed to another shard reads back whole from its files there, and after a restart",
          "[rename][storage]") {
  runnel::test::TempDir dir("runnel-rename-move");
  const std::uint16_t port = runnel::test::free_port();
  const std::string value(100, 'x');
  constexpr int kEntries = 20000;
  std::string name = "big";
  auto check_all = [&](Connection& conn) {
    int expect = 1;
    std::string from = "-";
    for (int page = 0; page < 100 && expect <= kEntries + 500; ++page) {
      const Reply r = conn.call({"XRANGE", name, from, "+", "COUNT", "1000"});
      REQUIRE(r.is_aggregate());
      REQUIRE(!r.elements.empty());
      for (const Reply& e : r.elements) {
        REQUIRE(e.elements.at(0).str == std::to_string(expect) + "-1");
        REQUIRE(e.elements.at(1).elements.at(1).str == value + std::to_string(expect));
        ++expect;
      }
      from = "(" + r.elements.back().elements.at(0).str;
    }
    CHECK(expect == kEntries + 501);
  };
  {
    auto server = start(dir, port, "everysec", false);
    Connection c("127.0.0.1", port);
    for (int i = 1; i <= kEntries; ++i) c.send({"XADD", "big", std::to_string(i) + "-1", "v", value + std::to_string(i)});
    for (int i = 1; i <= kEntries; ++i) REQUIRE(c.read_reply().type == Reply::Type::kBulk);
    // Which shard holds the only key, from INFO shards.
    auto shard_of_only_key = [&] {
      const std::string info = c.call({"INFO", "shards"}).str;
      return info.find("shard0:keys=1") != std::string::npos ? 0 : 1;
    };
    const int first = shard_of_only_key();
    for (int i = 0; i < 16 && shard_of_only_key() == first; ++i) {
      const std::string next = "moved" + std::to_string(i);
      REQUIRE(c.call({"RENAME", name, next}).str == "OK");
      name = next;
    }
    REQUIRE(shard_of_only_key() != first);
    for (int i = kEntries + 1; i <= kEntries + 500; ++i) {
      REQUIRE(c.call({"XADD", name, std::to_string(i) + "-1", "v", value + std::to_string(i)}).type ==
              Reply::Type::kBulk);
    }
    check_all(c);
    REQUIRE(::kill(server.pid(), SIGKILL) == 0);
    for (int i = 0; i < 500 && !server.exited(); ++i) std::this_thread::sleep_for(10ms);
  }
  auto server = start(dir, port, "everysec", false);
  Connection again("127.0.0.1", port);
  check_all(again);
  CHECK(again.call({"DBSIZE"}).integer == 1);
}
