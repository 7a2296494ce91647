// Stream folders in the data dir, and what goes into each flush (persistence.hpp).
#include "persistence.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <thread>
#include <unordered_map>
#include <utility>

#include <runnel/storage/file.hpp>

#include "keyspace.hpp"
#include "log.hpp"

namespace runnel {
namespace fs = std::filesystem;

namespace {

std::string streams_dir(const std::string& dir) { return (fs::path(dir) / "streams").string(); }

}  // namespace

// Threads that read the manifests at start-up.
constexpr std::size_t kManifestReaders = 16;

std::vector<std::vector<StreamFolder>> list_stream_folders(const std::string& dir, unsigned shards) {
  std::vector<std::vector<StreamFolder>> by_shard(shards);
  const std::string root = streams_dir(dir);
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) throw std::runtime_error("cannot create " + root + ": " + ec.message());
  std::vector<std::string> paths;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(".trash-", 0) == 0) {
      fs::remove_all(entry.path(), ec);  // a deletion a crash interrupted
      continue;
    }
    if (!entry.is_directory() || name.empty() || name[0] == '.') continue;
    paths.push_back(entry.path().string());
  }
  if (ec) throw std::runtime_error("cannot list " + root + ": " + ec.message());
  // The manifests are read by several threads at once: on a cold start each is a read at
  // a random place of the disk, and a disk takes many at a time (a million streams took
  // 417 s to load with one read at a time). They also bring the folders' inodes, and most
  // often their segments', into memory for the shards' loaders.
  std::vector<std::string> keys(paths.size());
  std::vector<std::uint64_t> epochs(paths.size(), 0);
  std::vector<storage::Error> errors(paths.size());  // why a manifest could not be read (none: it was)
  std::vector<char> found(paths.size(), 0);
  {
    std::atomic<std::size_t> next{0};
    const std::size_t readers = std::min<std::size_t>(kManifestReaders, paths.size());
    std::vector<std::jthread> threads;
    for (std::size_t t = 0; t < readers; ++t) {
      threads.emplace_back([&] {
        for (std::size_t i = next++; i < paths.size(); i = next++) {
          found[i] = storage::SegmentLog::read_key(paths[i], keys[i], true, &errors[i], &epochs[i]) ? 1 : 0;
        }
      });
    }
  }  // joined
  // Which folder holds each key: the highest claim epoch (two folders name one key only
  // after a RENAME onto an existing key that a crash cut between its two steps).
  std::unordered_map<std::string_view, std::size_t> holder;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    if (!found[i] && errors[i] && errors[i].code != ENOENT) {
      // Not missing, not damaged: unreadable now (out of descriptors, an I/O error). Once
      // more, alone; a stream skipped for it would look absent, and a new one made at its
      // folder would cut its segment.
      found[i] = storage::SegmentLog::read_key(paths[i], keys[i], false, &errors[i], &epochs[i]) ? 1 : 0;
      if (!found[i] && errors[i] && errors[i].code != ENOENT) {
        throw std::runtime_error("cannot read the manifest of " + paths[i] + ": " + std::strerror(errors[i].code));
      }
    }
    if (!found[i]) {
      log::warning("Skipping " + paths[i] + ": its manifest (meta) is missing or damaged");
      continue;
    }
    auto [at, first] = holder.emplace(keys[i], i);
    if (first) continue;
    std::size_t& kept = at->second;
    const std::size_t older = epochs[i] > epochs[kept] ? std::exchange(kept, i) : i;
    log::warning("Folders " + paths[older] + " and " + paths[kept] + " both hold stream '" +
                 log::escape_sample(keys[i]) + "' (a RENAME cut by a crash): keeping " + paths[kept] +
                 ", the later, and deleting the other");
    const std::string trash = root + "/.trash-start-" + std::to_string(older);
    fs::rename(paths[older], trash, ec);
    if (!ec) fs::remove_all(trash, ec);
    if (ec) log::warning("Cannot delete " + paths[older] + " (it is skipped): " + ec.message());
    ec.clear();
    found[older] = 0;
  }
  for (std::size_t i = 0; i < paths.size(); ++i) {
    if (!found[i]) continue;
    by_shard[key_hash(keys[i]) % shards].push_back(StreamFolder{std::move(keys[i]), std::move(paths[i])});
  }
  return by_shard;
}

ShardStorage::ShardStorage(StorageOptions options, unsigned shard)
    : options_(std::move(options)), shard_(shard), cache_(options_.cache_bytes) {}

ShardStorage::~ShardStorage() = default;

std::string ShardStorage::folder_for(std::string_view key) const {
  return (fs::path(streams_dir(options_.dir)) / storage::encode_key(key)).string();
}

// --- the group journal's records ---------------------------------------------------------------

namespace {

using storage::GroupRecord;

GroupRecord record(GroupRecord::Type type, std::string_view group, std::string_view consumer = {},
                   StreamId id = {}) {
  GroupRecord r;
  r.type = type;
  r.group = group;
  r.consumer = consumer;
  r.id = id;
  return r;
}

GroupRecord group_set(std::string_view name, const ConsumerGroup& g) {
  GroupRecord r = record(GroupRecord::Type::kGroupSet, name, {}, g.last_delivered());
  r.entries_read = g.entries_read();
  return r;
}

GroupRecord consumer_set(std::string_view group, const Consumer& c) {
  GroupRecord r = record(GroupRecord::Type::kConsumerTimes, group, c.name);
  r.time_ms = c.seen_time_ms;
  r.active_time_ms = c.active_time_ms;
  return r;
}

GroupRecord pending_set(std::string_view group, StreamId id, const PendingEntry& p) {
  if (p.nack_order >= 0) {  // NACKed: no owner, its place in the zone instead of a time
    GroupRecord r = record(GroupRecord::Type::kPendingNacked, group, {}, id);
    r.time_ms = p.nack_order;
    r.count = p.delivery_count;
    return r;
  }
  GroupRecord r = record(GroupRecord::Type::kPendingSet, group,
                         p.owner != nullptr ? std::string_view(p.owner->name) : std::string_view(), id);
  r.time_ms = p.delivery_time_ms;
  r.count = p.delivery_count;
  return r;
}

GroupRecord idmp_config(const Idempotency& idmp) {
  GroupRecord r = record(GroupRecord::Type::kIdmpConfig, {});
  r.time_ms = idmp.duration_s();
  r.count = static_cast<std::uint64_t>(idmp.max_size());
  return r;
}

GroupRecord idmp_counters(const Idempotency& idmp) {
  GroupRecord r = record(GroupRecord::Type::kIdmpCounters, {});
  r.count = idmp.added();
  r.time_ms = static_cast<std::int64_t>(idmp.duplicates());
  return r;
}

// Every record of the whole group state (a snapshot), and the idempotent producers'.
void emit_group_state(const Stream& stream, const storage::GroupRecordVisitor& emit) {
  if (const Idempotency* idmp = stream.idempotency()) {
    emit(idmp_config(*idmp));
    idmp->for_each([&](std::string_view pid, std::string_view iid, StreamId id) {
      emit(record(GroupRecord::Type::kIdmpRecord, pid, iid, id));
    });
    emit(idmp_counters(*idmp));
  }
  for (const auto& [name, group] : stream.groups()) {
    emit(group_set(name, group));
    for (const auto& [cname, consumer] : group.consumers()) emit(consumer_set(name, consumer));
    for (const auto& [id, entry] : group.pel()) emit(pending_set(name, id, entry));
  }
}

// Applies one record read back from a snapshot or journal.
void apply_group_record(Stream& stream, const storage::GroupRecord& r) {
  using Type = GroupRecord::Type;
  switch (r.type) {
    case Type::kIdmpConfig:
      stream.restore_idempotency().configure(r.time_ms, static_cast<std::int64_t>(r.count));
      return;
    case Type::kIdmpRecord:
      stream.restore_idempotency().record(r.group, r.consumer, r.id);
      return;
    case Type::kIdmpCounters:
      stream.restore_idempotency().restore_counters(r.count, static_cast<std::uint64_t>(r.time_ms));
      return;
    default:
      break;
  }
  if (r.type == Type::kGroupSet) {
    ConsumerGroup* group = stream.group(r.group);
    if (group == nullptr) {
      (void)stream.create_group(r.group, r.id, r.entries_read);
    } else {
      group->set_position(r.id, r.entries_read);
    }
    return;
  }
  ConsumerGroup* group = stream.group(r.group);
  if (group == nullptr) return;
  switch (r.type) {
    case Type::kGroupSet:
    case Type::kIdmpConfig:
    case Type::kIdmpRecord:
    case Type::kIdmpCounters:
    case Type::kKeyString:  // a keys journal's, never a stream's
    case Type::kKeyTtl:
    case Type::kKeyForget:
      break;
    case Type::kGroupDelete:
      stream.destroy_group(r.group);
      break;
    case Type::kConsumerSet:  // written before Redis 7.2's active time: taken as the seen time
      group->restore_consumer(r.consumer, r.time_ms, r.time_ms);
      break;
    case Type::kConsumerTimes:
      group->restore_consumer(r.consumer, r.time_ms, r.active_time_ms);
      break;
    case Type::kConsumerDelete:
      group->delete_consumer(r.consumer);
      break;
    case Type::kPendingSet: {
      auto owner = group->consumers().find(r.consumer);
      if (owner == group->consumers().end()) break;  // never written so: consumers come first
      group->add_pending(r.id, group->consumer(r.consumer, owner->second.seen_time_ms), r.time_ms);
      group->set_delivery_count(r.id, r.count);
      break;
    }
    case Type::kPendingDelete:
      group->ack(r.id);
      break;
    case Type::kPendingNacked:
      group->add_nacked(r.id, r.count, r.time_ms);
      break;
  }
}

}  // namespace

ShardStorage::GroupChanges::Group& ShardStorage::GroupChanges::of(std::string_view name) {
  auto it = groups.find(name);
  return it != groups.end() ? it->second : groups.emplace(std::string(name), Group{}).first->second;
}

void ShardStorage::journal_group_changes(const Stream& stream, Files& files) {
  GroupChanges& changes = files.changes;
  storage::GroupJournal& journal = *files.journal;
  // The idempotent producers' window first (setting it forgets the IDs before it), then the
  // IDs recorded, then the counters.
  if (const Idempotency* idmp = stream.idempotency()) {
    if (changes.idmp_config) journal.append(idmp_config(*idmp));
    for (const auto& r : changes.idmp_records) {
      journal.append(record(GroupRecord::Type::kIdmpRecord, r.pid, r.iid, r.id));
    }
    // A record counts itself as added when replayed: the counters go only with a window set
    // or a duplicate counted.
    if (changes.idmp_config || changes.idmp_counters) journal.append(idmp_counters(*idmp));
  }
  // Deletions of whole groups first: a group destroyed and created again starts empty.
  for (const std::string& name : changes.destroyed) journal.append(record(GroupRecord::Type::kGroupDelete, name));
  for (const auto& [name, delta] : changes.groups) {
    const ConsumerGroup* group = stream.group(name);
    if (group == nullptr) continue;  // destroyed: its deletion covers the rest
    if (delta.header) journal.append(group_set(name, *group));
    // Consumers before the pending entries that name them as owners.
    for (const std::string& consumer : delta.consumers) {
      const Consumer* c = group->find_consumer(consumer);
      journal.append(c != nullptr ? consumer_set(name, *c)
                                  : record(GroupRecord::Type::kConsumerDelete, name, consumer));
    }
    for (const StreamId id : delta.pending) {
      auto p = group->pel().find(id);
      journal.append(p != group->pel().end() ? pending_set(name, id, p->second)
                                             : record(GroupRecord::Type::kPendingDelete, name, {}, id));
    }
  }
  changes = GroupChanges{};
}

// --- loading -----------------------------------------------------------------------------------

void ShardStorage::load(Keyspace& keyspace, const std::vector<StreamFolder>& folders) {
  for (const StreamFolder& folder : folders) {
    auto log = std::make_unique<storage::SegmentLog>(folder.path, folder.key, log_options());
    auto store = std::make_unique<storage::LogEntryStore>(std::move(log), &cache_, options_.node_limits);
    std::vector<std::string> notes;
    const storage::Error error = store->open(notes);
    for (const std::string& note : notes) log::warning("Stream '" + log::escape_sample(folder.key) + "': " + note);
    if (error) {
      load_damaged(keyspace, folder, error.what);
      continue;
    }
    storage::LogEntryStore* raw = store.get();
    const storage::StreamMeta& meta = raw->log()->meta();
    auto stream = std::make_unique<Stream>(std::move(store));
    stream->restore_meta(meta.last_id, meta.entries_added, meta.max_deleted_id);
    auto journal = std::make_unique<storage::GroupJournal>(folder.path, options_.fsync != FsyncPolicy::kNo);
    notes.clear();
    const storage::Error journal_error =
        journal->open([&](const storage::GroupRecord& r) { apply_group_record(*stream, r); }, notes);
    for (const std::string& note : notes) log::warning("Stream '" + log::escape_sample(folder.key) + "': " + note);
    if (journal_error) {
      load_damaged(keyspace, folder, journal_error.what);
      continue;
    }
    Files& files = files_[stream.get()];
    files.store = raw;
    files.journal = std::move(journal);
    keyspace.insert(folder.key, std::move(stream));
  }
  cache_.evict();
}

void ShardStorage::load_damaged(Keyspace& keyspace, const StreamFolder& folder, const std::string& error) {
  log::warning("Stream '" + log::escape_sample(folder.key) + "' is damaged and will not be served: " + error);
  keyspace.insert(folder.key, std::make_unique<Stream>());
  damaged_[folder.key] = Damaged{folder.path, error};
}

std::string ShardStorage::damage_of(std::string_view key) const {
  if (damaged_.empty()) return {};
  auto it = damaged_.find(std::string(key));
  if (it == damaged_.end()) return {};
  return "DAMAGED the stream's files could not be loaded (" + it->second.error + "); DEL the key to drop it";
}

// --- streams created and removed -----------------------------------------------------------------

Result<std::unique_ptr<storage::EntryStore>> ShardStorage::create_store(std::string_view key) {
  const std::string base = folder_for(key);
  std::string path = base;
  std::error_code ec;
  for (int n = 2;; ++n) {
    if (fs::exists(path, ec)) {
      // A folder under the key's name whose manifest names the key is left by a deletion
      // that could not finish (the key is not here, and only this shard gives a folder this
      // key). Any other holds a stream RENAMEd away, or could not be read: a name of its
      // own, then.
      std::string held;
      if (!storage::SegmentLog::read_key(path, held) || held != key) {
        path = base + "~" + std::to_string(n);
        continue;
      }
      delete_folder(path);
    }
    // A name whose forget record is not durable yet is not taken (write_ahead_log.hpp).
    if (options_.fsync != FsyncPolicy::kAlways || !storage::WriteAheadLog::is_forgetting(path)) break;
    path = base + "~" + std::to_string(n);
  }
  auto log = std::make_unique<storage::SegmentLog>(path, std::string(key),
                                                   log_options());
  storage::Error error = log->create(storage::StreamId::min());
  if (!error && options_.fsync != FsyncPolicy::kNo) error = storage::sync_directory(streams_dir(options_.dir));
  if (error) {
    log::warning("Cannot create the folder of stream '" + log::escape_sample(key) + "': " + error.what);
    fs::remove_all(path, ec);
    return op_error(Errc::kNoFolder, "MISCONF " + error.what);
  }
  auto made = std::make_unique<storage::LogEntryStore>(std::move(log), &cache_, options_.node_limits);
  created_ = made.get();
  std::unique_ptr<storage::EntryStore> store = std::move(made);
  return store;
}

void ShardStorage::stream_created(std::string_view, Stream& stream) {
  Files& files = files_[&stream];
  files.store = created_;  // the store create_store just made, the stream's
  created_ = nullptr;
  last_stream_ = nullptr;  // note()'s cache may know this address from a stream gone before
  files.journal =
      std::make_unique<storage::GroupJournal>(files.store->log()->dir(), options_.fsync != FsyncPolicy::kNo);
}

void ShardStorage::stream_removed(std::string_view key, Stream& stream) {
  last_stream_ = nullptr;
  last_files_ = nullptr;
  if (auto d = damaged_.find(std::string(key)); d != damaged_.end()) {
    delete_folder(d->second.folder);
    damaged_.erase(d);
    return;
  }
  auto it = files_.find(&stream);
  if (it == files_.end()) return;
  Files& files = it->second;
  if (files.listed) dirty_.erase(std::find(dirty_.begin(), dirty_.end(), &stream));
  if (files.noted) noted_.erase(std::find(noted_.begin(), noted_.end(), &stream));
  if (files.seen) seen_.erase(std::find(seen_.begin(), seen_.end(), &stream));
  if (const storage::SegmentLog* log = files.store->log()) {
    std::vector<std::shared_ptr<storage::File>> open = log->files();
    if (files.journal && files.journal->file()) open.push_back(files.journal->file());
    delete_folder(log->dir(), std::move(open));
  }
  files_.erase(it);
}

Result<void> ShardStorage::rekey(Stream& stream, std::string_view key) {
  Files* files = files_of(stream);
  if (files == nullptr) return {};
  if (storage::Error error = files->store->log()->rekey(std::string(key))) {
    log::warning("Cannot rename stream '" + log::escape_sample(files->store->log()->key()) + "': " + error.what);
    return op_error(Errc::kNoFolder, "MISCONF " + error.what);
  }
  return {};
}

struct ShardStorage::Moving {
  Files files;
};

std::shared_ptr<ShardStorage::Moving> ShardStorage::detach(Stream& stream) {
  auto it = files_.find(&stream);
  if (it == files_.end()) return nullptr;
  Files& files = it->second;
  // Its lists go with it (adopt); what it changed is settled and flushed by the other shard.
  if (files.listed) dirty_.erase(std::find(dirty_.begin(), dirty_.end(), &stream));
  if (files.noted) noted_.erase(std::find(noted_.begin(), noted_.end(), &stream));
  if (files.seen) seen_.erase(std::find(seen_.begin(), seen_.end(), &stream));
  last_stream_ = nullptr;
  last_files_ = nullptr;
  auto moving = std::make_shared<Moving>();
  moving->files = std::move(files);
  files_.erase(it);
  return moving;
}

void ShardStorage::adopt(Stream& stream, std::shared_ptr<Moving> moving) {
  if (!moving) return;
  last_stream_ = nullptr;
  last_files_ = nullptr;
  Files& files = files_[&stream] = std::move(moving->files);
  files.store->move_to_cache(&cache_);
  if (files.listed) dirty_.push_back(&stream);
  if (files.seen) seen_.push_back(&stream);
  // Flushed by this shard from now on: what the old one had not taken yet goes in this
  // shard's next batch (and its write-ahead log).
  files.noted = false;
  (void)note(stream);
  cache_.evict();
}

void ShardStorage::delete_folder(const std::string& path, std::vector<std::shared_ptr<storage::File>> files) {
  // Writes still queued for these files go nowhere once the descriptor cache has closed
  // them: the path is about to change, and may be reused by a new stream of the same key.
  for (const auto& file : files) file->set_removed();
  // Renamed first, so a crash mid-way never leaves half a stream under its key.
  const std::string trash =
      streams_dir(options_.dir) + "/.trash-" + std::to_string(shard_) + "-" + std::to_string(trash_counter_++);
  // Its place in the logs' order is taken before the name is free: a folder another shard
  // makes under it later has writes ordered after this forget (write_ahead_log.hpp).
  const bool logged = options_.fsync == FsyncPolicy::kAlways;
  if (logged) storage::WriteAheadLog::forgetting(path);
  const std::uint64_t order = logged ? storage::WriteAheadLog::next_order() : 0;
  std::error_code ec;
  fs::rename(path, trash, ec);
  if (ec) {
    log::warning("Cannot delete the folder " + path + ": " + ec.message());
    if (logged) storage::WriteAheadLog::forgets_durable({storage::Forgotten{path, order}});  // still there
    return;
  }
  // Not reported: the folder is gone from its key already; only whether that survives a
  // crash is in doubt, and the caller has nothing to undo.
  if (options_.fsync != FsyncPolicy::kNo) (void)storage::sync_directory(streams_dir(options_.dir));
  if (logged) forgotten_.push_back(storage::Forgotten{path, order});
  storage::discard_folder(trash, std::move(files));
}

// --- changes ---------------------------------------------------------------------------------------

ShardStorage::Files* ShardStorage::files_of(Stream& stream) {
  if (&stream != last_stream_) {
    auto it = files_.find(&stream);
    last_stream_ = &stream;
    last_files_ = it == files_.end() ? nullptr : &it->second;
  }
  return last_files_;
}

ShardStorage::Files* ShardStorage::note(Stream& stream) {
  Files* files = files_of(stream);
  if (files != nullptr && !files->noted) {
    files->noted = true;
    noted_.push_back(&stream);
  }
  return files;
}

void ShardStorage::stream_changed(Stream& stream) { (void)note(stream); }

void ShardStorage::group_changed(Stream& stream, std::string_view group) {
  if (Files* files = note(stream)) files->changes.of(group).header = true;
}

void ShardStorage::group_destroyed(Stream& stream, std::string_view group) {
  if (Files* files = note(stream)) files->changes.destroyed.emplace(group);
}

void ShardStorage::consumer_changed(Stream& stream, std::string_view group, std::string_view consumer) {
  Files* files = note(stream);
  if (files == nullptr) return;
  auto& consumers = files->changes.of(group).consumers;
  if (consumers.find(consumer) == consumers.end()) consumers.emplace(consumer);
}

void ShardStorage::consumer_seen(Stream& stream, std::string_view group, std::string_view consumer) {
  Files* files = files_of(stream);
  if (files == nullptr) return;
  auto& consumers = files->changes.of(group).consumers;
  if (consumers.find(consumer) == consumers.end()) consumers.emplace(consumer);
  // A stream changed by this command is settled after it anyway; else it waits for
  // settle_seen().
  if (!files->noted && !files->seen) {
    files->seen = true;
    seen_.push_back(&stream);
  }
}

void ShardStorage::idmp_configured(Stream& stream) {
  if (Files* files = note(stream)) files->changes.idmp_config = true;
}

void ShardStorage::idmp_recorded(Stream& stream, std::string_view pid, std::string_view iid, StreamId id) {
  if (Files* files = note(stream)) files->changes.idmp_records.push_back({std::string(pid), std::string(iid), id});
}

void ShardStorage::idmp_counted(Stream& stream) {
  // Written, and waited for, like any change: a duplicate's reply (the first XADD's ID) then
  // leaves only once the batch after the one carrying that first XADD is durable too, never
  // while the first is still in flight.
  if (Files* files = note(stream)) files->changes.idmp_counters = true;
}

bool ShardStorage::settle_seen() {
  if (seen_.empty()) return false;
  for (Stream* stream : seen_) {
    files_.at(stream).seen = false;
    (void)note(*stream);
  }
  seen_.clear();
  return settle();
}

void ShardStorage::pending_changed(Stream& stream, std::string_view group, StreamId id) {
  if (Files* files = note(stream)) files->changes.of(group).pending.insert(id);
}

bool ShardStorage::settle() {
  const bool keys = std::exchange(keys_noted_, false);
  if (noted_.empty()) return keys;
  for (Stream* stream : noted_) {
    Files& files = files_.at(stream);
    files.noted = false;
    files.store->record_meta(stream->last_id(), stream->entries_added(), stream->max_deleted_id());
    if (!files.changes.empty()) journal_group_changes(*stream, files);
    if (!files.listed && (files.store->log()->dirty() || files.journal->dirty())) {
      files.listed = true;
      dirty_.push_back(stream);
    }
  }
  noted_.clear();
  return true;
}

std::string ShardStorage::collect(std::vector<storage::WriteOp>& writes) {
  std::string failure;
  // Each key written since the last flush, once, in its state now: a pipeline of 100 APPENDs
  // to a big string writes it once, not 100 times (and holds no 100 copies meanwhile).
  for (const std::string& key : changed_keys_) {
    const KeyValue* value = keyspace_->stored(key);
    keys_journal_->append(value != nullptr ? key_record(key, *value) : record(GroupRecord::Type::kKeyForget, key));
  }
  changed_keys_.clear();
  if (keys_journal_ && keys_journal_->dirty()) {
    bool folded = false;
    if (keys_journal_->should_fold()) {
      const storage::Error error =
          keys_journal_->fold([&](const storage::GroupRecordVisitor& emit) { emit_keys(emit); });
      folded = !error;
      if (error) log::warning("Cannot fold the keys journal (it keeps growing): " + error.what);
    }
    if (!folded) {
      if (storage::Error error = keys_journal_->take_writes(writes)) failure = error.what;
    }
  }
  std::vector<Stream*> again;  // streams whose journal could not be written: next flush
  for (Stream* stream : dirty_) {
    Files& files = files_.at(stream);
    files.listed = false;
    // The entries go before the group records that may name them.
    files.store->log()->take_writes(writes);
    if (files.journal->should_fold()) {
      const storage::Error error = files.journal->fold(
          [&](const storage::GroupRecordVisitor& emit) { emit_group_state(*stream, emit); });
      if (!error) continue;
      log::warning("Cannot fold the group journal (it keeps growing): " + error.what);
    }
    if (storage::Error error = files.journal->take_writes(writes)) {
      failure = error.what;
      files.listed = true;
      again.push_back(stream);
    }
  }
  dirty_.swap(again);
  return failure;
}

void ShardStorage::written(const std::vector<storage::WriteOp>& writes) {
  for (const storage::WriteOp& op : writes) storage::SegmentLog::mark_written(op);
  cache_.evict();
}

void ShardStorage::written(const std::vector<storage::WrittenRange>& ranges) {
  for (const storage::WrittenRange& r : ranges) r.file->note_written(r.from, r.end);
  cache_.evict();
}

// --- the keys journal: strings and TTLs --------------------------------------------------------

namespace {

std::string keys_dir(const std::string& dir, unsigned shard) {
  return (fs::path(dir) / "keys" / std::to_string(shard)).string();
}

}  // namespace

KeyJournals load_key_journals(const std::string& dir, unsigned shards, FsyncPolicy fsync) {
  KeyJournals out;
  out.journals.resize(shards);
  out.states.resize(shards);
  const fs::path root = fs::path(dir) / "keys";
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) throw std::runtime_error("cannot create " + root.string() + ": " + ec.message());
  std::vector<unsigned> found;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || name.empty() || name.find_first_not_of("0123456789") != std::string::npos ||
        name.size() > 6) {
      continue;
    }
    found.push_back(static_cast<unsigned>(std::stoul(name)));
  }
  if (ec) throw std::runtime_error("cannot list " + root.string() + ": " + ec.message());
  std::sort(found.begin(), found.end());
  // Each key's last state, over every journal (a key is in one, unless a crash cut a
  // change of --threads short: then the later journal's is as good).
  std::map<std::string, KeyState, std::less<>> last;
  std::map<std::string, unsigned, std::less<>> journal_of;
  for (const unsigned n : found) {
    auto journal = std::make_unique<storage::GroupJournal>(keys_dir(dir, n), fsync != FsyncPolicy::kNo);
    std::vector<std::string> notes;
    const storage::Error error = journal->open(
        [&](const storage::GroupRecord& r) {
          KeyState& state = last[std::string(r.group)];
          state.key = r.group;
          state.kind = r.type == storage::GroupRecord::Type::kKeyString ? KeyState::kString
                       : r.type == storage::GroupRecord::Type::kKeyTtl  ? KeyState::kTtl
                                                                        : KeyState::kGone;
          state.value = r.consumer;
          state.expires_at = r.time_ms;
          auto [at, first] = journal_of.emplace(std::string(r.group), n);
          if (!first && at->second != n) out.rehome = true;  // in two journals: folded to one
          at->second = n;
        },
        notes);
    for (const std::string& note : notes) log::warning("Keys journal " + std::to_string(n) + ": " + note);
    if (error) throw std::runtime_error("cannot load the keys journal " + keys_dir(dir, n) + ": " + error.what);
    if (n < shards) {
      out.journals[n] = std::move(journal);
    } else {
      out.stale.push_back(keys_dir(dir, n));
    }
  }
  out.rehome = out.rehome || !out.stale.empty();
  for (auto& [key, state] : last) {
    if (state.kind == KeyState::kGone) continue;
    const auto owner = static_cast<unsigned>(key_hash(key) % shards);
    if (journal_of[key] != owner) out.rehome = true;
    out.states[owner].push_back(std::move(state));
  }
  for (unsigned n = 0; n < shards; ++n) {
    if (!out.journals[n]) {
      fs::create_directories(keys_dir(dir, n), ec);
      if (ec) throw std::runtime_error("cannot create " + keys_dir(dir, n) + ": " + ec.message());
      out.journals[n] = std::make_unique<storage::GroupJournal>(keys_dir(dir, n), fsync != FsyncPolicy::kNo);
    }
  }
  return out;
}

void ShardStorage::load_keys(Keyspace& keyspace, std::unique_ptr<storage::GroupJournal> journal,
                             std::vector<KeyState> states, bool rehoming) {
  bool fold_now = false;
  // The keyspace reports here already (a stream that expired meanwhile is deleted with its
  // folder); the journal is set last, so that what it holds is not written to it again.
  keyspace_ = &keyspace;
  const std::int64_t now = unix_now_ms();
  std::size_t expired = 0;
  for (KeyState& state : states) {
    const bool past = state.expires_at != 0 && state.expires_at <= now;
    KeyValue* existing = keyspace.lookup(state.key);
    if (state.kind == KeyState::kTtl) {
      if (existing == nullptr || !existing->is_stream()) continue;  // the stream is gone
      if (past) {
        // Expired while the server was down: deleted as the sweep would.
        keyspace.erase(state.key);
        ++expired;
        fold_now = true;
      } else {
        keyspace.set_expiry(state.key, *existing, state.expires_at);
      }
      continue;
    }
    if (past) {
      ++expired;
      fold_now = true;
      continue;
    }
    if (existing != nullptr) {
      log::warning("Key '" + log::escape_sample(state.key) +
                   "' is both a stream and a string in the data dir (a crash under --fsync everysec or no "
                   "lost the order of their writes): keeping the stream");
      fold_now = true;
      continue;
    }
    keyspace.set_string(state.key, std::move(state.value), state.expires_at);
  }
  if (expired > 0) log::notice("Deleted " + std::to_string(expired) + " key(s) that expired while the server was down");
  keys_journal_ = std::move(journal);
  if (fold_now && !rehoming) {  // rehome_key_journals folds every journal anyway
    // The journal now holds what this shard owns, and nothing else.
    if (const storage::Error error = keys_journal_->fold([&](const storage::GroupRecordVisitor& emit) {
          emit_keys(emit);
        })) {
      throw std::runtime_error("cannot write the keys journal's snapshot: " + error.what);
    }
  }
}

storage::Error ShardStorage::fold_keys(const std::function<void(const storage::GroupRecordVisitor&)>& emit) {
  return keys_journal_->fold(emit);
}

void rehome_key_journals(const std::vector<ShardStorage*>& shards, const std::vector<std::string>& stale,
                         const std::string& dir) {
  // 1. Every journal holds every shard's keys: wherever a crash cuts what follows, each key
  //    is in some journal, with its one value.
  for (ShardStorage* shard : shards) {
    if (const storage::Error error = shard->fold_keys([&](const storage::GroupRecordVisitor& emit) {
          for (const ShardStorage* each : shards) each->emit_keys(emit);
        })) {
      throw std::runtime_error("cannot write the keys journal's snapshot: " + error.what);
    }
  }
  // 2. The journals of shards that no longer exist go, and the directory's entries with them.
  for (const std::string& path : stale) {
    std::error_code ec;
    fs::remove_all(path, ec);
    if (ec) throw std::runtime_error("cannot delete " + path + " (a keys journal of a shard --threads no longer has): " + ec.message());
  }
  const std::string root = (fs::path(dir) / "keys").string();
  if (const int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); fd >= 0) {
    const int rc = ::fsync(fd);
    ::close(fd);
    if (rc != 0) throw std::runtime_error("cannot sync " + root + ": " + std::strerror(errno));
  }
  // 3. Each journal keeps what its shard owns.
  for (ShardStorage* shard : shards) {
    if (const storage::Error error =
            shard->fold_keys([&](const storage::GroupRecordVisitor& emit) { shard->emit_keys(emit); })) {
      throw std::runtime_error("cannot write the keys journal's snapshot: " + error.what);
    }
  }
}

// A key's whole state as one record: a string with its deadline, or a stream's TTL (0: none).
storage::GroupRecord ShardStorage::key_record(std::string_view key, const KeyValue& value) {
  GroupRecord r = value.is_stream() ? record(GroupRecord::Type::kKeyTtl, key)
                                    : record(GroupRecord::Type::kKeyString, key, value.string);
  r.time_ms = value.expires_at;
  return r;
}

void ShardStorage::emit_keys(const storage::GroupRecordVisitor& emit) const {
  keyspace_->for_each_stored([&](const std::string& key, const KeyValue& value) {
    if (!value.is_stream() || value.expires_at != 0) emit(key_record(key, value));
  });
}

void ShardStorage::note_key(std::string_view key) {
  if (!keys_journal_) return;  // loading: the journal is read, not written
  if (changed_keys_.find(key) == changed_keys_.end()) changed_keys_.emplace(key);
  keys_noted_ = true;
}

// The keyspace reports whole states; the journal takes each key's state at the next flush.
void ShardStorage::string_written(std::string_view key, std::string_view, std::int64_t) { note_key(key); }
void ShardStorage::ttl_written(std::string_view key, std::int64_t) { note_key(key); }
void ShardStorage::key_forgotten(std::string_view key) { note_key(key); }

void ShardStorage::apply_retention(std::uint64_t now_ms) {
  if (options_.stream_max_bytes == 0 && options_.stream_max_age_ms == 0) return;
  for (auto& [stream, files] : files_) {
    if (files.store->retain(options_.stream_max_bytes, options_.stream_max_age_ms, now_ms) == 0) continue;
    stream->store_trimmed();
  }
  settle();
}

void ShardStorage::add_figures(StorageFigures& figures) const {
  for (const auto& [stream, files] : files_) {
    const storage::SegmentLog* log = files.store->log();
    ++figures.streams;
    figures.bytes += log->bytes();
    figures.segments += log->segment_count();
    figures.bytes += files.journal->bytes();
  }
  figures.cache_used += cache_.used();
  figures.cache_budget += cache_.budget();
  figures.damaged += damaged_.size();
}

}  // namespace runnel
