// Keyspace: the streams one shard owns, and Stream, one stream's metadata plus its entries.
// Runs on the owning shard only; never shared between threads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <runnel/storage/group_journal.hpp>
#include <runnel/storage/log_entry_store.hpp>
#include <runnel/storage/stream_id.hpp>

#include "groups.hpp"

namespace runnel {

using storage::StreamId;

class ShardStorage;

class Stream {
 public:
  // In memory only, or over `store` (a stream in the data dir).
  explicit Stream(std::unique_ptr<storage::LogEntryStore> store = nullptr);
  ~Stream();

  [[nodiscard]] storage::EntryStore& entries() { return *entries_; }
  [[nodiscard]] const storage::EntryStore& entries() const { return *entries_; }
  [[nodiscard]] std::uint64_t length() const { return entries_->size(); }
  [[nodiscard]] storage::LogEntryStore& store() { return *entries_; }

  // Redis's stream metadata: the top ID ever generated, how many entries were ever added,
  // the largest ID XDEL removed, and the first entry's ID as last recorded (0-0 if empty).
  StreamId last_id;
  std::uint64_t entries_added = 0;
  StreamId max_deleted_id;
  StreamId first_id;

  // Consumer groups by name (byte order, as Redis lists them).
  std::map<std::string, ConsumerGroup, std::less<>> groups;
  // A new group (null if `name` exists), noting its changes when the stream is persisted.
  ConsumerGroup* create_group(std::string_view name);
  void destroy_group(std::string_view name);
  // Set when the stream lives in the data dir: what changed in the groups since the last
  // flush, and the journal that makes them durable.
  std::unique_ptr<GroupChanges> group_changes;
  std::unique_ptr<storage::GroupJournal> journal;

  // Sets first_id from the entries (after deletes and trims).
  void refresh_first_id();

  // Storage bookkeeping (persistence.hpp): listed for the next flush; why the stream's files
  // could not be loaded (a damaged stream refuses commands).
  bool listed = false;
  std::string damage;

 private:
  std::unique_ptr<storage::LogEntryStore> entries_;
};

// The order in which SCAN walks a shard: by a 64-bit hash of the key, then the key, so a
// cursor (a hash value) stays meaningful while keys come and go.
struct KeyOrder {
  std::uint64_t hash;
  std::string key;
};
struct KeyRef {
  std::uint64_t hash;
  std::string_view key;
};
// Transparent, so lookups by KeyRef do not build a std::string.
struct KeyOrderLess {
  using is_transparent = void;
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const {
    return a.hash != b.hash ? a.hash < b.hash : std::string_view(a.key) < std::string_view(b.key);
  }
};

class Keyspace {
 public:
  // Streams created from now on live in `storage`'s data dir (null: in memory).
  void attach(ShardStorage* storage) { storage_ = storage; }
  [[nodiscard]] Stream* find(std::string_view key);
  // Finds the stream or creates an empty one; null (and `error` set) when its folder cannot
  // be made.
  Stream* find_or_create(std::string_view key, std::string& error);
  // Adds a stream loaded from the data dir.
  void insert(std::string_view key, std::unique_ptr<Stream> stream);
  // Deletes a stream, and its folder.
  bool erase(std::string_view key);
  void clear();
  [[nodiscard]] std::size_t size() const { return streams_.size(); }

  // Visits keys whose hash is >= `from_hash`, in hash order, until `visit` returns false.
  // Returns the hash to resume from, or 0 when the walk reached the end.
  template <typename F>
  std::uint64_t walk(std::uint64_t from_hash, F&& visit) const {
    auto it = streams_.lower_bound(KeyRef{from_hash, {}});
    while (it != streams_.end()) {
      const std::uint64_t hash = it->first.hash;
      // Finish every key of this hash value, so a cursor never splits them.
      while (it != streams_.end() && it->first.hash == hash) {
        visit(it->first.key, *it->second);
        ++it;
      }
      if (it == streams_.end()) return 0;
      if (!visit.more()) return it->first.hash;
    }
    return 0;
  }

  template <typename F>
  void for_each(F&& visit) const {
    for (const auto& [order, stream] : streams_) visit(order.key, *stream);
  }

 private:
  std::map<KeyOrder, std::unique_ptr<Stream>, KeyOrderLess> streams_;
  ShardStorage* storage_ = nullptr;
};

// The hash that places a key on a shard and in SCAN order.
[[nodiscard]] std::uint64_t key_hash(std::string_view key);

}  // namespace runnel
