#include "keyspace.hpp"

#include <xxhash.h>

namespace runnel {

std::uint64_t key_hash(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

void Keyspace::attach(ChangeSink* sink) {
  sink_ = sink;
  for (auto& [order, stream] : streams_) stream->bind(sink);
}

Stream* Keyspace::find(std::string_view key) {
  auto it = streams_.find(KeyRef{key_hash(key), key});
  return it == streams_.end() ? nullptr : it->second.get();
}

Result<Stream*> Keyspace::find_or_create(std::string_view key) {
  const KeyRef ref{key_hash(key), key};
  auto it = streams_.lower_bound(ref);
  if (it == streams_.end() || KeyOrderLess{}(ref, it->first)) {
    std::unique_ptr<storage::EntryStore> store;
    if (sink_ != nullptr) {
      Result<std::unique_ptr<storage::EntryStore>> made = sink_->create_store(key);
      if (!made) return made.take_error();
      store = std::move(*made);
    }
    it = streams_.emplace_hint(it, KeyOrder{ref.hash, std::string(key)}, std::make_unique<Stream>(std::move(store)));
    if (sink_ != nullptr) {
      sink_->stream_created(key, *it->second);
      it->second->bind(sink_);
    }
  }
  return it->second.get();
}

void Keyspace::insert(std::string_view key, std::unique_ptr<Stream> stream) {
  if (sink_ != nullptr) stream->bind(sink_);
  streams_.insert_or_assign(KeyOrder{key_hash(key), std::string(key)}, std::move(stream));
}

bool Keyspace::erase(std::string_view key) {
  auto it = streams_.find(KeyRef{key_hash(key), key});
  if (it == streams_.end()) return false;
  if (sink_ != nullptr) sink_->stream_removed(key, *it->second);
  streams_.erase(it);
  return true;
}

std::unique_ptr<Stream> Keyspace::extract(std::string_view key) {
  auto it = streams_.find(KeyRef{key_hash(key), key});
  if (it == streams_.end()) return nullptr;
  std::unique_ptr<Stream> stream = std::move(it->second);
  streams_.erase(it);
  return stream;
}

void Keyspace::clear() {
  if (sink_ != nullptr) {
    for (auto& [order, stream] : streams_) sink_->stream_removed(order.key, *stream);
  }
  streams_.clear();
}

}  // namespace runnel
