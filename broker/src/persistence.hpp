// ShardStorage: one shard's part of the data dir. It creates, opens and deletes the folders
// of the streams the shard owns, and gathers what their logs appended for the next flush.
// The flush itself (I/O submission, fsync policy, replies waiting for durability) is the
// Flusher's (flusher.hpp); this file has no Asio.
//
//   <dir>/streams/<encoded key>/   one folder per stream: segment_log.hpp, group_journal.hpp
//   <dir>/streams/.trash-*         folders being deleted (removed again at start-up)
//
// Runs on its shard's thread only, except load_folders(), which runs before the shards start.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <runnel/storage/io_queue.hpp>
#include <runnel/storage/log_entry_store.hpp>

namespace runnel {

class Keyspace;
class Stream;

enum class FsyncPolicy { kAlways, kEverysec, kNo };

struct StorageOptions {
  std::string dir;  // the data dir; streams live in <dir>/streams
  FsyncPolicy fsync = FsyncPolicy::kEverysec;
  std::uint64_t segment_bytes = 64ull * 1024 * 1024;
  std::uint64_t cache_bytes = 64ull * 1024 * 1024;  // this shard's share
  std::uint64_t stream_max_bytes = 0;  // retention (0: none)
  std::uint64_t stream_max_age_ms = 0;
  std::uint64_t wal_checkpoint_bytes = 32ull * 1024 * 1024;  // Config's, which see
  std::uint64_t write_behind_bytes = 256ull * 1024 * 1024;
};

// What a shard finds in the data dir at start-up: the stream folders it owns.
struct StreamFolder {
  std::string key;
  std::string path;
};
// Lists <dir>/streams, reading each folder's key from its manifest, and sorts the folders
// by owning shard. Clears out .trash-* folders left by a crash. Folders with an unreadable
// manifest are logged and skipped (left on disk).
std::vector<std::vector<StreamFolder>> list_stream_folders(const std::string& dir, unsigned shards);

// INFO's storage figures, summed over the shards.
struct StorageFigures {
  std::uint64_t streams = 0;     // streams with a folder
  std::uint64_t bytes = 0;       // segment, journal and snapshot bytes
  std::uint64_t segments = 0;
  std::uint64_t cache_used = 0;  // tail cache
  std::uint64_t cache_budget = 0;
  std::uint64_t damaged = 0;     // streams refused because their files are damaged
  std::uint64_t flushes = 0;     // batches written
  std::uint64_t overlapped = 0;  // batches submitted while another was in flight (fsync always)
  std::uint64_t last_fsync_us = 0;
  std::string io_backend;
};

// What a write may have to wait for: the shard's Flusher (flusher.hpp).
class Durability {
 public:
  virtual ~Durability() = default;
  // Something was appended: flush once the shard has run its ready handlers.
  virtual void request() = 0;
  // Whether a reply to a write must wait for the batch that carries it (while data is
  // pending, or after a failure): under always until it is fsync'ed, under everysec and no
  // until its write has returned.
  [[nodiscard]] virtual bool must_wait() const = 0;
  // Calls `done(true)` once everything appended so far, and whatever the command running
  // now appends, is durable; `done(false)` if the write failed. Runs `done` on the shard's
  // thread, maybe at once.
  virtual void when_durable(std::function<void(bool ok)> done) { when_durable(ticket(), std::move(done)); }
  // The batch that will carry what is appended now. A write notes it, and later waits for
  // just that batch (not for whatever batch is next by then).
  [[nodiscard]] virtual std::uint64_t ticket() const = 0;
  // Calls `done(true)` once batch `ticket` is durable (at once if it is already).
  virtual void when_durable(std::uint64_t ticket, std::function<void(bool ok)> done) = 0;
  // Adds the flush figures to `figures`.
  virtual void add_figures(StorageFigures& figures) const = 0;
};

class ShardStorage {
 public:
  ShardStorage(StorageOptions options, unsigned shard);

  [[nodiscard]] const StorageOptions& options() const { return options_; }
  [[nodiscard]] unsigned shard() const { return shard_; }
  [[nodiscard]] storage::TailCache& cache() { return cache_; }

  // Opens the streams in `folders` into `keyspace`. A stream whose files are damaged is
  // loaded as damaged (refused to commands, kept on disk). Logs what it repaired.
  void load(Keyspace& keyspace, const std::vector<StreamFolder>& folders);
  // A new stream's store, in a new folder; null if the folder could not be made (logged).
  std::unique_ptr<storage::LogEntryStore> create_store(std::string_view key, std::string& error);
  // The stream `key` goes: its folder is deleted, and any write it had pending is dropped.
  void remove(std::string_view key, Stream& stream);

  // Gives a stream created here its group journal (the stream has a folder).
  void persist_groups(Stream& stream);
  // After a write command on `stream`: records its metadata and lists it for the next flush.
  void touched(Stream& stream);
  [[nodiscard]] bool pending() const { return !dirty_.empty() || !forgotten_.empty(); }
  // Stream folders removed since the last call (kept under --fsync always only, for the
  // write-ahead log's forget records).
  void take_forgotten(std::vector<std::string>& out) {
    out.swap(forgotten_);
    forgotten_.clear();
  }
  // Moves the listed streams' appended bytes into `writes`, in order. Returns an error text
  // if a group journal could not be written (its stream stays listed), else "".
  std::string collect(std::vector<storage::WriteOp>& writes);
  // The writes of a flush are done: they count as written, and the cache may evict.
  void written(const std::vector<storage::WriteOp>& writes);
  // The same, told as how far each file is written (a checkpoint's report).
  void written(const std::vector<std::pair<std::shared_ptr<storage::File>, std::uint64_t>>& ends);

  // Applies --stream-max-bytes and --stream-max-age to every stream (run once a second).
  void apply_retention(std::uint64_t now_ms);

  // Streams damaged on disk, loaded as such.
  [[nodiscard]] std::size_t damaged() const { return damaged_; }
  // Adds this shard's streams, bytes, segments and cache to `figures`.
  void add_figures(const Keyspace& keyspace, StorageFigures& figures) const;

 private:
  [[nodiscard]] std::string folder_for(std::string_view key) const;
  // Renames the folder out of the way (synced), then has the Discarder thread remove it and
  // drop `files`, its open files: closing a big deleted file frees its blocks, which took
  // 17 ms on the shard's thread for a DEL.
  void delete_folder(const std::string& path, std::vector<std::shared_ptr<storage::File>> files = {});
  [[nodiscard]] storage::LogOptions log_options() const {
    return storage::LogOptions{options_.segment_bytes, options_.fsync != FsyncPolicy::kNo};
  }
  std::vector<std::string> forgotten_;
  // A stream whose files could not be loaded: kept under its key, refused to commands.
  void load_damaged(Keyspace& keyspace, const StreamFolder& folder, const std::string& error);

  StorageOptions options_;
  unsigned shard_;
  storage::TailCache cache_;
  Keyspace* keyspace_ = nullptr;  // set by load()
  std::vector<Stream*> dirty_;
  std::size_t damaged_ = 0;
  std::unordered_map<std::string, std::string> damaged_folders_;  // key -> folder
  std::uint64_t trash_counter_ = 0;
};

}  // namespace runnel
