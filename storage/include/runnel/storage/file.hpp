// Small POSIX file helpers for the storage formats: an owned descriptor, whole reads and
// writes that retry on EINTR and short transfers, and atomic replacement of a small file.
// Errors are returned as errno values (0 is success); nothing here throws.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>
#include <string_view>

namespace runnel::storage {

// An open file. Shared (std::shared_ptr) between a log and the writes in flight on it, so a
// stream deleted while its batch is being written keeps the descriptor until the write ends.
class File {
 public:
  File(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] const std::string& path() const { return path_; }

  // How many bytes from the start are known written (by the owning shard's I/O completions;
  // used on that thread only).
  [[nodiscard]] std::uint64_t written() const { return written_; }
  void note_written(std::uint64_t end) { written_ = end > written_ ? end : written_; }

  // The file's header, which tells this file from another that later takes its path (the
  // write-ahead log replays a write only into the file it was meant for).
  [[nodiscard]] const std::string& identity() const { return identity_; }
  void set_identity(std::string header) { identity_ = std::move(header); }

 private:
  int fd_;
  std::string path_;
  std::uint64_t written_ = 0;
  std::string identity_;
};

// Opens `path` read-write (creating it when `create`); null and `error` set on failure.
std::shared_ptr<File> open_file(const std::string& path, bool create, int& error);

// Writes all of `bytes` at `offset`; 0 or an errno value.
int write_at(int fd, std::uint64_t offset, std::string_view bytes);
// Writes `parts` one after another from `offset` (pwritev, kGatherMax parts a call); 0 or an
// errno value.
constexpr std::size_t kGatherMax = 1024;  // IOV_MAX on Linux
int write_gathered(int fd, std::uint64_t offset, std::vector<std::string_view> parts);
// Reads up to `length` bytes at `offset` into `out` (resized to what was read: short at the
// end of the file); 0 or an errno value.
int read_at(int fd, std::uint64_t offset, std::size_t length, std::string& out);
// The file's size in bytes, or -1 (errno set).
std::int64_t file_size(int fd);

// Unlinks `paths` and drops `file` (closing it, if this was the last reference) on a
// background thread, so that freeing a big file's pages never stalls the caller.
void discard_file(std::shared_ptr<File> file, std::vector<std::string> paths);
// The same for a whole folder (a deleted stream's, already renamed out of the way): removes
// it and everything in it, then drops `files`, its open files.
void discard_folder(std::string folder, std::vector<std::shared_ptr<File>> files);

// fsync of a directory, so that files created, renamed or removed in it stay so.
int sync_directory(const std::string& dir);
// Replaces `path` with `bytes` atomically (a temporary file, fdatasync, rename, directory
// sync): after a crash the file holds either the old or the new bytes. With `sync` false
// (--fsync no) it neither fdatasyncs nor syncs the directory: the rename stays atomic, the
// kernel writes the file when it writes the rest, and a shard never waits for the disk.
int replace_file(const std::string& path, std::string_view bytes, bool sync = true);
// Reads a whole (small) file; 0 or an errno value.
int read_file(const std::string& path, std::string& out);

// Little-endian fixed-width integers for the on-disk headers.
void put_u32(std::string& out, std::uint32_t v);
void put_u64(std::string& out, std::uint64_t v);
std::uint32_t get_u32(const char* p);
std::uint64_t get_u64(const char* p);

}  // namespace runnel::storage
