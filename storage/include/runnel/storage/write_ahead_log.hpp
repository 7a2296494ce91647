// WriteAheadLog: under `--fsync always`, one file per shard that carries every write of a
// flush, so a flush costs one fdatasync however many streams it touched. The writes still
// go to the streams' own files (segments, group journals), without an fsync; a checkpoint
// (once a second) fdatasyncs those files in the background, then retires the log
// generations they cover: one is kept as a spare (<shard>-<generation>.wal.spare) and
// recycled as a later generation, the rest deleted. A recycled file is overwritten in place,
// so its fdatasync writes only data: on ext4 a growing file's fdatasync also commits the
// journal (measured on this machine: 180 us against 121 us for 200-byte appends). At
// start-up, before any stream is opened, replay() puts every logged write back into its file
// and syncs it: the files then hold everything that was acknowledged, and the usual recovery
// (torn tails, indexes) runs on them.
//
//   <dir>/wal/<shard>-<generation>.wal
//
//   header, 32 bytes: | magic "RUNNELWL" | version u32 (2) | shard u32 | generation u64 |
//                     | XXH3-64 of the 24 bytes before it |
//   then one batch per flush, framed as in segment_log.hpp ("RBAT", length, count, XXH3),
//   the checksum's seed salted with the generation (version 2), so that the old batches a
//   recycled file still holds after the new ones never check: they read as a torn tail.
//
//   record: | type u8 | fields:
//     1 write:  path (varint length, bytes; relative to <dir>) | identity (varint length,
//               bytes: the file's header) | offset varint | data (varint length, bytes)
//     2 forget: path (varint length, bytes): a folder removed (DEL of a stream). Writes
//               logged before it for files under it are not replayed, in any shard's log,
//               so a stream made again under the same key never gets its predecessor's
//               bytes.
//     3 order:  varint, first in every batch: the batch's place among the batches of every
//               shard's log (a counter the process shares, next_order()).
//     4 forget: path, then order (varint): a forget as 2, with its own place in that order,
//               taken when the folder was renamed away (not when the batch was logged, which
//               may be after another shard made a new folder under that name and logged its
//               writes). A write is before it if its batch's order is lower. A stream RENAMEd
//               to another shard has writes in both shards' logs, so "before" must hold
//               across them. Logs without order records (older) are ordered by shard,
//               generation and place, as before.
//
// A write is replayed only into a file whose header is its identity (or, at offset 0, into
// a file whose header never reached the disk, short or zeros there, and which the write
// itself brings its header to: unsynced pages reach the disk in any order); a missing file (a
// trimmed segment, a deleted stream) is skipped. Writes are whole-state: replaying one
// twice changes nothing. The log's torn tail (a flush that was never acknowledged) is
// ignored; damage before it fails the start.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <runnel/storage/error.hpp>
#include <runnel/storage/file.hpp>
#include <runnel/storage/segment_log.hpp>

namespace runnel::storage {

// A stream folder removed (renamed into the trash), and when: next_order() taken before.
struct Forgotten {
  std::string folder;
  std::uint64_t order = 0;
};

class WriteAheadLog {
 public:
  // The next place in the order of batches and forgets, shared by every shard's log.
  static std::uint64_t next_order();
  // Folders whose forget record is not durable yet, in every shard: a new stream must not
  // take such a name, or a crash could replay the old stream's writes into it (the forget
  // that would skip them lost). Marked before the folder is renamed away; cleared once the
  // batch carrying the record is durable (never, if it failed: the name stays unused).
  static void forgetting(const std::string& folder);
  static void forgets_durable(const std::vector<Forgotten>& forgotten);
  [[nodiscard]] static bool is_forgetting(const std::string& folder);

  static constexpr std::size_t kHeaderBytes = 32;

  // A new, empty generation for `shard` (its header written and synced). With `zeroed`, the
  // file is also written with that many zero bytes after the header (and synced), so that
  // its first appends overwrite written blocks as a recycled file's do; the zeros read as a
  // torn tail. Null and `error` set on failure.
  static std::unique_ptr<WriteAheadLog> create(const std::string& data_dir, unsigned shard,
                                               std::uint64_t generation, Error& error,
                                               std::uint64_t zeroed = 0);

  // A new, empty generation made from `spare`, a file retire() kept: its blocks are
  // written already, so appends into them change no file size and the log's fdatasync
  // commits no file-system metadata. The spare is gone afterwards, used or (on a failure,
  // with `error` set and null returned) deleted.
  static std::unique_ptr<WriteAheadLog> recycle(const std::string& spare, const std::string& data_dir,
                                                unsigned shard, std::uint64_t generation, Error& error);
  // Once the writes of the generation at `path` are all synced in their files: with `keep`
  // (and the file no longer than kMaxSpareBytes) renames it to a spare for recycle() and
  // returns the spare's path, else deletes it and returns "". Replay deletes spares.
  static std::string retire(const std::string& path, bool keep);
  static constexpr std::uint64_t kMaxSpareBytes = 64 * 1024 * 1024;

  // One flush: a batch holding `forgotten` folders and then `writes`, as the write to
  // append to this log.
  WriteOp append(const std::vector<WriteOp>& writes, const std::vector<Forgotten>& forgotten);

  [[nodiscard]] const std::shared_ptr<File>& file() const { return file_; }
  [[nodiscard]] std::uint64_t generation() const { return generation_; }
  [[nodiscard]] std::uint64_t bytes() const { return end_; }

  // Replays every log under <data_dir>/wal (each shard's generations in order), syncs the
  // files written, then deletes the logs. Returns the error, or none (with what it did in
  // `notes`).
  [[nodiscard]] static Error replay(const std::string& data_dir, std::vector<std::string>& notes);
  // The path of a generation's file.
  static std::string path_of(const std::string& data_dir, unsigned shard, std::uint64_t generation);

 private:
  // The log made at `path` once its header (and whatever else) is written with result `rc`:
  // on a failure, `error` is set, the file deleted, and null returned.
  static std::unique_ptr<WriteAheadLog> opened(const std::string& data_dir, const std::string& path,
                                               std::shared_ptr<File> file, std::uint64_t generation, int rc,
                                               Error& error);
  WriteAheadLog(std::string data_dir, std::shared_ptr<File> file, std::uint64_t generation)
      : data_dir_(std::move(data_dir)), file_(std::move(file)), generation_(generation) {}

  std::string data_dir_;
  std::shared_ptr<File> file_;
  std::uint64_t generation_;
  std::uint64_t end_ = kHeaderBytes;
};

}  // namespace runnel::storage
