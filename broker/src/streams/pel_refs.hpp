// Which entries some group still holds pending, and in how many groups: one count per ID
// over all of a stream's PELs. It answers Redis 8.2's ACKED question ("does any group still
// reference this entry?") in O(log P) whatever the number of groups, and lists the pending
// IDs below a bound for DELREF. Kept by the groups (group.hpp) as entries enter and leave
// their PELs, but only once the stream has used DELREF or ACKED (start(): a stream that
// never does pays nothing for it on every delivery and acknowledgement); never written to
// disk.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include <runnel/storage/stream_id.hpp>

namespace runnel {

// Redis 8.2's KEEPREF | DELREF | ACKED: what deleting or trimming entries does about the
// groups that still reference them (hold them pending, or have not read them yet).
enum class RefPolicy {
  kKeep,    // delete anyway; pending entries stay, pointing at nothing (Redis 7's behaviour)
  kDelete,  // delete, and drop the entries from every group's PEL
  kAcked,   // delete only entries every group has read and acknowledged
};

// XDELEX's and XACKDEL's code per ID.
enum class DeleteCode : std::int8_t { kNotFound = -1, kDeleted = 1, kReferenced = 2 };

class PelRefs {
 public:
  [[nodiscard]] bool kept() const { return kept_; }
  // From now on the counts are kept; the caller adds every ID pending now.
  void start() {
    kept_ = true;
    counts_.clear();
  }
  void add(storage::StreamId id) {
    if (kept_) ++counts_[id];
  }
  void remove(storage::StreamId id) {
    if (!kept_) return;
    auto it = counts_.find(id);
    if (it != counts_.end() && --it->second == 0) counts_.erase(it);
  }
  [[nodiscard]] bool contains(storage::StreamId id) const { return counts_.count(id) != 0; }
  // The smallest pending ID, or max() when nothing is pending.
  [[nodiscard]] storage::StreamId first() const {
    return counts_.empty() ? storage::StreamId::max() : counts_.begin()->first;
  }
  // The pending IDs below `bound` (every one without a bound).
  [[nodiscard]] std::vector<storage::StreamId> below(std::optional<storage::StreamId> bound) const {
    std::vector<storage::StreamId> out;
    for (auto it = counts_.begin(); it != counts_.end() && (!bound || it->first < *bound); ++it) {
      out.push_back(it->first);
    }
    return out;
  }

 private:
  std::map<storage::StreamId, std::uint32_t> counts_;
  bool kept_ = false;
};

}  // namespace runnel
