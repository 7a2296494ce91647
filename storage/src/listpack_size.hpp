// How many bytes Redis's listpack encoding (listpack.c) gives each element, and so how large
// a Redis stream node grows. LogEntryStore uses it only to close nodes where Redis would.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace runnel::storage::listpack {

// Bytes of the back-length that follows an element whose encoding takes `encoded` bytes.
constexpr std::uint32_t backlen_size(std::uint64_t encoded) {
  if (encoded <= 127) return 1;
  if (encoded < 16383) return 2;
  if (encoded < 2097151) return 3;
  if (encoded < 268435455) return 4;
  return 5;
}

// An integer element: 7-bit unsigned, 13, 16, 24, 32 or 64-bit signed, plus its back-length.
constexpr std::uint32_t int_size(std::int64_t v) {
  std::uint32_t encoded = 9;
  if (v >= 0 && v <= 127) encoded = 1;
  else if (v >= -4096 && v <= 4095) encoded = 2;
  else if (v >= -32768 && v <= 32767) encoded = 3;
  else if (v >= -8388608 && v <= 8388607) encoded = 4;
  else if (v >= INT32_MIN && v <= INT32_MAX) encoded = 5;
  return encoded + backlen_size(encoded);
}

// Whether `s` reads as an integer by Redis's string2ll rules (optional '-', no '+', no leading
// zeros, within int64), as a listpack stores such a string: then `value` is set.
bool as_int64(std::string_view s, std::int64_t& value);

// A string element; one that reads as an integer (string2ll's rules) is stored as one.
std::uint32_t element_size(std::string_view s);

// An empty listpack: 4 bytes of total size, 2 of element count, 1 end byte.
inline constexpr std::uint32_t kEmptyBytes = 7;

// The master entry a node starts with: count, deleted, field count, the field names, 0.
std::uint32_t master_entry_size(std::span<const std::string_view> fields);

// One stream entry in a node whose master has the ID `master`: flags, ms and seq differences,
// then the values (and the field names and count, unless they equal the master's), then the
// element count.
std::uint32_t entry_size(std::int64_t ms_diff, std::int64_t seq_diff,
                         std::span<const std::string_view> fields, bool same_fields);

}  // namespace runnel::storage::listpack
