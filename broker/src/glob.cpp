// Glob matching in O(pattern x text) time and no recursion: on a mismatch, only the most
// recent '*' needs to take one more character, so a hostile pattern ("*a*a*a*...b") cannot
// make a KEYS or SCAN MATCH run for exponential time.
#include "glob.hpp"

#include <utility>

namespace runnel {
namespace {

char fold(char c, bool nocase) {
  return nocase && c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

// Matches one pattern element at pattern[p] against c; sets `next` past the element.
// Elements: '?', "[...]" (with '^' negation, ranges and '\' quoting), "\x", or a character.
bool match_one(std::string_view pattern, std::size_t p, char c, bool nocase, std::size_t& next) {
  const char x = fold(c, nocase);
  if (pattern[p] == '?') {
    next = p + 1;
    return true;
  }
  if (pattern[p] == '\\' && p + 1 < pattern.size()) {
    next = p + 2;
    return fold(pattern[p + 1], nocase) == x;
  }
  if (pattern[p] != '[') {
    next = p + 1;
    return fold(pattern[p], nocase) == x;
  }
  ++p;
  bool negate = false;
  if (p < pattern.size() && pattern[p] == '^') {
    negate = true;
    ++p;
  }
  bool matched = false;
  while (p < pattern.size() && pattern[p] != ']') {
    if (pattern[p] == '\\' && p + 1 < pattern.size()) {
      ++p;
      matched = matched || fold(pattern[p], nocase) == x;
    } else if (p + 2 < pattern.size() && pattern[p + 1] == '-') {
      char lo = fold(pattern[p], nocase);
      char hi = fold(pattern[p + 2], nocase);
      if (lo > hi) std::swap(lo, hi);
      matched = matched || (x >= lo && x <= hi);
      p += 2;
    } else {
      matched = matched || fold(pattern[p], nocase) == x;
    }
    ++p;
  }
  next = p < pattern.size() ? p + 1 : p;  // an unterminated class ends at the pattern's end
  return negate ? !matched : matched;
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view text, bool nocase) {
  std::size_t p = 0, t = 0;
  std::size_t star = std::string_view::npos;  // the pattern position after the last '*'
  std::size_t star_text = 0;                  // where that '*' started matching in the text
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      while (p < pattern.size() && pattern[p] == '*') ++p;
      star = p;
      star_text = t;
      continue;
    }
    std::size_t next = p;
    if (p < pattern.size() && match_one(pattern, p, text[t], nocase, next)) {
      p = next;
      ++t;
      continue;
    }
    if (star == std::string_view::npos) return false;
    p = star;  // let the last '*' take one more character, and retry from there
    t = ++star_text;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace runnel
