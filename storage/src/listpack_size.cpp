#include "listpack_size.hpp"

#include <limits>

namespace runnel::storage::listpack {

bool as_int64(std::string_view s, std::int64_t& value) {
  if (s.empty() || s.size() > 20) return false;
  std::size_t i = 0;
  const bool negative = s[0] == '-';
  if (negative && ++i == s.size()) return false;
  if (s.size() == 1 && s[0] == '0') {
    value = 0;
    return true;
  }
  if (s[i] < '1' || s[i] > '9') return false;
  std::uint64_t v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    const std::uint64_t digit = static_cast<std::uint64_t>(s[i] - '0');
    if (v > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) return false;
    v = v * 10 + digit;
  }
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (negative ? v > kMax + 1 : v > kMax) return false;
  value = negative ? static_cast<std::int64_t>(0 - v) : static_cast<std::int64_t>(v);
  return true;
}

std::uint32_t element_size(std::string_view s) {
  std::int64_t v = 0;
  if (as_int64(s, v)) return int_size(v);
  const std::uint64_t header = s.size() < 64 ? 1 : (s.size() < 4096 ? 2 : 5);
  const std::uint64_t encoded = header + s.size();
  return static_cast<std::uint32_t>(encoded + backlen_size(encoded));
}

std::uint32_t master_entry_size(std::span<const std::string_view> fields) {
  const std::size_t n = fields.size() / 2;
  std::uint32_t bytes = int_size(1) + int_size(0) + int_size(static_cast<std::int64_t>(n)) +
                        int_size(0);
  for (std::size_t i = 0; i < n; ++i) bytes += element_size(fields[2 * i]);
  return bytes;
}

std::uint32_t entry_size(std::int64_t ms_diff, std::int64_t seq_diff,
                         std::span<const std::string_view> fields, bool same_fields) {
  const auto n = static_cast<std::int64_t>(fields.size() / 2);
  std::uint32_t bytes = int_size(same_fields ? 2 : 0) + int_size(ms_diff) + int_size(seq_diff);
  std::int64_t count = n + 3;
  if (!same_fields) {
    bytes += int_size(n);
    count += n + 1;
  }
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (same_fields && i % 2 == 0) continue;  // field names come from the master entry
    bytes += element_size(fields[i]);
  }
  return bytes + int_size(count);
}

}  // namespace runnel::storage::listpack
