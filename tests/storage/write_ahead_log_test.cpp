// The write-ahead log's replay: writes go back into the files they were meant for, and only
// those; forgotten folders, replaced and missing files are skipped; a torn tail is ignored
// and damage refuses the start.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <cstring>
#include <fstream>

#include <xxhash.h>

#include <runnel/storage/file.hpp>
#include <runnel/storage/write_ahead_log.hpp>

#include "server_process.hpp"

using namespace runnel::storage;
namespace fs = std::filesystem;

namespace {

using runnel::test::TempDir;

const std::string kHeader(40, 'H');  // a file's identity (its header)

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A stream file under <data>/streams/<folder>/, holding `content`, known by `identity`.
std::shared_ptr<File> make_file(const std::string& data, const std::string& name, const std::string& content,
                                const std::string& identity = kHeader) {
  fs::create_directories(fs::path(data + "/" + name).parent_path());
  Error error;
  auto file = open_file(data + "/" + name, true, error);
  REQUIRE(file);
  REQUIRE(write_at(file->pin().fd(), 0, content).what == "");
  file->set_identity(identity);
  return file;
}

// Logs one flush (and writes it to the log file, as the I/O queue would).
void log_flush(WriteAheadLog& wal, std::vector<WriteOp> writes, std::vector<Forgotten> forgotten = {}) {
  const WriteOp op = wal.append(writes, forgotten);
  REQUIRE(write_at(op.file->pin().fd(), op.offset, op.bytes).what == "");
}

WriteOp write_of(const std::shared_ptr<File>& file, std::uint64_t offset, std::string bytes) {
  WriteOp op;
  op.file = file;
  op.offset = offset;
  op.bytes = std::move(bytes);
  return op;
}

bool wal_dir_empty(const std::string& data) { return fs::is_empty(data + "/wal"); }

// A new log generation of `shard` in `data`.
std::unique_ptr<WriteAheadLog> new_log(const std::string& data, unsigned shard, std::uint64_t generation) {
  Error error;
  auto wal = WriteAheadLog::create(data, shard, generation, error);
  INFO(error.what);
  REQUIRE(wal);
  return wal;
}

}  // namespace

TEST_CASE("Replay puts every logged write back into its file, then deletes the logs", "[storage][wal]") {
  TempDir dir;
  const std::string data = dir.path().string();
  // The file lost what was written after its header (never synced before the crash).
  auto file = make_file(data, "streams/a/0-1.log", kHeader);
  auto wal = new_log(data, 0, 1);
  log_flush(*wal, {write_of(file, 40, "first")});
  log_flush(*wal, {write_of(file, 45, "second")});
  // A second generation (a checkpoint had begun) and another shard's log.
  auto wal2 = new_log(data, 0, 2);
  log_flush(*wal2, {write_of(file, 51, "third")});
  auto other = make_file(data, "streams/b/0-1.log", "");
  auto wal_b = new_log(data, 1, 1);
  log_flush(*wal_b, {write_of(other, 0, kHeader + "b's")});  // a new file: its header comes with it

  std::vector<std::string> notes;
  REQUIRE(WriteAheadLog::replay(data, notes).what == "");
  CHECK(slurp(data + "/streams/a/0-1.log") == kHeader + "firstsecondthird");
  CHECK(slurp(data + "/streams/b/0-1.log") == kHeader + "b's");
  CHECK(wal_dir_empty(data));
  REQUIRE(notes.size() == 1);
  CHECK(notes[0].find("replayed 4 write(s) from 3") != std::string::npos);
  // Replaying again finds nothing to do.
  notes.clear();
  REQUIRE(WriteAheadLog::replay(data, notes).what == "");
  CHECK(notes.empty());
}

TEST_CASE("Replay skips files that were replaced, removed or forgotten since", "[storage][wal]") {
  TempDir dir;
  const std::string data = dir.path().string();
  auto wal = new_log(data, 0, 1);

  // A journal replaced by a fold: same path, new header.
  auto old_journal = make_file(data, "streams/a/groups.journal", kHeader);
  log_flush(*wal, {write_of(old_journal, 40, "old records")});
  const std::string new_header(40, 'N');
  make_file(data, "streams/a/groups.journal", new_header);

  // A trimmed segment: gone.
  auto trimmed = make_file(data, "streams/a/0-1.log", kHeader);
  log_flush(*wal, {write_of(trimmed, 40, "trimmed")});
  fs::remove(data + "/streams/a/0-1.log");

  // A stream deleted (its folder forgotten) and made again under the same key: the old
  // incarnation's writes must not land in the new one's file, the new one's must.
  auto before = make_file(data, "streams/c/0-1.log", kHeader);
  log_flush(*wal, {write_of(before, 40, "OLD-OLD-OLD-OLD")});
  fs::remove_all(data + "/streams/c");
  auto after = make_file(data, "streams/c/0-1.log", kHeader);
  log_flush(*wal, {write_of(after, 40, "new")}, {Forgotten{data + "/streams/c", WriteAheadLog::next_order()}});

  std::vector<std::string> notes;
  REQUIRE(WriteAheadLog::replay(data, notes).what == "");
  CHECK(slurp(data + "/streams/a/groups.journal") == new_header);
  CHECK_FALSE(fs::exists(data + "/streams/a/0-1.log"));  // never made again
  CHECK(slurp(data + "/streams/c/0-1.log") == kHeader + "new");
  REQUIRE(notes.size() == 1);
  CHECK(notes[0].find("replayed 1 write(s)") != std::string::npos);
  CHECK(notes[0].find("3 for files since removed or replaced") != std::string::npos);
}

TEST_CASE("A forget covers the writes logged before it in every shard's log, and none after", "[storage][wal]") {
  // A stream RENAMEd from shard 1 to shard 0 has writes in both logs. Deleted on shard 0, its
  // folder's name is free, and shard 1 makes a new stream there and logs its first write
  // before shard 0 logs the forget. Shard 1's log also comes after shard 0's in file order:
  // only the forget's own order (taken at the deletion) tells old writes from new.
  TempDir dir;
  const std::string data = dir.path().string();
  auto wal0 = new_log(data, 0, 1);
  auto wal1 = new_log(data, 1, 1);
  auto moved = make_file(data, "streams/s/0-1.log", kHeader);
  log_flush(*wal1, {write_of(moved, 40, "OLD-ON-SHARD-1-")});  // before the move
  log_flush(*wal0, {write_of(moved, 55, "OLD-ON-SHARD-0-")});  // after it
  const Forgotten del{data + "/streams/s", WriteAheadLog::next_order()};  // the DEL
  fs::remove_all(data + "/streams/s");
  auto remade = make_file(data, "streams/s/0-1.log", kHeader);
  log_flush(*wal1, {write_of(remade, 40, "new")});  // the new stream
  log_flush(*wal0, {}, {del});                      // the forget, logged later

  std::vector<std::string> notes;
  REQUIRE(WriteAheadLog::replay(data, notes).what == "");
  CHECK(slurp(data + "/streams/s/0-1.log") == kHeader + "new");
  REQUIRE(notes.size() == 1);
  CHECK(notes[0].find("replayed 1 write(s)") != std::string::npos);
}

TEST_CASE("A write to a new file waits for its header even when another shard's log brings it later", "[storage][wal]") {
  // A stream made on shard 1 and RENAMEd to shard 0 before its files were written: its
  // header is in shard 1's log, its later appends in shard 0's, which is replayed first.
  TempDir dir;
  const std::string data = dir.path().string();
  auto wal0 = new_log(data, 0, 1);
  auto wal1 = new_log(data, 1, 1);
  auto file = make_file(data, "streams/s/0-1.log", "");  // the header never reached the disk
  log_flush(*wal1, {write_of(file, 0, kHeader + "first")});
  log_flush(*wal0, {write_of(file, 45, "second")});

  std::vector<std::string> notes;
  REQUIRE(WriteAheadLog::replay(data, notes).what == "");
  CHECK(slurp(data + "/streams/s/0-1.log") == kHeader + "firstsecond");
  REQUIRE(notes.size() == 1);
  CHECK(notes[0].find("replayed 2 write(s)") != std::string::npos);
}

TEST_CASE("A torn log tail is ignored, and damage before the end refuses the start", "[storage][wal]") {
  TempDir dir;
  const std::string data = dir.path().string();
  auto file = make_file(data, "streams/a/0-1.log", kHeader);
  auto wal = new_log(data, 0, 1);
  log_flush(*wal, {write_of(file, 40, "acknowledged")});
  const std::uint64_t first_end = wal->bytes();
  log_flush(*wal, {write_of(file, 52, "never acknowledged")});
  const std::string log_path = WriteAheadLog::path_of(data, 0, 1);

  SECTION("torn") {
    REQUIRE(::truncate(log_path.c_str(), static_cast<off_t>(wal->bytes() - 3)) == 0);
    std::vector<std::string> notes;
    REQUIRE(WriteAheadLog::replay(data, notes).what == "");
    CHECK(slurp(data + "/streams/a/0-1.log") == kHeader + "acknowledged");
    CHECK(wal_dir_empty(data));
  }
  SECTION("damaged") {
    // A flipped byte in the first batch, with a whole batch after it.
    std::string byte;
    REQUIRE(read_at(wal->file()->fd(), first_end - 2, 1, byte).what == "");
    byte[0] = static_cast<char>(byte[0] ^ 0x40);
    REQUIRE(write_at(wal->file()->fd(), first_end - 2, byte).what == "");
    std::vector<std::string> notes;
    const Error why = WriteAheadLog::replay(data, notes);
    CHECK(why.what.find("damaged") != std::string::npos);
    CHECK(why.damage());
    CHECK(slurp(data + "/streams/a/0-1.log") == kHeader);  // nothing written
    CHECK(fs::exists(log_path));                           // nothing deleted
  }
}

TEST_CASE("A recycled log replays only its own batches, never the old ones after them", "[storage][wal]") {
  TempDir dir;
  const std::string data = dir.path().string();
  auto old_file = make_file(data, "streams/a/0-1.log", kHeader);
  auto wal = new_log(data, 0, 1);
  // Generation 1 writes more than generation 3 will, so old batches follow the new ones.
  for (int i = 0; i < 8; ++i) log_flush(*wal, {write_of(old_file, 40 + 4 * i, "old" + std::to_string(i))});
  // A write whose bytes are a stream file's own (unsalted) batch, as a segment's are: it
  // must not read as one of the log's batches.
  {
    const std::string body = "a segment's records";
    std::string framed("RBAT", 4);
    const auto len = static_cast<std::uint32_t>(body.size());
    const std::uint32_t count = 1;
    const std::uint64_t sum = XXH3_64bits_withSeed(body.data(), body.size(), len | (std::uint64_t{count} << 32));
    framed.append(reinterpret_cast<const char*>(&len), 4);
    framed.append(reinterpret_cast<const char*>(&count), 4);
    framed.append(reinterpret_cast<const char*>(&sum), 8);
    framed += body;
    log_flush(*wal, {write_of(old_file, 72, framed)});
  }
  const std::uint64_t old_bytes = wal->bytes();
  const std::string spare = WriteAheadLog::retire(wal->file()->path(), true);
  wal.reset();
  REQUIRE(spare == WriteAheadLog::path_of(data, 0, 1) + ".spare");
  REQUIRE_FALSE(fs::exists(WriteAheadLog::path_of(data, 0, 1)));

  SECTION("recycled") {
    Error error;
    auto recycled = WriteAheadLog::recycle(spare, data, 0, 3, error);
    INFO(error.what);
    REQUIRE(recycled);
    CHECK_FALSE(fs::exists(spare));
    auto file = make_file(data, "streams/b/0-1.log", kHeader);
    log_flush(*recycled, {write_of(file, 40, "new")});
    REQUIRE(recycled->bytes() < old_bytes);
    CHECK(fs::file_size(WriteAheadLog::path_of(data, 0, 3)) == old_bytes);  // overwritten in place
    recycled.reset();
    // Undo what generation 1 wrote into its file: a replay of its old batches would redo it.
    REQUIRE(::truncate((data + "/streams/a/0-1.log").c_str(), 40) == 0);

    std::vector<std::string> notes;
    REQUIRE(WriteAheadLog::replay(data, notes).what == "");
    CHECK(slurp(data + "/streams/b/0-1.log") == kHeader + "new");
    CHECK(slurp(data + "/streams/a/0-1.log") == kHeader);
    CHECK(wal_dir_empty(data));
  }
  SECTION("renamed, its new header never written") {
    // A crash between the rename and the header: the file holds generation 1's header and
    // batches under generation 3's name.
    REQUIRE(::rename(spare.c_str(), WriteAheadLog::path_of(data, 0, 3).c_str()) == 0);
    REQUIRE(::truncate((data + "/streams/a/0-1.log").c_str(), 40) == 0);
    std::vector<std::string> notes;
    REQUIRE(WriteAheadLog::replay(data, notes).what == "");
    CHECK(slurp(data + "/streams/a/0-1.log") == kHeader);
    CHECK(wal_dir_empty(data));
  }
  SECTION("left as a spare") {
    REQUIRE(::truncate((data + "/streams/a/0-1.log").c_str(), 40) == 0);
    std::vector<std::string> notes;
    REQUIRE(WriteAheadLog::replay(data, notes).what == "");
    CHECK(slurp(data + "/streams/a/0-1.log") == kHeader);
    CHECK(wal_dir_empty(data));
  }
}

TEST_CASE("A version 1 log, unsalted, is still replayed", "[storage][wal]") {
  TempDir dir;
  const std::string data = dir.path().string();
  auto file = make_file(data, "streams/a/0-1.log", kHeader);
  auto wal = new_log(data, 0, 7);
  log_flush(*wal, {write_of(file, 40, "v1")});
  // Rewrite it as version 1 wrote it: version field 1, the header's checksum over that, and
  // the batch's checksum without the generation's salt.
  std::string log = slurp(WriteAheadLog::path_of(data, 0, 7));
  wal.reset();
  log[8] = 1;
  const std::uint64_t header_sum = XXH3_64bits(log.data(), 24);
  std::memcpy(log.data() + 24, &header_sum, 8);
  const std::size_t batch = WriteAheadLog::kHeaderBytes;
  std::uint64_t sum = 0;
  std::memcpy(&sum, log.data() + batch + 12, 8);
  const std::uint32_t len = static_cast<std::uint32_t>(log.size() - batch - 20);
  std::uint32_t records = 0;  // the order record and the write
  std::memcpy(&records, log.data() + batch + 8, 4);
  const std::uint64_t seed = len | (std::uint64_t{records} << 32);
  sum = XXH3_64bits_withSeed(log.data() + batch + 20, len, seed);
  std::memcpy(log.data() + batch + 12, &sum, 8);
  std::ofstream(WriteAheadLog::path_of(data, 0, 7), std::ios::binary | std::ios::trunc) << log;

  std::vector<std::string> notes;
  REQUIRE(WriteAheadLog::replay(data, notes).what == "");
  CHECK(slurp(data + "/streams/a/0-1.log") == kHeader + "v1");
}

TEST_CASE("A new log written with zeros ahead replays its batches and reads the zeros as a torn tail", "[storage][wal]") {
  TempDir dir;
  const std::string data = dir.path().string();
  auto file = make_file(data, "streams/a/0-1.log", kHeader);
  Error error;
  auto wal = WriteAheadLog::create(data, 0, 1, error, 2 * 1024 * 1024);
  INFO(error.what);
  REQUIRE(wal);
  const std::string path = WriteAheadLog::path_of(data, 0, 1);
  CHECK(fs::file_size(path) == WriteAheadLog::kHeaderBytes + 2 * 1024 * 1024);
  log_flush(*wal, {write_of(file, 40, "one")});
  log_flush(*wal, {write_of(file, 43, "two")});
  CHECK(fs::file_size(path) == WriteAheadLog::kHeaderBytes + 2 * 1024 * 1024);  // written over, not grown
  wal.reset();
  REQUIRE(::truncate((data + "/streams/a/0-1.log").c_str(), 40) == 0);
  std::vector<std::string> notes;
  REQUIRE(WriteAheadLog::replay(data, notes).what == "");
  CHECK(slurp(data + "/streams/a/0-1.log") == kHeader + "onetwo");
  CHECK(wal_dir_empty(data));
}
