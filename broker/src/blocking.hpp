// Blocked stream readers (XREAD BLOCK): what a blocked client waits for, and the registry of
// waiters each shard keeps for the streams it owns.
//
// A StreamWaiter may be registered on several shards (one per shard owning one of its keys).
// Whoever first claims it (a shard with new data, the timeout, a disconnect) answers it;
// every other registration is then dead and is removed by BlockedReaders::remove or skipped
// when met. This is what makes "first stream to answer wins" free of double replies.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <runnel/storage/stream_id.hpp>

#include "streams/entries.hpp"

namespace runnel {

class Stream;
class Durability;

// What a blocked reader is answered with: the entries of the key that woke it, or an error
// (its text without '-'). Encoded by the connection, on its own thread.
struct WaiterAnswer {
  std::string key;
  Entries entries;
  std::string error;
};

// Shared between the blocked connection and the shards it is registered on.
struct StreamWaiter {
  std::vector<std::string> keys;             // every key waited on, in argument order
  std::vector<storage::StreamId> after;      // per key: serve entries above this ID
  std::vector<char> last_only;               // per key: XREAD '+', serve only the last entry
  std::size_t count = 0;                     // most entries per reply
  // XREADGROUP: read new entries as this group's consumer (instead of `after`).
  bool group_mode = false;
  std::string group;
  std::string consumer;
  bool noack = false;
  std::optional<std::int64_t> claim_min_idle;  // XREADGROUP CLAIM: idle pending entries too
  // Hands the answer to the connection; callable from any thread, at most once.
  std::function<void(WaiterAnswer answer)> deliver;

  // True for exactly one caller: the one that answers this waiter.
  bool try_claim() { return !claimed_.exchange(true, std::memory_order_acq_rel); }
  [[nodiscard]] bool claimed() const { return claimed_.load(std::memory_order_acquire); }

 private:
  std::atomic<bool> claimed_{false};
};

// The waiters on one shard's streams, per key in the order they blocked (FIFO).
// Runs on the owning shard only.
class BlockedReaders {
 public:
  // Under fsync always, answers go out once the shard's appends are durable.
  void attach(Durability* durability) { durability_ = durability; }
  void add(const std::string& key, std::size_t key_index, std::shared_ptr<StreamWaiter> waiter);
  // Drops every registration of `waiter` on this shard.
  void remove(const StreamWaiter* waiter);
  // `key` changed (entries added, or a group destroyed): answer, in FIFO order, every live
  // waiter the stream now has entries for (or whose group is gone).
  void serve(std::string_view key, Stream& stream);
  // `key` was deleted (DEL, UNLINK, FLUSHALL): blocked XREADGROUP readers get Redis's
  // -UNBLOCKED error; XREAD readers keep waiting, as in Redis 7.0.
  void key_deleted(std::string_view key);
  void all_deleted();
  [[nodiscard]] std::size_t registrations() const { return registrations_; }

 private:
  // Hands `answer` to the waiter, after the disk has what produced it when replies wait.
  void answer(StreamWaiter& w, WaiterAnswer answer);

  struct Registration {
    std::shared_ptr<StreamWaiter> waiter;
    std::size_t key_index;
  };

  // Goes through `key`'s waiters in FIFO order, dropping the ones answered elsewhere and
  // asking `keep(waiter, key_index)` about the others: true keeps one waiting.
  template <typename Keep>
  void settle(std::string_view key, Keep&& keep) {
    if (by_key_.empty()) return;  // the common case: nobody is blocked on this shard
    auto it = by_key_.find(std::string(key));
    if (it == by_key_.end()) return;
    auto& queue = it->second;
    std::deque<Registration> still_waiting;
    for (Registration& r : queue) {
      if (r.waiter->claimed()) continue;
      if (keep(*r.waiter, r.key_index)) still_waiting.push_back(std::move(r));
    }
    registrations_ -= queue.size() - still_waiting.size();
    if (still_waiting.empty()) {
      by_key_.erase(it);
    } else {
      queue.swap(still_waiting);
    }
  }
  std::unordered_map<std::string, std::deque<Registration>> by_key_;
  std::size_t registrations_ = 0;
  Durability* durability_ = nullptr;
};

}  // namespace runnel
