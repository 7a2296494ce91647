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

TEST_CASE("A pathological pattern finishes", "[glob]") {
  CHECK_FALSE(glob_match("*a*a*a*a*a*a*b", std::string(30, 'a')));
}
