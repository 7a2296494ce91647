// Parsing stream IDs from command arguments exactly as Redis 7.0 does (t_stream.c's
// streamParseID and string2ull), including its leniencies: leading spaces, '+' and leading
// zeros are accepted, and a NUL byte ends the text.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <runnel/storage/stream_id.hpp>

#include "streams/errors.hpp"
#include "streams/pel_refs.hpp"
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

// KEEPREF, DELREF or ACKED (any case) into `policy`; false for any other word.
[[nodiscard]] bool parse_ref_policy(std::string_view word, RefPolicy& policy);

// XDELEX's and XACKDEL's [KEEPREF|DELREF|ACKED] IDS numids id..., from args[start] on, the
// way Redis 8.2's streamParseAckDelArgsOrReply does: the policy before or after the IDS
// block, numids at least 1 and no more than the arguments left. The IDs are left unparsed
// (a missing key answers before they are looked at). Returns the error, or empty.
struct AckDelArgs {
  RefPolicy policy = RefPolicy::kKeep;
  std::size_t first_id = 0;  // index in args
  std::size_t count = 0;
};
[[nodiscard]] std::string parse_ack_del_args(std::span<const std::string_view> args, std::size_t start,
                                             AckDelArgs& out);

// Redis's string2ull: a strict int64 first, then strtoull's rules.
[[nodiscard]] bool redis_string2ull(std::string_view text, std::uint64_t& value);

}  // namespace runnel
