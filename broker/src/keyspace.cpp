#include "keyspace.hpp"

#include <xxhash.h>

#include "log.hpp"
#include "persistence.hpp"

namespace runnel {

std::uint64_t key_hash(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

Stream::Stream(std::unique_ptr<storage::LogEntryStore> store)
    : entries_(store ? std::move(store) : std::make_unique<storage::LogEntryStore>()) {}

Stream::~Stream() = default;

ConsumerGroup* Stream::create_group(std::string_view name) {
  auto [it, created] = groups.try_emplace(std::string(name));
  if (!created) return nullptr;
  ConsumerGroup& group = it->second;
  group.changes = group_changes.get();
  group.name = &it->first;
  group.touch();
  return &group;
}

void Stream::destroy_group(std::string_view name) {
  auto it = groups.find(name);
  if (it == groups.end()) return;
  if (group_changes) group_changes->destroyed.emplace(name);
  groups.erase(it);
}

void Stream::refresh_first_id() { first_id = entries_->first_id().value_or(StreamId::min()); }

Stream* Keyspace::find(std::string_view key) {
  auto it = streams_.find(KeyRef{key_hash(key), key});
  return it == streams_.end() ? nullptr : it->second.get();
}

Stream* Keyspace::find_or_create(std::string_view key, std::string& error) {
  const KeyRef ref{key_hash(key), key};
  auto it = streams_.lower_bound(ref);
  if (it == streams_.end() || KeyOrderLess{}(ref, it->first)) {
    std::unique_ptr<storage::LogEntryStore> store;
    if (storage_ != nullptr) {
      store = storage_->create_store(key, error);
      if (!store) return nullptr;
    }
    it = streams_.emplace_hint(it, KeyOrder{ref.hash, std::string(key)},
                               std::make_unique<Stream>(std::move(store)));
    if (storage_ != nullptr) storage_->persist_groups(*it->second);
  }
  return it->second.get();
}

void Keyspace::insert(std::string_view key, std::unique_ptr<Stream> stream) {
  streams_.insert_or_assign(KeyOrder{key_hash(key), std::string(key)}, std::move(stream));
}

bool Keyspace::erase(std::string_view key) {
  auto it = streams_.find(KeyRef{key_hash(key), key});
  if (it == streams_.end()) return false;
  if (storage_ != nullptr) storage_->remove(key, *it->second);
  streams_.erase(it);
  return true;
}

void Keyspace::clear() {
  if (storage_ != nullptr) {
    for (auto& [order, stream] : streams_) storage_->remove(order.key, *stream);
  }
  streams_.clear();
}

}  // namespace runnel
