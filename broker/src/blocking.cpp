#include "blocking.hpp"

#include <algorithm>

#include "keyspace.hpp"
#include "persistence.hpp"
#include "server_state.hpp"
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

void BlockedReaders::answer(StreamWaiter& w, std::string reply) {
  // A delivery waits for the batch that carries the entries (and, for a group, the PEL
  // change), as a write's reply does, under every policy.
  if (durability_ == nullptr) return w.deliver(std::move(reply));
  durability_->when_durable([deliver = w.deliver, reply = std::move(reply)](bool ok) {
    deliver(ok ? reply : "-MISCONF Errors writing to the stream log; see the server log\r\n");
  });
}

namespace {

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
  settle(key, [](StreamWaiter& w, std::size_t) {
    if (!w.group_mode) return true;
    if (w.try_claim()) w.deliver("-UNBLOCKED the stream key no longer exists\r\n");
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
  const auto last = stream.entries().last_id();
  settle(key, [&](StreamWaiter& w, std::size_t key_index) {
    if (w.group_mode) {
      auto group = stream.groups.find(w.group);
      if (group == stream.groups.end()) {
        if (w.try_claim()) {
          w.deliver("-NOGROUP the consumer group this client was blocked on no longer exists\r\n");
        }
        return false;
      }
      if (!last || !(*last > group->second.last_delivered)) return true;
      if (!w.try_claim()) return false;
      std::string reply;
      protocol::ReplyWriter out(reply, w.resp);
      write_header(out, key);
      Consumer& consumer = *group->second.consumer(w.consumer, true, wall_now_ms());
      if (const storage::Error error = deliver_new(out, stream, group->second, consumer, w.count, w.noack)) {
        w.deliver("-" + read_error_text(key, error) + "\r\n");
        return false;
      }
      answer(w, std::move(reply));
      return false;
    }
    const storage::StreamId after = w.after[key_index];
    if (!last || !(*last > after)) return true;
    if (!w.try_claim()) return false;
    std::string reply;
    protocol::ReplyWriter out(reply, w.resp);
    write_header(out, key);
    if (const storage::Error error =
            write_range(out, stream.entries(), *after.next(), storage::StreamId::max(), false, w.count)) {
      w.deliver("-" + read_error_text(key, error) + "\r\n");
      return false;
    }
    answer(w, std::move(reply));
    return false;
  });
}

}  // namespace runnel
