// Batch framing and the recovery scan (batch.hpp).
#include "batch.hpp"

#include <xxhash.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <runnel/storage/file.hpp>

namespace runnel::storage {
namespace {

std::uint64_t batch_seed(std::uint32_t len, std::uint32_t count) {
  return static_cast<std::uint64_t>(len) | (static_cast<std::uint64_t>(count) << 32);
}

// Whether `body` is the body the batch header at `h` describes (its checksum matches).
bool body_checks(const char* h, std::string_view body, std::uint64_t salt) {
  const auto len = static_cast<std::uint32_t>(body.size());
  return XXH3_64bits_withSeed(body.data(), body.size(), batch_seed(len, get_u32(h + 8)) ^ salt) == get_u64(h + 12);
}

}  // namespace

namespace {

std::string batch_header(std::string_view body, std::uint32_t records, std::uint64_t salt) {
  const auto len = static_cast<std::uint32_t>(body.size());
  std::string h;
  put_u32(h, kBatchMagic);
  put_u32(h, len);
  put_u32(h, records);
  put_u64(h, XXH3_64bits_withSeed(body.data(), body.size(), batch_seed(len, records) ^ salt));
  return h;
}

}  // namespace

void append_batch(std::string& out, std::string_view body, std::uint32_t records, std::uint64_t salt) {
  out += batch_header(body, records, salt);
  out.append(body);
}

void frame_batch(std::string& framed, std::uint32_t records, std::uint64_t salt) {
  const std::string h = batch_header(std::string_view(framed).substr(kBatchHeaderBytes), records, salt);
  framed.replace(0, kBatchHeaderBytes, h);
}

BatchReader::Result BatchReader::next(std::string_view& body) {
  if (pos_ == size_) return Result::kEnd;
  if (!ensure(kBatchHeaderBytes)) return error_ ? Result::kIoError : Result::kBad;
  const char* h = buf_.data() + (pos_ - buf_at_);
  if (get_u32(h) != kBatchMagic) return Result::kBad;
  const std::uint32_t len = get_u32(h + 4);
  if (len > kMaxBatchBody || pos_ + kBatchHeaderBytes + len > size_) return Result::kBad;
  if (!ensure(kBatchHeaderBytes + len)) return error_ ? Result::kIoError : Result::kBad;
  body = std::string_view(buf_.data() + (pos_ - buf_at_) + kBatchHeaderBytes, len);
  if (!body_checks(buf_.data() + (pos_ - buf_at_), body, salt_)) return Result::kBad;
  batch_at_ = pos_;
  pos_ += kBatchHeaderBytes + len;
  return Result::kBatch;
}

// Makes bytes [pos_, pos_ + n) available in buf_; false at the end of the file or on error.
bool BatchReader::ensure(std::size_t n) {
  if (pos_ >= buf_at_ && pos_ + n <= buf_at_ + buf_.size()) return true;
  if (pos_ + n > size_) return false;
  const std::size_t want = std::max<std::size_t>(n, kChunk);
  const auto len = static_cast<std::size_t>(std::min<std::uint64_t>(want, size_ - pos_));
  if (const Error read = read_at(fd_, pos_, len, buf_)) {
    error_ = system_error("cannot read", path_, read.code);
    return false;
  }
  buf_at_ = pos_;
  return buf_.size() >= n;
}

bool whole_batch_after(int fd, std::uint64_t from, std::uint64_t size, std::uint64_t salt) {
  // One pass over the file, in chunks. A candidate (the magic's bytes, "RBAT") whose batch
  // lies within the chunk is checked where it is; one that runs past the chunk is read once,
  // by itself. So the search reads the file about once, plus the candidates' own bodies: a
  // write-ahead log is full of candidates (each record carries a stream's batches, and a
  // recycled file its old generations' batches), and a fresh reader per candidate read 1 MiB
  // each time, which made a start after a crash read a 16 MiB log some 1,000 times over.
  constexpr std::size_t kChunk = 4 * 1024 * 1024;
  constexpr std::string_view kMagicBytes("RBAT", 4);
  std::string chunk;
  std::string body;
  for (std::uint64_t at = from + 1; at + kBatchHeaderBytes <= size;) {
    if (read_at(fd, at, static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, size - at)), chunk)) {
      return false;
    }
    const std::string_view in(chunk);
    // A header that does not fit in this chunk is looked at in the next, which starts
    // within kBatchHeaderBytes of this one's end.
    for (std::size_t i = in.find(kMagicBytes); i != std::string_view::npos && i + kBatchHeaderBytes <= in.size();
         i = in.find(kMagicBytes, i + 1)) {
      const char* h = in.data() + i;
      const std::uint32_t len = get_u32(h + 4);
      const std::uint32_t count = get_u32(h + 8);
      const std::uint64_t begin = at + i + kBatchHeaderBytes;
      // Every record takes at least a byte, so a count above the length is no batch.
      if (len > kMaxBatchBody || count > len || begin + len > size) continue;
      std::string_view candidate;
      if (i + kBatchHeaderBytes + len <= in.size()) {
        candidate = in.substr(i + kBatchHeaderBytes, len);
      } else {
        if (read_at(fd, begin, len, body) || body.size() != len) continue;
        candidate = body;
      }
      if (body_checks(h, candidate, salt)) return true;
    }
    if (chunk.size() < kChunk) break;  // the end of the file
    at += chunk.size() - (kBatchHeaderBytes - 1);
  }
  return false;
}

Error cut_torn_tail(int fd, const std::string& path, std::uint64_t good_end, std::uint64_t size,
                    std::vector<std::string>& notes) {
  // A file shorter than its header (an empty segment whose header was just rewritten) has
  // nothing to cut: said so, rather than as a count that wraps below zero.
  if (size > good_end) {
    notes.push_back("truncated the torn tail of " + path + ": " + std::to_string(size - good_end) +
                    " bytes after offset " + std::to_string(good_end));
  } else {
    notes.push_back("restored the torn header of " + path + " (the file had " + std::to_string(size) + " bytes)");
  }
  if (::ftruncate(fd, static_cast<off_t>(good_end)) != 0 || ::fdatasync(fd) != 0) {
    const int code = errno;
    return system_error("cannot truncate", path, code);
  }
  return {};
}

BatchScan scan_batches(int fd, const std::string& path, std::uint64_t from, std::uint64_t size,
                       const std::function<bool(std::uint64_t, std::string_view)>& visit, std::uint64_t salt) {
  BatchScan scan;
  scan.good_end = from;
  BatchReader reader(fd, path, from, size, salt);
  while (true) {
    std::string_view body;
    switch (reader.next(body)) {
      case BatchReader::Result::kEnd:
        return scan;
      case BatchReader::Result::kIoError:
        scan.outcome = BatchScan::Outcome::kIoError;
        scan.error = reader.error();
        return scan;
      case BatchReader::Result::kBad:
        scan.outcome = whole_batch_after(fd, reader.pos(), size, salt) ? BatchScan::Outcome::kDamaged
                                                                  : BatchScan::Outcome::kTorn;
        return scan;
      case BatchReader::Result::kBatch:
        if (!visit(reader.batch_at(), body)) {
          scan.outcome = BatchScan::Outcome::kMalformed;
          return scan;
        }
        scan.good_end = reader.pos();
        break;
    }
  }
}

}  // namespace runnel::storage
