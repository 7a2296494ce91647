#include "blocking.hpp"

#include <algorithm>
#include <chrono>

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

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The reply a woken reader gets: only this stream, as Redis's does.
void write_header(protocol::ReplyWriter& out, std::string_view key) {
  if (out.version() == protocol::RespVersion::kResp3) {
    out.map(1);
  } else {
    out.array(1);
    out.array(2);
  }
  out.bulk(key);
}

}  // namespace

void BlockedReaders::key_deleted(std::string_view key) {
  if (by_key_.empty()) return;
  auto it = by_key_.find(std::string(key));
  if (it == by_key_.end()) return;
  auto& queue = it->second;
  std::deque<Registration> still_waiting;
  for (Registration& r : queue) {
    StreamWaiter& w = *r.waiter;
    if (w.claimed()) continue;
    if (!w.group_mode) {
      still_waiting.push_back(std::move(r));
    } else if (w.try_claim()) {
      w.deliver("-UNBLOCKED the stream key no longer exists\r\n");
    }
  }
  registrations_ -= queue.size() - still_waiting.size();
  if (still_waiting.empty()) {
    by_key_.erase(it);
  } else {
    queue.swap(still_waiting);
  }
}

void BlockedReaders::all_deleted() {
  std::vector<std::string> keys;
  for (const auto& [key, queue] : by_key_) keys.push_back(key);
  for (const std::string& key : keys) key_deleted(key);
}

void BlockedReaders::serve(std::string_view key, Stream& stream) {
  if (by_key_.empty()) return;  // the common case: nobody is blocked on this shard
  auto it = by_key_.find(std::string(key));
  if (it == by_key_.end()) return;
  const auto last = stream.entries().last_id();
  auto& queue = it->second;
  std::deque<Registration> still_waiting;
  for (Registration& r : queue) {
    StreamWaiter& w = *r.waiter;
    if (w.claimed()) continue;  // answered elsewhere; forget it
    if (w.group_mode) {
      auto group = stream.groups.find(w.group);
      if (group == stream.groups.end()) {
        if (w.try_claim()) {
          w.deliver("-NOGROUP the consumer group this client was blocked on no longer exists\r\n");
        }
        continue;
      }
      if (!last || !(*last > group->second.last_delivered)) {
        still_waiting.push_back(std::move(r));
        continue;
      }
      if (!w.try_claim()) continue;
      std::string reply;
      protocol::ReplyWriter out(reply, w.resp);
      write_header(out, key);
      Consumer& consumer = *group->second.consumer(w.consumer, true, now_ms());
      deliver_new(out, stream, group->second, consumer, w.count, w.noack);
      w.deliver(std::move(reply));
      continue;
    }
    if (!last) {
      still_waiting.push_back(std::move(r));
      continue;
    }
    const storage::StreamId after = w.after[r.key_index];
    if (!(*last > after)) {
      still_waiting.push_back(std::move(r));
      continue;
    }
    if (!w.try_claim()) continue;
    std::string reply;
    protocol::ReplyWriter out(reply, w.resp);
    write_header(out, key);
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
