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
#include <map>
#include <set>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <runnel/storage/group_journal.hpp>
#include <runnel/storage/io_queue.hpp>
#include <runnel/storage/log_entry_store.hpp>
#include <runnel/storage/write_ahead_log.hpp>

#include "streams/change_sink.hpp"

namespace runnel {

class Keyspace;
struct KeyValue;

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
  const storage::NodeLimits* node_limits = nullptr;  // the server's (null: Redis's defaults)
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

// A key's last state in a keys journal: a string, a stream's TTL, or gone.
struct KeyState {
  enum Kind : std::uint8_t { kString, kTtl, kGone };
  std::string key;
  Kind kind = kGone;
  std::string value;
  std::int64_t expires_at = 0;
};
// What the keys journals (<dir>/keys/<shard>/) hold at start-up: each shard's journal, and
// the states of the keys it owns now. `rehome`: some key was in another shard's journal, or
// there were more journals than shards (--threads changed): every shard folds its journal at
// load, after which the `stale` ones are deleted.
struct KeyJournals {
  std::vector<std::unique_ptr<storage::GroupJournal>> journals;
  std::vector<std::vector<KeyState>> states;
  std::vector<std::string> stale;
  bool rehome = false;
};
KeyJournals load_key_journals(const std::string& dir, unsigned shards, FsyncPolicy fsync);
class ShardStorage;
// After every shard loaded with `rehome`: each journal is folded first with every shard's
// keys, then the stale journals deleted, then each folded to what its shard owns. Throws
// if a step fails (the server does not start).
void rehome_key_journals(const std::vector<ShardStorage*>& shards, const std::vector<std::string>& stale,
                         const std::string& dir);

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
  // A RENAME moved a stream here from the shard `from` flushes (both shards held by the
  // caller): nothing this shard writes may become durable before what `from` has already
  // handed to the disk does, since the stream's earlier bytes may be in it. Else a crash
  // could keep this shard's later bytes of a file and lose the earlier ones: a hole, which
  // recovery rightly calls damage. This shard's batches wait until then.
  virtual void fence_behind(Durability& from) = 0;
};

// The shard's ChangeSink: the streams report their changes here, and only this class knows
// their files, journals and flushes.
class ShardStorage final : public ChangeSink {
 public:
  ShardStorage(StorageOptions options, unsigned shard);
  ~ShardStorage() override;

  [[nodiscard]] const StorageOptions& options() const { return options_; }
  [[nodiscard]] unsigned shard() const { return shard_; }
  [[nodiscard]] storage::TailCache& cache() { return cache_; }

  // Opens the streams in `folders` into `keyspace`. A stream whose files are damaged is
  // loaded as damaged (refused to commands, kept on disk). Logs what it repaired.
  void load(Keyspace& keyspace, const std::vector<StreamFolder>& folders);
  // Puts the strings and TTLs of the keys journal into `keyspace`, after load(): a key that
  // expired meanwhile is deleted, and the journal folded without it (unless `rehoming`:
  // rehome_key_journals folds it then).
  void load_keys(Keyspace& keyspace, std::unique_ptr<storage::GroupJournal> journal, std::vector<KeyState> states,
                 bool rehoming);
  // Folds the keys journal into a snapshot of what `emit` gives (rehome_key_journals).
  [[nodiscard]] storage::Error fold_keys(const std::function<void(const storage::GroupRecordVisitor&)>& emit);
  // Every string and TTL in the keyspace, as the records of a fold.
  void emit_keys(const storage::GroupRecordVisitor& emit) const;
  // A damaged stream's error reply text, or "" if `key` is not damaged.
  [[nodiscard]] std::string damage_of(std::string_view key) const;

  // --- ChangeSink ---
  [[nodiscard]] Result<std::unique_ptr<storage::EntryStore>> create_store(std::string_view key) override;
  void stream_created(std::string_view key, Stream& stream) override;
  void stream_removed(std::string_view key, Stream& stream) override;
  void stream_changed(Stream& stream) override;
  void group_changed(Stream& stream, std::string_view group) override;
  void group_destroyed(Stream& stream, std::string_view group) override;
  void consumer_changed(Stream& stream, std::string_view group, std::string_view consumer) override;
  void consumer_seen(Stream& stream, std::string_view group, std::string_view consumer) override;
  void idmp_configured(Stream& stream) override;
  void idmp_recorded(Stream& stream, std::string_view pid, std::string_view iid, storage::StreamId id) override;
  void idmp_counted(Stream& stream) override;
  void pending_changed(Stream& stream, std::string_view group, storage::StreamId id) override;
  void string_written(std::string_view key, std::string_view value, std::int64_t expires_at) override;
  void ttl_written(std::string_view key, std::int64_t expires_at) override;
  void key_forgotten(std::string_view key) override;

  // After a command (or a blocked reader served): the metadata of the streams it changed is
  // recorded, their group changes journaled, and they are listed for the next flush.
  // Returns whether anything had changed.
  bool settle();
  // Settles the streams whose only changes are consumers' seen times (consumer_seen): once a
  // second, and before the server stops.
  bool settle_seen();
  [[nodiscard]] bool pending() const {
    return !dirty_.empty() || !forgotten_.empty() || !changed_keys_.empty() ||
           (keys_journal_ && keys_journal_->dirty());
  }
  // Stream folders removed since the last call (kept under --fsync always only, for the
  // write-ahead log's forget records).
  void take_forgotten(std::vector<storage::Forgotten>& out) {
    out.swap(forgotten_);
    forgotten_.clear();
  }
  // Moves the listed streams' appended bytes into `writes`, in order. Returns an error text
  // if a group journal could not be written (its stream stays listed), else "".
  std::string collect(std::vector<storage::WriteOp>& writes);
  // The writes of a flush are done: they count as written, and the cache may evict.
  void written(const std::vector<storage::WriteOp>& writes);
  // The same, told as how far each file is written (a checkpoint's report).
  void written(const std::vector<storage::WrittenRange>& ranges);

  // RENAME: the stream's folder now holds `key` (its manifest rewritten, durably). A
  // MISCONF error, and nothing changed, if the manifest could not be written.
  [[nodiscard]] Result<void> rekey(Stream& stream, std::string_view key);
  // RENAME across shards, with both shards' threads held: the stream's files leave this
  // shard (detach) and are taken over by the other's (adopt), with what waits to be written.
  // The folder stays where it is. Writes this shard already handed to the disk complete
  // here; its write-ahead log keeps them (forget records order across the shards' logs).
  struct Moving;
  [[nodiscard]] std::shared_ptr<Moving> detach(Stream& stream);
  void adopt(Stream& stream, std::shared_ptr<Moving> moving);

  // Applies --stream-max-bytes and --stream-max-age to every stream (run once a second).
  void apply_retention(std::uint64_t now_ms);

  // Streams damaged on disk, loaded as such.
  [[nodiscard]] std::size_t damaged() const { return damaged_.size(); }
  // Adds this shard's streams, bytes, segments and cache to `figures`.
  void add_figures(StorageFigures& figures) const;

 private:
  // What changed in a stream's groups since its last flush, by name (a group or consumer
  // may be gone by then): the group journal records the new state of each.
  struct GroupChanges {
    struct Group {
      bool header = false;  // last_delivered / entries_read, or the group's creation
      std::set<std::string, std::less<>> consumers;
      std::set<storage::StreamId> pending;
    };
    std::set<std::string, std::less<>> destroyed;
    std::map<std::string, Group, std::less<>> groups;
    // Idempotent producers: the window set, IDs recorded (in order), the counters.
    struct IdmpRecord {
      std::string pid, iid;
      storage::StreamId id;
    };
    bool idmp_config = false;
    std::vector<IdmpRecord> idmp_records;
    bool idmp_counters = false;

    [[nodiscard]] bool empty() const {
      return destroyed.empty() && groups.empty() && !idmp_config && idmp_records.empty() && !idmp_counters;
    }
    Group& of(std::string_view name);
  };
  // A stream's files, and what it changed since it was last settled and flushed.
  struct Files {
    storage::LogEntryStore* store = nullptr;  // the stream's, made by create_store or load
    std::unique_ptr<storage::GroupJournal> journal;
    GroupChanges changes;
    bool noted = false;   // in noted_: changed since the last settle()
    bool listed = false;  // in dirty_: to be written by the next flush
    bool seen = false;    // in seen_: a consumer's seen time changed
  };
  // The stream's files, or null for a stream not in the data dir (cached: the last lookup).
  Files* files_of(Stream& stream);
  // The same, noting the stream as changed.
  Files* note(Stream& stream);
  // Appends the new state of what `files.changes` lists to the journal, and clears it.
  static void journal_group_changes(const Stream& stream, Files& files);

  [[nodiscard]] std::string folder_for(std::string_view key) const;
  // Renames the folder out of the way (synced), then has the Discarder thread remove it and
  // drop `files`, its open files: closing a big deleted file frees its blocks, which took
  // 17 ms on the shard's thread for a DEL.
  void delete_folder(const std::string& path, std::vector<std::shared_ptr<storage::File>> files = {});
  [[nodiscard]] storage::LogOptions log_options() const {
    return storage::LogOptions{options_.segment_bytes, options_.fsync != FsyncPolicy::kNo};
  }
  // A stream whose files could not be loaded: kept under its key, refused to commands.
  void load_damaged(Keyspace& keyspace, const StreamFolder& folder, const std::string& error);

  // The keys journal: each changed key noted, its state journaled at the next flush.
  void note_key(std::string_view key);
  static storage::GroupRecord key_record(std::string_view key, const KeyValue& value);
  StorageOptions options_;
  unsigned shard_;
  Keyspace* keyspace_ = nullptr;
  std::unique_ptr<storage::GroupJournal> keys_journal_;  // null until load_keys
  bool keys_noted_ = false;  // keys changed since the last settle()
  // Keys whose strings or TTLs changed since the last flush, journaled by collect().
  std::set<std::string, std::less<>> changed_keys_;
  storage::TailCache cache_;
  std::unordered_map<Stream*, Files> files_;
  const Stream* last_stream_ = nullptr;  // note()'s last lookup
  Files* last_files_ = nullptr;
  storage::LogEntryStore* created_ = nullptr;  // create_store's, until stream_created
  std::vector<Stream*> noted_;
  std::vector<Stream*> seen_;
  std::vector<Stream*> dirty_;
  std::vector<storage::Forgotten> forgotten_;
  struct Damaged {
    std::string folder;
    std::string error;
  };
  std::unordered_map<std::string, Damaged> damaged_;  // by key
  std::uint64_t trash_counter_ = 0;
};

}  // namespace runnel
