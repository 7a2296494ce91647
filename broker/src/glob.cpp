#include "glob.hpp"

#include <cctype>

namespace runnel {
namespace {

char fold(char c, bool nocase) {
  return nocase ? static_cast<char>(std::tolower(static_cast<unsigned char>(c))) : c;
}

// Matches a [...] class at pattern[p] (just after '['); advances p past the closing ']'.
bool match_class(std::string_view pattern, std::size_t& p, char c, bool nocase) {
  bool negate = false;
  if (p < pattern.size() && pattern[p] == '^') {
    negate = true;
    ++p;
  }
  bool matched = false;
  while (p < pattern.size() && pattern[p] != ']') {
    if (pattern[p] == '\\' && p + 1 < pattern.size()) {
      ++p;
      if (fold(pattern[p], nocase) == fold(c, nocase)) matched = true;
    } else if (p + 2 < pattern.size() && pattern[p + 1] == '-') {
      char lo = fold(pattern[p], nocase);
      char hi = fold(pattern[p + 2], nocase);
      if (lo > hi) std::swap(lo, hi);
      const char x = fold(c, nocase);
      if (x >= lo && x <= hi) matched = true;
      p += 2;
    } else if (fold(pattern[p], nocase) == fold(c, nocase)) {
      matched = true;
    }
    ++p;
  }
  if (p < pattern.size()) ++p;  // the ']'; an unterminated class ends at the pattern's end
  return negate ? !matched : matched;
}

bool match(std::string_view pattern, std::string_view text, bool nocase, int depth) {
  if (depth > 1000) return false;  // bounds the recursion on patterns like "*a*a*a*..."
  std::size_t p = 0;
  std::size_t t = 0;
  while (p < pattern.size()) {
    switch (pattern[p]) {
      case '*': {
        while (p + 1 < pattern.size() && pattern[p + 1] == '*') ++p;
        if (p + 1 == pattern.size()) return true;
        for (std::size_t k = t; k <= text.size(); ++k) {
          if (match(pattern.substr(p + 1), text.substr(k), nocase, depth + 1)) return true;
        }
        return false;
      }
      case '?':
        if (t >= text.size()) return false;
        ++t;
        ++p;
        break;
      case '[': {
        if (t >= text.size()) return false;
        ++p;
        if (!match_class(pattern, p, text[t], nocase)) return false;
        ++t;
        break;
      }
      case '\\':
        if (p + 1 < pattern.size()) ++p;
        [[fallthrough]];
      default:
        if (t >= text.size() || fold(pattern[p], nocase) != fold(text[t], nocase)) return false;
        ++t;
        ++p;
        break;
    }
  }
  return t == text.size();
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view text, bool nocase) {
  return match(pattern, text, nocase, 0);
}

}  // namespace runnel
