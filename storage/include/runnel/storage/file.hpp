// Small POSIX file helpers for the storage formats: an owned descriptor, whole reads and
// writes that retry on EINTR and short transfers, and atomic replacement of a small file.
// Errors are returned as storage::Error, its code the errno (a Pin keeps one); nothing here
// throws.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>
#include <string>
#include <vector>
#include <string_view>

#include <runnel/storage/error.hpp>

namespace runnel::storage {

// A file of the data dir. Shared (std::shared_ptr) between a log and the writes in flight
// on it, so a stream deleted while its batch is being written keeps the file until the
// write ends.
//
// Descriptors: a file made kCached (the streams' segments and group journals, of which there
// may be millions) holds its descriptor only while the process-wide FileCache lets it. The
// cache keeps at most `open_files_budget()` of them open and closes the least recently used
// one (a clock) when another must open. Every use of the descriptor goes through a Pin,
// which opens it again if it was closed and keeps it open while held: a write queued to
// io_uring holds its Pin until the completion is reaped. A file made kAlwaysOpen (the
// write-ahead log) keeps its descriptor for its life and is used through fd().
//
// A reopened descriptor must be the same file: the inode seen at the first open is checked
// (a stream's folder may be renamed to the trash and a new stream made at its path). A file
// whose stream was deleted, whose segment was trimmed or whose journal was replaced is
// marked removed: it is never opened again, and a Pin on it, once closed, is `gone()`:
// there is nothing left to write to, and nothing is lost by not writing. fdatasync through
// a reopened descriptor syncs the same inode's dirty pages, and Linux (4.16 and later)
// reports a writeback error to the first fsync of a descriptor opened after it, if no one
// has seen it yet. That error lives in the inode, which the kernel may drop once no
// descriptor holds it: so a file written since its last fdatasync (dirty) is closed only
// when every other candidate is pinned or dirty too (under --fsync no, where nothing is
// synced, that is every file).
//
// Concurrency: any thread may pin (the shard, its I/O helper, its background writer, the
// Discarder). Pins of an open file take one of 64 striped locks, never the cache's lock.
class File {
 public:
  enum class Mode { kCached, kAlwaysOpen };
  File(int fd, std::string path, Mode mode = Mode::kAlwaysOpen);
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  // Holds the file's descriptor open. Move-only; the File must outlive it.
  class Pin {
   public:
    Pin() = default;
    Pin(Pin&& other) noexcept { *this = std::move(other); }
    Pin& operator=(Pin&& other) noexcept;
    ~Pin() { release(); }
    Pin(const Pin&) = delete;
    Pin& operator=(const Pin&) = delete;

    [[nodiscard]] int fd() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    // The file is removed and closed: writes and syncs to it are done with (not an error).
    [[nodiscard]] bool gone() const { return fd_ < 0 && error_ == 0; }
    // Why the file could not be opened again (an errno value), when !*this and !gone().
    [[nodiscard]] int error() const { return error_; }

   private:
    friend class File;
    void release();
    File* file_ = nullptr;
    int fd_ = -1;
    int error_ = 0;
  };
  [[nodiscard]] Pin pin() { return pin(false); }
  // A pin to write through: the file is dirty from now until an fdatasync begins.
  [[nodiscard]] Pin pin_to_write() { return pin(true); }

  // The descriptor of a kAlwaysOpen file.
  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] const std::string& path() const { return path_; }

  // The file no longer belongs to its stream (see the class comment). Call on the owning
  // shard, before its folder is renamed or its path is reused.
  void set_removed();

  // An fdatasync calls begin_sync() before it starts, and note_dirty() again if it fails.
  void note_dirty();
  void begin_sync();

  // How many bytes from the start are known written: the I/O completions report each range
  // they wrote, and this is where the written ranges stop being contiguous. A stream RENAMEd
  // to another shard has writes completing on both shards, in any order: a later range done
  // first waits (in ahead_) for the earlier one. Read with acquire: a reader that sees a
  // length sees the bytes.
  [[nodiscard]] std::uint64_t written() const { return written_.load(std::memory_order_acquire); }
  void note_written(std::uint64_t from, std::uint64_t end);

  // The file's header, which tells this file from another that later takes its path (the
  // write-ahead log replays a write only into the file it was meant for).
  [[nodiscard]] const std::string& identity() const { return identity_; }
  void set_identity(std::string header) { identity_ = std::move(header); }

 private:
  friend class FileCache;
  Pin pin(bool write);
  int fd_;  // under the file's stripe lock for kCached files
  std::string path_;
  std::atomic<std::uint64_t> written_{0};
  // Ranges done past written_, under the stripe lock; allocated only when one comes early
  // (a file has one per stream, and a million streams are a million files).
  std::unique_ptr<std::vector<std::pair<std::uint64_t, std::uint64_t>>> ahead_;
  std::string identity_;
  std::uint64_t device_ = 0;  // the inode seen at the first open
  std::uint64_t inode_ = 0;
  std::uint32_t pins_ = 0;    // under the stripe lock
  Mode mode_;
  bool referenced_ = true;    // used since the clock hand last passed (under the stripe lock)
  bool removed_ = false;      // under the stripe lock
  bool dirty_ = false;        // written since the last fdatasync began (under the stripe lock)
  // The cache's list of open kCached files (under the cache's lock).
  File* prev_ = nullptr;
  File* next_ = nullptr;
  bool listed_ = false;
};

// The process-wide budget of kCached descriptors (0: none set, 1024). A pin past it closes
// unpinned files, least recently used first; pinned files may take it past, briefly.
void set_open_files_budget(std::size_t budget);
[[nodiscard]] std::size_t open_files_budget();
// Big removed files that wait, held open, for the background thread to cut them: at most
// this many (a quarter of the budget, 2 to 32); past it they are closed as they go.
[[nodiscard]] std::size_t discard_pins_most();
// kCached files open now, and how often one was opened again after the cache closed it.
struct OpenFilesFigures {
  std::size_t open = 0;
  std::uint64_t reopened = 0;
  std::uint64_t closed = 0;
};
[[nodiscard]] OpenFilesFigures open_files_figures();

// Opens `path` read-write (creating it when `create`); null and `error` set on failure
// ("cannot open <path>: <errno text>").
std::shared_ptr<File> open_file(const std::string& path, bool create, Error& error,
                                File::Mode mode = File::Mode::kCached);

// Writes all of `bytes` at `offset`. A write that makes no progress fails with EIO.
[[nodiscard]] Error write_at(int fd, std::uint64_t offset, std::string_view bytes);
// Writes `parts` one after another from `offset` (pwritev, kGatherMax parts a call).
constexpr std::size_t kGatherMax = 1024;  // IOV_MAX on Linux
[[nodiscard]] Error write_gathered(int fd, std::uint64_t offset, std::vector<std::string_view> parts);
// Reads up to `length` bytes at `offset` into `out` (resized to what was read: short at the
// end of the file).
[[nodiscard]] Error read_at(int fd, std::uint64_t offset, std::size_t length, std::string& out);
// The file's size in bytes, or -1 (errno set).
std::int64_t file_size(int fd);

// Removes a file: `paths` (its own and any companion's, e.g. a segment's index) are unlinked
// here, at once, while they surely name it (a later stream could take them); `file` is
// marked removed, held open, and cut down and closed on a background thread, so freeing a
// big file's blocks never stalls the caller.
void discard_file(std::shared_ptr<File> file, const std::vector<std::string>& paths);
// The same for a whole folder (a deleted stream's, already renamed out of the way): removes
// it and everything in it, then drops `files`, its open files.
void discard_folder(std::string folder, std::vector<std::shared_ptr<File>> files);

// fsync of a directory, so that files created, renamed or removed in it stay so. A failure
// reads "cannot sync <dir>: ...".
[[nodiscard]] Error sync_directory(const std::string& dir);
// Replaces `path` with `bytes` atomically (a temporary file, fdatasync, rename, directory
// sync): after a crash the file holds either the old or the new bytes. With `sync` false
// (--fsync no) it neither fdatasyncs nor syncs the directory: the rename stays atomic, the
// kernel writes the file when it writes the rest, and a shard never waits for the disk.
// A failure of any step reads "cannot write <path>: ...".
[[nodiscard]] Error replace_file(const std::string& path, std::string_view bytes, bool sync = true);
// Reads a whole (small) file. A failure reads "cannot read <path>: ...".
[[nodiscard]] Error read_file(const std::string& path, std::string& out);

// Little-endian fixed-width integers for the on-disk headers.
void put_u32(std::string& out, std::uint32_t v);
void put_u64(std::string& out, std::uint64_t v);
std::uint32_t get_u32(const char* p);
std::uint64_t get_u64(const char* p);

}  // namespace runnel::storage
