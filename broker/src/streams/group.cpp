// ConsumerGroup's bookkeeping: consumers and the PEL, each change reported to the sink.
#include "streams/group.hpp"

#include <algorithm>

namespace runnel {

const ConsumerGroup::ClaimOrder& ConsumerGroup::claim_order() const {
  if (!ordered_) {
    for (const auto& [id, p] : pel_) order_.insert(order_of(id, p));
    ordered_ = true;
  }
  return order_;
}

const Consumer* ConsumerGroup::find_consumer(std::string_view name) const {
  auto it = consumers_.find(name);
  return it == consumers_.end() ? nullptr : &it->second;
}

void ConsumerGroup::set_position(StreamId last_delivered, std::int64_t entries_read) {
  last_delivered_ = last_delivered;
  entries_read_ = entries_read;
  changed_header();
}

Consumer& ConsumerGroup::consumer(std::string_view name, std::int64_t now_ms, bool* created) {
  if (created) *created = false;
  auto it = consumers_.find(name);
  if (it == consumers_.end()) {
    it = consumers_.emplace(std::string(name), Consumer{std::string(name), now_ms, -1, {}}).first;
    if (created) *created = true;
    changed_consumer(name);
    return it->second;
  }
  it->second.seen_time_ms = now_ms;
  seen_consumer(name);
  return it->second;
}

void ConsumerGroup::active(Consumer& consumer, std::int64_t now_ms) {
  if (consumer.active_time_ms == now_ms) return;
  consumer.active_time_ms = now_ms;
  changed_consumer(consumer.name);
}

void ConsumerGroup::restore_consumer(std::string_view name, std::int64_t seen_time_ms, std::int64_t active_time_ms) {
  Consumer& c = consumer(name, seen_time_ms);
  c.active_time_ms = active_time_ms;
}

std::uint64_t ConsumerGroup::delete_consumer(std::string_view name) {
  auto it = consumers_.find(name);
  if (it == consumers_.end()) return 0;
  const std::uint64_t pending = it->second.pending.size();
  for (const StreamId id : it->second.pending) {
    unorder(id, pel_.at(id));
    pel_.erase(id);
    unreferenced(id);
    changed_pending(id);
  }
  changed_consumer(name);
  consumers_.erase(it);
  return pending;
}

void ConsumerGroup::add_pending(StreamId id, Consumer& to, std::int64_t now_ms) {
  auto [it, inserted] = pel_.try_emplace(id, PendingEntry{&to, now_ms, 1, -1});
  if (inserted) {
    referenced(id);
  } else {
    unorder(id, it->second);
    if (it->second.owner != nullptr) it->second.owner->pending.erase(id);
    it->second = PendingEntry{&to, now_ms, 1, -1};
  }
  reorder(id, it->second);
  to.pending.insert(id);
  changed_pending(id);
}

void ConsumerGroup::redelivered(StreamId id, std::int64_t now_ms) {
  PendingEntry& p = pel_.at(id);
  unorder(id, p);
  p.delivery_time_ms = now_ms;
  p.delivery_count = one_more_delivery(p.delivery_count);
  reorder(id, p);
  changed_pending(id);
}

void ConsumerGroup::claim(StreamId id, Consumer& to, std::int64_t time_ms,
                          std::optional<std::uint64_t> delivery_count) {
  PendingEntry& p = pel_.at(id);
  unorder(id, p);
  if (p.owner != &to) {
    if (p.owner != nullptr) p.owner->pending.erase(id);
    to.pending.insert(id);
    p.owner = &to;
  }
  p.delivery_time_ms = time_ms;
  p.nack_order = -1;  // claimed: out of the NACKed zone
  if (delivery_count) p.delivery_count = *delivery_count;
  reorder(id, p);
  changed_pending(id);
}

void ConsumerGroup::add_unowned(StreamId id, std::int64_t now_ms) {
  auto [it, inserted] = pel_.emplace(id, PendingEntry{nullptr, now_ms, 1, -1});
  if (inserted) {
    referenced(id);
    reorder(id, it->second);
  }
  changed_pending(id);
}

bool ConsumerGroup::nack(StreamId id, std::uint64_t delivery_count) {
  auto it = pel_.find(id);
  if (it == pel_.end()) return false;
  PendingEntry& p = it->second;
  unorder(id, p);
  if (p.owner != nullptr) p.owner->pending.erase(id);
  p.owner = nullptr;
  p.delivery_time_ms = 0;
  p.delivery_count = delivery_count;
  p.nack_order = next_nack_++;  // at the end of the zone, a NACKed one again too
  reorder(id, p);
  changed_pending(id);
  return true;
}

void ConsumerGroup::add_nacked(StreamId id, std::uint64_t delivery_count, std::int64_t order) {
  auto [it, inserted] = pel_.try_emplace(id, PendingEntry{nullptr, 0, delivery_count, -1});
  if (inserted) {
    referenced(id);
  } else {
    unorder(id, it->second);
    if (it->second.owner != nullptr) it->second.owner->pending.erase(id);
    it->second = PendingEntry{nullptr, 0, delivery_count, -1};
  }
  if (order < 0) order = next_nack_;
  it->second.nack_order = order;
  next_nack_ = std::max(next_nack_, order + 1);
  reorder(id, it->second);
  changed_pending(id);
}

void ConsumerGroup::set_delivery_count(StreamId id, std::uint64_t count) {
  auto it = pel_.find(id);
  if (it == pel_.end()) return;
  it->second.delivery_count = count;
  changed_pending(id);
}

bool ConsumerGroup::ack(StreamId id) {
  auto it = pel_.find(id);
  if (it == pel_.end()) return false;
  if (it->second.owner != nullptr) it->second.owner->pending.erase(id);
  unorder(id, it->second);
  pel_.erase(it);
  unreferenced(id);
  changed_pending(id);
  return true;
}

PendingSummary ConsumerGroup::pending_summary() const {
  PendingSummary s;
  s.count = pel_.size();
  if (pel_.empty()) return s;
  s.smallest = pel_.begin()->first;
  s.largest = pel_.rbegin()->first;
  for (const auto& [name, c] : consumers_) {
    if (!c.pending.empty()) s.consumers.emplace_back(name, c.pending.size());
  }
  return s;
}

std::vector<PendingItem> ConsumerGroup::pending(const PendingQuery& q, std::int64_t now_ms) const {
  std::vector<PendingItem> out;
  const Consumer* only = nullptr;
  if (q.consumer) {
    only = find_consumer(*q.consumer);
    if (only == nullptr) return out;
  }
  for (auto it = pel_.lower_bound(q.start); out.size() < q.count && it != pel_.end() && it->first <= q.end; ++it) {
    const PendingEntry& p = it->second;
    if (only != nullptr && p.owner != only) continue;
    // An unowned (NACKed) entry: idle -1, and listed whatever IDLE asks (Redis 8.8).
    if (p.owner == nullptr) {
      out.push_back(PendingItem{it->first, std::string(), -1, p.delivery_count});
      continue;
    }
    if (q.min_idle_ms != 0 && now_ms - p.delivery_time_ms < q.min_idle_ms) continue;
    out.push_back(PendingItem{it->first, p.owner->name, std::max<std::int64_t>(0, now_ms - p.delivery_time_ms),
                              p.delivery_count});
  }
  return out;
}

}  // namespace runnel
