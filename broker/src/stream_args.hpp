// Parsing stream IDs from command arguments exactly as Redis 7.0 does (t_stream.c's
// streamParseID and string2ull), including its leniencies: leading spaces, '+' and leading
// zeros are accepted, and a NUL byte ends the text.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include <runnel/storage/stream_id.hpp>

namespace runnel {

inline constexpr std::string_view kInvalidStreamId =
    "ERR Invalid stream ID specified as stream command argument";

struct ParsedId {
  storage::StreamId id;
  bool seq_given = true;  // false for "<ms>-*"
};

// `strict` refuses the bare "-" and "+"; `allow_seq_star` accepts "<ms>-*" (XADD).
[[nodiscard]] std::optional<ParsedId> parse_id_arg(std::string_view text, std::uint64_t missing_seq,
                                                   bool strict, bool allow_seq_star = false);

// Redis's string2ull: a strict int64 first, then strtoull's rules.
[[nodiscard]] bool redis_string2ull(std::string_view text, std::uint64_t& value);

}  // namespace runnel
