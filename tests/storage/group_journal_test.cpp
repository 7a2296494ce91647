// The group journal and snapshot: replay, torn tails, damage, and folding.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <runnel/storage/file.hpp>
#include <runnel/storage/group_journal.hpp>

#include "server_process.hpp"

using namespace runnel::storage;
namespace fs = std::filesystem;

namespace {

using runnel::test::TempDir;

// A record as text, to compare replays.
std::string show(const GroupRecord& r) {
  return std::to_string(static_cast<int>(r.type)) + ":" + std::string(r.group) + ":" +
         std::string(r.consumer) + ":" + r.id.to_string() + ":" + std::to_string(r.entries_read) +
         ":" + std::to_string(r.time_ms) + ":" + std::to_string(r.count);
}

GroupRecord pending(std::uint64_t i) {
  GroupRecord r;
  r.type = GroupRecord::Type::kPendingSet;
  r.group = "g";
  r.consumer = "alice";
  r.id = StreamId{i, 0};
  r.time_ms = 1700000000000 + static_cast<std::int64_t>(i);
  r.count = i % 3 + 1;
  return r;
}

// Writes the journal's pending records synchronously, as a flush would.
void flush(GroupJournal& j) {
  std::vector<WriteOp> ops;
  REQUIRE(j.take_writes(ops).what == "");
  for (const WriteOp& op : ops) REQUIRE(write_at(op.file->pin().fd(), op.offset, op.bytes).what == "");
}

std::vector<std::string> replay(const std::string& dir, Error& error, std::vector<std::string>& notes) {
  std::vector<std::string> seen;
  GroupJournal j(dir);
  error = j.open([&](const GroupRecord& r) { seen.push_back(show(r)); }, notes);
  return seen;
}

}  // namespace

TEST_CASE("Group records replay in order, with every field", "[storage][journal]") {
  TempDir dir;
  std::vector<std::string> want;
  {
    GroupJournal j(dir.path().string());
    GroupRecord g;
    g.type = GroupRecord::Type::kGroupSet;
    g.group = std::string_view("g\0x", 3);
    g.id = StreamId{5, 6};
    g.entries_read = -1;
    j.append(g);
    want.push_back(show(g));
    GroupRecord c;
    c.type = GroupRecord::Type::kConsumerSet;
    c.group = "g";
    c.consumer = "alice";
    c.time_ms = 123;
    j.append(c);
    want.push_back(show(c));
    flush(j);
    for (std::uint64_t i = 1; i <= 3; ++i) {
      j.append(pending(i));
      want.push_back(show(pending(i)));
    }
    GroupRecord del;
    del.type = GroupRecord::Type::kPendingDelete;
    del.group = "g";
    del.id = StreamId{2, 0};
    j.append(del);
    want.push_back(show(del));
    flush(j);
  }
  Error error;
  std::vector<std::string> notes;
  CHECK(replay(dir.path().string(), error, notes) == want);
  CHECK(error.what == "");
  CHECK(notes.empty());
}

TEST_CASE("A torn journal tail is cut at every byte, keeping the whole batches", "[storage][journal]") {
  TempDir dir;
  std::vector<std::string> first;
  {
    GroupJournal j(dir.path().string());
    for (std::uint64_t i = 1; i <= 5; ++i) {
      j.append(pending(i));
      first.push_back(show(pending(i)));
    }
    flush(j);
    for (std::uint64_t i = 6; i <= 8; ++i) j.append(pending(i));
    flush(j);
  }
  const std::string path = dir.path().string() + "/groups.journal";
  std::string full;
  REQUIRE(read_file(path, full).what == "");
  const std::size_t last_batch = full.rfind("RBAT");
  for (std::size_t cut = last_batch; cut < full.size(); ++cut) {
    TempDir copy;
    fs::copy(dir.path().string(), copy.path().string(), fs::copy_options::recursive);
    fs::resize_file(copy.path().string() + "/groups.journal", cut);
    Error error;
    std::vector<std::string> notes;
    CHECK(replay(copy.path().string(), error, notes) == first);
    CHECK(error.what == "");
    CHECK(fs::file_size(copy.path().string() + "/groups.journal") == last_batch);
    // Zero-filled instead of cut: the same.
    std::string zeroed = full;
    std::fill(zeroed.begin() + static_cast<std::ptrdiff_t>(cut), zeroed.end(), '\0');
    std::ofstream(copy.path().string() + "/groups.journal", std::ios::binary | std::ios::trunc)
        .write(zeroed.data(), static_cast<std::streamsize>(zeroed.size()));
    CHECK(replay(copy.path().string(), error, notes) == first);
  }
}

TEST_CASE("Damage in the middle of the journal is reported", "[storage][journal]") {
  TempDir dir;
  {
    GroupJournal j(dir.path().string());
    for (std::uint64_t batch = 0; batch < 3; ++batch) {
      for (std::uint64_t i = 1; i <= 4; ++i) j.append(pending(batch * 10 + i));
      flush(j);
    }
  }
  const std::string path = dir.path().string() + "/groups.journal";
  std::string full;
  REQUIRE(read_file(path, full).what == "");
  const std::size_t first = full.find("RBAT");
  const std::size_t second = full.find("RBAT", first + 4);
  for (std::size_t at = first; at < second; at += 5) {
    std::string bytes = full;
    bytes[at] = static_cast<char>(bytes[at] ^ 0x21);
    std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    Error error;
    std::vector<std::string> notes;
    replay(dir.path().string(), error, notes);
    CHECK(error.what.find("damaged batch") != std::string::npos);
    CHECK(error.damage());
  }
}

TEST_CASE("Folding writes a snapshot and starts an empty journal, and an older journal is ignored",
          "[storage][journal]") {
  TempDir dir;
  std::vector<std::string> state;
  {
    GroupJournal j(dir.path().string());
    for (std::uint64_t i = 1; i <= 20; ++i) j.append(pending(i));
    flush(j);
    // Keep the journal as it was before the fold, to put it back afterwards.
    fs::copy_file(dir.path().string() + "/groups.journal", dir.path().string() + "/old.journal");
    REQUIRE(j.fold([&](const GroupRecordVisitor& emit) {
      for (std::uint64_t i = 1; i <= 3; ++i) {
        emit(pending(i));
        state.push_back(show(pending(i)));
      }
    }).what == "");
    j.append(pending(99));
    state.push_back(show(pending(99)));
    flush(j);
  }
  Error error;
  std::vector<std::string> notes;
  CHECK(replay(dir.path().string(), error, notes) == state);
  CHECK(error.what == "");
  // A crash between writing the snapshot and replacing the journal leaves the old journal.
  fs::rename(dir.path().string() + "/old.journal", dir.path().string() + "/groups.journal");
  notes.clear();
  const auto seen = replay(dir.path().string(), error, notes);
  CHECK(error.what == "");
  CHECK(seen == std::vector<std::string>(state.begin(), state.begin() + 3));
  CHECK(notes.size() == 1);
}
