// Parsing stream IDs from command arguments exactly as Redis 7.0 does (t_stream.c's
// streamParseID and string2ull), including its leniencies: leading spaces, '+' and leading
// zeros are accepted, and a NUL byte ends the text.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include <runnel/storage/stream_id.hpp>

#include "streams/errors.hpp"
#include "streams/result.hpp"

namespace runnel {

using errors::kInvalidStreamId;

struct ParsedId {
  storage::StreamId id;
  bool seq_given = true;  // false for "<ms>-*"
};

// `strict` refuses the bare "-" and "+"; `allow_seq_star` accepts "<ms>-*" (XADD).
[[nodiscard]] std::optional<ParsedId> parse_id_arg(std::string_view text, std::uint64_t missing_seq,
                                                   bool strict, bool allow_seq_star = false);

// An interval's bounds (XRANGE, XREVRANGE, XPENDING, XAUTOCLAIM): "-", "+", "<ms>" (seq 0 for
// a start, the largest for an end), "<ms>-<seq>", and exclusive "(<id>", which moves to the
// next ID (start) or the previous one (end).
[[nodiscard]] Result<storage::StreamId> parse_range_start(std::string_view text);
[[nodiscard]] Result<storage::StreamId> parse_range_end(std::string_view text);

// Redis's string2ull: a strict int64 first, then strtoull's rules.
[[nodiscard]] bool redis_string2ull(std::string_view text, std::uint64_t& value);

}  // namespace runnel
