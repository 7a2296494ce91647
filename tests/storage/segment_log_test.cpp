// Segment files under the entry store: restarts, rolls, indexes, torn tails and corruption,
// with real files in a temporary folder.
#include <catch2/catch.hpp>

#include <poll.h>
#include <unistd.h>

#include <filesystem>
#include <thread>
#include <fstream>
#include <random>

#include <runnel/storage/file.hpp>
#include <runnel/storage/io_queue.hpp>
#include <runnel/storage/log_entry_store.hpp>
#include <runnel/storage/segment_log.hpp>

#include "server_process.hpp"

using namespace runnel::storage;
namespace fs = std::filesystem;

namespace {

using runnel::test::TempDir;

// The I/O path the current test case runs on: each test case runs once with io_uring and
// once with the helper thread (GENERATE in use_backend).
std::unique_ptr<IoQueue> g_queue;

void use_backend(bool uring) {
  std::string note;
  g_queue = IoQueue::create(uring, note);
  REQUIRE(std::string(g_queue->backend()) == (uring ? "io_uring" : "threads"));
}

// Runs `batch` through the queue and waits (at most 10 s) for its result.
IoResult run_batch(IoBatch batch, IoBatch* done = nullptr) {
  g_queue->submit(std::move(batch));
  for (int i = 0; i < 1000; ++i) {
    pollfd p{g_queue->event_fd(), POLLIN, 0};
    REQUIRE(::poll(&p, 1, 10) >= 0);
    if (auto finished = g_queue->reap()) {
      if (done != nullptr) *done = std::move(finished->first);
      return finished->second;
    }
  }
  FAIL("the I/O queue did not finish a batch in 10 s");
  return {};
}

// Writes and syncs what the store appended, as the broker's flush does.
void flush(LogEntryStore& store) {
  IoBatch batch;
  store.log()->take_writes(batch.writes);
  for (const WriteOp& op : batch.writes) {
    if (batch.syncs.empty() || batch.syncs.back() != op.file) batch.syncs.push_back(op.file);
  }
  IoBatch done;
  REQUIRE(run_batch(std::move(batch), &done).error == 0);
  for (const WriteOp& op : done.writes) SegmentLog::mark_written(op);
}

std::unique_ptr<LogEntryStore> create_store(const std::string& dir, std::uint64_t segment_bytes,
                                            TailCache* cache = nullptr) {
  auto log = std::make_unique<SegmentLog>(dir, "key", LogOptions{segment_bytes});
  REQUIRE(log->create(StreamId::min()).what == "");
  return std::make_unique<LogEntryStore>(std::move(log), cache);
}

std::unique_ptr<LogEntryStore> open_store(const std::string& dir, std::vector<std::string>& notes,
                                          Error& error, TailCache* cache = nullptr) {
  auto log = std::make_unique<SegmentLog>(dir, "", LogOptions{64 * 1024});
  auto store = std::make_unique<LogEntryStore>(std::move(log), cache);
  error = store->open(notes);
  return store;
}

std::string value_of(std::uint64_t i) { return "value-" + std::to_string(i * 7919 % 100003); }

void append_n(LogEntryStore& store, std::uint64_t from, std::uint64_t to) {
  for (std::uint64_t i = from; i < to; ++i) {
    const std::string v = value_of(i);
    std::vector<std::string_view> fields{"field", v};
    store.append(StreamId{i, 0}, fields);
  }
}

// Every entry as "<ms>=<value>", in order.
std::vector<std::string> contents(const LogEntryStore& store, bool reverse = false) {
  std::vector<std::string> out;
  const auto error = store.scan(StreamId::min(), StreamId::max(), reverse, [&](const EntryView& e) {
    FieldCursor c(e.payload);
    std::string_view f, v;
    c.next(f);
    c.next(v);
    out.push_back(std::to_string(e.id.ms) + "=" + std::string(v));
    return true;
  });
  if (error) out.push_back("error: " + error.what);
  return out;
}

std::vector<std::string> expected(std::uint64_t from, std::uint64_t to) {
  std::vector<std::string> out;
  for (std::uint64_t i = from; i < to; ++i) out.push_back(std::to_string(i) + "=" + value_of(i));
  return out;
}

std::vector<fs::path> files_with(const std::string& dir, const std::string& ext) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ext) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end(), [](const fs::path& a, const fs::path& b) {
    return parse_stream_id(a.stem().string()) < parse_stream_id(b.stem().string());
  });
  return out;
}

}  // namespace

TEST_CASE("Entries, deletes, trims and metadata survive a reopen", "[storage][log]") {
  use_backend(GENERATE(true, false));
  TempDir dir;
  {
    auto store = create_store(dir.path().string(), 1 << 20);
    append_n(*store, 1, 451);  // 5 nodes, the last one half full
    CHECK(store->erase(StreamId{250, 0}));
    CHECK(store->erase(StreamId{251, 0}));
    TrimSpec spec;
    spec.strategy = TrimSpec::Strategy::kMinId;
    spec.min_id = StreamId{42, 0};
    CHECK(store->trim(spec) == 41);
    store->record_meta(StreamId{900, 5}, 777, StreamId{251, 0});
    flush(*store);
  }
  std::vector<std::string> notes;
  Error error;
  auto store = open_store(dir.path().string(), notes, error);
  REQUIRE(error.what == "");
  CHECK(notes.empty());
  auto want = expected(42, 451);
  want.erase(want.begin() + (250 - 42), want.begin() + (252 - 42));
  CHECK(contents(*store) == want);
  CHECK(store->size() == want.size());
  CHECK(store->first_id() == StreamId{42, 0});
  CHECK(store->log()->meta().last_id == StreamId{900, 5});
  CHECK(store->log()->meta().entries_added == 777);
  CHECK(store->log()->meta().max_deleted_id == StreamId{251, 0});
  // Appends go on after the reopen, into the node that was open.
  const auto nodes = store->node_count();
  std::vector<std::string_view> fields{"field", "x"};
  store->append(StreamId{1000, 0}, fields);
  CHECK(store->node_count() == nodes);
}

TEST_CASE("Segments roll at the size bound, and indexes rebuild when missing or bad", "[storage][log]") {
  use_backend(GENERATE(true, false));
  TempDir dir;
  {
    auto store = create_store(dir.path().string(), 8 * 1024);
    for (std::uint64_t i = 1; i <= 3000; i += 100) {
      append_n(*store, i, i + 100);
      flush(*store);
    }
    CHECK(store->log()->segment_count() > 5);
  }
  const auto logs = files_with(dir.path().string(), ".log");
  const auto indexes = files_with(dir.path().string(), ".idx");
  REQUIRE(indexes.size() == logs.size() - 1);
  {
    std::vector<std::string> notes;
    Error error;
    auto store = open_store(dir.path().string(), notes, error);
    REQUIRE(error.what == "");
    CHECK(notes.empty());  // every index was good
    CHECK(contents(*store) == expected(1, 3001));
    auto reversed = expected(1, 3001);
    std::reverse(reversed.begin(), reversed.end());
    CHECK(contents(*store, true) == reversed);
  }
  fs::remove(indexes[0]);
  {
    std::ofstream(indexes[1], std::ios::binary | std::ios::in | std::ios::out).write("X", 1);
  }
  std::vector<std::string> notes;
  Error error;
  auto store = open_store(dir.path().string(), notes, error);
  REQUIRE(error.what == "");
  CHECK(notes.size() == 2);
  CHECK(contents(*store) == expected(1, 3001));
  CHECK(fs::exists(indexes[0]));
}

TEST_CASE("Trimming deletes whole segment files and nothing else", "[storage][log]") {
  use_backend(GENERATE(true, false));
  TempDir dir;
  auto store = create_store(dir.path().string(), 8 * 1024);
  append_n(*store, 1, 2001);
  flush(*store);
  const auto before = files_with(dir.path().string(), ".log").size();
  TrimSpec spec;
  spec.strategy = TrimSpec::Strategy::kMaxLen;
  spec.max_len = 500;
  spec.approx = true;
  store->trim(spec);
  flush(*store);
  // The Discarder thread unlinks trimmed segments off the caller's thread: wait for it
  // (at most 5 s).
  auto after = files_with(dir.path().string(), ".log").size();
  for (int i = 0; i < 500 && after >= before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    after = files_with(dir.path().string(), ".log").size();
  }
  CHECK(after < before);
  const auto left = contents(*store);
  REQUIRE(!left.empty());
  CHECK(left.back() == "2000=" + value_of(2000));
  std::vector<std::string> notes;
  Error error;
  auto reopened = open_store(dir.path().string(), notes, error);
  REQUIRE(error.what == "");
  CHECK(contents(*reopened) == left);
}

TEST_CASE("A torn last batch is cut at every byte, keeping exactly the whole batches", "[storage][log]") {
  use_backend(GENERATE(true, false));
  TempDir dir;
  std::uint64_t whole_batches_end = 0;
  std::string last_segment;
  {
    auto store = create_store(dir.path().string(), 1 << 20);
    append_n(*store, 1, 11);
    flush(*store);
    append_n(*store, 11, 16);  // the last batch: entries 11..15
    flush(*store);
  }
  last_segment = files_with(dir.path().string(), ".log").back().string();
  std::string full;
  REQUIRE(read_file(last_segment, full).what == "");
  // Find where the last batch starts: reopen a copy cut before its end and see what is kept.
  const auto size = full.size();
  whole_batches_end = 0;
  for (std::size_t cut = size; cut-- > SegmentLog::kSegmentHeaderBytes;) {
    if (std::string_view(full).substr(cut, 4) == std::string_view("RBAT", 4)) {
      whole_batches_end = cut;
      break;
    }
  }
  REQUIRE(whole_batches_end > 0);
  std::size_t cases = 0;
  for (std::size_t cut = whole_batches_end; cut < size; ++cut) {
    TempDir copy;
    fs::copy(dir.path().string(), copy.path().string(), fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    const std::string seg = copy.path().string() + "/" + fs::path(last_segment).filename().string();
    fs::resize_file(seg, cut);
    std::vector<std::string> notes;
    Error error;
    auto store = open_store(copy.path().string(), notes, error);
    REQUIRE(error.what == "");
    CHECK(contents(*store) == expected(1, 11));
    CHECK(fs::file_size(seg) == whole_batches_end);
    CHECK(notes.size() == (cut == whole_batches_end ? 0u : 1u));
    // Appends continue after the cut, and survive another reopen.
    append_n(*store, 11, 13);
    flush(*store);
    store.reset();
    auto again = open_store(copy.path().string(), notes, error);
    REQUIRE(error.what == "");
    CHECK(contents(*again) == expected(1, 13));
    ++cases;
  }
  CHECK(cases == size - whole_batches_end);
}

TEST_CASE("Flipped or zeroed bytes in the last batch end the log there", "[storage][log]") {
  use_backend(GENERATE(true, false));
  TempDir dir;
  {
    auto store = create_store(dir.path().string(), 1 << 20);
    append_n(*store, 1, 11);
    flush(*store);
    append_n(*store, 11, 16);
    flush(*store);
  }
  const std::string seg = files_with(dir.path().string(), ".log").back().string();
  std::string full;
  REQUIRE(read_file(seg, full).what == "");
  const std::size_t last_batch = full.rfind("RBAT");
  std::mt19937 rng(7);
  for (int round = 0; round < 40; ++round) {
    TempDir copy;
    fs::copy(dir.path().string(), copy.path().string(), fs::copy_options::recursive);
    const std::string path = copy.path().string() + "/" + fs::path(seg).filename().string();
    std::string bytes = full;
    if (round % 2 == 0) {
      const std::size_t at = last_batch + rng() % (full.size() - last_batch);
      bytes[at] = static_cast<char>(bytes[at] ^ (1 + rng() % 255));
    } else {
      const std::size_t from = last_batch + rng() % (full.size() - last_batch);
      std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(from), bytes.end(), '\0');
    }
    {
      std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
    std::vector<std::string> notes;
    Error error;
    auto store = open_store(copy.path().string(), notes, error);
    REQUIRE(error.what == "");
    CHECK(contents(*store) == expected(1, 11));
    CHECK(notes.size() == 1);
  }
}

TEST_CASE("Damage before the last batch is reported, never dropped silently", "[storage][log]") {
  use_backend(GENERATE(true, false));
  TempDir dir;
  {
    auto store = create_store(dir.path().string(), 1 << 20);
    for (std::uint64_t i = 1; i <= 30; i += 10) {
      append_n(*store, i, i + 10);
      flush(*store);
    }
  }
  const std::string seg = files_with(dir.path().string(), ".log").back().string();
  std::string full;
  REQUIRE(read_file(seg, full).what == "");
  const std::size_t first_batch = full.find("RBAT");
  const std::size_t second_batch = full.find("RBAT", first_batch + 4);
  for (std::size_t at = first_batch; at < second_batch; at += 7) {
    std::string bytes = full;
    bytes[at] = static_cast<char>(bytes[at] ^ 0x5a);
    {
      std::ofstream(seg, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
    std::vector<std::string> notes;
    Error error;
    auto store = open_store(dir.path().string(), notes, error);
    CHECK(error.what.find("damaged batch") != std::string::npos);
    CHECK(error.damage());
    std::string now;
    REQUIRE(read_file(seg, now).what == "");
    CHECK(now.size() == full.size());  // nothing was truncated
  }
}

TEST_CASE("A small tail cache evicts old nodes and reads them back from the files", "[storage][log]") {
  use_backend(GENERATE(true, false));
  TempDir dir;
  TailCache cache(16 * 1024);
  auto store = create_store(dir.path().string(), 256 * 1024, &cache);
  for (std::uint64_t i = 1; i <= 20000; i += 500) {
    append_n(*store, i, i + 500);
    flush(*store);
    cache.evict();
  }
  CHECK(cache.used() <= 16 * 1024 + 8 * 1024);  // the budget, plus the open node
  CHECK(contents(*store) == expected(1, 20001));
  CHECK(store->erase(StreamId{5, 0}));
  CHECK(store->erase(StreamId{19999, 0}));
  auto want = expected(1, 20001);
  want.erase(want.end() - 2);
  want.erase(want.begin() + 4);
  CHECK(contents(*store) == want);
  flush(*store);
  std::vector<std::string> notes;
  Error error;
  store.reset();
  auto reopened = open_store(dir.path().string(), notes, error, &cache);
  REQUIRE(error.what == "");
  CHECK(contents(*reopened) == want);
}

TEST_CASE("An injected write error fails the batch and leaves the file alone", "[storage][log]") {
  use_backend(GENERATE(true, false));
  TempDir dir;
  const std::string fault = dir.path().string() + "/fault";
  REQUIRE(::setenv("RUNNEL_TEST_IO_FAULT", fault.c_str(), 1) == 0);
  auto store = create_store(dir.path().string() + "/s", 1 << 20);
  append_n(*store, 1, 11);
  flush(*store);
  const auto size = fs::file_size(files_with(dir.path().string() + "/s", ".log").back());
  {
    std::ofstream(fault) << "ENOSPC";
  }
  append_n(*store, 11, 21);
  IoBatch batch;
  store->log()->take_writes(batch.writes);
  const IoResult result = run_batch(std::move(batch));
  fs::remove(fault);
  CHECK(result.error == ENOSPC);
  CHECK_FALSE(result.in_sync);
  CHECK(result.what.find("No space left on device") != std::string::npos);
  CHECK(fs::file_size(files_with(dir.path().string() + "/s", ".log").back()) == size);
}

TEST_CASE("Under its budget the tail cache forgets the nodes that trimming removed", "[storage][log]") {
  use_backend(true);
  TempDir dir;
  TailCache cache(1ull << 30);  // never over budget: nothing is evicted
  auto store = create_store(dir.path().string(), 1 << 20, &cache);
  TrimSpec spec;
  spec.strategy = TrimSpec::Strategy::kMaxLen;
  spec.max_len = 1000;
  spec.approx = true;
  for (std::uint64_t i = 1; i <= 1'000'000; i += 10'000) {
    append_n(*store, i, i + 10'000);
    store->trim(spec);
    flush(*store);
  }
  // 10,000 nodes were closed; about 10 are still in the stream.
  CHECK(store->node_count() < 20);
  CHECK(cache.tracked() < 8192);
}

TEST_CASE("The tail cache's count comes back to zero once the nodes are evicted, trimmed or dropped",
          "[storage][log]") {
  use_backend(GENERATE(true, false));
  TempDir dir;
  TailCache cache(64 * 1024 * 1024);
  {
    auto store = create_store((dir.path() / "a").string(), 256 * 1024, &cache);
    append_n(*store, 1, 3000);  // about 30 nodes
    flush(*store);
    CHECK(cache.used() > 0);
    CHECK(cache.used() < 1024 * 1024);
  }
  // Every byte charged for the dropped store's nodes was given back: before the fix the
  // empty node made for each first append was never charged, so this wrapped below zero.
  CHECK(cache.used() == 0);
  {
    TailCache small(1);  // evicts every closed, written node
    auto store = create_store((dir.path() / "b").string(), 256 * 1024, &small);
    append_n(*store, 1, 3000);
    flush(*store);
    small.evict();
    const std::uint64_t open_node = small.used();
    CHECK(open_node < 64 * 1024);  // only the open node is left
    CHECK(store->trim(TrimSpec{}) == 2999);  // MAXLEN 0: every node goes
    store.reset();
    CHECK(small.used() == 0);
  }
}
