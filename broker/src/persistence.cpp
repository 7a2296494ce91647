// Stream folders in the data dir, and what goes into each flush (persistence.hpp).
#include "persistence.hpp"

#include <algorithm>
#include <cerrno>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <thread>

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
  std::vector<int> errors(paths.size(), 0);  // why a manifest could not be read (0: it was)
  std::vector<char> found(paths.size(), 0);
  {
    std::atomic<std::size_t> next{0};
    const std::size_t readers = std::min<std::size_t>(kManifestReaders, paths.size());
    std::vector<std::jthread> threads;
    for (std::size_t t = 0; t < readers; ++t) {
      threads.emplace_back([&] {
        for (std::size_t i = next++; i < paths.size(); i = next++) {
          found[i] = storage::SegmentLog::read_key(paths[i], keys[i], true, &errors[i]) ? 1 : 0;
        }
      });
    }
  }  // joined
  for (std::size_t i = 0; i < paths.size(); ++i) {
    if (!found[i] && errors[i] != 0 && errors[i] != ENOENT) {
      // Not missing, not damaged: unreadable now (out of descriptors, an I/O error). Once
      // more, alone; a stream skipped for it would look absent, and a new one made at its
      // folder would cut its segment.
      found[i] = storage::SegmentLog::read_key(paths[i], keys[i], false, &errors[i]) ? 1 : 0;
      if (!found[i] && errors[i] != 0 && errors[i] != ENOENT) {
        throw std::runtime_error("cannot read the manifest of " + paths[i] + ": " + std::strerror(errors[i]));
      }
    }
    if (!found[i]) {
      log::warning("Skipping " + paths[i] + ": its manifest (meta) is missing or damaged");
      continue;
    }
    by_shard[key_hash(keys[i]) % shards].push_back(StreamFolder{std::move(keys[i]), std::move(paths[i])});
  }
  return by_shard;
}

ShardStorage::ShardStorage(StorageOptions options, unsigned shard)
    : options_(std::move(options)), shard_(shard), cache_(options_.cache_bytes) {}

std::string ShardStorage::folder_for(std::string_view key) const {
  return (fs::path(streams_dir(options_.dir)) / storage::encode_key(key)).string();
}

void ShardStorage::load(Keyspace& keyspace, const std::vector<StreamFolder>& folders) {
  keyspace_ = &keyspace;
  for (const StreamFolder& folder : folders) {
    auto log = std::make_unique<storage::SegmentLog>(
        folder.path, folder.key, log_options());
    auto store = std::make_unique<storage::LogEntryStore>(std::move(log), &cache_);
    std::vector<std::string> notes;
    const std::string error = store->open(notes);
    for (const std::string& note : notes) log::warning("Stream '" + log::escape_sample(folder.key) + "': " + note);
    if (!error.empty()) {
      load_damaged(keyspace, folder, error);
      continue;
    }
    auto stream = std::make_unique<Stream>(std::move(store));
    const storage::StreamMeta& meta = stream->store().log()->meta();
    stream->last_id = meta.last_id;
    stream->entries_added = meta.entries_added;
    stream->max_deleted_id = meta.max_deleted_id;
    stream->refresh_first_id();
    stream->journal = std::make_unique<storage::GroupJournal>(folder.path, options_.fsync != FsyncPolicy::kNo);
    notes.clear();
    const std::string journal_error =
        stream->journal->open([&](const storage::GroupRecord& r) { apply_group_record(*stream, r); }, notes);
    for (const std::string& note : notes) log::warning("Stream '" + log::escape_sample(folder.key) + "': " + note);
    if (!journal_error.empty()) {
      load_damaged(keyspace, folder, journal_error);
      continue;
    }
    stream->group_changes = std::make_unique<GroupChanges>();
    for (auto& [name, group] : stream->groups) group.changes = stream->group_changes.get();
    keyspace.insert(folder.key, std::move(stream));
  }
  cache_.evict();
}

void ShardStorage::load_damaged(Keyspace& keyspace, const StreamFolder& folder, const std::string& error) {
  log::warning("Stream '" + log::escape_sample(folder.key) + "' is damaged and will not be served: " + error);
  auto stream = std::make_unique<Stream>();
  stream->damage = error;
  keyspace.insert(folder.key, std::move(stream));
  damaged_folders_[folder.key] = folder.path;
  ++damaged_;
}

std::unique_ptr<storage::LogEntryStore> ShardStorage::create_store(std::string_view key, std::string& error) {
  const std::string path = folder_for(key);
  std::error_code ec;
  if (fs::exists(path, ec)) delete_folder(path);  // left by a deletion that could not finish
  auto log = std::make_unique<storage::SegmentLog>(path, std::string(key),
                                                   log_options());
  error = log->create(storage::StreamId::min());
  if (error.empty() && options_.fsync != FsyncPolicy::kNo) {
    if (const int rc = storage::sync_directory(streams_dir(options_.dir)); rc != 0) {
      error = "cannot sync " + streams_dir(options_.dir) + ": " + std::strerror(rc);
    }
  }
  if (!error.empty()) {
    log::warning("Cannot create the folder of stream '" + log::escape_sample(key) + "': " + error);
    fs::remove_all(path, ec);
    return nullptr;
  }
  return std::make_unique<storage::LogEntryStore>(std::move(log), &cache_);
}

void ShardStorage::persist_groups(Stream& stream) {
  if (stream.group_changes) return;
  stream.group_changes = std::make_unique<GroupChanges>();
  stream.journal =
      std::make_unique<storage::GroupJournal>(stream.store().log()->dir(), options_.fsync != FsyncPolicy::kNo);
}

void ShardStorage::remove(std::string_view key, Stream& stream) {
  if (stream.listed) {
    dirty_.erase(std::find(dirty_.begin(), dirty_.end(), &stream));
    stream.listed = false;
  }
  if (!stream.damage.empty()) {
    auto it = damaged_folders_.find(std::string(key));
    if (it != damaged_folders_.end()) {
      delete_folder(it->second);
      damaged_folders_.erase(it);
      --damaged_;
    }
    return;
  }
  if (const storage::SegmentLog* log = stream.store().log()) {
    std::vector<std::shared_ptr<storage::File>> files = log->files();
    if (stream.journal && stream.journal->file()) files.push_back(stream.journal->file());
    delete_folder(log->dir(), std::move(files));
  }
}

void ShardStorage::delete_folder(const std::string& path, std::vector<std::shared_ptr<storage::File>> files) {
  // Writes still queued for these files go nowhere once the descriptor cache has closed
  // them: the path is about to change, and may be reused by a new stream of the same key.
  for (const auto& file : files) file->set_removed();
  // Renamed first, so a crash mid-way never leaves half a stream under its key.
  const std::string trash =
      streams_dir(options_.dir) + "/.trash-" + std::to_string(shard_) + "-" + std::to_string(trash_counter_++);
  std::error_code ec;
  fs::rename(path, trash, ec);
  if (ec) {
    log::warning("Cannot delete the folder " + path + ": " + ec.message());
    return;
  }
  if (options_.fsync != FsyncPolicy::kNo) (void)storage::sync_directory(streams_dir(options_.dir));
  if (options_.fsync == FsyncPolicy::kAlways) forgotten_.push_back(path);
  storage::discard_folder(trash, std::move(files));
}

void ShardStorage::touched(Stream& stream) {
  storage::LogEntryStore& store = stream.store();
  if (store.log() == nullptr) return;
  store.record_meta(stream.last_id, stream.entries_added, stream.max_deleted_id);
  if (stream.group_changes && !stream.group_changes->empty()) {
    journal_group_changes(stream, *stream.journal);
  }
  if (!stream.listed && (store.log()->dirty() || (stream.journal && stream.journal->dirty()))) {
    stream.listed = true;
    dirty_.push_back(&stream);
  }
}

std::string ShardStorage::collect(std::vector<storage::WriteOp>& writes) {
  std::string failure;
  std::vector<Stream*> again;  // streams whose journal could not be written: next flush
  for (Stream* stream : dirty_) {
    stream->listed = false;
    // The entries go before the group records that may name them.
    stream->store().log()->take_writes(writes);
    if (!stream->journal) continue;
    if (stream->journal->should_fold()) {
      const std::string error = stream->journal->fold(
          [&](const storage::GroupRecordVisitor& emit) { emit_group_state(*stream, emit); });
      if (error.empty()) continue;
      log::warning("Cannot fold the group journal (it keeps growing): " + error);
    }
    if (std::string error = stream->journal->take_writes(writes); !error.empty()) {
      failure = error;
      stream->listed = true;
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

void ShardStorage::written(const std::vector<std::pair<std::shared_ptr<storage::File>, std::uint64_t>>& ends) {
  for (const auto& [file, end] : ends) file->note_written(end);
  cache_.evict();
}

void ShardStorage::apply_retention(std::uint64_t now_ms) {
  if (keyspace_ == nullptr || (options_.stream_max_bytes == 0 && options_.stream_max_age_ms == 0)) return;
  keyspace_->for_each([&](std::string_view, const Stream& const_stream) {
    auto& stream = const_cast<Stream&>(const_stream);
    if (stream.store().log() == nullptr) return;
    if (stream.store().retain(options_.stream_max_bytes, options_.stream_max_age_ms, now_ms) == 0) return;
    stream.refresh_first_id();
    touched(stream);
  });
}

void ShardStorage::add_figures(const Keyspace& keyspace, StorageFigures& figures) const {
  keyspace.for_each([&](std::string_view, const Stream& stream) {
    const storage::SegmentLog* log = const_cast<Stream&>(stream).store().log();
    if (log == nullptr) return;
    ++figures.streams;
    figures.bytes += log->bytes();
    figures.segments += log->segment_count();
    if (stream.journal) figures.bytes += stream.journal->bytes();
  });
  figures.cache_used += cache_.used();
  figures.cache_budget += cache_.budget();
  figures.damaged += damaged_;
}

}  // namespace runnel
