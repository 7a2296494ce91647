#include "blocking.hpp"

#include <algorithm>

#include "keyspace.hpp"
#include "stream_reply.hpp"

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

void BlockedReaders::serve(std::string_view key, const Stream& stream) {
  if (by_key_.empty()) return;  // the common case: nobody is blocked on this shard
  auto it = by_key_.find(std::string(key));
  if (it == by_key_.end()) return;
  const auto last = stream.entries().last_id();
  if (!last) return;
  auto& queue = it->second;
  std::deque<Registration> still_waiting;
  for (Registration& r : queue) {
    StreamWaiter& w = *r.waiter;
    if (w.claimed()) continue;  // answered elsewhere; forget it
    const storage::StreamId after = w.after[r.key_index];
    if (!(*last > after)) {
      still_waiting.push_back(std::move(r));
      continue;
    }
    if (!w.try_claim()) continue;
    // The reply names only this stream, as Redis's does for a woken reader.
    std::string reply;
    protocol::ReplyWriter out(reply, w.resp);
    if (w.resp == protocol::RespVersion::kResp3) {
      out.map(1);
    } else {
      out.array(1);
      out.array(2);
    }
    out.bulk(key);
    write_range(out, stream.entries(), *after.next(), storage::StreamId::max(), false, w.count);
    w.deliver(std::move(reply));
  }
  registrations_ -= queue.size() - still_waiting.size();
  if (still_waiting.empty()) {
    by_key_.erase(it);
  } else {
    queue.swap(still_waiting);
  }
}

}  // namespace runnel
