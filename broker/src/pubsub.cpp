// Pub/Sub's per-shard tables (pubsub.hpp).
#include "pubsub.hpp"

#include <algorithm>
#include <mutex>

#include "glob.hpp"

namespace runnel {

void PubSub::subscribe(ChannelKind kind, std::string_view name, Subscriber* subscriber) {
  Table& table = tables_[static_cast<int>(kind)];
  auto it = table.find(name);
  if (it == table.end()) it = table.emplace(std::string(name), std::vector<Subscriber*>{}).first;
  it->second.push_back(subscriber);
  if (directory_ != nullptr) directory_->add(kind, name, shard_);
}

bool PubSub::unsubscribe(ChannelKind kind, std::string_view name, Subscriber* subscriber) {
  Table& table = tables_[static_cast<int>(kind)];
  auto it = table.find(name);
  if (it == table.end()) return false;
  std::vector<Subscriber*>& list = it->second;
  auto at = std::find(list.begin(), list.end(), subscriber);
  if (at == list.end()) return false;
  list.erase(at);  // in order: subscribers receive in the order they subscribed
  if (list.empty()) table.erase(it);
  if (directory_ != nullptr) directory_->remove(kind, name, shard_);
  return true;
}

void PubSubDirectory::add(ChannelKind kind, std::string_view name, unsigned shard) {
  std::unique_lock lock(mutex_);
  Counts& counts = counts_[static_cast<int>(kind)];
  auto it = counts.find(name);
  if (it == counts.end()) it = counts.emplace(std::string(name), std::vector<std::uint32_t>(shards_, 0)).first;
  ++it->second[shard];
}

void PubSubDirectory::remove(ChannelKind kind, std::string_view name, unsigned shard) {
  std::unique_lock lock(mutex_);
  Counts& counts = counts_[static_cast<int>(kind)];
  auto it = counts.find(name);
  if (it == counts.end() || it->second[shard] == 0) return;
  --it->second[shard];
  if (std::all_of(it->second.begin(), it->second.end(), [](std::uint32_t n) { return n == 0; })) counts.erase(it);
}

std::int64_t PubSubDirectory::receivers(bool sharded, std::string_view channel,
                                        std::vector<std::uint32_t>& per_shard) const {
  per_shard.assign(shards_, 0);
  std::int64_t total = 0;
  auto add_counts = [&](const std::vector<std::uint32_t>& counts) {
    for (unsigned s = 0; s < shards_; ++s) {
      per_shard[s] += counts[s];
      total += counts[s];
    }
  };
  std::shared_lock lock(mutex_);
  const Counts& channels = counts_[static_cast<int>(sharded ? ChannelKind::kShard : ChannelKind::kChannel)];
  if (!channels.empty()) {
    if (auto it = channels.find(channel); it != channels.end()) add_counts(it->second);
  }
  if (!sharded) {
    for (const auto& [pattern, counts] : counts_[static_cast<int>(ChannelKind::kPattern)]) {
      if (glob_match(pattern, channel)) add_counts(counts);
    }
  }
  return total;
}

std::int64_t PubSub::publish(bool sharded, std::string_view channel, std::string_view message) {
  std::int64_t receivers = 0;
  const ChannelKind kind = sharded ? ChannelKind::kShard : ChannelKind::kChannel;
  const Table& table = tables_[static_cast<int>(kind)];
  if (!table.empty()) {
    if (auto it = table.find(channel); it != table.end()) {
      // No copy of the list: a delivery never changes the subscriptions (Subscriber).
      for (Subscriber* s : it->second) s->deliver(kind, {}, channel, message);
      receivers += static_cast<std::int64_t>(it->second.size());
    }
  }
  if (sharded) return receivers;
  for (const auto& [pattern, list] : tables_[static_cast<int>(ChannelKind::kPattern)]) {
    if (!glob_match(pattern, channel)) continue;
    for (Subscriber* s : list) s->deliver(ChannelKind::kPattern, pattern, channel, message);
    receivers += static_cast<std::int64_t>(list.size());
  }
  return receivers;
}

std::int64_t PubSub::subscribers(ChannelKind kind, std::string_view name) const {
  const Table& table = tables_[static_cast<int>(kind)];
  auto it = table.find(name);
  return it == table.end() ? 0 : static_cast<std::int64_t>(it->second.size());
}

void PubSub::names(ChannelKind kind, std::string_view pattern, std::vector<std::string>& out) const {
  for (const auto& [name, list] : tables_[static_cast<int>(kind)]) {
    if (pattern.empty() || glob_match(pattern, name)) out.push_back(name);
  }
}

}  // namespace runnel
