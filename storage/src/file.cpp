// POSIX helpers of file.hpp.
#include <runnel/storage/file.hpp>

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace runnel::storage {

File::~File() {
  if (fd_ >= 0) ::close(fd_);
}

std::shared_ptr<File> open_file(const std::string& path, bool create, int& error) {
  const int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
  const int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) {
    error = errno;
    return nullptr;
  }
  error = 0;
  return std::make_shared<File>(fd, path);
}

int write_at(int fd, std::uint64_t offset, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    bytes.remove_prefix(static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
  return 0;
}

int write_gathered(int fd, std::uint64_t offset, std::vector<std::string_view> parts) {
  std::size_t first = 0;  // parts before this one are written
  while (first < parts.size()) {
    iovec iov[kGatherMax];
    std::size_t count = 0;
    for (std::size_t i = first; i < parts.size() && count < kGatherMax; ++i) {
      if (parts[i].empty()) continue;
      iov[count++] = iovec{const_cast<char*>(parts[i].data()), parts[i].size()};
    }
    if (count == 0) break;
    const ssize_t n = ::pwritev(fd, iov, static_cast<int>(count), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    offset += static_cast<std::uint64_t>(n);
    // Skips what went (a short write leaves part of one part).
    auto left = static_cast<std::size_t>(n);
    while (first < parts.size() && left >= parts[first].size()) left -= parts[first++].size();
    if (first < parts.size()) parts[first].remove_prefix(left);
  }
  return 0;
}

int read_at(int fd, std::uint64_t offset, std::size_t length, std::string& out) {
  out.resize(length);
  std::size_t done = 0;
  while (done < length) {
    const ssize_t n = ::pread(fd, out.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  out.resize(done);
  return 0;
}

std::int64_t file_size(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return -1;
  return static_cast<std::int64_t>(st.st_size);
}

namespace {

// One thread for the whole process, started at the first discard, that unlinks and closes.
// A big file is first cut down kShrinkStep at a time, with a pause between cuts: freeing a
// big file's blocks in one go (an unlink of a deleted stream's segments) makes one long
// journal commit, which (with the disk mounted `discard`, as here) held every fsync on the
// disk behind it for 10-20 ms; latency at --fsync always, p99.9 10-19 ms with a deletion
// of a few hundred MiB under way against 3.6-4.4 ms without.
class Discarder {
 public:
  static Discarder& instance() {
    static Discarder d;
    return d;
  }
  void add(std::vector<std::shared_ptr<File>> files, std::vector<std::string> paths, std::string folder = {}) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back({std::move(files), std::move(paths), std::move(folder)});
    }
    cv_.notify_one();
  }
  ~Discarder() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }

 private:
  struct Job {
    std::vector<std::shared_ptr<File>> files;
    std::vector<std::string> paths;
    std::string folder;
  };
  static constexpr off_t kShrinkStep = 4 * 1024 * 1024;
  static constexpr auto kShrinkPause = std::chrono::milliseconds(5);

  // Cuts the file at `fd` down to nothing, a step at a time (no pauses once stopping).
  void shrink(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return;
    for (off_t size = st.st_size; size > kShrinkStep;) {
      size -= kShrinkStep;
      if (::ftruncate(fd, size) != 0) return;
      std::unique_lock lock(mutex_);
      cv_.wait_for(lock, kShrinkPause, [&] { return stop_; });
    }
  }
  void shrink_path(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return;
    shrink(fd);
    ::close(fd);
  }
  Discarder() : thread_([this] { run(); }) {}
  void run() {
    std::unique_lock lock(mutex_);
    while (true) {
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      Job job = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      for (const auto& file : job.files) {
        if (file) shrink(file->fd());
      }
      for (const std::string& path : job.paths) ::unlink(path.c_str());
      if (!job.folder.empty()) {
        std::error_code ec;
        for (const auto& entry : std::filesystem::recursive_directory_iterator(job.folder, ec)) {
          if (entry.is_regular_file(ec)) shrink_path(entry.path().string());
        }
        std::filesystem::remove_all(job.folder, ec);  // what stays is cleared at the next start
      }
      job.files.clear();
      lock.lock();
    }
  }
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stop_ = false;
  std::thread thread_;  // last: started once the members above exist
};

}  // namespace

void discard_file(std::shared_ptr<File> file, std::vector<std::string> paths) {
  Discarder::instance().add({std::move(file)}, std::move(paths));
}

void discard_folder(std::string folder, std::vector<std::shared_ptr<File>> files) {
  Discarder::instance().add(std::move(files), {}, std::move(folder));
}

int sync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  const int rc = ::fsync(fd) == 0 ? 0 : errno;
  ::close(fd);
  return rc;
}

int replace_file(const std::string& path, std::string_view bytes, bool sync) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  int rc = write_at(fd, 0, bytes);
  if (rc == 0 && sync && ::fdatasync(fd) != 0) rc = errno;
  ::close(fd);
  if (rc == 0 && ::rename(tmp.c_str(), path.c_str()) != 0) rc = errno;
  if (rc != 0) {
    ::unlink(tmp.c_str());
    return rc;
  }
  const auto slash = path.find_last_of('/');
  return sync ? sync_directory(slash == std::string::npos ? "." : path.substr(0, slash)) : 0;
}

int read_file(const std::string& path, std::string& out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  const std::int64_t size = file_size(fd);
  const int rc = size < 0 ? errno : read_at(fd, 0, static_cast<std::size_t>(size), out);
  ::close(fd);
  return rc;
}

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint32_t get_u32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::uint64_t get_u64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

}  // namespace runnel::storage
