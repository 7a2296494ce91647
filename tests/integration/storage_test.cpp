// Streams on disk, seen through a real runnel-server: restarts, write errors injected in the
// I/O layer, damaged files, and streams far larger than the tail cache.
#include <catch2/catch.hpp>

#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <runnel/client/connection.hpp>

#include "server_process.hpp"

using namespace std::chrono_literals;
using runnel::client::Connection;
using runnel::protocol::Reply;
namespace fs = std::filesystem;

namespace {

// runnel-server on a data dir that outlives it, so the test can restart it.
struct Restartable {
  explicit Restartable(std::vector<std::string> flags, std::string env = "")
      : flags(std::move(flags)), env(std::move(env)) {}

  std::unique_ptr<runnel::test::ServerProcess> start() {
    if (!env.empty()) ::putenv(env.data());
    std::vector<std::string> argv = {runnel::test::runnel_server_path(), "--port", std::to_string(port),
                                     "--dir", (dir.path() / "data").string()};
    argv.insert(argv.end(), flags.begin(), flags.end());
    auto p = std::make_unique<runnel::test::ServerProcess>(argv, port, (dir.path() / "server.log").string());
    if (!env.empty()) ::unsetenv(env.substr(0, env.find('=')).c_str());
    return p;
  }

  runnel::test::TempDir dir{"runnel-storage"};
  std::uint16_t port = runnel::test::free_port();
  std::vector<std::string> flags;
  std::string env;
};

// Starts a server under --fsync always whose writes fail while the file `fault` exists
// (the I/O layer's test hook), on the I/O path `io` ("RUNNEL_IO=...").
std::unique_ptr<runnel::test::ServerProcess> start_with_fault_hook(Restartable& r, const char* io,
                                                                   std::string& fault) {
  fault = (r.dir.path() / "fault").string();
  r.env = "RUNNEL_TEST_IO_FAULT=" + fault;
  ::putenv(const_cast<char*>(io));
  auto server = r.start();
  ::unsetenv("RUNNEL_IO");
  return server;
}

std::string info_field(Connection& c, const std::string& name) {
  const std::string text = c.call({"INFO", "persistence"}).str;
  const auto at = text.find(name + ":");
  if (at == std::string::npos) return "?";
  const auto end = text.find("\r\n", at);
  return text.substr(at + name.size() + 1, end - at - name.size() - 1);
}

}  // namespace

TEST_CASE("Streams, groups and metadata survive a restart, with every fsync policy", "[storage]") {
  for (const char* policy : {"always", "everysec", "no"}) {
    INFO("fsync " << policy);
    Restartable r({"--fsync", policy, "--threads", "2"});
    std::string before_stream, before_groups, before_consumers, before_pending;
    {
      auto server = r.start();
      Connection c("127.0.0.1", r.port);
      for (int i = 1; i <= 300; ++i) c.call({"XADD", "s", std::to_string(i) + "-1", "f", std::to_string(i)});
      c.call({"XDEL", "s", "5-1", "6-1"});
      c.call({"XTRIM", "s", "MINID", "3-0"});
      c.call({"XSETID", "s", "900-0", "ENTRIESADDED", "500", "MAXDELETEDID", "7-0"});
      c.call({"XGROUP", "CREATE", "s", "g", "0"});
      c.call({"XREADGROUP", "GROUP", "g", "alice", "COUNT", "5", "STREAMS", "s", ">"});
      c.call({"XREADGROUP", "GROUP", "g", "bob", "COUNT", "3", "STREAMS", "s", ">"});
      c.call({"XACK", "s", "g", "3-1"});
      c.call({"XCLAIM", "s", "g", "bob", "0", "4-1", "RETRYCOUNT", "7"});
      c.call({"XGROUP", "CREATE", "s", "gone", "$"});
      c.call({"XGROUP", "DESTROY", "s", "gone"});
      c.call({"XADD", "other", "*", "x", "y"});
      c.call({"DEL", "other"});
      before_stream = to_display_string(c.call({"XINFO", "STREAM", "s", "FULL"}));
      before_groups = to_display_string(c.call({"XINFO", "GROUPS", "s"}));
      before_pending = to_display_string(c.call({"XPENDING", "s", "g", "-", "+", "100"}));
      REQUIRE(server->terminate() == 0);
    }
    auto server = r.start();
    Connection c("127.0.0.1", r.port);
    // Idle times grow while the server is down; compare the rest.
    auto no_idle = [](std::string text) {
      for (std::size_t at = 0; (at = text.find("idle", at)) != std::string::npos; ++at) {
        const auto num = text.find_first_of("0123456789", at);
        const auto end = text.find_first_not_of("0123456789", num);
        text.replace(num, end - num, "N");
      }
      return text;
    };
    CHECK(no_idle(to_display_string(c.call({"XINFO", "STREAM", "s", "FULL"}))) == no_idle(before_stream));
    CHECK(to_display_string(c.call({"XINFO", "GROUPS", "s"})) == before_groups);
    const Reply pending = c.call({"XPENDING", "s", "g", "-", "+", "100"});
    REQUIRE(pending.elements.size() == 7);
    CHECK(pending.elements[0].elements[0].str == "4-1");
    CHECK(pending.elements[0].elements[1].str == "bob");
    CHECK(pending.elements[0].elements[3].integer == 7);
    CHECK(c.call({"EXISTS", "other"}).integer == 0);
    CHECK(c.call({"XADD", "s", "*", "f", "v"}).type == Reply::Type::kBulk);
    (void)before_pending;
    (void)before_consumers;
  }
}

TEST_CASE("A failed write is never answered OK: -MISCONF, reads go on, writes resume", "[storage]") {
  for (const char* io : {"RUNNEL_IO=auto", "RUNNEL_IO=threads"}) {
   for (const char* error : {"ENOSPC", "EIO"}) {
    INFO(io << " " << error);
    Restartable r({"--fsync", "always"});
    std::string fault;
    auto server = start_with_fault_hook(r, io, fault);
    Connection c("127.0.0.1", r.port);
    REQUIRE(c.call({"XADD", "s", "1-1", "f", "v"}).str == "1-1");
    std::ofstream(fault) << error;
    const Reply failed = c.call({"XADD", "s", "2-1", "f", "v"});
    CHECK(failed.is_error());
    CHECK(failed.str.rfind("MISCONF", 0) == 0);
    CHECK(failed.str.find(std::string(error) == "EIO" ? "Input/output error" : "No space left on device") !=
          std::string::npos);
    // Clients get the cause; only the log names the file, with its path in the data dir.
    const std::string data_dir = (r.dir.path() / "data").string();
    CHECK(failed.str.find(data_dir) == std::string::npos);
    CHECK(failed.str.find("write: ") != std::string::npos);
    CHECK(server->log().find("(write " + data_dir + "/") != std::string::npos);
    CHECK(c.peer_closed(2s));  // the connection that waited on the failed write is closed
    Connection d("127.0.0.1", r.port);
    const Reply refused = d.call({"XADD", "s", "3-1", "f", "v"});
    CHECK(refused.str.rfind("MISCONF", 0) == 0);
    CHECK(refused.str.find(data_dir) == std::string::npos);
    CHECK(info_field(d, "storage_last_write_error").find(data_dir) == std::string::npos);
    CHECK(d.call({"XRANGE", "s", "1-1", "1-1"}).elements.size() == 1);  // reads are served
    CHECK(info_field(d, "storage_write_status") == "err");
    fs::remove(fault);
    // The retry runs once a second; wait (at most 10 s) for writes to be taken again.
    Reply after;
    for (int i = 0; i < 100; ++i) {
      after = d.call({"XADD", "s", "3-1", "f", "v"});
      if (!after.is_error()) break;
      std::this_thread::sleep_for(100ms);
    }
    CHECK(after.str == "3-1");
    CHECK(info_field(d, "storage_write_status") == "ok");
    server->terminate();
    server = r.start();
    Connection e("127.0.0.1", r.port);
    const Reply all = e.call({"XRANGE", "s", "-", "+"});
    // 2-1 was refused, then written by the retry: an error reply means "not known durable".
    REQUIRE(all.elements.size() >= 2);
    CHECK(all.elements.front().elements[0].str == "1-1");
    CHECK(all.elements.back().elements[0].str == "3-1");
   }
  }
}

// Under always the streams' files are written in the background, after the write-ahead log
// made the entries durable. A full disk there (ENOSPC) is a failed write, not a failed fsync:
// the server refuses writes while it lasts, and takes them again once space is back, with no
// restart, as after a failed flush.
TEST_CASE("A full disk for the streams' files under always is retried: writes resume once space is back",
          "[storage]") {
  Restartable r({"--fsync", "always", "--threads", "1"});
  std::string fault;
  auto server = start_with_fault_hook(r, "RUNNEL_IO=auto", fault);
  Connection c("127.0.0.1", r.port);
  REQUIRE(c.call({"XADD", "s", "1-1", "f", "v"}).str == "1-1");
  std::ofstream(fault) << "ENOSPC files";
  // Acknowledged (the log is written) until the background write of the files fails, at
  // the next checkpoint (once a second); then writes are refused.
  std::vector<std::string> acknowledged = {"1-1"};
  Reply refused;
  for (int i = 2; i < 2000; ++i) {
    const std::string id = std::to_string(i) + "-1";
    refused = c.call({"XADD", "s", id, "f", std::string(1000, 'v')});
    if (refused.is_error()) break;
    acknowledged.push_back(id);
    std::this_thread::sleep_for(5ms);
  }
  REQUIRE(refused.is_error());
  CHECK(refused.str.find("No space left on device") != std::string::npos);
  Connection d("127.0.0.1", r.port);
  CHECK(info_field(d, "storage_write_status") == "err");
  CHECK(server->log().find("until a retry succeeds") != std::string::npos);
  fs::remove(fault);
  for (int i = 0; i < 100 && info_field(d, "storage_write_status") != "ok"; ++i) std::this_thread::sleep_for(100ms);
  CHECK(info_field(d, "storage_write_status") == "ok");
  // The log generations no checkpoint could retire while the write failed go at the next
  // one, even with no write since: the current generation and the one made ahead are left.
  auto logs = [&] {
    int n = 0;
    for (const auto& f : fs::directory_iterator(r.dir.path() / "data" / "wal")) n += f.path().extension() == ".wal";
    return n;
  };
  for (int i = 0; i < 100 && logs() > 2; ++i) std::this_thread::sleep_for(100ms);
  CHECK(logs() <= 2);
  Reply after;
  for (int i = 0; i < 100; ++i) {
    after = d.call({"XADD", "s", "5000-1", "f", "v"});
    if (!after.is_error()) break;
    std::this_thread::sleep_for(100ms);
  }
  CHECK(after.str == "5000-1");
  acknowledged.push_back("5000-1");
  CHECK(info_field(d, "storage_write_status") == "ok");
  server->terminate();
  server = r.start();
  Connection e("127.0.0.1", r.port);
  const Reply all = e.call({"XRANGE", "s", "-", "+"});
  REQUIRE(all.type == Reply::Type::kArray);
  std::set<std::string> found;
  for (const Reply& entry : all.elements) found.insert(entry.elements[0].str);
  for (const std::string& id : acknowledged) CHECK(found.contains(id));
}

TEST_CASE("After a failed fsync the server stays read-only until it is restarted", "[storage]") {
  for (const char* io : {"RUNNEL_IO=auto", "RUNNEL_IO=threads"}) {
    INFO(io);
    Restartable r({"--fsync", "always"});
    std::string fault;
    auto server = start_with_fault_hook(r, io, fault);
    Connection c("127.0.0.1", r.port);
    REQUIRE(c.call({"XADD", "s", "1-1", "f", "v"}).str == "1-1");
    std::ofstream(fault) << "EIO fsync";
    const Reply failed = c.call({"XADD", "s", "2-1", "f", "v"});
    CHECK(failed.str.rfind("MISCONF", 0) == 0);
    CHECK(failed.str.find("fdatasync") != std::string::npos);
    fs::remove(fault);
    std::this_thread::sleep_for(2500ms);  // past two retry ticks: there must be no retry
    Connection d("127.0.0.1", r.port);
    CHECK(d.call({"XADD", "s", "3-1", "f", "v"}).str.rfind("MISCONF", 0) == 0);
    CHECK(d.call({"XLEN", "s"}).integer == 2);  // reads go on
    CHECK(server->log().find("until a restart") != std::string::npos);
    server->terminate();
    server = r.start();
    Connection e("127.0.0.1", r.port);
    CHECK(e.call({"XADD", "s", "3-1", "f", "v"}).str == "3-1");
  }
}

TEST_CASE("A stream whose files are damaged is refused, reported and can be dropped", "[storage]") {
  Restartable r({"--fsync", "always"});
  {
    auto server = r.start();
    Connection c("127.0.0.1", r.port);
    for (int i = 1; i <= 3; ++i) c.call({"XADD", "bad", std::to_string(i) + "-0", "f", "v"});
    c.call({"XADD", "good", "1-0", "f", "v"});
  }
  // Damage the first batch of "bad": the later batches are whole, so this is no torn tail.
  const fs::path seg = r.dir.path() / "data" / "streams" / "bad" / "0-0.log";
  std::string bytes;
  {
    std::ifstream in(seg, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  bytes[bytes.find("RBAT") + 22] ^= 0x40;
  std::ofstream(seg, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  auto server = r.start();
  Connection c("127.0.0.1", r.port);
  const Reply refused = c.call({"XRANGE", "bad", "-", "+"});
  CHECK(refused.is_error());
  CHECK(refused.str.rfind("DAMAGED", 0) == 0);
  CHECK(c.call({"XADD", "bad", "*", "f", "v"}).str.rfind("DAMAGED", 0) == 0);
  CHECK(c.call({"XLEN", "good"}).integer == 1);
  CHECK(info_field(c, "storage_damaged_streams") == "1");
  CHECK(server->log().find("is damaged and will not be served") != std::string::npos);
  CHECK(fs::file_size(seg) == bytes.size());  // nothing was cut
  CHECK(c.call({"DEL", "bad"}).integer == 1);
  CHECK(info_field(c, "storage_damaged_streams") == "0");
  CHECK(c.call({"XADD", "bad", "1-0", "f", "v"}).str == "1-0");
}

// An evicted node is read back from its segment; if those bytes are damaged after the
// server loaded them, the read fails. Before, XRANGE and XREADGROUP answered the entries
// before the damage as if the range ended there, and a group could stall on it unseen.
TEST_CASE("A failed read of an evicted node is an error reply, never a short one, and no group moves past it", "[storage]") {
  Restartable r({"--fsync", "no", "--cache-bytes", "1048576", "--segment-bytes", "67108864", "--threads", "1"});
  auto server = r.start();
  Connection c("127.0.0.1", r.port, 60s);
  const std::string value(1000, 'v');
  constexpr int kEntries = 8000;  // ~8 MB: the first nodes are evicted from the 1 MB cache
  std::string batch;
  for (int i = 1; i <= kEntries; ++i) {
    batch += runnel::client::encode_command({"XADD", "s", std::to_string(i) + "-0", "pad", value});
    if (i % 1000 == 0) {
      c.send_raw(batch);
      batch.clear();
      for (int k = 0; k < 1000; ++k) REQUIRE(c.read_reply().type == Reply::Type::kBulk);
    }
  }
  REQUIRE(c.call({"XGROUP", "CREATE", "s", "g", "0"}).str == "OK");
  REQUIRE(c.call({"XRANGE", "s", "-", "+"}).elements.size() == kEntries);  // all readable first
  // Damage a batch in the first quarter of the segment, under the running server.
  const fs::path seg = r.dir.path() / "data" / "streams" / "s" / "0-0.log";
  {
    std::fstream f(seg, std::ios::binary | std::ios::in | std::ios::out);
    REQUIRE(f);
    const auto at = static_cast<std::streamoff>(fs::file_size(seg) / 4);
    f.seekg(at);
    std::string chunk(4096, '\0');
    f.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    for (char& ch : chunk) ch = static_cast<char>(ch ^ 0x5a);
    f.seekp(at);
    f.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
  }
  const Reply range = c.call({"XRANGE", "s", "-", "+"});
  CAPTURE(range.str);
  REQUIRE(range.is_error());
  CHECK(range.str.rfind("DAMAGED cannot read stream 's': ", 0) == 0);
  CHECK(range.str.find("0-0.log") != std::string::npos);
  const Reply reverse = c.call({"XREVRANGE", "s", "+", "-"});
  CHECK(reverse.is_error());
  // The tail, still in the cache, is served.
  CHECK(c.call({"XREVRANGE", "s", "+", "-", "COUNT", "10"}).elements.size() == 10);
  // A group reading from the start meets the damage: an error, and it stays where it was.
  const Reply read = c.call({"XREADGROUP", "GROUP", "g", "c", "COUNT", "100000", "STREAMS", "s", ">"});
  CHECK(read.is_error());
  CHECK(read.str.rfind("DAMAGED", 0) == 0);
  const Reply groups = c.call({"XINFO", "GROUPS", "s"});
  CAPTURE(runnel::protocol::to_display_string(groups));
  REQUIRE(groups.elements.size() == 1);
  const auto& fields = groups.elements[0].elements;  // name, value, ... (RESP2)
  std::string last_delivered;
  for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
    if (fields[i].str == "last-delivered-id") last_delivered = fields[i + 1].str;
  }
  CHECK(last_delivered == "0-0");
  CHECK(c.call({"XPENDING", "s", "g"}).elements[0].integer == 0);
  // XINFO STREAM FULL reads every entry: an error, not half a map.
  CHECK(c.call({"XINFO", "STREAM", "s", "FULL", "COUNT", "0"}).is_error());
  CHECK(std::stoull(info_field(c, "storage_read_errors")) >= 4);
  CHECK(server->log().find("a read failed, answered with an error") != std::string::npos);
}

TEST_CASE("A stream far larger than the tail cache is read back whole, in bounded memory", "[storage]") {
  Restartable r({"--fsync", "no", "--cache-bytes", "1048576", "--segment-bytes", "4194304", "--threads", "1"});
  auto server = r.start();
  Connection c("127.0.0.1", r.port, 60s);
  const std::string value(1000, 'v');
  constexpr int kEntries = 100000;  // ~100 MB of entries
  std::string batch;
  for (int i = 1; i <= kEntries; ++i) {
    batch += runnel::client::encode_command({"XADD", "big", std::to_string(i) + "-0", "n", std::to_string(i), "pad", value});
    if (i % 1000 == 0) {
      c.send_raw(batch);
      batch.clear();
      for (int k = 0; k < 1000; ++k) REQUIRE(c.read_reply().type == Reply::Type::kBulk);
    }
  }
  CHECK(c.call({"XLEN", "big"}).integer == kEntries);
  CHECK(std::stoull(info_field(c, "storage_cache_bytes")) <= 2 * 1048576);
  CHECK(std::stoi(info_field(c, "storage_segments")) >= 20);
  // Every entry, read back in order from the files.
  std::string from = "-";
  int seen = 0;
  for (int page = 0; page < 200; ++page) {
    const Reply r = c.call({"XRANGE", "big", from, "+", "COUNT", "1000"});
    for (const Reply& e : r.elements) {
      ++seen;
      REQUIRE(e.elements[0].str == std::to_string(seen) + "-0");
      REQUIRE(e.elements[1].elements[1].str == std::to_string(seen));
    }
    if (r.elements.size() < 1000) break;
    from = "(" + r.elements.back().elements[0].str;
  }
  CHECK(seen == kEntries);
  const Reply back = c.call({"XREVRANGE", "big", "+", "-", "COUNT", "3"});
  CHECK(back.elements[2].elements[0].str == std::to_string(kEntries - 2) + "-0");
  // The entries are on disk, not in memory: RSS stays well under their 100 MB. (Not under
  // AddressSanitizer, whose quarantine keeps freed memory resident on purpose, nor under
  // ThreadSanitizer, whose shadow memory is several times the program's.)
  const long rss = runnel::test::rss_kib(server->pid());
  INFO("runnel-server RSS " << rss << " KiB");
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  CHECK(rss < 60 * 1024);
#endif
  CHECK(rss > 0);
}

// One entry larger than the whole tail cache: its node is full at once, so it is evicted as
// soon as it is written, and the batch that carried it gives its buffer back. Before, the
// node stayed (the open node always did) and the log kept the batch's capacity: a 500 MB
// entry held 959 MB after its XADD, with the cache at 500 MB over a 128 MiB budget.
TEST_CASE("An entry larger than the tail cache is held in memory only until it is written", "[storage]") {
  for (const char* policy : {"always", "everysec", "no"}) {
    INFO("fsync " << policy);
    Restartable r({"--fsync", policy, "--cache-bytes", "1048576", "--threads", "1"});
    auto server = r.start();
    Connection c("127.0.0.1", r.port, 60s);
    const std::string value(64 * 1024 * 1024, 'v');
    REQUIRE(c.call({"XADD", "big", "1-1", "f", value}).str == "1-1");
    REQUIRE(c.call({"XADD", "big", "1-2", "small", "entry"}).str == "1-2");
    // The eviction runs as the cache is charged, once the batch is written.
    std::uint64_t cached = 0;
    for (int i = 0; i < 250; ++i) {
      c.call({"XADD", "other", "*", "f", "v"});
      cached = std::stoull(info_field(c, "storage_cache_bytes"));
      if (cached <= 1048576) break;
      std::this_thread::sleep_for(20ms);
    }
    CHECK(cached <= 1048576);
    const long rss = runnel::test::rss_kib(server->pid());
    INFO("runnel-server RSS " << rss << " KiB");
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    CHECK(rss < 48 * 1024);  // under the entry's 64 MiB
#endif
    const Reply back = c.call({"XRANGE", "big", "-", "+", "COUNT", "1"});
    REQUIRE(back.elements.size() == 1);
    CHECK(back.elements[0].elements[1].elements[1].str == value);  // read back from the file
  }
}

// A trimmed segment's names are removed at once, on the shard, while they surely name it;
// only the cut of its blocks waits for the background thread. When the names went on that
// thread too (after cutting 4 MiB at a time, 5 ms apart), a stream deleted and made again
// meanwhile had its new first segment, of the same name, cut and unlinked.
TEST_CASE("A stream made again under a key whose old segment is still being discarded keeps its files",
          "[storage]") {
  Restartable r({"--fsync", "everysec", "--segment-bytes", "16777216", "--threads", "1"});
  const std::string value(64 * 1024, 'v');
  {
    auto server = r.start();
    Connection c("127.0.0.1", r.port, 60s);
    std::string batch;
    for (int i = 1; i <= 400; ++i) {  // 25 MB: a full first segment of 16 MiB, then a second
      batch += runnel::client::encode_command({"XADD", "s", std::to_string(i) + "-1", "f", value});
    }
    c.send_raw(batch);
    for (int i = 1; i <= 400; ++i) REQUIRE(c.read_reply().type == Reply::Type::kBulk);
    REQUIRE(std::stoi(info_field(c, "storage_segments")) >= 2);
    // In one pipeline: the first segment goes, then the stream, then a new one is made.
    c.send_raw(runnel::client::encode_command({"XTRIM", "s", "MINID", "390-0"}) +
               runnel::client::encode_command({"DEL", "s"}) +
               runnel::client::encode_command({"XADD", "s", "1-1", "f", "again"}));
    c.read_reply();
    CHECK(c.read_reply().integer == 1);
    CHECK(c.read_reply().str == "1-1");
    std::this_thread::sleep_for(300ms);  // the discarding thread has done its work
    REQUIRE(server->terminate() == 0);
  }
  auto server = r.start();
  Connection c("127.0.0.1", r.port, 60s);
  const Reply all = c.call({"XRANGE", "s", "-", "+"});
  REQUIRE(all.elements.size() == 1);
  CHECK(all.elements[0].elements[1].elements[1].str == "again");
  CHECK(info_field(c, "storage_damaged_streams") == "0");
}

TEST_CASE("Retention drops whole old segments by size and by age, for every stream", "[storage]") {
  SECTION("by size") {
    Restartable r({"--segment-bytes", "8192", "--stream-max-bytes", "32768", "--threads", "1"});
    auto server = r.start();
    Connection c("127.0.0.1", r.port);
    for (int i = 1; i <= 2000; ++i) c.call({"XADD", "s", std::to_string(i) + "-0", "f", std::string(50, 'x')});
    // Retention runs once a second; wait (at most 5 s) for it.
    std::int64_t len = 2000;
    for (int i = 0; i < 50 && len == 2000; ++i) {
      std::this_thread::sleep_for(100ms);
      len = c.call({"XLEN", "s"}).integer;
    }
    CHECK(len < 2000);
    CHECK(std::stoull(info_field(c, "storage_bytes")) <= 32768 + 8192 + 1024);
    // What is left is the newest entries, from a segment's first one on.
    const Reply first = c.call({"XRANGE", "s", "-", "+", "COUNT", "1"});
    CHECK(std::stoll(first.elements[0].elements[0].str) == 2000 - len + 1);
    const Reply last = c.call({"XREVRANGE", "s", "+", "-", "COUNT", "1"});
    CHECK(last.elements[0].elements[0].str == "2000-0");
  }
  SECTION("by age") {
    Restartable r({"--segment-bytes", "4096", "--stream-max-age", "60", "--threads", "1"});
    auto server = r.start();
    Connection c("127.0.0.1", r.port);
    // Old entries (IDs from 1970), then fresh ones: only the old segments may go.
    for (int i = 1; i <= 300; ++i) c.call({"XADD", "s", std::to_string(i) + "-0", "f", std::string(50, 'x')});
    for (int i = 0; i < 300; ++i) c.call({"XADD", "s", "*", "f", std::string(50, 'y')});
    std::int64_t len = 600;
    for (int i = 0; i < 50 && len == 600; ++i) {
      std::this_thread::sleep_for(100ms);
      len = c.call({"XLEN", "s"}).integer;
    }
    CHECK(len < 600);
    CHECK(len >= 300);  // every fresh entry stays
    const Reply left = c.call({"XRANGE", "s", "-", "+", "COUNT", "1"});
    CHECK(left.elements[0].elements[1].elements[1].str.size() == 50);
  }
}

TEST_CASE("DEL removes a stream's folder off the shard's thread and a start clears what a crash left", "[storage]") {
  Restartable r({"--segment-bytes", "65536", "--threads", "1", "--fsync", "always"});
  const fs::path streams = r.dir.path() / "data" / "streams";
  // Everything under streams/ but the folder `keep`.
  auto others = [&](const std::string& keep) {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(streams)) {
      if (e.path().filename() != keep) names.push_back(e.path().filename().string());
    }
    return names;
  };
  {
    auto server = r.start();
    Connection c("127.0.0.1", r.port);
    for (int i = 0; i < 2000; ++i) c.call({"XADD", "big", "*", "f", std::string(200, 'x')});
    c.call({"XADD", "small", "*", "f", "v"});
    REQUIRE(fs::exists(streams / "big"));
    REQUIRE(c.call({"DEL", "big"}).integer == 1);
    // The key is free at once, and a stream made again under it starts empty.
    CHECK(c.call({"XLEN", "big"}).integer == 0);
    REQUIRE(c.call({"XADD", "big", "*", "f", "again"}).type == Reply::Type::kBulk);
    CHECK(c.call({"XLEN", "big"}).integer == 1);
    // The old folder goes (from the trash) within 5 s.
    bool gone = false;
    for (int i = 0; i < 50 && !gone; ++i) {
      const auto names = others("small");
      gone = names.size() == 1 && names[0] == "big";
      if (!gone) std::this_thread::sleep_for(100ms);
    }
    CHECK(gone);
  }
  // A crash between the rename and the removal leaves a trash folder: the next start clears
  // it and keeps the streams.
  fs::create_directories(streams / ".trash-0-7");
  std::ofstream(streams / ".trash-0-7" / "0-0.log") << "left over";
  {
    auto server = r.start();
    Connection c("127.0.0.1", r.port);
    CHECK(c.call({"XLEN", "big"}).integer == 1);
    CHECK(c.call({"XLEN", "small"}).integer == 1);
    CHECK_FALSE(fs::exists(streams / ".trash-0-7"));
  }
}

// The newest write-ahead log generation of shard 0 (wal/0-<generation>.wal).
std::uint64_t newest_log_generation(const fs::path& wal) {
  std::uint64_t newest = 0;
  for (const auto& e : fs::directory_iterator(wal)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("0-", 0) != 0 || !name.ends_with(".wal")) continue;
    newest = std::max<std::uint64_t>(newest, std::stoull(name.substr(2)));
  }
  return newest;
}

// Writes about 6 MiB to one stream under fsync always, 64 XADDs of 4 KiB a round trip, and
// returns how many log generations went by.
std::uint64_t generations_for_6_mib(const std::vector<std::string>& extra) {
  std::vector<std::string> flags = {"--fsync", "always", "--threads", "1"};
  flags.insert(flags.end(), extra.begin(), extra.end());
  Restartable r(flags);
  auto server = r.start();
  Connection c("127.0.0.1", r.port);
  const fs::path wal = r.dir.path() / "data" / "wal";
  const std::uint64_t first = newest_log_generation(wal);
  const std::string value(4096, 'w');
  for (int round = 0; round < 24; ++round) {
    for (int i = 0; i < 64; ++i) c.send({"XADD", "s", "*", "v", value});
    for (int i = 0; i < 64; ++i) REQUIRE(c.read_reply().type == Reply::Type::kBulk);
  }
  CHECK(c.call({"XLEN", "s"}).integer == 24 * 64);
  return newest_log_generation(wal) - first;
}

TEST_CASE("A checkpoint starts once the write-ahead log passes --wal-checkpoint-bytes", "[storage]") {
  // At the default (32 MiB) only the once-a-second checkpoint can come in the ~0.5 s of
  // writes; at 1 MiB, a checkpoint follows about every 1 MiB logged.
  const std::uint64_t by_default = generations_for_6_mib({});
  const std::uint64_t at_1_mib = generations_for_6_mib({"--wal-checkpoint-bytes", "1048576"});
  INFO("generations: default " << by_default << ", at 1 MiB " << at_1_mib);
  CHECK(by_default <= 2);
  CHECK(at_1_mib >= 3);
}

TEST_CASE("The disk bounds are flags, shown by CONFIG GET, and refuse values under 1 MiB", "[storage]") {
  Restartable r({"--wal-checkpoint-bytes", "2097152", "--write-behind-bytes", "3145728", "--threads", "1"});
  {
    auto server = r.start();
    Connection c("127.0.0.1", r.port);
    const Reply got = c.call({"CONFIG", "GET", "*-bytes"});
    REQUIRE(got.type == Reply::Type::kArray);
    std::map<std::string, std::string> values;
    for (std::size_t i = 0; i + 1 < got.elements.size(); i += 2) values[got.elements[i].str] = got.elements[i + 1].str;
    CHECK(values["wal-checkpoint-bytes"] == "2097152");
    CHECK(values["write-behind-bytes"] == "3145728");
    // Not live.
    CHECK(c.call({"CONFIG", "SET", "write-behind-bytes", "8388608"}).type == Reply::Type::kError);
  }
  for (const char* flag : {"--wal-checkpoint-bytes", "--write-behind-bytes"}) {
    // The flags are checked before anything starts: it exits at once.
    const auto run = runnel::test::run_command(runnel::test::runnel_server_path() + " " + flag + " 65536 --port 0", 20);
    INFO(flag << ": " << run.output);
    CHECK(run.status > 0);
    CHECK(run.output.find("not in range 1048576") != std::string::npos);
  }
}

// While the data dir loads, the port takes connections and answers as Redis does while it
// loads: -LOADING for commands that need the data, answers for those that do not (CLIENT
// ID, HELLO); clients wait and retry instead of failing to connect. The load is slowed by
// a test hook so the test sees it.
TEST_CASE("Connections made while the data dir loads get -LOADING, then the data", "[storage]") {
  Restartable r({"--fsync", "everysec"});
  {
    auto server = r.start();
    Connection c("127.0.0.1", r.port);
    REQUIRE(c.call({"XADD", "s", "1-1", "f", "v"}).str == "1-1");
  }
  // Catch's assertions are not for other threads: the early client records what it got.
  std::vector<std::string> pings;
  std::string client_id, len_during, info_during, info_after;
  long long len_after = -1;
  std::thread early([&] {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      try {
        Connection c("127.0.0.1", r.port, 2s);
        const Reply id = c.call({"CLIENT", "ID"});
        const Reply ping = c.call({"PING"});
        const Reply len = c.call({"XLEN", "s"});
        const Reply info = c.call({"INFO", "persistence"});
        pings.push_back(ping.str);
        if (ping.is_error()) {
          client_id = id.type == Reply::Type::kInteger ? "ok" : id.str;
          len_during = len.str;
          if (info_during.empty()) info_during = info.str;  // the first, well inside the load
          std::this_thread::sleep_for(50ms);
          continue;
        }
        len_after = len.integer;
        info_after = info.str;
        return;
      } catch (const runnel::client::ConnectionError&) {
        std::this_thread::sleep_for(20ms);  // not listening yet
      }
    }
  });
  r.env = "RUNNEL_TEST_LOAD_DELAY_MS=1500";
  auto server = r.start();  // returns once PING is answered with something other than -LOADING
  early.join();
  REQUIRE(!pings.empty());
  CHECK(pings.front() == "LOADING Redis is loading the dataset in memory");
  CHECK(pings.back() == "PONG");
  CHECK(client_id == "ok");  // CLIENT ID needs no data
  CHECK(len_during == "LOADING Redis is loading the dataset in memory");
  // INFO is answered while loading, as by Redis: loading:1, then loading:0.
  CHECK(info_during.find("loading:1\r\n") != std::string::npos);
  CHECK(info_after.find("loading:0\r\n") != std::string::npos);
  CHECK(len_after == 1);
  Connection c("127.0.0.1", r.port);
  CHECK(c.call({"XLEN", "s"}).integer == 1);
}

namespace {

// Sends `commands` pipelined, 500 at a time, and returns their replies in order.
std::vector<Reply> pipeline(Connection& c, const std::vector<std::vector<std::string>>& commands) {
  std::vector<Reply> replies;
  for (std::size_t from = 0; from < commands.size(); from += 500) {
    const std::size_t to = std::min(commands.size(), from + 500);
    for (std::size_t i = from; i < to; ++i) {
      std::vector<std::string_view> args(commands[i].begin(), commands[i].end());
      c.send(args);
    }
    for (std::size_t i = from; i < to; ++i) replies.push_back(c.read_reply());
  }
  return replies;
}

}  // namespace

// Under a limit of 1,024 descriptors, 3,000 streams (and 200 group journals) each keep their
// own files: the cache of open files closes the least recently used and opens them again
// when they are written or read. Streams deleted and made again under the same key while
// their old files are closed get the new files only, and everything comes back after a
// restart under the same limit. Before the cache, each stream held its descriptors for the
// whole run, and creations past about 1,000 streams failed with "Too many open files".
TEST_CASE("Streams past the open files limit each keep their files, through deletes and a restart",
          "[storage][limits]") {
  constexpr int kStreams = 3000;
  constexpr int kGrouped = 200;   // streams 0..199 get a group and a delivery
  constexpr int kRemade = 100;    // streams 0..99 are deleted and made again
  runnel::test::TempDir dir{"runnel-many"};
  const std::uint16_t port = runnel::test::free_port();
  auto start = [&] {
    return std::make_unique<runnel::test::ServerProcess>(
        std::vector<std::string>{"/bin/sh", "-c",
                                 "ulimit -n 1024 && exec " + runnel::test::runnel_server_path() + " --port " +
                                     std::to_string(port) + " --dir " + (dir.path() / "data").string() +
                                     " --threads 2"},
        port, (dir.path() / "server.log").string(), std::chrono::seconds(60));
  };
  auto key = [](int i) { return "s:" + std::to_string(i); };
  {
    auto server = start();
    Connection c("127.0.0.1", port, 60s);
    const std::string budget = info_field(c, "storage_open_files_budget");
    CHECK(budget == "128");  // an eighth of 1,024
    std::vector<std::vector<std::string>> commands;
    for (int i = 0; i < kStreams; ++i) commands.push_back({"XADD", key(i), "1-1", "f", "v" + std::to_string(i)});
    for (int i = 0; i < kGrouped; ++i) {
      commands.push_back({"XGROUP", "CREATE", key(i), "g", "0"});
      commands.push_back({"XREADGROUP", "GROUP", "g", "c", "STREAMS", key(i), ">"});
    }
    // Deleted and made again in one pipeline, so writes to the old files may still be queued.
    for (int i = 0; i < kRemade; ++i) {
      commands.push_back({"DEL", key(i)});
      commands.push_back({"XADD", key(i), "2-1", "f", "new" + std::to_string(i)});
    }
    const std::vector<Reply> replies = pipeline(c, commands);
    std::size_t errors = 0;
    for (const Reply& r : replies) errors += r.type == Reply::Type::kError;
    CHECK(errors == 0);
    if (errors > 0) {
      for (const Reply& r : replies) {
        if (r.type == Reply::Type::kError) {
          FAIL_CHECK(r.str);
          break;
        }
      }
    }
    CHECK(std::stoul(info_field(c, "storage_open_files")) <= 128);
    CHECK(std::stoul(info_field(c, "storage_files_reopened")) > 0);
    CHECK(info_field(c, "storage_streams") == std::to_string(kStreams));
    REQUIRE(server->terminate() == 0);
    CHECK(server->log().find("Too many open files") == std::string::npos);
  }
  auto server = start();
  Connection c("127.0.0.1", port, 60s);
  CHECK(info_field(c, "storage_streams") == std::to_string(kStreams));
  std::vector<std::vector<std::string>> reads;
  for (int i = 0; i < kStreams; ++i) reads.push_back({"XRANGE", key(i), "-", "+"});
  for (int i = kRemade; i < kGrouped; ++i) reads.push_back({"XPENDING", key(i), "g"});
  for (int i = 0; i < kRemade; ++i) reads.push_back({"XINFO", "GROUPS", key(i)});
  const std::vector<Reply> replies = pipeline(c, reads);
  REQUIRE(replies.size() == reads.size());
  std::size_t wrong = 0;
  for (int i = 0; i < kStreams; ++i) {
    const Reply& r = replies[i];
    const bool remade = i < kRemade;
    const bool ok = r.elements.size() == 1 && r.elements[0].elements.size() == 2 &&
                    r.elements[0].elements[0].str == (remade ? "2-1" : "1-1") &&
                    r.elements[0].elements[1].elements.size() == 2 &&
                    r.elements[0].elements[1].elements[1].str == (remade ? "new" : "v") + std::to_string(i);
    if (!ok && wrong++ == 0) FAIL_CHECK(key(i) << ": " << to_display_string(r));
  }
  for (int i = kRemade; i < kGrouped; ++i) {
    const Reply& r = replies[kStreams + (i - kRemade)];
    const bool ok = r.elements.size() == 4 && r.elements[0].integer == 1;
    if (!ok && wrong++ == 0) FAIL_CHECK(key(i) << " pending: " << to_display_string(r));
  }
  for (int i = 0; i < kRemade; ++i) {
    const Reply& r = replies[kStreams + (kGrouped - kRemade) + i];
    if (!r.elements.empty() && wrong++ == 0) FAIL_CHECK(key(i) << " kept its old group: " << to_display_string(r));
  }
  CHECK(wrong == 0);
  CHECK(std::stoul(info_field(c, "storage_open_files")) <= 128);
}

TEST_CASE("The descriptor budget is --max-open-files, lowered with a warning past half the open files limit",
          "[storage][limits]") {
  for (const auto& [asked, expected] : {std::pair{"64", "64"}, std::pair{"5000", "512"}}) {
    INFO("--max-open-files " << asked);
    runnel::test::TempDir dir{"runnel-max-open"};
    const std::uint16_t port = runnel::test::free_port();
    runnel::test::ServerProcess server(
        {"/bin/sh", "-c",
         "ulimit -n 1024 && exec " + runnel::test::runnel_server_path() + " --port " + std::to_string(port) +
             " --dir " + (dir.path() / "data").string() + " --threads 1 --max-open-files " + asked},
        port, (dir.path() / "server.log").string());
    Connection c("127.0.0.1", port);
    const Reply config = c.call({"CONFIG", "GET", "max-open-files"});
    REQUIRE(config.elements.size() == 2);
    CHECK(config.elements[1].str == expected);
    CHECK(info_field(c, "storage_open_files_budget") == expected);
    const bool warned = server.log().find("is more than half the open files limit (1024): using 512") != std::string::npos;
    CHECK(warned == (std::string(asked) == "5000"));
  }
}
