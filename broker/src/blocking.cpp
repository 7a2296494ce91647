#include "blocking.hpp"

#include <algorithm>

#include "persistence.hpp"
#include "server_state.hpp"
#include "stream_reply.hpp"
#include "streams/errors.hpp"
#include "streams/stream.hpp"

namespace runnel {

void BlockedReaders::add(const std::string& key, std::size_t key_index,
                         std::shared_ptr<StreamWaiter> waiter) {
  by_key_[key].push_back(Registration{std::move(waiter), key_index});
  ++registrations_;
}

void BlockedReaders::remove(const StreamWaiter* waiter) {
  for (const std::string& key : waiter->keys) {
    auto it = by_key_.find(key);
    if (it == by_key_.end()) continue;
    auto& queue = it->second;
    const auto before = queue.size();
    queue.erase(std::remove_if(queue.begin(), queue.end(),
                               [&](const Registration& r) { return r.waiter.get() == waiter; }),
                queue.end());
    registrations_ -= before - queue.size();
    if (queue.empty()) by_key_.erase(it);
  }
}

void BlockedReaders::answer(StreamWaiter& w, WaiterAnswer answer) {
  // A delivery waits for the batch that carries the entries (and, for a group, the PEL
  // change), as a write's reply does, under every policy.
  if (durability_ == nullptr) return w.deliver(std::move(answer));
  durability_->when_durable([deliver = w.deliver, answer = std::move(answer)](bool ok) mutable {
    if (!ok) answer = WaiterAnswer{{}, {}, "MISCONF Errors writing to the stream log; see the server log"};
    deliver(std::move(answer));
  });
}

namespace {

WaiterAnswer error_answer(std::string_view text) { return WaiterAnswer{{}, {}, std::string(text)}; }

}  // namespace

void BlockedReaders::key_deleted(std::string_view key) {
  settle(key, [](StreamWaiter& w, std::size_t) {
    if (!w.group_mode) return true;
    if (w.try_claim()) w.deliver(error_answer(errors::kKeyGone));
    return false;
  });
}

void BlockedReaders::all_deleted() {
  std::vector<std::string> keys;
  for (const auto& [key, queue] : by_key_) keys.push_back(key);
  for (const std::string& key : keys) key_deleted(key);
}

void BlockedReaders::serve(std::string_view key, Stream& stream) {
  if (registrations_ == 0) return;  // XADD's common case: nobody is blocked on this shard
  settle(key, [&](StreamWaiter& w, std::size_t key_index) {
    Result<Entries> read = Entries{};
    if (w.group_mode) {
      ConsumerGroup* group = stream.group(w.group);
      if (group == nullptr) {
        if (w.try_claim()) w.deliver(error_answer(errors::kGroupGone));
        return false;
      }
      const std::int64_t now = wall_now_ms();
      const bool claiming = w.claim_min_idle.has_value();
      if (!stream.has_new_for(*group) && !(claiming && stream.claimable_now(*group, *w.claim_min_idle, now))) {
        return true;
      }
      if (!w.try_claim()) return false;
      Consumer& consumer = group->consumer(w.consumer, now);
      read = claiming ? stream.deliver_claiming(*group, consumer, *w.claim_min_idle, w.count, w.noack, now)
                      : stream.deliver_new(*group, consumer, w.count, w.noack, now);
    } else {
      const storage::StreamId after = w.after[key_index];
      if (!stream.has_after(after)) return true;
      if (!w.try_claim()) return false;
      // XREAD '+' is worked out again when it is served: the last entry now, alone.
      const bool last_only = !w.last_only.empty() && w.last_only[key_index];
      read = last_only ? stream.range(storage::StreamId::min(), storage::StreamId::max(), true, 1)
                       : stream.read_after(after, w.count);
    }
    if (!read) {
      w.deliver(error_answer(error_text(key, read.error())));
      return false;
    }
    answer(w, WaiterAnswer{std::string(key), std::move(*read), {}});
    return false;
  });
}

}  // namespace runnel
