// EntryStore: where a stream's entries live. The broker owns stream semantics (ID rules,
// trimming policy, groups); a store only keeps entries in ID order and finds them again.
// The implementation is LogEntryStore: nodes in memory, backed by segment files.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <runnel/storage/error.hpp>
#include <runnel/storage/stream_id.hpp>

namespace runnel::storage {

// An entry's fields are stored as one payload:
//
//   +----------------+------------------+-------+------------------+-------+-----
//   | count (varint) | len0 (varint)    | bytes | len1 (varint)    | bytes | ...
//   +----------------+------------------+-------+------------------+-------+-----
//
// count is the number of strings (field, value, field, value, ...), lengths are LEB128.
void encode_fields(std::span<const std::string_view> fields, std::string& out);

// Iterates the strings of an encoded payload. The payload must be well formed (it was
// checksummed or built by encode_fields); a malformed one ends the iteration early.
class FieldCursor {
 public:
  explicit FieldCursor(std::string_view payload);
  [[nodiscard]] std::uint64_t count() const { return count_; }
  // Sets `out` to the next string; false when there are no more.
  bool next(std::string_view& out);

 private:
  std::string_view rest_;
  std::uint64_t count_ = 0;
  std::uint64_t read_ = 0;
};

struct EntryView {
  StreamId id;
  std::string_view payload;  // encode_fields format; valid during the visit only
};

// Return false to stop the scan.
using EntryVisitor = std::function<bool(const EntryView&)>;

// A trim request, with Redis's semantics (t_stream.c streamTrim):
// - kMaxLen keeps the newest `max_len` entries; kMinId drops entries below `min_id`.
// - Entries are kept in nodes (a segment, or an in-memory chunk). `approx` removes whole
//   nodes only, so it may keep more than asked; exact trimming also trims inside a node.
// - `limit` (0: none) caps the entries removed: a node whose removal would pass it stops the
//   trim.
struct TrimSpec {
  enum class Strategy { kMaxLen, kMinId };
  Strategy strategy = Strategy::kMaxLen;
  std::uint64_t max_len = 0;
  StreamId min_id;
  bool approx = false;
  std::uint64_t limit = 0;
  // When set, no entry at or above this ID is removed (the broker's ACKED trims stop at the
  // first entry a consumer group still references).
  std::optional<StreamId> before;
};

// Lifecycle: owned by one stream, used only on the shard that owns that stream.
class EntryStore {
 public:
  virtual ~EntryStore() = default;

  // Appends an entry; `id` must be greater than every ID already stored (the broker checks).
  virtual void append(StreamId id, std::span<const std::string_view> fields) = 0;

  // Entries now stored (after deletes).
  [[nodiscard]] virtual std::uint64_t size() const = 0;
  [[nodiscard]] virtual std::optional<StreamId> first_id() const = 0;
  [[nodiscard]] virtual std::optional<StreamId> last_id() const = 0;

  // Visits entries with start <= id <= end, ascending (or descending when `reverse`), until
  // the visitor returns false. Deleted entries are skipped. An entry that could not be read
  // back (an evicted node whose segment read fails) ends the scan with that error: the
  // entries visited before it are all there is of the range, and the caller must not answer
  // as if the range ended there.
  [[nodiscard]] virtual Error scan(StreamId start, StreamId end, bool reverse,
                                   const EntryVisitor& visit) const = 0;

  // Deletes one entry (leaving a tombstone until its node goes); false if there was none.
  virtual bool erase(StreamId id) = 0;
  // Removes entries from the front as `spec` says; returns how many were removed.
  virtual std::uint64_t trim(const TrimSpec& spec) = 0;
  // Nodes the entries are kept in (XINFO's radix-tree-keys).
  [[nodiscard]] virtual std::uint64_t node_count() const = 0;

  // Records the stream's metadata where it is kept durably (a no-op for a memory store).
  virtual void record_meta(StreamId last_id, std::uint64_t entries_added, StreamId max_deleted_id) = 0;
};

}  // namespace runnel::storage
