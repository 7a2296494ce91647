#include "keyspace.hpp"

#include <xxhash.h>

#include <runnel/storage/log_entry_store.hpp>

namespace runnel {

std::uint64_t key_hash(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

Stream::Stream() : entries_(std::make_unique<storage::LogEntryStore>()) {}

void Stream::refresh_first_id() { first_id = entries_->first_id().value_or(StreamId::min()); }

Stream* Keyspace::find(std::string_view key) {
  auto it = streams_.find(KeyRef{key_hash(key), key});
  return it == streams_.end() ? nullptr : it->second.get();
}

Stream& Keyspace::find_or_create(std::string_view key) {
  const KeyRef ref{key_hash(key), key};
  auto it = streams_.lower_bound(ref);
  if (it == streams_.end() || KeyOrderLess{}(ref, it->first)) {
    it = streams_.emplace_hint(it, KeyOrder{ref.hash, std::string(key)}, std::make_unique<Stream>());
  }
  return *it->second;
}

bool Keyspace::erase(std::string_view key) {
  auto it = streams_.find(KeyRef{key_hash(key), key});
  if (it == streams_.end()) return false;
  streams_.erase(it);
  return true;
}

}  // namespace runnel
