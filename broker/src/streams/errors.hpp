// The error replies stream and group ops share, with Redis 7.0's exact texts (t_stream.c),
// each built in one place.
#pragma once

#include <string>
#include <string_view>

#include "streams/result.hpp"

namespace runnel::errors {

inline constexpr std::string_view kInvalidStreamId = "ERR Invalid stream ID specified as stream command argument";
inline constexpr std::string_view kNoSuchKey = "ERR no such key";
inline constexpr std::string_view kSyntax = "ERR syntax error";
inline constexpr std::string_view kNotInteger = "ERR value is not an integer or out of range";
// A blocked XREADGROUP reader whose key or group went away.
inline constexpr std::string_view kKeyGone = "UNBLOCKED the stream key no longer exists";
inline constexpr std::string_view kGroupGone = "NOGROUP the consumer group this client was blocked on no longer exists";

// The three ways Redis words a missing group, by command.
enum class NoGroupIn {
  kGroupCommand,  // XGROUP, XINFO CONSUMERS: "No such consumer group 'g' for key name 'k'"
  kKeyOrGroup,    // XPENDING, XCLAIM, XAUTOCLAIM: "No such key 'k' or consumer group 'g'"
  kReadGroup,     // XREADGROUP: "... in XREADGROUP with GROUP option"
};
[[nodiscard]] OpError no_group(std::string_view key, std::string_view group, NoGroupIn where);

}  // namespace runnel::errors
