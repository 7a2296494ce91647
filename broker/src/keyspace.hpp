// Keyspace: the keys one shard owns: streams (streams/stream.hpp), strings, and the time each
// key expires at, if any. Runs on the owning shard only; never shared between threads.
//
// A key past its time is gone to every reader here (find, lookup, type_of, the walks), even
// before it is deleted: lazily by the command that touches it (Shard::expire_if_due), or by
// the shard's sweep (Shard::expire_some), which takes the earliest deadlines first.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "streams/change_sink.hpp"
#include "streams/result.hpp"
#include "streams/stream.hpp"

namespace runnel {

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

// One key's value: a stream, or (stream null) a string.
struct KeyValue {
  std::unique_ptr<Stream> stream;
  std::string string;
  std::int64_t expires_at = 0;  // Unix time in ms; 0: never

  [[nodiscard]] bool is_stream() const { return stream != nullptr; }
};

enum class KeyType : std::uint8_t { kNone, kString, kStream };

// Redis's reply to a command on a key of another type.
inline constexpr std::string_view kWrongType = "WRONGTYPE Operation against a key holding the wrong kind of value";

// Wall-clock Unix time in ms, as TTLs count it.
[[nodiscard]] std::int64_t unix_now_ms();

class Keyspace {
 public:
  // The streams report their changes to `sink` from now on, and streams created get their
  // store from it (null: in memory). String writes and TTLs are reported to it too.
  void attach(ChangeSink* sink);
  // The strings' bytes, counted against --maxmemory-strings, are added to `total` (shared by
  // every shard's keyspace).
  void count_strings_in(std::atomic<std::int64_t>* total) { string_total_ = total; }

  // The live stream at `key`: null if there is none, or the key holds a string.
  [[nodiscard]] Stream* find(std::string_view key);
  // The live value at `key`, of either type (null: none).
  [[nodiscard]] KeyValue* lookup(std::string_view key);
  // The value kept at `key`, past its time or not (null: none): what the keys journal records.
  [[nodiscard]] const KeyValue* stored(std::string_view key) const;
  [[nodiscard]] KeyType type_of(std::string_view key) { return type_of(lookup(key)); }
  [[nodiscard]] static KeyType type_of(const KeyValue* value) {
    return value == nullptr ? KeyType::kNone : value->is_stream() ? KeyType::kStream : KeyType::kString;
  }
  // Finds the stream or creates an empty one; an error when its folder cannot be made. The
  // caller checked that the key holds no string.
  Result<Stream*> find_or_create(std::string_view key);
  // Adds a stream loaded from the data dir.
  void insert(std::string_view key, std::unique_ptr<Stream> stream);
  // Deletes a key of either type (a stream with its folder). False if there was none.
  bool erase(std::string_view key);
  // Takes a stream out, its folder kept (RENAME moves it to another key); null if none. Its
  // TTL goes in `expires_at`.
  std::unique_ptr<Stream> extract(std::string_view key, std::int64_t* expires_at = nullptr);
  void clear();
  // Every key, live or past its time and not yet deleted.
  [[nodiscard]] std::size_t size() const { return keys_.size(); }
  // Keys past their time and not yet deleted.
  [[nodiscard]] std::size_t expired_count(std::int64_t now) const;
  [[nodiscard]] std::size_t volatile_count() const { return deadlines_.size(); }

  // --- strings ---
  // Sets `key` to a string (the key holds none, or a string). `expires_at`: the new TTL
  // (0: none); `keep_ttl`: the key's TTL stays.
  void set_string(std::string_view key, std::string value, std::int64_t expires_at, bool keep_ttl = false);
  // The string at `key` changed in place (APPEND, SETRANGE, INCR...): reported.
  void string_changed(std::string_view key, KeyValue& value, std::size_t old_size);
  [[nodiscard]] std::int64_t string_bytes() const { return string_bytes_; }
  // Whether any key here holds a string (stream commands skip the type check when none does).
  [[nodiscard]] bool has_strings() const { return string_keys_ != 0; }

  // --- TTLs ---
  // Sets (or with 0 removes) the time the live key at `key` expires at.
  void set_expiry(std::string_view key, KeyValue& value, std::int64_t expires_at);
  // The earliest deadline at or before `now`, if any: the key to delete next.
  [[nodiscard]] std::optional<std::string> first_due(std::int64_t now) const;

  // Visits live keys whose hash is >= `from_hash`, in hash order, until `visit.more()` is
  // false. Returns the hash to resume from, or 0 when the walk reached the end. Keys past
  // their time are counted by `visit.skipped()` but not shown.
  template <typename F>
  std::uint64_t walk(std::uint64_t from_hash, F&& visit) const {
    const std::int64_t now = unix_now_ms();
    auto it = keys_.lower_bound(KeyRef{from_hash, {}});
    while (it != keys_.end()) {
      const std::uint64_t hash = it->first.hash;
      // Finish every key of this hash value, so a cursor never splits them.
      while (it != keys_.end() && it->first.hash == hash) {
        if (live(it->second, now)) {
          visit(it->first.key, it->second);
        } else {
          visit.skipped();
        }
        ++it;
      }
      if (it == keys_.end()) return 0;
      if (!visit.more()) return it->first.hash;
    }
    return 0;
  }

  // Every live key.
  template <typename F>
  void for_each(F&& visit) const {
    const std::int64_t now = unix_now_ms();
    for (const auto& [order, value] : keys_) {
      if (live(value, now)) visit(order.key, value);
    }
  }

  // Every key, those past their time and not deleted yet included (a fold of the keys
  // journal writes them: a stream's folder stays until its deletion is durable).
  template <typename F>
  void for_each_stored(F&& visit) const {
    for (const auto& [order, value] : keys_) visit(order.key, value);
  }

 private:
  using Map = std::map<KeyOrder, KeyValue, KeyOrderLess>;
  struct ViewHash {
    std::size_t operator()(std::string_view key) const;
  };
  // The entry of `key` (keys_.end() if none), by the index.
  [[nodiscard]] Map::iterator locate(std::string_view key);
  // Adds a new key's entry to both structures.
  Map::iterator add(std::string_view key, KeyValue value);
  [[nodiscard]] static bool live(const KeyValue& value, std::int64_t now) {
    return value.expires_at == 0 || value.expires_at > now;
  }
  static std::int64_t string_cost(std::string_view key, std::size_t size) {
    return static_cast<std::int64_t>(key.size() + size + 64);
  }
  void count(std::int64_t delta) {
    string_bytes_ += delta;
    if (string_total_ != nullptr) string_total_->fetch_add(delta, std::memory_order_relaxed);
  }
  void forget_deadline(std::string_view key, std::int64_t at);
  // Removes the entry `it` (a string's bytes uncounted, its deadline dropped), reporting
  // what goes to the sink.
  void remove(Map::iterator it);

  // Keys in SCAN's order; and an index of the same entries by key, so that a lookup is one
  // hash probe rather than a walk down the tree (9% of a SET/GET run's time at 10,000 keys).
  // Map nodes never move: the index holds views of their keys and their iterators.
  Map keys_;
  std::unordered_map<std::string_view, Map::iterator, ViewHash> index_;
  // (deadline, key) for every key with a TTL, earliest first.
  std::set<std::pair<std::int64_t, std::string>> deadlines_;
  ChangeSink* sink_ = nullptr;
  std::int64_t string_bytes_ = 0;
  std::size_t string_keys_ = 0;
  std::atomic<std::int64_t>* string_total_ = nullptr;
};

// The hash that places a key on a shard and in SCAN order.
[[nodiscard]] std::uint64_t key_hash(std::string_view key);

}  // namespace runnel
