// Keyspace: the streams one shard owns, by key (streams/stream.hpp has Stream).
// Runs on the owning shard only; never shared between threads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
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

class Keyspace {
 public:
  // The streams report their changes to `sink` from now on, and streams created get their
  // store from it (null: in memory).
  void attach(ChangeSink* sink);
  [[nodiscard]] Stream* find(std::string_view key);
  // Finds the stream or creates an empty one; an error when its folder cannot be made.
  Result<Stream*> find_or_create(std::string_view key);
  // Adds a stream loaded from the data dir.
  void insert(std::string_view key, std::unique_ptr<Stream> stream);
  // Deletes a stream, and its folder.
  bool erase(std::string_view key);
  // Takes a stream out, its folder kept (RENAME moves it to another key); null if none.
  std::unique_ptr<Stream> extract(std::string_view key);
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
  ChangeSink* sink_ = nullptr;
};

// The hash that places a key on a shard and in SCAN order.
[[nodiscard]] std::uint64_t key_hash(std::string_view key);

}  // namespace runnel
