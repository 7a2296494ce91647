// LEB128 variable-length unsigned integers, for the storage formats.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace runnel::storage {

inline void put_varint(std::uint64_t value, std::string& out) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

// Reads one varint from the front of `in`, advancing it; false if it is cut short.
inline bool get_varint(std::string_view& in, std::uint64_t& value) {
  value = 0;
  for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
    const auto byte = static_cast<unsigned char>(in.front());
    in.remove_prefix(1);
    value |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

// A byte string with its length in front (a varint).
inline void put_string(std::string_view s, std::string& out) {
  put_varint(s.size(), out);
  out.append(s);
}

// Reads one length-prefixed string from the front of `in` (a view into it), advancing it;
// false if it is cut short.
inline bool get_string(std::string_view& in, std::string_view& s) {
  std::uint64_t len = 0;
  if (!get_varint(in, len) || len > in.size()) return false;
  s = in.substr(0, len);
  in.remove_prefix(len);
  return true;
}

}  // namespace runnel::storage
