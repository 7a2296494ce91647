// Shard: the streams whose key hashes to one shard, with what serves them on its thread:
// the keyspace, the blocked readers, the watched keys, and the link to its storage.
// Lifecycle: one per shard thread, made at start and kept until the server stops. Touched
// only by its own thread (or by a transaction's thread while it is parked).
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <runnel/protocol/reply_writer.hpp>

#include "blocking.hpp"
#include "command_stats.hpp"
#include "keyspace.hpp"
#include "persistence.hpp"
#include "pubsub.hpp"

namespace runnel {

struct Shard {
  unsigned index = 0;
  Keyspace keyspace;
  BlockedReaders blocked;
  PubSub pubsub;  // the subscriptions of the connections this shard is home to
  std::uint64_t commands = 0;  // commands this shard ran
  std::atomic<std::int64_t> hops_waiting{0};  // commands from other threads queued to run here
  std::atomic<std::int64_t> connections{0};   // client connections this thread serves
  std::atomic<std::uint64_t> connections_moved_in{0};  // moved here to be near their keys
  ShardStorage* storage = nullptr;    // null: streams live in memory only
  Durability* durability = nullptr;   // the shard's Flusher, with storage

  // After a command: what it changed (reported to the storage, the shard's ChangeSink) goes
  // to disk with the next flush.
  void settle();
  // Whether the reply to that write must wait for the disk.
  [[nodiscard]] bool reply_must_wait() const { return durability != nullptr && durability->must_wait(); }
  // A damaged stream's error reply text, or "" if `key` is fine.
  [[nodiscard]] std::string damage_of(std::string_view key);
  // A command ran here (run_key_command in command.hpp): counts it, serves the readers it
  // made ready (unless a transaction holds them), and settles its changes.
  void ran_command();

  // `key` may have something for its blocked readers (entries added, a group destroyed).
  // They are served once the command, or the whole transaction, that changed it has run, on
  // the key's final state, as Redis serves them (a reader never sees a transaction's middle).
  void signal_ready(std::string_view key);
  // Serves the blocked readers of every key signalled since the last call, and settles what
  // their deliveries changed.
  void serve_ready();
  // While above 0 (a transaction runs), ran_command leaves ready keys for the caller's
  // serve_ready().
  int holding_ready = 0;

  // WATCH: a key's version goes up each time a command changes it (as Redis's
  // signalModifiedKey); only keys someone watches are tracked.
  std::uint64_t watch(const std::string& key);
  void unwatch(const std::string& key);
  [[nodiscard]] std::uint64_t watched_version(const std::string& key) const;
  void signal_modified(std::string_view key);
  // Deletes `key` as DEL does: watchers see it modified, and readers blocked on it are told
  // it is gone. False if there was no such key.
  bool delete_key(std::string_view key);
  void signal_all_modified();  // FLUSHALL: every watched key that exists

  // Expiry. A key past its time is deleted as DEL deletes it (watchers see it modified,
  // blocked readers are told), by the first command that touches it: true if it was.
  bool expire_if_due(std::string_view key);
  // The shard's sweep, a few times a second: deletes keys past their time, earliest first,
  // for at most `budget_us` microseconds (and at least a few keys). Returns how many.
  std::size_t expire_some(std::int64_t budget_us);
  std::uint64_t expired_keys = 0;  // INFO's expired_keys: this shard's part
  CommandStats command_stats;      // of the commands this shard's thread ran (command.hpp)

 private:
  struct Watched {
    std::uint64_t version = 0;
    std::uint32_t watchers = 0;
  };
  std::unordered_map<std::string, Watched> watched_;
  std::vector<std::string> ready_;  // keys signalled, in the order they first were
};

}  // namespace runnel
