// Shard's methods: running a key's command on its shard, noting writes for the next flush,
// serving blocked readers once a command or transaction is done, and WATCH's versions.
#include "shard.hpp"

#include <algorithm>
#include <chrono>

namespace runnel {

void Shard::settle() {
  if (storage == nullptr) return;
  if (storage->settle() && storage->pending()) durability->request();
}

std::string Shard::damage_of(std::string_view key) {
  return storage == nullptr ? std::string() : storage->damage_of(key);
}

void Shard::ran_command() {
  ++commands;
  if (holding_ready == 0) serve_ready();
  settle();
}

void Shard::signal_ready(std::string_view key) {
  if (blocked.registrations() == 0) return;  // the common case: nobody is blocked here
  if (std::find(ready_.begin(), ready_.end(), key) == ready_.end()) ready_.emplace_back(key);
}

void Shard::serve_ready() {
  if (ready_.empty()) return;
  std::vector<std::string> keys;
  keys.swap(ready_);
  for (const std::string& key : keys) {
    // A key deleted after it was signalled has nothing to serve (XREAD readers keep waiting;
    // XREADGROUP readers were answered by the delete).
    Stream* stream = keyspace.find(key);
    if (stream == nullptr) continue;
    blocked.serve(key, *stream);
  }
  // A group reader served here changed the group (its PEL, its last-delivered ID): the flush
  // its reply waits for carries the delivery too.
  settle();
}

std::uint64_t Shard::watch(const std::string& key) {
  Watched& w = watched_[key];
  ++w.watchers;
  return w.version;
}

void Shard::unwatch(const std::string& key) {
  auto it = watched_.find(key);
  if (it != watched_.end() && --it->second.watchers == 0) watched_.erase(it);
}

std::uint64_t Shard::watched_version(const std::string& key) const {
  auto it = watched_.find(key);
  return it == watched_.end() ? 0 : it->second.version;
}

void Shard::signal_modified(std::string_view key) {
  if (watched_.empty()) return;
  auto it = watched_.find(std::string(key));
  if (it != watched_.end()) ++it->second.version;
}

bool Shard::delete_key(std::string_view key) {
  if (!keyspace.erase(key)) return false;
  signal_modified(key);
  blocked.key_deleted(key);
  return true;
}

bool Shard::expire_if_due(std::string_view key) {
  if (keyspace.volatile_count() == 0 || keyspace.lookup(key) != nullptr) return false;
  if (!delete_key(key)) return false;  // lookup hid it: it is past its time
  ++expired_keys;
  return true;
}

std::size_t Shard::expire_some(std::int64_t budget_us) {
  if (keyspace.volatile_count() == 0) return 0;
  const auto start = std::chrono::steady_clock::now();
  const std::int64_t now = unix_now_ms();
  std::size_t deleted = 0;
  while (std::optional<std::string> key = keyspace.first_due(now)) {
    delete_key(*key);
    ++expired_keys;
    ++deleted;
    if (deleted % 16 == 0 &&
        std::chrono::steady_clock::now() - start > std::chrono::microseconds(budget_us)) {
      break;
    }
  }
  if (deleted > 0) {
    if (holding_ready == 0) serve_ready();
    settle();
  }
  return deleted;
}

void Shard::signal_all_modified() {
  for (auto& [key, w] : watched_) {
    if (keyspace.lookup(key) != nullptr) ++w.version;
  }
}

}  // namespace runnel
