// POSIX helpers of file.hpp.
#include <runnel/storage/file.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace runnel::storage {
namespace {

// The Error of the system call that just failed: errno is read before anything else runs.
Error last_error(const char* doing, const std::string& path) {
  const int code = errno;
  return system_error(doing, path, code);
}

}  // namespace

// The process-wide cache of kCached descriptors (file.hpp): a circular list of the open
// ones, swept by a clock hand. Locks: a file's stripe, then the cache's mutex; the sweep,
// under the cache's mutex, only try_locks stripes (or uses the one its caller holds), so no
// two threads wait on each other.
class FileCache {
 public:
  static FileCache& instance() {
    // Never destroyed: Files dropped by other statics' destructors (the Discarder's) still
    // find it.
    static FileCache* const cache = new FileCache;
    return *cache;
  }
  std::mutex& stripe(const File* f) {
    return stripes_[(reinterpret_cast<std::uintptr_t>(f) >> 6) % kStripes];
  }
  // `f` has just opened (its stripe, `held`, is locked, or it is being made): listed, and
  // unpinned files are closed while the budget is passed.
  void opened(File* f, std::mutex* held) {
    Closing closing;
    {
      std::lock_guard lock(mutex_);
      insert(f);
      sweep(budget_.load(std::memory_order_relaxed), held, closing);
    }
  }
  // Whether more are open than the budget (pins held past it, now let go).
  [[nodiscard]] bool over_budget() const {
    return open_now_.load(std::memory_order_relaxed) > budget_.load(std::memory_order_relaxed);
  }
  void trim() {
    Closing closing;
    std::lock_guard lock(mutex_);
    sweep(budget_.load(std::memory_order_relaxed), nullptr, closing);
  }
  // An open failed for lack of descriptors: closes at least one unpinned file.
  void make_room(std::mutex* held) {
    Closing closing;
    std::lock_guard lock(mutex_);
    if (open_ > 0) sweep(open_ - 1, held, closing);
  }
  // `f` is being destroyed: unlisted (its descriptor is the caller's to close).
  void forget(File* f) {
    std::lock_guard lock(mutex_);
    if (f->listed_) unlist(f);
  }
  void note_reopened() { reopened_.fetch_add(1, std::memory_order_relaxed); }
  void set_budget(std::size_t budget) { budget_.store(budget == 0 ? kDefaultBudget : budget); }
  [[nodiscard]] std::size_t budget() const { return budget_.load(std::memory_order_relaxed); }
  OpenFilesFigures figures() {
    std::lock_guard lock(mutex_);
    return {open_, reopened_.load(std::memory_order_relaxed), closed_};
  }

 private:
  static constexpr std::size_t kStripes = 64;
  static constexpr std::size_t kDefaultBudget = 1024;

  // Descriptors the sweep took, closed once the locks are let go (declared before the lock
  // guard, so destroyed after it): a close can block (the last close of an unlinked file
  // frees its blocks), and no other thread waits on it.
  struct Closing {
    std::vector<int> fds;
    ~Closing() {
      for (const int fd : fds) ::close(fd);
    }
  };

  void insert(File* f) {
    if (hand_ == nullptr) {
      f->prev_ = f->next_ = f;
      hand_ = f;
    } else {  // just behind the hand: the last it reaches
      f->next_ = hand_;
      f->prev_ = hand_->prev_;
      hand_->prev_->next_ = f;
      hand_->prev_ = f;
    }
    f->listed_ = true;
    open_now_.store(++open_, std::memory_order_relaxed);
  }
  void unlist(File* f) {
    if (f->next_ == f) {
      hand_ = nullptr;
    } else {
      f->prev_->next_ = f->next_;
      f->next_->prev_ = f->prev_;
      if (hand_ == f) hand_ = f->next_;
    }
    f->prev_ = f->next_ = nullptr;
    f->listed_ = false;
    open_now_.store(--open_, std::memory_order_relaxed);
  }
  // Closes unpinned files not used since the hand last passed them while more than
  // `target` are open: clean ones first (two turns of the clock at most), then, if that
  // was not enough, dirty ones too (file.hpp says why).
  void sweep(std::size_t target, std::mutex* held, Closing& closing) {
    sweep_once(target, held, false, closing);
    if (open_ > target) sweep_once(target, held, true, closing);
  }
  void sweep_once(std::size_t target, std::mutex* held, bool dirty_too, Closing& closing) {
    for (std::size_t steps = 2 * open_ + 1; open_ > target && hand_ != nullptr && steps > 0; --steps) {
      File* f = hand_;
      std::mutex& m = stripe(f);
      const bool mine = &m == held;
      if (!mine && !m.try_lock()) {
        hand_ = f->next_;
        continue;
      }
      if (f->pins_ == 0 && !f->referenced_ && (dirty_too || !f->dirty_)) {
        unlist(f);
        closing.fds.push_back(f->fd_);
        f->fd_ = -1;
        ++closed_;
      } else {
        f->referenced_ = false;
        hand_ = f->next_;
      }
      if (!mine) m.unlock();
    }
  }

  std::mutex mutex_;
  File* hand_ = nullptr;  // the open files, a circle; the hand is the next to look at
  std::size_t open_ = 0;
  std::uint64_t closed_ = 0;
  std::atomic<std::size_t> open_now_{0};  // open_, for a look without the lock
  std::atomic<std::size_t> budget_{kDefaultBudget};
  std::atomic<std::uint64_t> reopened_{0};
  std::array<std::mutex, kStripes> stripes_;
};

File::File(int fd, std::string path, Mode mode) : fd_(fd), path_(std::move(path)), mode_(mode) {
  if (mode_ != Mode::kCached) return;
  struct stat st {};
  if (::fstat(fd_, &st) == 0) {
    device_ = st.st_dev;
    inode_ = st.st_ino;
  }
  FileCache::instance().opened(this, nullptr);
}

File::~File() {
  if (mode_ == Mode::kCached) FileCache::instance().forget(this);
  if (fd_ >= 0) ::close(fd_);
}

File::Pin File::pin(bool write) {
  Pin pin;
  if (mode_ != Mode::kCached) {
    pin.fd_ = fd_;
    return pin;
  }
  FileCache& cache = FileCache::instance();
  std::mutex& m = cache.stripe(this);
  std::lock_guard lock(m);
  if (fd_ < 0) {
    if (removed_) return pin;  // gone
    int fd = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
      cache.make_room(&m);
      fd = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
    }
    if (fd < 0) {
      pin.error_ = errno;
      return pin;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || st.st_dev != device_ || st.st_ino != inode_) {
      ::close(fd);  // another file now has the path: never write into it
      pin.error_ = ESTALE;
      return pin;
    }
    fd_ = fd;
    ++pins_;  // before it is listed, so the sweep passes it over
    referenced_ = true;
    cache.opened(this, &m);
    cache.note_reopened();
  } else {
    ++pins_;
    referenced_ = true;
  }
  if (write) dirty_ = true;
  pin.file_ = this;
  pin.fd_ = fd_;
  return pin;
}

File::Pin& File::Pin::operator=(Pin&& other) noexcept {
  if (this != &other) {
    release();
    file_ = std::exchange(other.file_, nullptr);
    fd_ = std::exchange(other.fd_, -1);
    error_ = std::exchange(other.error_, 0);
  }
  return *this;
}

void File::Pin::release() {
  if (file_ == nullptr) return;
  FileCache& cache = FileCache::instance();
  {
    std::lock_guard lock(cache.stripe(file_));
    --file_->pins_;
  }
  file_ = nullptr;
  fd_ = -1;
  if (cache.over_budget()) cache.trim();  // pins took it past the budget: back under it
}

void File::note_dirty() {
  if (mode_ != Mode::kCached) return;
  std::lock_guard lock(FileCache::instance().stripe(this));
  dirty_ = true;
}

void File::begin_sync() {
  if (mode_ != Mode::kCached) return;
  std::lock_guard lock(FileCache::instance().stripe(this));
  dirty_ = false;
}

void File::set_removed() {
  if (mode_ != Mode::kCached) return;
  std::lock_guard lock(FileCache::instance().stripe(this));
  removed_ = true;
}

void set_open_files_budget(std::size_t budget) { FileCache::instance().set_budget(budget); }
std::size_t discard_pins_most() { return std::clamp<std::size_t>(open_files_budget() / 4, 2, 32); }
std::size_t open_files_budget() { return FileCache::instance().budget(); }
OpenFilesFigures open_files_figures() { return FileCache::instance().figures(); }

std::shared_ptr<File> open_file(const std::string& path, bool create, Error& error, File::Mode mode) {
  const int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
  int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0 && mode == File::Mode::kCached && (errno == EMFILE || errno == ENFILE)) {
    // The clients took the rest: the cache gives one back.
    FileCache::instance().make_room(nullptr);
    fd = ::open(path.c_str(), flags, 0644);
  }
  if (fd < 0) {
    error = system_error("cannot open", path, errno);
    return nullptr;
  }
  error = {};
  return std::make_shared<File>(fd, path, mode);
}

Error write_at(int fd, std::uint64_t offset, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_error("write failed", {});
    }
    if (n == 0) return system_error("write failed", {}, EIO);
    bytes.remove_prefix(static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
  return {};
}

Error write_gathered(int fd, std::uint64_t offset, std::vector<std::string_view> parts) {
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
      return last_error("write failed", {});
    }
    if (n == 0) return system_error("write failed", {}, EIO);
    offset += static_cast<std::uint64_t>(n);
    // Skips what went (a short write leaves part of one part).
    auto left = static_cast<std::size_t>(n);
    while (first < parts.size() && left >= parts[first].size()) left -= parts[first++].size();
    if (first < parts.size()) parts[first].remove_prefix(left);
  }
  return {};
}

Error read_at(int fd, std::uint64_t offset, std::size_t length, std::string& out) {
  out.resize(length);
  std::size_t done = 0;
  while (done < length) {
    const ssize_t n = ::pread(fd, out.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_error("read failed", {});
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  out.resize(done);
  return {};
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
  static constexpr off_t kShrinkStep = 4 * 1024 * 1024;
  [[nodiscard]] std::size_t pinned() const { return pinned_.load(std::memory_order_relaxed); }

  void add(std::vector<std::shared_ptr<File>> files, File::Pin pin, std::string folder = {}) {
    if (pin) pinned_.fetch_add(1, std::memory_order_relaxed);
    {
      std::lock_guard lock(mutex_);
      queue_.push_back({std::move(files), std::move(pin), std::move(folder)});
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
    File::Pin pin;  // an unlinked file, open for its cut (released before `files`)
    std::string folder;
  };
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
      if (job.pin) {
        shrink(job.pin.fd());
        job.pin = File::Pin();
        pinned_.fetch_sub(1, std::memory_order_relaxed);
      }
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
  std::atomic<std::size_t> pinned_{0};  // jobs holding a file open
  bool stop_ = false;
  std::thread thread_;  // last: started once the members above exist
};

}  // namespace

void discard_file(std::shared_ptr<File> file, const std::vector<std::string>& paths) {
  // A big file stays open for its cut, and its blocks are freed at the last close, after
  // it. A small one needs no cut; and past a few dozen waiting, no more are held open (a
  // retention pass over many streams must not take every descriptor).
  Discarder& discarder = Discarder::instance();
  File::Pin pin = file->pin();
  struct stat st {};
  if (pin && (discarder.pinned() >= discard_pins_most() || ::fstat(pin.fd(), &st) != 0 ||
              st.st_size <= Discarder::kShrinkStep)) {
    pin = File::Pin();
  }
  for (const std::string& path : paths) ::unlink(path.c_str());
  file->set_removed();
  discarder.add({std::move(file)}, std::move(pin));
}

void discard_folder(std::string folder, std::vector<std::shared_ptr<File>> files) {
  Discarder::instance().add(std::move(files), File::Pin(), std::move(folder));
}

Error sync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return last_error("cannot sync", dir);
  const int rc = ::fsync(fd) == 0 ? 0 : errno;
  ::close(fd);
  return rc == 0 ? Error{} : system_error("cannot sync", dir, rc);
}

void File::note_written(std::uint64_t from, std::uint64_t end) {
  std::lock_guard lock(FileCache::instance().stripe(this));
  std::uint64_t done = written_.load(std::memory_order_relaxed);
  if (from > done) {
    if (!ahead_) ahead_ = std::make_unique<std::vector<std::pair<std::uint64_t, std::uint64_t>>>();
    ahead_->emplace_back(from, end);
    return;
  }
  done = std::max(done, end);
  // Ranges that waited for this one.
  for (bool grew = ahead_ != nullptr; grew;) {
    grew = false;
    for (std::size_t i = 0; i < ahead_->size();) {
      auto& range = (*ahead_)[i];
      if (range.first <= done) {
        done = std::max(done, range.second);
        range = ahead_->back();
        ahead_->pop_back();
        grew = true;
      } else {
        ++i;
      }
    }
  }
  if (ahead_ && ahead_->empty()) ahead_.reset();
  written_.store(done, std::memory_order_release);
}

Error replace_file(const std::string& path, std::string_view bytes, bool sync) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return last_error("cannot write", path);
  int rc = write_at(fd, 0, bytes).code;
  if (rc == 0 && sync && ::fdatasync(fd) != 0) rc = errno;
  ::close(fd);
  if (rc == 0 && ::rename(tmp.c_str(), path.c_str()) != 0) rc = errno;
  if (rc == 0 && sync) {
    const auto slash = path.find_last_of('/');
    rc = sync_directory(slash == std::string::npos ? "." : path.substr(0, slash)).code;
  } else if (rc != 0) {
    ::unlink(tmp.c_str());
  }
  return rc == 0 ? Error{} : system_error("cannot write", path, rc);
}

Error read_file(const std::string& path, std::string& out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return last_error("cannot read", path);
  const std::int64_t size = file_size(fd);
  const int rc = size < 0 ? errno : read_at(fd, 0, static_cast<std::size_t>(size), out).code;
  ::close(fd);
  return rc == 0 ? Error{} : system_error("cannot read", path, rc);
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
