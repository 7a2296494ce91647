// SegmentLog: one stream's folder of segment files, the durable form of its entries.
//
//   streams/<encoded key>/
//     meta                 manifest: the key and the segments the folder holds
//     <ms>-<seq>.log       segment: header, then batches of records; named by its first ID
//     <ms>-<seq>.idx       index of a sealed segment (written once the segment is full)
//
// Segment file (all integers little-endian; varints are LEB128):
//
//   +----------------------------------------------------------------------------+
//   | header, 40 bytes                                                           |
//   |   magic "RUNNELSG" (8) | version u32 (1) | reserved u32 (0)                |
//   |   base ms u64 | base seq u64 | XXH3-64 of the 32 bytes before it (8)      |
//   +----------------------------------------------------------------------------+
//   | batch: the records of one flush (one group commit), at most ~1 MiB         |
//   |   +--------------+--------------+----------------+------------------------+ |
//   |   | magic u32    | body len u32 | record count   | checksum u64           | |
//   |   | "RBAT"       |              | u32            | XXH3-64 of the body,   | |
//   |   |              |              |                | seeded with len|count<<32| |
//   |   +--------------+--------------+----------------+------------------------+ |
//   |   | body: records, back to back                                          | |
//   +----------------------------------------------------------------------------+
//   | batch ...                                                                  |
//
//   record: | type u8 | fields by type                                           |
//     1 entry:     ms varint, seq varint, payload length varint, payload (entry_store.hpp)
//     2 tombstone: ms varint, seq varint                   (XDEL)
//     3 meta:      last ms, last seq, entries added, max deleted ms, max deleted seq,
//                  trim floor ms, trim floor seq           (7 varints: StreamMeta)
//
// A meta record is written whenever the stream's metadata changes other than by an append
// (an entry sets last ID to its own and adds one to entries-added), and first in every
// segment, so the last segment alone says what the stream's metadata is.
//
// Manifest (meta), replaced whole (written aside, synced, renamed over, folder synced):
//
//   | magic "RUNNELMF" | version u32 (2) | reserved u32 | epoch u64 | key length u64 | key |
//   | segment count u32 | each segment's base: ms u64, seq u64 | XXH3-64 of the rest        |
//
// The key is the stream's: a folder's name need not be its key's (RENAME changes only the
// manifest). The epoch orders claims: it is taken from a counter above every epoch found at
// start-up, at each create() and rekey(). Two folders that name one key (a RENAME onto an
// existing key, cut by a crash between its manifest and its deletion of the old folder) are
// settled at start-up: the higher epoch is the stream. Version 1 had no epoch (read as 0).
//
// Index file (.idx) of a sealed segment:
//
//   | magic "RUNNELIX" | version u32 | reserved u32 | log bytes u64 | meta (7 x u64)     |
//   | tombstone count u32 | tombstones (ms u64, seq u64)... | blob length u32 | blob ... |
//   | XXH3-64 of everything before it                                                   |
//
// "log bytes" is the segment's size when sealed: an index whose size disagrees, or whose
// checksum fails, is rebuilt by scanning the segment. The blob belongs to the entry store
// (its node table, see log_entry_store.hpp).
//
// Recovery (open): the manifest names the segments. Sealed segments are read from their
// indexes; the last segment is scanned. In the last segment, the first batch that is short,
// zero-filled or fails its checksum ends the log when no whole batch follows it: that torn
// tail is truncated and reported in `notes`. A bad batch with a good one after it, or any
// bad byte in a sealed segment, is corruption: open() fails naming it, and nothing behind
// the damage is dropped.
//
// Lifecycle: create() or open() once, then appends and flushes. One thread (the stream's
// shard) uses it; the writes it hands out (take_writes) may run on another thread or in the
// kernel, and are reported back with mark_written() on the owning thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <runnel/storage/error.hpp>
#include <runnel/storage/file.hpp>
#include <runnel/storage/stream_id.hpp>

namespace runnel::storage {

// A stream's metadata as the log records it.
struct StreamMeta {
  StreamId last_id;
  std::uint64_t entries_added = 0;
  StreamId max_deleted_id;
  StreamId trim_floor;  // every entry below this ID has been trimmed away
  friend bool operator==(const StreamMeta&, const StreamMeta&) = default;
};

// Where a record went: a segment (numbered in order, from 0 at open) and its batch's offset.
struct LogPosition {
  std::uint32_t segment = 0;
  std::uint64_t batch = 0;
};

// Bytes to write at an offset of a segment, handed to the I/O layer.
struct WriteOp {
  std::shared_ptr<File> file;
  std::uint64_t offset = 0;
  std::string bytes;
  std::uint32_t segment = 0;
};

// Bytes [from, end) of a file that an I/O completion wrote.
struct WrittenRange {
  std::shared_ptr<File> file;
  std::uint64_t from = 0;
  std::uint64_t end = 0;
};

struct LogOptions {
  std::uint64_t segment_bytes = 64ull * 1024 * 1024;
  bool sync_metadata = true;  // fdatasync manifests and indexes when rewritten (not under no)
};

// What the log finds while it opens, for the entry store to rebuild its node table.
class RecoverySink {
 public:
  virtual ~RecoverySink() = default;
  // A sealed segment with a good index: the blob the store gave at seal time.
  virtual bool on_index(std::uint32_t segment, std::string_view blob) = 0;
  // An entry found by scanning a segment (a sealed one without a good index, or the last).
  virtual void on_entry(LogPosition pos, StreamId id, std::string_view payload) = 0;
  // The scan of `segment` ended; nothing more goes into it.
  virtual void on_segment_end(std::uint32_t segment) = 0;
  // The blob for the index of the sealed `segment`, rebuilt after scanning it.
  virtual std::string index_blob(std::uint32_t segment) = 0;
};

// Turns a binary-safe key into a folder name: bytes outside [A-Za-z0-9_.-] become %XX
// (and a leading '.'); a name that would pass 200 bytes is cut and ends with '~' and the
// key's hash. The manifest keeps the real key.
std::string encode_key(std::string_view key);

class SegmentLog {
 public:
  static constexpr std::size_t kSegmentHeaderBytes = 40;
  static constexpr std::size_t kBatchHeaderBytes = 20;
  static constexpr std::size_t kBatchSealBytes = 1024 * 1024;
  // A sealed batch this large becomes the bytes to write as it is (moved); a smaller one is
  // copied, and the batch keeps its buffer for the next flush.
  static constexpr std::size_t kMoveBytes = 64 * 1024;

  SegmentLog(std::string dir, std::string key, LogOptions options);

  // A new stream: creates the folder, the manifest and the first segment.
  [[nodiscard]] Error create(StreamId first_base);
  // An existing folder; fails on damage or unreadable files. `notes` gets a line per repair
  // (a truncated torn tail, a rebuilt index).
  [[nodiscard]] Error open(RecoverySink& sink, std::vector<std::string>& notes);
  // The key a folder's manifest names; false if the manifest is missing or bad, with
  // `error` (if given) set to why it could not be read (0: it was read, and is bad). With
  // `prefetch`, the kernel is also asked to start reading the segment open() will scan.
  static bool read_key(const std::string& dir, std::string& key, bool prefetch = false, Error* error = nullptr,
                       std::uint64_t* epoch = nullptr);
  // Claim epochs: a new one, above every epoch handed out or noted (read_key notes the
  // epochs it reads) in this process.
  static std::uint64_t next_epoch();
  static void note_epoch(std::uint64_t epoch);

  // The folder now holds the stream of `key` (RENAME): the manifest is rewritten with it and
  // a new epoch, durably. On a failure nothing changed.
  [[nodiscard]] Error rekey(std::string key);

  [[nodiscard]] const std::string& dir() const { return dir_; }
  [[nodiscard]] const std::string& key() const { return key_; }
  [[nodiscard]] std::uint64_t epoch() const { return epoch_; }
  [[nodiscard]] const StreamMeta& meta() const { return meta_; }

  // Appends. An entry may first roll to a new segment (see needs_roll): the store closes its
  // node and calls roll() before appending.
  [[nodiscard]] bool needs_roll() const;
  // On a failure the stream goes on in the old segment.
  [[nodiscard]] Error roll(StreamId base, std::string index_blob);
  LogPosition append_entry(StreamId id, std::string_view payload);
  void append_tombstone(StreamId id);
  // Records `meta` if it differs from the last recorded.
  void set_meta(const StreamMeta& meta);

  // True when appends wait to be written.
  [[nodiscard]] bool dirty() const {
    return batch_records_ > 0 || !out_.empty() || !sealed_.empty() || index_pending_;
  }
  // The segments' open files (to close off the caller's thread once the stream is deleted).
  [[nodiscard]] std::vector<std::shared_ptr<File>> files() const {
    std::vector<std::shared_ptr<File>> out;
    for (const Segment& s : segments_) out.push_back(s.file);
    return out;
  }
  // Bytes appended to the tail and not yet handed to be written.
  [[nodiscard]] std::size_t unwritten_bytes() const { return batch_body_bytes() + out_.size(); }
  // Seals what was appended and moves it to `ops` (in file order). Also writes the index of
  // a sealed segment once the segment is wholly written.
  void take_writes(std::vector<WriteOp>& ops);
  // The I/O layer finished `op`: call on the owning thread (it needs no log, as the stream
  // may be gone by then).
  static void mark_written(const WriteOp& op) { op.file->note_written(op.offset, op.offset + op.bytes.size()); }

  // Reads the entries of the batches from `first_batch` up to and including the batch at
  // `last_batch` of `segment` (written bytes only).
  [[nodiscard]] Error read_entries(std::uint32_t segment, std::uint64_t first_batch, std::uint64_t last_batch,
                                   const std::function<void(StreamId, std::string_view)>& visit) const;
  // Whether the batch at `batch` of `segment` has been written.
  [[nodiscard]] bool written(std::uint32_t segment, std::uint64_t batch) const;

  // Tombstones found by open(), for the store to apply; then forgotten.
  std::vector<StreamId> take_recovered_tombstones() { return std::move(recovered_tombstones_); }

  // Deletes the segments numbered below `segment` (never the last). On a failure (the
  // manifest could not be rewritten) the log forgets them, but their files stay on disk,
  // still listed by the old manifest.
  [[nodiscard]] Error drop_segments_before(std::uint32_t segment);
  [[nodiscard]] std::uint32_t first_segment() const { return first_number_; }
  [[nodiscard]] std::uint32_t last_segment() const {
    return first_number_ + static_cast<std::uint32_t>(segments_.size()) - 1;
  }
  [[nodiscard]] std::size_t segment_count() const { return segments_.size(); }
  // Bytes of segment files (written or waiting to be).
  [[nodiscard]] std::uint64_t bytes() const;
  // Each segment's first ID and size, oldest first.
  [[nodiscard]] std::vector<std::pair<StreamId, std::uint64_t>> segments() const;

 private:
  struct Segment {
    StreamId base;
    std::shared_ptr<File> file;
    std::uint64_t end = 0;      // bytes sealed (written or handed out); file->written() <= end
    std::uint64_t entries = 0;  // entry records
    std::vector<StreamId> tombstones;  // recorded in this segment, for its index
    StreamMeta meta_at_end;            // for its index, set when it is sealed
    std::string index_blob;            // waiting for the segment to be written
    bool index_pending = false;
  };

  [[nodiscard]] std::string segment_path(StreamId base, std::string_view ext) const;
  [[nodiscard]] Segment& tail() { return segments_.back(); }
  [[nodiscard]] const Segment* segment(std::uint32_t number) const;
  void seal_batch();
  void write_pending_indexes();
  [[nodiscard]] Error write_manifest();
  [[nodiscard]] Error start_segment(StreamId base);
  void put_meta_record(const StreamMeta& meta);
  [[nodiscard]] Error write_index(const Segment& s);
  [[nodiscard]] Error load_index(Segment& s, RecoverySink& sink, std::uint32_t number);
  [[nodiscard]] Error scan(Segment& s, std::uint32_t number, bool last, RecoverySink& sink,
                           std::vector<std::string>& notes);

  std::string dir_;
  std::string key_;
  std::uint64_t epoch_ = 0;  // the manifest's claim epoch
  LogOptions options_;
  StreamMeta meta_;
  // A vector: a stream has few segments (a deque would cost every stream 576 bytes at once).
  std::vector<Segment> segments_;
  std::uint32_t first_number_ = 0;
  // Records not yet sealed (they go at the tail's end), after room for their batch header:
  // a big batch is then sealed where it lies, never copied (a 512 MiB entry was held four
  // times over while it was written).
  // (Empty, with no room yet, until a record comes: a million idle streams allocate none.)
  std::string batch_;
  [[nodiscard]] std::size_t batch_body_bytes() const {
    return batch_.empty() ? 0 : batch_.size() - kBatchHeaderBytes;
  }
  void start_record() {
    if (batch_.empty()) batch_.assign(kBatchHeaderBytes, '\0');
  }
  std::uint32_t batch_records_ = 0;
  std::string out_;            // sealed bytes for the tail, from out_offset_
  std::uint64_t out_offset_ = 0;
  std::vector<WriteOp> sealed_;  // sealed bytes of segments rolled away from
  std::vector<StreamId> recovered_tombstones_;
  bool index_pending_ = false;  // a sealed segment waits for its index
};

// Parses the records of one batch body; false when a record is malformed.
struct LogRecord {
  enum class Type : std::uint8_t { kEntry = 1, kTombstone = 2, kMeta = 3 };
  Type type = Type::kEntry;
  StreamId id;
  std::string_view payload;
  StreamMeta meta;
};
bool parse_records(std::string_view body, const std::function<void(const LogRecord&)>& visit);

}  // namespace runnel::storage
