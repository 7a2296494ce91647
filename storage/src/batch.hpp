// Batch framing shared by the segment files and the group journal: a header with a length,
// a record count and an XXH3-64 checksum, then the body (segment_log.hpp draws it). Also the
// recovery scan that tells a torn tail from damage in the middle.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <runnel/storage/error.hpp>

namespace runnel::storage {

inline constexpr std::size_t kBatchHeaderBytes = 20;
inline constexpr std::uint32_t kBatchMagic = 0x54414252;  // "RBAT" little-endian
// A batch body longer than this is taken as damage, never allocated.
inline constexpr std::uint32_t kMaxBatchBody = 1u << 30;

// Appends one framed batch (header, then `body`) to `out`. `salt` goes into the checksum's
// seed: a file reused for new batches (a recycled write-ahead log) salts them with its
// generation, so the old batches left after them no longer check.
void append_batch(std::string& out, std::string_view body, std::uint32_t records, std::uint64_t salt = 0);
// The same framing in place: `framed` holds kBatchHeaderBytes of room, then the body; the
// header is written into the room (no copy of the body).
void frame_batch(std::string& framed, std::uint32_t records, std::uint64_t salt = 0);

// Reads a file (`path`, open as `fd`) front to back in large chunks, handing out whole
// checked batches.
class BatchReader {
 public:
  BatchReader(int fd, const std::string& path, std::uint64_t from, std::uint64_t size, std::uint64_t salt = 0)
      : fd_(fd), path_(path), pos_(from), size_(size), salt_(salt) {}

  enum class Result { kBatch, kEnd, kBad, kIoError };

  // The next batch at pos(); `body` stays valid until the next call. After kIoError, error()
  // says what failed.
  Result next(std::string_view& body);
  [[nodiscard]] std::uint64_t pos() const { return pos_; }
  [[nodiscard]] std::uint64_t batch_at() const { return batch_at_; }
  [[nodiscard]] const Error& error() const { return error_; }

 private:
  bool ensure(std::size_t n);

  static constexpr std::size_t kChunk = 1024 * 1024;
  int fd_;
  const std::string& path_;
  Error error_;
  std::uint64_t pos_;
  std::uint64_t size_;
  std::uint64_t salt_;
  std::string buf_;
  std::uint64_t buf_at_ = 0;
  std::uint64_t batch_at_ = 0;
};

// The recovery scan of [from, size): visits each whole batch (its offset and body) until one
// is bad. A bad batch with no whole batch anywhere after it is a torn tail; with one after
// it, damage. `visit` returns false for a body whose records do not parse.
struct BatchScan {
  enum class Outcome { kClean, kTorn, kDamaged, kMalformed, kIoError };
  Outcome outcome = Outcome::kClean;
  std::uint64_t good_end = 0;  // end of the last whole batch (where a bad one starts)
  Error error;                 // kIoError's cause
};
BatchScan scan_batches(int fd, const std::string& path, std::uint64_t from, std::uint64_t size,
                       const std::function<bool(std::uint64_t, std::string_view)>& visit, std::uint64_t salt = 0);

// Cuts a torn tail: truncates the file at `good_end` and syncs it, noting what went in
// `notes`.
[[nodiscard]] Error cut_torn_tail(int fd, const std::string& path, std::uint64_t good_end, std::uint64_t size,
                                  std::vector<std::string>& notes);

// Whether a whole, checksummed batch starts anywhere after `from`.
bool whole_batch_after(int fd, std::uint64_t from, std::uint64_t size, std::uint64_t salt = 0);

}  // namespace runnel::storage
