// The I/O queue's overlap: on io_uring a second batch may go while the first waits for its
// fdatasync; batches still come back in the order they went, and a batch that overlapped a
// failed one fails with it. Real files and a real ring.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <runnel/storage/file.hpp>
#include <runnel/storage/io_queue.hpp>

#include "server_process.hpp"

using namespace runnel::storage;

namespace {

using runnel::test::TempDir;

std::shared_ptr<File> open_rw(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0);
  return std::make_shared<File>(fd, path);
}

IoBatch write_and_sync(const std::shared_ptr<File>& file, std::uint64_t offset, std::string bytes) {
  IoBatch batch;
  batch.writes.push_back(WriteOp{file, offset, std::move(bytes), 0});
  batch.syncs.push_back(file);
  return batch;
}

// Reaps until `count` batches came back (at most 10 s), in the order reap() gave them.
std::vector<std::pair<IoBatch, IoResult>> reap_all(IoQueue& queue, std::size_t count) {
  std::vector<std::pair<IoBatch, IoResult>> done;
  for (int i = 0; i < 1000 && done.size() < count; ++i) {
    pollfd p{queue.event_fd(), POLLIN, 0};
    REQUIRE(::poll(&p, 1, 10) >= 0);
    while (auto finished = queue.reap()) done.push_back(std::move(*finished));
  }
  REQUIRE(done.size() == count);
  return done;
}

std::string contents(const std::string& path) {
  std::string text;
  REQUIRE(read_file(path, text).what == "");
  return text;
}

}  // namespace

TEST_CASE("On io_uring a second batch overlaps one waiting for its fdatasync and comes back after it",
          "[storage][io]") {
  TempDir dir;
  std::string note;
  auto queue = IoQueue::create(true, note);
  if (std::string(queue->backend()) != "io_uring") FAIL("io_uring is refused here: " + note);
  const auto file = open_rw((dir.path() / "log").string());
  CHECK_FALSE(queue->can_overlap());  // nothing in flight
  queue->submit(write_and_sync(file, 0, "first;"));
  // Written at submission; its fdatasync is on the ring until reaped.
  REQUIRE(queue->can_overlap());
  queue->submit(write_and_sync(file, 6, "second"));
  CHECK_FALSE(queue->can_overlap());  // two at most
  const auto done = reap_all(*queue, 2);
  CHECK(done[0].first.writes.at(0).bytes == "first;");
  CHECK(done[0].second.error == 0);
  CHECK(done[1].first.writes.at(0).bytes == "second");
  CHECK(done[1].second.error == 0);
  CHECK(contents(file->path()) == "first;second");
  CHECK_FALSE(queue->can_overlap());
}

TEST_CASE("A batch that overlapped a failed one fails with it", "[storage][io]") {
  TempDir dir;
  std::string note;
  auto queue = IoQueue::create(true, note);
  if (std::string(queue->backend()) != "io_uring") FAIL("io_uring is refused here: " + note);
  // fdatasync of a pipe fails (EINVAL): the first batch's sync fails on the ring.
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  ::close(fds[1]);
  IoBatch bad;
  bad.syncs.push_back(std::make_shared<File>(fds[0], "a pipe"));
  queue->submit(std::move(bad));
  REQUIRE(queue->can_overlap());
  const auto file = open_rw((dir.path() / "log").string());
  queue->submit(write_and_sync(file, 0, "after"));
  const auto done = reap_all(*queue, 2);
  CHECK(done[0].second.error != 0);
  CHECK(done[0].second.in_sync);
  CHECK(done[0].second.what.find("a pipe") != std::string::npos);
  // The second's own fdatasync went well, but what the first wrote is in an unknown state.
  CHECK(done[1].first.writes.at(0).bytes == "after");
  CHECK(done[1].second.error == done[0].second.error);
  CHECK(done[1].second.what == done[0].second.what);
}

TEST_CASE("The helper thread runs one batch at a time", "[storage][io]") {
  TempDir dir;
  std::string note;
  auto queue = IoQueue::create(false, note);
  REQUIRE(std::string(queue->backend()) == "threads");
  const auto file = open_rw((dir.path() / "log").string());
  IoBatch batch = write_and_sync(file, 0, "only");
  batch.inline_ok = false;
  queue->submit(std::move(batch));
  CHECK_FALSE(queue->can_overlap());
  const auto done = reap_all(*queue, 1);
  CHECK(done[0].second.error == 0);
  CHECK(contents(file->path()) == "only");
}

TEST_CASE("write_gathered writes more parts than one pwritev takes, in order", "[storage][io]") {
  TempDir dir;
  const auto file = open_rw((dir.path() / "gathered").string());
  std::vector<std::string> parts;
  std::string expected;
  for (int i = 0; i < 2500; ++i) {  // three calls' worth (kGatherMax parts each)
    parts.push_back(i % 7 == 0 ? std::string() : std::to_string(i) + ";");
    expected += parts.back();
  }
  std::vector<std::string_view> views(parts.begin(), parts.end());
  REQUIRE(write_gathered(file->fd(), 3, views).what == "");
  const std::string text = contents(file->path());
  REQUIRE(text.size() == 3 + expected.size());
  CHECK(text.substr(0, 3) == std::string(3, '\0'));
  CHECK(text.substr(3) == expected);
}
