// Glob matching as KEYS, SCAN MATCH and CONFIG GET use it.
#include <catch2/catch.hpp>

#include "glob.hpp"

using runnel::glob_match;

TEST_CASE("Glob patterns match as Redis's stringmatchlen does", "[glob]") {
  CHECK(glob_match("*", ""));
  CHECK(glob_match("h?llo", "hello"));
  CHECK(glob_match("h*llo", "heeeello"));
  CHECK(glob_match("h[ae]llo", "hallo"));
  CHECK_FALSE(glob_match("h[ae]llo", "hillo"));
  CHECK(glob_match("h[^e]llo", "hallo"));
  CHECK_FALSE(glob_match("h[^e]llo", "hello"));
  CHECK(glob_match("h[a-b]llo", "hbllo"));
  CHECK(glob_match("h\\*llo", "h*llo"));
  CHECK_FALSE(glob_match("h\\*llo", "hello"));
  CHECK(glob_match("MAX*", "maxclients", true));
  CHECK_FALSE(glob_match("MAX*", "maxclients", false));
}

TEST_CASE("Backtracking only to the last star: more glob cases", "[glob]") {
  CHECK(glob_match("a*b*c", "axxbyyc"));
  CHECK_FALSE(glob_match("a*b*c", "axxbyy"));
  CHECK(glob_match("*abc", "ababc"));
  CHECK(glob_match("a*", "a"));
  CHECK(glob_match("**", ""));
  CHECK_FALSE(glob_match("?", ""));
  CHECK(glob_match("[a-c]*[x-z]", "b123y"));
  CHECK(glob_match("*[^0-9]", "123a"));
  CHECK_FALSE(glob_match("*[^0-9]", "1234"));
  CHECK_FALSE(glob_match("h[", "h["));  // an unterminated class matches nothing, as in Redis
  CHECK(glob_match("\\", "\\"));
}

TEST_CASE("A hostile pattern on a long key finishes", "[glob]") {
  // Exponential for a recursive matcher; linear-ish here (ctest's timeout bounds the run).
  const std::string pattern = "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b";
  CHECK_FALSE(glob_match(pattern, std::string(5000, 'a')));
  CHECK(glob_match(pattern, std::string(5000, 'a') + "b"));
}
