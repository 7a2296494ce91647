// Crash recovery: producers and consumers run at full speed while the test kill -9s
// runnel-server at random moments; after every restart, nothing that was acknowledged may be
// missing. A kill -9 is a process crash, not a power cut: under every --fsync policy a reply
// is sent only once its write has reached the kernel, so nothing acknowledged is lost.
#include <catch2/catch.hpp>

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <runnel/client/connection.hpp>

#include "server_process.hpp"

using runnel::client::Connection;
using runnel::protocol::Reply;
namespace fs = std::filesystem;

namespace {

// What the clients saw acknowledged, across every run.
struct Ledger {
  std::mutex mutex;
  std::map<std::string, std::string> added;  // XADD replied: id -> the value sent
  std::map<std::string, std::string> delivered;  // XREADGROUP replied: id -> consumer
  std::set<std::string> ack_sent;             // XACK sent (replied or not)
  std::set<std::string> acked;                // XACK replied 1
};

std::uint64_t ms_of(const std::string& id) { return std::stoull(id.substr(0, id.find('-'))); }
std::uint64_t seq_of(const std::string& id) { return std::stoull(id.substr(id.find('-') + 1)); }
bool id_less(const std::string& a, const std::string& b) {
  return std::make_pair(ms_of(a), seq_of(a)) < std::make_pair(ms_of(b), seq_of(b));
}

// Pipelines XADDs in batches of 16 until the connection breaks (or 5 s pass).
void produce(std::uint16_t port, int worker, int run, Ledger& ledger) {
  try {
    Connection c("127.0.0.1", port, std::chrono::seconds(5));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (int batch = 0; batch < 100000 && std::chrono::steady_clock::now() < deadline; ++batch) {
      std::vector<std::string> values;
      for (int i = 0; i < 16; ++i) {
        values.push_back("r" + std::to_string(run) + "w" + std::to_string(worker) + "b" +
                         std::to_string(batch) + "i" + std::to_string(i));
        c.send({"XADD", "jobs", "*", "v", values.back()});
      }
      for (const std::string& v : values) {
        const Reply r = c.read_reply();
        if (r.type != Reply::Type::kBulk) return;
        std::lock_guard lock(ledger.mutex);
        ledger.added[r.str] = v;
      }
    }
  } catch (const runnel::client::ConnectionError&) {
    // The server was killed: what was replied to is in the ledger.
  }
}

// Reads new entries as `consumer` and acknowledges every other one, until the connection
// breaks (or 5 s pass).
void consume(std::uint16_t port, const std::string& consumer, Ledger& ledger) {
  try {
    Connection c("127.0.0.1", port, std::chrono::seconds(5));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (int round = 0; round < 100000 && std::chrono::steady_clock::now() < deadline; ++round) {
      const Reply r = c.call({"XREADGROUP", "GROUP", "workers", consumer, "COUNT", "10", "STREAMS", "jobs", ">"});
      if (r.type != Reply::Type::kArray) continue;
      std::vector<std::string> to_ack;
      {
        std::lock_guard lock(ledger.mutex);
        for (const Reply& entry : r.elements[0].elements[1].elements) {
          ledger.delivered[entry.elements[0].str] = consumer;
          if (ledger.delivered.size() % 2 == 0) to_ack.push_back(entry.elements[0].str);
        }
        for (const auto& id : to_ack) ledger.ack_sent.insert(id);
      }
      for (const auto& id : to_ack) {
        const Reply a = c.call({"XACK", "jobs", "workers", id});
        if (a.type == Reply::Type::kInteger && a.integer == 1) {
          std::lock_guard lock(ledger.mutex);
          ledger.acked.insert(id);
        }
      }
    }
  } catch (const runnel::client::ConnectionError&) {
  }
}

// Every entry of the stream, id -> value, read in pages.
std::map<std::string, std::string> read_all(Connection& c) {
  std::map<std::string, std::string> out;
  std::string from = "-";
  for (int page = 0; page < 10000; ++page) {
    const Reply r = c.call({"XRANGE", "jobs", from, "+", "COUNT", "1000"});
    REQUIRE(r.type == Reply::Type::kArray);
    for (const Reply& e : r.elements) out[e.elements[0].str] = e.elements[1].elements[1].str;
    if (r.elements.size() < 1000) break;
    from = "(" + r.elements.back().elements[0].str;
  }
  return out;
}

// The PEL: id -> owner.
std::map<std::string, std::string> read_pel(Connection& c) {
  std::map<std::string, std::string> out;
  const Reply r = c.call({"XPENDING", "jobs", "workers", "-", "+", "100000000"});
  REQUIRE(r.type == Reply::Type::kArray);
  for (const Reply& e : r.elements) out[e.elements[0].str] = e.elements[1].str;
  return out;
}

// INFO persistence's storage_overlapped_flushes, read while the clients run.
std::uint64_t overlapped_flushes(std::uint16_t port) {
  Connection c("127.0.0.1", port);
  const Reply r = c.call({"INFO", "persistence"});
  REQUIRE(r.type == Reply::Type::kBulk);
  const std::string_view field = "storage_overlapped_flushes:";
  const auto at = r.str.find(field);
  REQUIRE(at != std::string::npos);
  return std::stoull(r.str.substr(at + field.size()));
}

// A small cache, so reads go to the files, except with `wal_only`: then the streams' files
// hold nothing written since the last start (only the write-ahead log does), so the run must
// not read them.
runnel::test::ServerProcess start(const runnel::test::TempDir& dir, std::uint16_t port, unsigned threads,
                                  const std::string& fsync, bool wal_only = false) {
  return runnel::test::ServerProcess(
      {runnel::test::runnel_server_path(), "--port", std::to_string(port), "--dir",
       (dir.path() / "data").string(), "--threads", std::to_string(threads), "--fsync", fsync, "--segment-bytes",
       "262144", "--cache-bytes", wal_only ? "1073741824" : "65536"},
      port, (dir.path() / "server.log").string());
}

// Kills the server `kills` times while clients run, checking the ledger after each restart.
// With `checkpoint_ms`, the servers checkpoint that often, so each run goes through many
// write-ahead log generations.
void crash_cycles(const char* io, int kills, unsigned threads, bool wal_only = false, int checkpoint_ms = 0,
                  const std::string& fsync = "always") {
  ::setenv("RUNNEL_IO", io, 1);  // inherited by the server processes
  if (wal_only) ::setenv("RUNNEL_TEST_WAL_ONLY", "1", 1);
  if (checkpoint_ms > 0) ::setenv("RUNNEL_TEST_CHECKPOINT_MS", std::to_string(checkpoint_ms).c_str(), 1);
  runnel::test::TempDir dir("runnel-crash");
  const std::uint16_t port = runnel::test::free_port();
  Ledger ledger;
  std::mt19937 rng(std::random_device{}());
  std::string last_id = "0-0";
  std::uint64_t overlapped = 0;  // batches that went while another was syncing, over the runs
  {
    auto server = start(dir, port, threads, fsync, wal_only);
    Connection c("127.0.0.1", port);
    REQUIRE(c.call({"XGROUP", "CREATE", "jobs", "workers", "$", "MKSTREAM"}).str == "OK");
  }
  for (int run = 0; run < kills; ++run) {
    INFO("run " << run);
    auto server = start(dir, port, threads, fsync, wal_only);
    {
      // The state from before the kill: every acknowledged write is there.
      Connection c("127.0.0.1", port);
      const auto entries = read_all(c);
      const auto pel = read_pel(c);
      std::lock_guard lock(ledger.mutex);
      for (const auto& [id, value] : ledger.added) {
        INFO("entry " << id);
        auto it = entries.find(id);
        REQUIRE(it != entries.end());
        CHECK(it->second == value);
      }
      for (const auto& [id, consumer] : ledger.delivered) {
        INFO("delivered entry " << id);
        if (ledger.acked.contains(id)) {
          CHECK_FALSE(pel.contains(id));
        } else if (!ledger.ack_sent.contains(id)) {
          auto it = pel.find(id);
          REQUIRE(it != pel.end());
          CHECK(it->second == consumer);
        }
      }
      if (!entries.empty()) last_id = entries.rbegin()->first;
      // IDs go on above the last one.
      const Reply probe = c.call({"XADD", "jobs", "*", "v", "probe" + std::to_string(run)});
      REQUIRE(probe.type == Reply::Type::kBulk);
      CHECK(id_less(last_id, probe.str));
      ledger.added[probe.str] = "probe" + std::to_string(run);
    }
    std::vector<std::thread> clients;
    for (int w = 0; w < 3; ++w) clients.emplace_back(produce, port, w, run, std::ref(ledger));
    for (int w = 0; w < 2; ++w) {
      clients.emplace_back(consume, port, "c" + std::to_string(w), std::ref(ledger));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 400));
    overlapped += overlapped_flushes(port);
    REQUIRE(::kill(server.pid(), SIGKILL) == 0);
    for (auto& t : clients) t.join();
  }
  auto server = start(dir, port, threads, fsync, wal_only);
  Connection c("127.0.0.1", port);
  const auto entries = read_all(c);
  std::lock_guard lock(ledger.mutex);
  for (const auto& [id, value] : ledger.added) REQUIRE(entries.contains(id));
  // The test did work: many writes were acknowledged and many were delivered.
  CHECK(ledger.added.size() > 1000);
  CHECK(ledger.acked.size() > 100);
  // On io_uring, kills also came while two batches were syncing at once (a second overlaps
  // the first once 8 replies wait for it); never on the helper thread, nor with the log
  // alone, nor under the other policies (which have no fdatasync to overlap).
  if (std::string_view(io) == "auto" && !wal_only && fsync == "always") {
    CHECK(overlapped > 0);
  } else {
    CHECK(overlapped == 0);
  }
  ::unsetenv("RUNNEL_IO");
  ::unsetenv("RUNNEL_TEST_WAL_ONLY");
  ::unsetenv("RUNNEL_TEST_CHECKPOINT_MS");
}

}  // namespace

TEST_CASE("Nothing acknowledged is lost when the server is killed 20 times under fsync always",
          "[crash]") {
  crash_cycles("auto", 20, 4);  // io_uring, 4 shards
}

TEST_CASE("The same holds on the helper-thread I/O path, killed 10 times", "[crash]") {
  crash_cycles("threads", 10, 1);  // and one shard
}

// The streams' files are written only at start-up (by the log's replay), so after each kill
// everything acknowledged since the last start can only come back from the write-ahead log.
TEST_CASE("Everything acknowledged comes back from the write-ahead log alone, killed 8 times", "[crash]") {
  crash_cycles("auto", 8, 2, true);
}

// Checkpoints every 20 ms: the streams' files are written from the background thread, the
// logs retired and recycled (a recycled file still holds its old batches after the new ones)
// many times in each run before the kill.
TEST_CASE("Nothing acknowledged is lost across many recycled log generations, killed 10 times", "[crash]") {
  crash_cycles("auto", 10, 2, false, 20);
}

// A reply under everysec and no is sent once its write has reached the kernel (the page
// cache), as Redis's is: a process crash then loses nothing acknowledged, and only a power
// cut may cost the last second (everysec) or more (no).
TEST_CASE("Nothing acknowledged is lost when the server is killed 12 times under fsync everysec", "[crash]") {
  crash_cycles("auto", 12, 2, false, 0, "everysec");
}

TEST_CASE("Nothing acknowledged is lost when the server is killed 12 times under fsync no", "[crash]") {
  crash_cycles("auto", 12, 2, false, 0, "no");
}

// A power cut under always can leave a segment made since the last checkpoint with its first
// page unwritten (zeros) while later pages reached the disk, or with the file cut short:
// unsynced pages are written back in any order. The write-ahead log holds every write to
// that file, its header first, so a restart must bring back every acknowledged entry.
//
// The test makes that state. The server runs with only the log written
// (RUNNEL_TEST_WAL_ONLY) and is killed; a copy of the data dir, started and stopped cleanly,
// gives each segment's real bytes; the test then puts those bytes into the original's
// segments with the first page zeroed (and, in one case, cut to half), and restarts it.
TEST_CASE("Segments whose first page never reached the disk are rebuilt from the write-ahead log", "[crash]") {
  enum class Damage { kFirstPageZeroed, kFirstPageZeroedAndCut, kHeaderZeroed };
  for (const Damage damage : {Damage::kFirstPageZeroed, Damage::kFirstPageZeroedAndCut, Damage::kHeaderZeroed}) {
    INFO("damage " << static_cast<int>(damage));
    runnel::test::TempDir dir("runnel-torn-header");
    const std::uint16_t port = runnel::test::free_port();
    const auto data = dir.path() / "data";
    const auto copy = dir.path() / "copy";
    auto flags = [&](const fs::path& d) {
      return std::vector<std::string>{runnel::test::runnel_server_path(), "--port", std::to_string(port), "--dir",
                                      d.string(), "--threads", "1", "--fsync", "always", "--segment-bytes", "65536",
                                      "--cache-bytes", "1073741824"};
    };
    std::vector<std::string> ids;
    ::setenv("RUNNEL_TEST_WAL_ONLY", "1", 1);
    {
      runnel::test::ServerProcess server(flags(data), port, (dir.path() / "server.log").string());
      ::unsetenv("RUNNEL_TEST_WAL_ONLY");
      Connection c("127.0.0.1", port);
      const std::string pad(300, 'p');
      for (int batch = 0; batch < 100; ++batch) {
        for (int i = 0; i < 25; ++i) c.send({"XADD", "orders", "*", "n", std::to_string(batch * 25 + i), "pad", pad});
        for (int i = 0; i < 25; ++i) {
          const Reply r = c.read_reply();
          REQUIRE(r.type == Reply::Type::kBulk);
          ids.push_back(r.str);
        }
      }
      REQUIRE(::kill(server.pid(), SIGKILL) == 0);
    }
    fs::copy(data, copy, fs::copy_options::recursive);
    {
      runnel::test::ServerProcess server(flags(copy), port, (dir.path() / "copy.log").string());
      REQUIRE(server.terminate() == 0);
    }
    int segments = 0;
    for (const auto& file : fs::directory_iterator(data / "streams" / "orders")) {
      if (file.path().extension() != ".log") continue;
      ++segments;
      std::ifstream in(copy / "streams" / "orders" / file.path().filename(), std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      REQUIRE(bytes.size() > 4096);
      if (damage == Damage::kHeaderZeroed) {
        std::fill(bytes.begin(), bytes.begin() + 40, '\0');
      } else {
        std::fill(bytes.begin(), bytes.begin() + 4096, '\0');
        if (damage == Damage::kFirstPageZeroedAndCut) bytes.resize(bytes.size() / 2);
      }
      std::ofstream(file.path(), std::ios::binary | std::ios::trunc) << bytes;
    }
    CHECK(segments > 5);  // the stream rolled through many segments, all made since the start
    runnel::test::ServerProcess server(flags(data), port, (dir.path() / "server.log").string());
    Connection c("127.0.0.1", port);
    const Reply all = c.call({"XRANGE", "orders", "-", "+"});
    INFO(all.str << "\n" << server.log());
    REQUIRE(all.type == Reply::Type::kArray);
    REQUIRE(all.elements.size() == ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
      REQUIRE(all.elements[i].elements[0].str == ids[i]);
      REQUIRE(all.elements[i].elements[1].elements[1].str == std::to_string(i));
    }
  }
}

// A restart on a disk still full cannot put the log's writes back into the files: it says
// so ("No space left on device", the log kept), rather than something that reads like
// damage, and a start once there is space brings everything back.
TEST_CASE("A start on a full disk says so and keeps the write-ahead log for the next start", "[crash]") {
  runnel::test::TempDir dir("runnel-full-start");
  const std::uint16_t port = runnel::test::free_port();
  const auto data = dir.path() / "data";
  const std::vector<std::string> flags = {runnel::test::runnel_server_path(), "--port", std::to_string(port), "--dir",
                                          data.string(), "--threads", "1", "--fsync", "always"};
  std::vector<std::string> ids;
  ::setenv("RUNNEL_TEST_WAL_ONLY", "1", 1);
  {
    runnel::test::ServerProcess server(flags, port, (dir.path() / "server.log").string());
    ::unsetenv("RUNNEL_TEST_WAL_ONLY");
    Connection c("127.0.0.1", port);
    for (int i = 0; i < 100; ++i) ids.push_back(c.call({"XADD", "s", "*", "n", std::to_string(i)}).str);
    REQUIRE(::kill(server.pid(), SIGKILL) == 0);
  }
  const std::string fault = (dir.path() / "fault").string();
  std::ofstream(fault) << "ENOSPC";
  ::setenv("RUNNEL_TEST_IO_FAULT", fault.c_str(), 1);
  const auto run = runnel::test::run_command(flags[0] + " --port 0 --dir " + data.string() + " --fsync always 2>&1", 20);
  ::unsetenv("RUNNEL_TEST_IO_FAULT");
  INFO(run.output);
  CHECK(run.status != 0);
  CHECK(run.output.find("No space left on device") != std::string::npos);
  CHECK(run.output.find("intact") != std::string::npos);
  CHECK(run.output.find("does not parse") == std::string::npos);
  fs::remove(fault);
  runnel::test::ServerProcess server(flags, port, (dir.path() / "server2.log").string());
  Connection c("127.0.0.1", port);
  const Reply all = c.call({"XRANGE", "s", "-", "+"});
  REQUIRE(all.elements.size() == ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) CHECK(all.elements[i].elements[0].str == ids[i]);
}

// The write-ahead log may name more files than the process may open: 1,500 streams written
// since the last checkpoint, replayed under `ulimit -n 256`. The replay keeps a few files
// open at a time, syncs and closes the oldest to open the next, and a file it cannot open
// for another reason than its absence stops the start instead of being taken as gone.
// Before, it held every file open: past the limit, opens failed, the files were taken for
// deleted streams, and their acknowledged entries were lost.
TEST_CASE("A write-ahead log naming more files than the open files limit is replayed whole", "[crash][limits]") {
  constexpr int kStreams = 1500;
  runnel::test::TempDir dir("runnel-replay-limit");
  const std::uint16_t port = runnel::test::free_port();
  auto start = [&](bool wal_only) {
    return std::make_unique<runnel::test::ServerProcess>(
        std::vector<std::string>{"/bin/sh", "-c",
                                 std::string("ulimit -n 256 && ") + (wal_only ? "RUNNEL_TEST_WAL_ONLY=1 " : "") +
                                     "exec " + runnel::test::runnel_server_path() + " --port " + std::to_string(port) +
                                     " --dir " + (dir.path() / "data").string() + " --threads 1 --fsync always"},
        port, (dir.path() / "server.log").string(), std::chrono::seconds(60));
  };
  {
    auto server = start(true);  // only the log is written: every entry must come from it
    Connection c("127.0.0.1", port, std::chrono::seconds(60));
    for (int from = 0; from < kStreams; from += 500) {
      std::string batch;
      for (int i = from; i < from + 500; ++i) {
        batch += runnel::client::encode_command({"XADD", "s:" + std::to_string(i), "1-1", "n", std::to_string(i)});
      }
      c.send_raw(batch);
      for (int i = from; i < from + 500; ++i) REQUIRE(c.read_reply().str == "1-1");
    }
    REQUIRE(::kill(server->pid(), SIGKILL) == 0);
    for (int i = 0; i < 500 && !server->exited(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto server = start(false);
  Connection c("127.0.0.1", port, std::chrono::seconds(60));
  std::string batch;
  for (int i = 0; i < kStreams; ++i) batch += runnel::client::encode_command({"XRANGE", "s:" + std::to_string(i), "-", "+"});
  c.send_raw(batch);
  int whole = 0;
  for (int i = 0; i < kStreams; ++i) {
    const Reply r = c.read_reply();
    whole += r.elements.size() == 1 && r.elements[0].elements[1].elements[1].str == std::to_string(i);
  }
  CHECK(whole == kStreams);
  CHECK(server->log().find("replayed") != std::string::npos);
}

// A reader blocked in XREADGROUP, served by a transaction's XADD: its delivery (the PEL entry,
// the group's last-delivered ID) is on disk before its reply leaves, under always, as a
// delivery served by a lone XADD is. Readers are served after the whole transaction, so the
// delivery must still be journaled then.
TEST_CASE("A group delivery served after a transaction is durable before its reply", "[crash]") {
  runnel::test::TempDir dir("runnel-crash");
  const std::uint16_t port = runnel::test::free_port();
  const auto start = [&] {
    return std::make_unique<runnel::test::ServerProcess>(
        std::vector<std::string>{runnel::test::runnel_server_path(), "--port", std::to_string(port), "--dir",
                                 (dir.path() / "data").string(), "--threads", "1", "--fsync", "always"},
        port, (dir.path() / "server.log").string());
  };
  constexpr int kRounds = 5;
  {
    auto server = start();
    Connection admin("127.0.0.1", port);
    Connection writer("127.0.0.1", port);
    REQUIRE(admin.call({"XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"}).str == "OK");
    for (int round = 1; round <= kRounds; ++round) {
      Connection reader("127.0.0.1", port);
      reader.send({"XREADGROUP", "GROUP", "g", "c", "BLOCK", "5000", "STREAMS", "s", ">"});
      bool blocked = false;
      for (int i = 0; i < 500 && !blocked; ++i) {
        blocked = admin.call({"INFO", "clients"}).str.find("blocked_clients:1\r\n") != std::string::npos;
        if (!blocked) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      REQUIRE(blocked);
      writer.send({"MULTI"});
      writer.send({"XADD", "s", std::to_string(round) + "-1", "f", "v"});
      writer.send({"EXEC"});
      for (int i = 0; i < 3; ++i) writer.read_reply();
      std::string raw;
      reader.read_reply(&raw);
      REQUIRE(raw.find(std::to_string(round) + "-1") != std::string::npos);
    }
    REQUIRE(::kill(server->pid(), SIGKILL) == 0);  // nothing after the replies: no later flush
    for (int i = 0; i < 500 && !server->exited(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto server = start();
  Connection c("127.0.0.1", port);
  const Reply pending = c.call({"XPENDING", "s", "g"});
  CAPTURE(runnel::protocol::to_display_string(pending));
  REQUIRE(pending.elements.size() == 4);
  CHECK(pending.elements[0].integer == kRounds);  // every delivery the readers got
  const Reply groups = c.call({"XINFO", "GROUPS", "s"});
  const auto& fields = groups.elements[0].elements;
  std::string last_delivered;
  for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
    if (fields[i].str == "last-delivered-id") last_delivered = fields[i + 1].str;
  }
  CHECK(last_delivered == std::to_string(kRounds) + "-1");
}
