#include "streams/idempotency.hpp"

#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <cstring>

namespace runnel {

std::size_t Idempotency::Hash::operator()(std::string_view text) const {
  return static_cast<std::size_t>(XXH3_64bits(text.data(), text.size()));
}

const Idempotency::Producer::Id* Idempotency::Producer::find(std::string_view iid, std::uint64_t hash) const {
  if (slots_.empty()) return nullptr;
  for (std::size_t i = home(hash);; i = (i + 1) & (slots_.size() - 1)) {
    const Slot& slot = slots_[i];
    if (slot.seq == 0) return nullptr;
    if (slot.hash != hash || !live(slot)) continue;
    const Id& id = ids_[slot.seq - 1 - first_seq_];
    if (id.iid == iid) return &id;
  }
}

// Into the first slot of the probe that is free or dead: callers place only IDs that are not
// in the index already.
void Idempotency::Producer::place(std::uint64_t hash, std::uint64_t seq) {
  std::size_t i = home(hash);
  while (live(slots_[i])) i = (i + 1) & (slots_.size() - 1);
  if (slots_[i].seq == 0) ++used_;
  slots_[i] = Slot{hash, seq};
}

void Idempotency::Producer::rebuild() {
  slots_.assign(std::max<std::size_t>(16, std::bit_ceil(4 * (ids_.size() + 1))), Slot{});
  used_ = 0;
  for (std::size_t k = 0; k < ids_.size(); ++k) place(ids_[k].hash, first_seq_ + k + 1);
}

void Idempotency::Producer::push(std::string iid, std::uint64_t hash, storage::StreamId id) {
  if ((used_ + 1) * 2 > slots_.size()) rebuild();  // also when empty: slots_ becomes 16
  ids_.push_back(Id{std::move(iid), id, hash});
  place(hash, first_seq_ + ids_.size());
}

void Idempotency::Producer::pop() {
  ids_.pop_front();
  ++first_seq_;  // its slot is dead from now on
}

std::size_t Idempotency::ids() const {
  std::size_t n = 0;
  for (const auto& [pid, p] : producers_) n += p.ids().size();
  return n;
}

void Idempotency::expire(Producer& producer, std::int64_t now_ms) const {
  const std::int64_t oldest = now_ms - duration_s_ * 1000;
  while (!producer.ids().empty() && static_cast<std::int64_t>(producer.ids().front().id.ms) <= oldest) producer.pop();
}

void Idempotency::sweep(std::int64_t now_ms) {
  // Round robin over the producers, resumed after the one looked at last (the table's order
  // holds while nothing is added; when something is, the sweep may skip or repeat a few).
  auto it = producers_.find(swept_);
  if (it != producers_.end()) ++it;
  for (int n = 0; n < 2 && !producers_.empty(); ++n) {
    if (it == producers_.end()) it = producers_.begin();
    swept_ = it->first;
    expire(it->second, now_ms);
    it = it->second.ids().empty() ? producers_.erase(it) : std::next(it);
  }
}

std::optional<storage::StreamId> Idempotency::find(std::string_view pid, std::string_view iid, std::int64_t now_ms) {
  auto p = producers_.find(pid);
  if (p == producers_.end()) return std::nullopt;
  expire(p->second, now_ms);
  const Producer::Id* found = p->second.find(iid, Hash{}(iid));
  if (found == nullptr) return std::nullopt;
  return found->id;
}

void Idempotency::record(std::string_view pid, std::string_view iid, storage::StreamId id,
                         std::optional<std::int64_t> now_ms) {
  if (now_ms) sweep(*now_ms);
  auto p = producers_.find(pid);
  if (p == producers_.end()) p = producers_.try_emplace(std::string(pid)).first;
  Producer& producer = p->second;
  const std::uint64_t hash = Hash{}(iid);
  if (producer.find(iid, hash) != nullptr) return;  // already recorded (a replay)
  producer.push(std::string(iid), hash, id);
  ++added_;
  while (static_cast<std::int64_t>(producer.ids().size()) > max_size_) producer.pop();
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
    for (const Producer::Id& id : p.ids()) visit(pid, id.iid, id.id);
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
