// A log-linear latency histogram (HdrHistogram's layout, simplified): exact below 128, then 64
// buckets per power of two, so any value is kept within 1/64 (1.6%). Fixed size, no
// allocation on record, mergeable across threads.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>

namespace runnel::bench {

class Histogram {
 public:
  void record(std::uint64_t value) {
    ++counts_[index_of(value)];
    ++total_;
    max_ = std::max(max_, value);
    min_ = std::min(min_, value);
  }

  void merge(const Histogram& other) {
    for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
    max_ = std::max(max_, other.max_);
    min_ = std::min(min_, other.min_);
  }

  [[nodiscard]] std::uint64_t count() const { return total_; }
  [[nodiscard]] std::uint64_t max() const { return total_ == 0 ? 0 : max_; }

  // The value at or below which `fraction` of the recorded values lie (the bucket's midpoint,
  // clamped to the largest value seen).
  [[nodiscard]] std::uint64_t percentile(double fraction) const {
    if (total_ == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(std::max(1.0, fraction * static_cast<double>(total_) + 0.5));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::clamp(midpoint_of(i), min_, max_);
    }
    return max_;
  }

 private:
  static constexpr unsigned kSubBits = 6;  // 64 buckets per power of two
  static constexpr std::size_t kBuckets = (64 - kSubBits) * (1u << kSubBits) + (2u << kSubBits);

  static std::size_t index_of(std::uint64_t v) {
    if (v < (2u << kSubBits)) return static_cast<std::size_t>(v);
    const unsigned msb = 63 - static_cast<unsigned>(std::countl_zero(v));
    const unsigned shift = msb - kSubBits;
    return (static_cast<std::size_t>(shift) << kSubBits) + static_cast<std::size_t>(v >> shift);
  }
  static std::uint64_t midpoint_of(std::size_t index) {
    if (index < (2u << kSubBits)) return index;
    const std::size_t shift = (index >> kSubBits) - 1;
    const std::uint64_t low = static_cast<std::uint64_t>(index - (shift << kSubBits)) << shift;
    return low + ((std::uint64_t{1} << shift) >> 1);
  }

  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
  std::uint64_t min_ = UINT64_MAX;
};

}  // namespace runnel::bench
