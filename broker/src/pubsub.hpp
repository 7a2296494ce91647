// Pub/Sub: each shard keeps the subscriptions of the connections it is home to (PubSub), and
// the server keeps a directory of how many subscriptions each shard has per name
// (PubSubDirectory). A PUBLISH runs on the publisher's thread: the directory gives the
// receivers (one per channel subscription, plus one per matching pattern subscription, as
// Redis counts them) and the shards that have any; the message is handed to this shard's
// subscribers at once and posted to the others', and the reply goes without waiting for
// them. Posts to one shard run in the order made, so one publisher's messages arrive in the
// order published, and before any command sent after the PUBLISH's reply.
//
// A subscribed connection never moves to another shard, so its subscriptions stay in its
// home shard's table until it unsubscribes or closes.
//
// Lifecycle: PubSub: one per shard, in Shard; used on the shard's thread only (or by a
// transaction's thread while the shard is parked). PubSubDirectory: one per server, in
// ServerState, any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

namespace runnel {

// Channels, patterns and shard channels (SSUBSCRIBE) are three separate namespaces.
enum class ChannelKind : std::uint8_t { kChannel = 0, kPattern = 1, kShard = 2 };

class PubSub;

// Name lookups by string_view, so a PUBLISH builds no string to find its channel.
struct NameHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view name) const { return std::hash<std::string_view>{}(name); }
};
template <typename Value>
using NameMap = std::unordered_map<std::string, Value, NameHash, std::equal_to<>>;

// What receives messages: a connection, on its home shard's thread.
class Subscriber {
 public:
  virtual ~Subscriber() = default;
  // A message: `pattern` is the matching pattern for a pattern subscription (pmessage), else
  // empty; `kind` says which namespace the subscription is in. It must not change any
  // subscription (PubSub walks its lists as it delivers): a subscriber it closes leaves its
  // subscriptions when it is destroyed, after the delivering handler.
  virtual void deliver(ChannelKind kind, std::string_view pattern, std::string_view channel,
                       std::string_view message) = 0;
  // The table its subscriptions live in: its home shard's.
  virtual PubSub& subscriptions_table() = 0;
};

// How many subscriptions each shard has, per channel, pattern and shard channel.
class PubSubDirectory {
 public:
  explicit PubSubDirectory(unsigned shards = 1) : shards_(shards) {}
  void set_shards(unsigned shards) { shards_ = shards; }
  void add(ChannelKind kind, std::string_view name, unsigned shard);
  void remove(ChannelKind kind, std::string_view name, unsigned shard);
  // PUBLISH (SPUBLISH with `sharded`): the receivers on each shard (`per_shard`, sized to the
  // shards), and their sum.
  std::int64_t receivers(bool sharded, std::string_view channel, std::vector<std::uint32_t>& per_shard) const;

 private:
  using Counts = NameMap<std::vector<std::uint32_t>>;
  mutable std::shared_mutex mutex_;
  unsigned shards_;
  Counts counts_[3];  // by ChannelKind
};

class PubSub {
 public:
  // This shard's number, and the server's directory, which subscribe and unsubscribe keep
  // up to date (none: a table on its own, in tests).
  void attach(unsigned shard, PubSubDirectory* directory) {
    shard_ = shard;
    directory_ = directory;
  }

  // The caller (the connection's own set of names) knows `subscriber` does not have it yet:
  // no search of the channel's subscribers, which may be many.
  void subscribe(ChannelKind kind, std::string_view name, Subscriber* subscriber);
  // False if `subscriber` did not have it.
  bool unsubscribe(ChannelKind kind, std::string_view name, Subscriber* subscriber);

  // Delivers to this shard's subscribers of `channel` (and, unless `sharded`, of the
  // patterns that match it); returns how many deliveries that was.
  std::int64_t publish(bool sharded, std::string_view channel, std::string_view message);

  // This shard's subscriptions to `name`.
  [[nodiscard]] std::int64_t subscribers(ChannelKind kind, std::string_view name) const;
  // The names with at least one subscriber here, matching `pattern` (all if empty).
  void names(ChannelKind kind, std::string_view pattern, std::vector<std::string>& out) const;

 private:
  using Table = NameMap<std::vector<Subscriber*>>;
  Table tables_[3];
  unsigned shard_ = 0;
  PubSubDirectory* directory_ = nullptr;
};

}  // namespace runnel
