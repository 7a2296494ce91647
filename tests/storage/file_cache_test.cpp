// The cache of open stream files (file.hpp): at most its budget of descriptors open, pins
// that keep one open (also for writes on io_uring), and files that must never be opened
// again (removed, or whose path now names another file). Real files, a real ring.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <string>
#include <vector>

#include <runnel/storage/file.hpp>
#include <runnel/storage/io_queue.hpp>

#include "server_process.hpp"

using namespace runnel::storage;
using runnel::test::TempDir;

namespace {

// The process's open descriptors.
std::size_t descriptors() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

std::shared_ptr<File> make(const TempDir& dir, int i) {
  Error error;
  auto file = open_file((dir.path() / ("f" + std::to_string(i))).string(), true, error);
  REQUIRE(file);
  return file;
}

std::string contents(const std::string& path) {
  std::string text;
  REQUIRE(read_file(path, text).what == "");
  return text;
}

// Submits `batch` and reaps it (at most 30 s).
std::optional<std::pair<IoBatch, IoResult>> run(IoQueue& queue, IoBatch batch) {
  queue.submit(std::move(batch));
  std::optional<std::pair<IoBatch, IoResult>> done;
  for (int i = 0; i < 3000 && !done; ++i) {
    pollfd p{queue.event_fd(), POLLIN, 0};
    REQUIRE(::poll(&p, 1, 10) >= 0);
    done = queue.reap();
  }
  REQUIRE(done);
  return done;
}

// Sets the budget for one test, and puts the default back.
struct Budget {
  explicit Budget(std::size_t n) { set_open_files_budget(n); }
  ~Budget() { set_open_files_budget(0); }
};

}  // namespace

TEST_CASE("The open files cache keeps at most its budget open and reopens a file on use", "[storage][files]") {
  TempDir dir;
  const Budget budget(4);
  const std::size_t before = descriptors();
  std::vector<std::shared_ptr<File>> files;
  for (int i = 0; i < 40; ++i) files.push_back(make(dir, i));
  CHECK(open_files_figures().open <= 4);
  CHECK(descriptors() <= before + 4);
  const std::uint64_t reopened = open_files_figures().reopened;
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 40; ++i) {
      const File::Pin pin = files[i]->pin();
      REQUIRE(pin);
      REQUIRE(write_at(pin.fd(), static_cast<std::uint64_t>(round), std::string(1, static_cast<char>('a' + round))).what == "");
    }
  }
  CHECK(open_files_figures().reopened >= reopened + 70);  // nearly every use found its file closed
  CHECK(open_files_figures().open <= 4);
  for (int i = 0; i < 40; ++i) CHECK(contents(files[i]->path()) == "ab");
  files.clear();
  CHECK(open_files_figures().open == 0);
  CHECK(descriptors() == before);
}

TEST_CASE("A pinned file keeps its descriptor while others take the budget", "[storage][files]") {
  TempDir dir;
  const Budget budget(2);
  auto held = make(dir, 0);
  const File::Pin pin = held->pin();
  REQUIRE(pin);
  struct stat first {};
  REQUIRE(::fstat(pin.fd(), &first) == 0);
  std::vector<std::shared_ptr<File>> others;
  for (int i = 1; i <= 20; ++i) {
    others.push_back(make(dir, i));
    const File::Pin other = others.back()->pin();
    REQUIRE(other);
  }
  struct stat now {};
  REQUIRE(::fstat(pin.fd(), &now) == 0);  // still open, still the same file
  CHECK(now.st_ino == first.st_ino);
  CHECK(write_at(pin.fd(), 0, "held").what == "");
  CHECK(contents(held->path()) == "held");
}

TEST_CASE("A closed file whose path now names another file is never opened again", "[storage][files]") {
  TempDir dir;
  const Budget budget(1);
  auto file = make(dir, 0);
  auto other = make(dir, 1);  // takes the one place: `file` is closed
  { const File::Pin pin = other->pin(); }
  // The path is taken by a new file, as when a stream is deleted and made again.
  const std::string replacement = (dir.path() / "new").string();
  REQUIRE(replace_file(replacement, "someone else's", false).what == "");
  REQUIRE(::rename(replacement.c_str(), file->path().c_str()) == 0);
  const File::Pin pin = file->pin();
  CHECK_FALSE(pin);
  CHECK_FALSE(pin.gone());
  CHECK(pin.error() == ESTALE);
  CHECK(contents(file->path()) == "someone else's");
}

TEST_CASE("A removed file pins as gone once closed, and its writes go nowhere", "[storage][files]") {
  TempDir dir;
  const Budget budget(1);
  auto file = make(dir, 0);
  file->set_removed();
  { const File::Pin pin = file->pin(); CHECK(pin); }  // still open: usable as it is
  auto other = make(dir, 1);
  { const File::Pin pin = other->pin(); }
  const File::Pin pin = file->pin();
  CHECK(pin.gone());
  // A write queued for it before it was removed is done with, not a failure.
  std::string note;
  auto queue = IoQueue::create(true, note);
  IoBatch batch;
  batch.writes.push_back(WriteOp{file, 0, "late", 0});
  batch.inline_ok = false;
  const auto done = run(*queue, std::move(batch));
  CHECK(done->second.error == 0);
  CHECK(contents(file->path()).empty());
}

// A batch of writes to far more files than the budget, on each backend: every write lands,
// and no more descriptors are held than the budget and the ring's share of pins.
TEST_CASE("A batch to more files than the budget writes every one of them", "[storage][files][io]") {
  for (const bool uring : {true, false}) {
    INFO((uring ? "io_uring" : "threads"));
    TempDir dir;
    const Budget budget(8);
    std::vector<std::shared_ptr<File>> files;
    for (int i = 0; i < 300; ++i) files.push_back(make(dir, i));
    std::string note;
    auto queue = IoQueue::create(uring, note);
    IoBatch batch;
    for (int i = 0; i < 300; ++i) batch.writes.push_back(WriteOp{files[i], 0, "entry " + std::to_string(i), 0});
    batch.syncs = files;
    batch.inline_ok = false;
    const auto done = run(*queue, std::move(batch));
    CHECK(done->second.what.empty());
    CHECK(open_files_figures().open <= 8);
    for (int i = 0; i < 300; ++i) CHECK(contents(files[i]->path()) == "entry " + std::to_string(i));
  }
}

// Four threads pin, write through and let go of 32 files under a budget of 4, while a fifth
// makes and drops files of its own: every pin's descriptor is the right file while held
// (its inode is the one first opened), and every write lands. Run under ThreadSanitizer by
// `./dev test --tsan`.
TEST_CASE("Pins from many threads always hold the right file open", "[storage][files]") {
  TempDir dir;
  const Budget budget(4);
  std::vector<std::shared_ptr<File>> files;
  std::vector<ino_t> inodes;
  for (int i = 0; i < 32; ++i) {
    files.push_back(make(dir, i));
    struct stat st {};
    REQUIRE(::stat(files.back()->path().c_str(), &st) == 0);
    inodes.push_back(st.st_ino);
  }
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int n = 0; n < 2000; ++n) {
        const int i = (n * 7 + t * 13) % 32;
        const File::Pin pin = files[i]->pin();
        struct stat st {};
        if (!pin || ::fstat(pin.fd(), &st) != 0 || st.st_ino != inodes[i]) {
          ++wrong;
          continue;
        }
        if (write_at(pin.fd(), static_cast<std::uint64_t>(t), std::string(1, static_cast<char>('a' + t)))) ++wrong;
        if (n % 3 == 0) files[i]->note_dirty();
        if (n % 5 == 0) files[i]->begin_sync();
      }
    });
  }
  threads.emplace_back([&] {
    for (int n = 0; n < 300; ++n) {
      auto own = make(dir, 100 + n % 10);
      const File::Pin pin = own->pin();
      if (!pin) ++wrong;
    }
  });
  for (auto& thread : threads) thread.join();
  CHECK(wrong == 0);
  CHECK(open_files_figures().open <= 4);
  for (int i = 0; i < 32; ++i) CHECK(contents(files[i]->path()) == "abcd");
}
