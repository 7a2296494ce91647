// Glob-style matching as Redis's KEYS, SCAN MATCH and CONFIG GET use it:
// * ? [abc] [^abc] [a-z] and \x to quote a character.
#pragma once

#include <string_view>

namespace runnel {

[[nodiscard]] bool glob_match(std::string_view pattern, std::string_view text, bool nocase = false);

}  // namespace runnel
