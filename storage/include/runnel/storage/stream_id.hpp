// StreamId: the ID of a stream entry, `<ms>-<seq>`, ordered by (ms, seq).
#pragma once

#include <compare>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace runnel::storage {

struct StreamId {
  std::uint64_t ms = 0;
  std::uint64_t seq = 0;

  static constexpr StreamId min() { return {0, 0}; }
  static constexpr StreamId max() {
    return {std::numeric_limits<std::uint64_t>::max(), std::numeric_limits<std::uint64_t>::max()};
  }

  friend constexpr auto operator<=>(const StreamId&, const StreamId&) = default;

  // The next ID in order, or nullopt if this is max().
  [[nodiscard]] std::optional<StreamId> next() const;
  // The previous ID in order, or nullopt if this is min().
  [[nodiscard]] std::optional<StreamId> prev() const;

  [[nodiscard]] std::string to_string() const;
  // Writes "<ms>-<seq>" into `out` (at least 41 bytes); returns the length.
  std::size_t format(char* out) const;
};

// Parses a full "<ms>-<seq>" or a bare "<ms>" (seq = `default_seq`), with each part an
// unsigned decimal that fits 64 bits. Returns nullopt for anything else.
[[nodiscard]] std::optional<StreamId> parse_stream_id(std::string_view text,
                                                      std::uint64_t default_seq = 0);

}  // namespace runnel::storage
