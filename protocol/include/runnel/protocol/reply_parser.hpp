// Parsing of server replies (RESP2 and RESP3) into a value tree, for clients and tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace runnel::protocol {

struct Reply {
  enum class Type : std::uint8_t {
    kSimple,     // +
    kError,      // -
    kInteger,    // :
    kBulk,       // $
    kNull,       // $-1, *-1, _
    kArray,      // *
    kMap,        // %  (elements hold key, value, key, value, ...)
    kSet,        // ~
    kDouble,     // ,  (text kept in `str`)
    kBoolean,    // #  (integer is 0 or 1)
    kVerbatim,   // =  (`str` holds the text after "txt:")
    kBigNumber,  // (
    kPush,       // >
  };
  Type type = Type::kNull;
  std::string str;
  std::int64_t integer = 0;
  std::vector<Reply> elements;

  [[nodiscard]] bool is_error() const { return type == Type::kError; }
  [[nodiscard]] bool is_aggregate() const {
    return type == Type::kArray || type == Type::kMap || type == Type::kSet || type == Type::kPush;
  }
};

enum class ReplyStatus : std::uint8_t { kDone, kNeedMore, kError };

struct ReplyParseResult {
  ReplyStatus status;
  std::size_t consumed;  // bytes of the whole reply when kDone
};

// Parses one whole reply from the start of `input`. Stateless: after kNeedMore, call again
// with the same bytes plus more. Aggregates nest at most `max_depth` levels; declared counts
// are not trusted (elements are added as they parse).
[[nodiscard]] ReplyParseResult parse_reply(std::string_view input, Reply& out,
                                           std::size_t max_depth = 64);

// Renders a reply for people and diffs, in the style redis-cli uses for RESP3.
[[nodiscard]] std::string to_display_string(const Reply& reply);

}  // namespace runnel::protocol
