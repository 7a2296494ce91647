#include "streams/idempotency.hpp"

#include <xxhash.h>

#include <bit>
#include <cstring>

namespace runnel {

std::size_t Idempotency::ids() const {
  std::size_t n = 0;
  for (const auto& [pid, p] : producers_) n += p.ids.size();
  return n;
}

void Idempotency::expire(Producer& producer, std::int64_t now_ms) const {
  const std::int64_t oldest = now_ms - duration_s_ * 1000;
  while (!producer.order.empty()) {
    auto it = producer.ids.find(producer.order.front());
    if (it != producer.ids.end() && static_cast<std::int64_t>(it->second.ms) > oldest) break;
    if (it != producer.ids.end()) producer.ids.erase(it);
    producer.order.pop_front();
  }
}

void Idempotency::sweep(std::int64_t now_ms) {
  auto it = producers_.upper_bound(swept_);
  for (int n = 0; n < 2 && !producers_.empty(); ++n) {
    if (it == producers_.end()) it = producers_.begin();
    swept_ = it->first;
    expire(it->second, now_ms);
    it = it->second.ids.empty() ? producers_.erase(it) : std::next(it);
  }
}

std::optional<storage::StreamId> Idempotency::find(std::string_view pid, std::string_view iid, std::int64_t now_ms) {
  auto p = producers_.find(pid);
  if (p == producers_.end()) return std::nullopt;
  expire(p->second, now_ms);
  auto it = p->second.ids.find(std::string(iid));
  if (it == p->second.ids.end()) return std::nullopt;
  return it->second;
}

void Idempotency::record(std::string_view pid, std::string_view iid, storage::StreamId id,
                         std::optional<std::int64_t> now_ms) {
  if (now_ms) sweep(*now_ms);
  auto p = producers_.find(pid);
  if (p == producers_.end()) p = producers_.emplace(std::string(pid), Producer{}).first;
  Producer& producer = p->second;
  auto [it, inserted] = producer.ids.try_emplace(std::string(iid), id);
  if (!inserted) return;  // already recorded (a replay)
  producer.order.push_back(it->first);
  ++added_;
  while (static_cast<std::int64_t>(producer.ids.size()) > max_size_ && !producer.order.empty()) {
    producer.ids.erase(producer.order.front());
    producer.order.pop_front();
  }
}

bool Idempotency::configure(std::optional<std::int64_t> duration_s, std::optional<std::int64_t> max_size) {
  bool changed = false;
  if (duration_s && *duration_s != duration_s_) {
    duration_s_ = *duration_s;
    changed = true;
  }
  if (max_size && *max_size != max_size_) {
    max_size_ = *max_size;
    changed = true;
  }
  if (changed) producers_.clear();  // as Redis: a new window forgets what the old one held
  return changed;
}

void Idempotency::for_each(
    const std::function<void(std::string_view pid, std::string_view iid, storage::StreamId id)>& visit) const {
  for (const auto& [pid, p] : producers_) {
    for (const std::string& iid : p.order) {
      auto it = p.ids.find(iid);
      if (it != p.ids.end()) visit(pid, iid, it->second);
    }
  }
}

std::string Idempotency::auto_id(std::span<const std::string_view> fields) {
  std::uint64_t sum_lo = 0, sum_hi = 0, xor_lo = 0, xor_hi = 0;
  std::string pair;
  for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
    pair.assign(fields[i]);
    const std::uint64_t len = fields[i].size();  // little-endian, 8 bytes: "a"+"bc" != "ab"+"c"
    for (int b = 0; b < 8; ++b) pair.push_back(static_cast<char>((len >> (8 * b)) & 0xff));
    pair.append(fields[i + 1]);
    const XXH128_hash_t h = XXH3_128bits(pair.data(), pair.size());
    sum_lo += h.low64;
    sum_hi += h.high64;
    xor_lo ^= h.low64;
    xor_hi ^= h.high64;
  }
  const std::uint64_t lo = sum_lo ^ std::rotl(xor_hi, 1);
  const std::uint64_t hi = sum_hi ^ std::rotl(xor_lo, 1);
  std::string out(16, '\0');
  for (int b = 0; b < 8; ++b) {
    out[static_cast<std::size_t>(b)] = static_cast<char>((lo >> (8 * b)) & 0xff);
    out[static_cast<std::size_t>(8 + b)] = static_cast<char>((hi >> (8 * b)) & 0xff);
  }
  return out;
}

}  // namespace runnel
