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

}  // namespace

void append_batch(std::string& out, std::string_view body, std::uint32_t records, std::uint64_t salt) {
  const auto len = static_cast<std::uint32_t>(body.size());
  put_u32(out, kBatchMagic);
  put_u32(out, len);
  put_u32(out, records);
  put_u64(out, XXH3_64bits_withSeed(body.data(), body.size(), batch_seed(len, records) ^ salt));
  out.append(body);
}

BatchReader::Result BatchReader::next(std::string_view& body, int& error) {
  if (pos_ == size_) return Result::kEnd;
  if (!ensure(kBatchHeaderBytes, error)) return error ? Result::kIoError : Result::kBad;
  const char* h = buf_.data() + (pos_ - buf_at_);
  if (get_u32(h) != kBatchMagic) return Result::kBad;
  const std::uint32_t len = get_u32(h + 4);
  const std::uint32_t count = get_u32(h + 8);
  const std::uint64_t sum = get_u64(h + 12);
  if (len > kMaxBatchBody || pos_ + kBatchHeaderBytes + len > size_) return Result::kBad;
  if (!ensure(kBatchHeaderBytes + len, error)) return error ? Result::kIoError : Result::kBad;
  body = std::string_view(buf_.data() + (pos_ - buf_at_) + kBatchHeaderBytes, len);
  if (XXH3_64bits_withSeed(body.data(), body.size(), batch_seed(len, count) ^ salt_) != sum) return Result::kBad;
  batch_at_ = pos_;
  pos_ += kBatchHeaderBytes + len;
  return Result::kBatch;
}

// Makes bytes [pos_, pos_ + n) available in buf_; false at the end of the file or on error.
bool BatchReader::ensure(std::size_t n, int& error) {
  error = 0;
  if (pos_ >= buf_at_ && pos_ + n <= buf_at_ + buf_.size()) return true;
  if (pos_ + n > size_) return false;
  const std::size_t want = std::max<std::size_t>(n, kChunk);
  const auto len = static_cast<std::size_t>(std::min<std::uint64_t>(want, size_ - pos_));
  error = read_at(fd_, pos_, len, buf_);
  buf_at_ = pos_;
  return error == 0 && buf_.size() >= n;
}

bool whole_batch_after(int fd, std::uint64_t from, std::uint64_t size, std::uint64_t salt) {
  std::string chunk;
  constexpr std::size_t kChunk = 1024 * 1024;
  for (std::uint64_t at = from + 1; at + kBatchHeaderBytes <= size;) {
    if (read_at(fd, at, static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, size - at)), chunk) != 0) {
      return false;
    }
    // A search for the magic's bytes ("RBAT"), not a compare at every byte: a fresh
    // write-ahead log ends in megabytes of zeros that every replay scans.
    const std::string_view in(chunk);
    constexpr std::string_view kMagicBytes("RBAT", 4);
    for (std::size_t i = in.find(kMagicBytes); i != std::string_view::npos; i = in.find(kMagicBytes, i + 1)) {
      BatchReader reader(fd, at + i, size, salt);
      std::string_view body;
      int error = 0;
      if (reader.next(body, error) == BatchReader::Result::kBatch) return true;
    }
    if (chunk.size() < 4) break;
    at += chunk.size() - 3;
  }
  return false;
}

std::string cut_torn_tail(int fd, const std::string& path, std::uint64_t good_end, std::uint64_t size,
                          std::vector<std::string>& notes) {
  notes.push_back("truncated the torn tail of " + path + ": " + std::to_string(size - good_end) +
                  " bytes after offset " + std::to_string(good_end));
  if (::ftruncate(fd, static_cast<off_t>(good_end)) != 0 || ::fdatasync(fd) != 0) {
    return "cannot truncate " + path + ": " + std::strerror(errno);
  }
  return {};
}

BatchScan scan_batches(int fd, std::uint64_t from, std::uint64_t size,
                       const std::function<bool(std::uint64_t, std::string_view)>& visit, std::uint64_t salt) {
  BatchScan scan;
  scan.good_end = from;
  BatchReader reader(fd, from, size, salt);
  while (true) {
    std::string_view body;
    int error = 0;
    switch (reader.next(body, error)) {
      case BatchReader::Result::kEnd:
        return scan;
      case BatchReader::Result::kIoError:
        scan.outcome = BatchScan::Outcome::kIoError;
        scan.error = error;
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
