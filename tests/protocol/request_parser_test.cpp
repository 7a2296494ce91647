// RequestParser: every frame split at every byte offset, malformed and oversized input, and
// Redis's exact error texts. Inputs are copied into exactly sized heap buffers so that the
// sanitizer build catches any read past the end.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include <runnel/protocol/request_parser.hpp>

using runnel::protocol::ParserLimits;
using runnel::protocol::ParseStatus;
using runnel::protocol::RequestParser;

namespace {

// Feeds `bytes` through an exactly sized heap copy.
struct Exact {
  explicit Exact(std::string_view bytes) : data(new char[bytes.size() ? bytes.size() : 1]), size(bytes.size()) {
    std::copy(bytes.begin(), bytes.end(), data.get());
  }
  std::string_view view() const { return {data.get(), size}; }
  std::unique_ptr<char[]> data;
  std::size_t size;
};

std::vector<std::string> args_of(const RequestParser& parser) {
  std::vector<std::string> out;
  for (auto a : parser.args()) out.emplace_back(a);
  return out;
}

std::string error_for(std::string_view input, bool authenticated = true, ParserLimits limits = {}) {
  RequestParser parser(limits);
  parser.set_authenticated(authenticated);
  Exact exact(input);
  const auto result = parser.parse(exact.view());
  if (result.status != ParseStatus::kError) return "<no error>";
  return std::string(parser.error());
}

}  // namespace

TEST_CASE("A frame split at every byte offset parses to the same command", "[parser]") {
  const std::vector<std::pair<std::string, std::vector<std::string>>> frames = {
      {"*1\r\n$4\r\nPING\r\n", {"PING"}},
      {"*3\r\n$4\r\nXADD\r\n$1\r\ns\r\n$0\r\n\r\n", {"XADD", "s", ""}},
      {std::string("*2\r\n$4\r\nECHO\r\n$5\r\na\0b\r\n\r\n", 25), {"ECHO", std::string("a\0b\r\n", 5)}},
      {"PING\r\n", {"PING"}},
      {"ECHO \"a b\" 'c d'\r\n", {"ECHO", "a b", "c d"}},
      {"  set   k  v \n", {"set", "k", "v"}},
      {"*2\r\n$3\r\nGET\r\n$12\r\n0123456789ab\r\n", {"GET", "0123456789ab"}},
  };
  for (const auto& [frame, expected] : frames) {
    RequestParser parser;
    for (std::size_t cut = 0; cut < frame.size(); ++cut) {
      Exact part(std::string_view(frame).substr(0, cut));
      const auto result = parser.parse(part.view());
      INFO("frame " << frame << " cut at " << cut);
      REQUIRE(result.status == ParseStatus::kNeedMore);
      REQUIRE(result.consumed == 0);
    }
    Exact whole(frame);
    const auto result = parser.parse(whole.view());
    REQUIRE(result.status == ParseStatus::kCommand);
    REQUIRE(result.consumed == frame.size());
    REQUIRE(args_of(parser) == expected);
  }
}

TEST_CASE("A frame split once at every offset resumes from a fresh parse too", "[parser]") {
  const std::string frame = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
  for (std::size_t cut = 0; cut <= frame.size(); ++cut) {
    RequestParser parser;
    Exact first(std::string_view(frame).substr(0, cut));
    Exact second(frame);  // outlives the args, which view it
    auto result = parser.parse(first.view());
    if (cut < frame.size()) {
      REQUIRE(result.status == ParseStatus::kNeedMore);
      result = parser.parse(second.view());
    }
    REQUIRE(result.status == ParseStatus::kCommand);
    REQUIRE(args_of(parser) == std::vector<std::string>{"SET", "key", "value"});
  }
}

TEST_CASE("Pipelined commands parse one at a time", "[parser]") {
  const std::string input = "*1\r\n$4\r\nPING\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$1\r\nx\r\n";
  RequestParser parser;
  std::string_view rest = input;
  std::vector<std::vector<std::string>> commands;
  while (!rest.empty()) {
    Exact exact(rest);
    const auto result = parser.parse(exact.view());
    REQUIRE(result.status == ParseStatus::kCommand);
    commands.push_back(args_of(parser));
    rest.remove_prefix(result.consumed);
  }
  REQUIRE(commands == std::vector<std::vector<std::string>>{{"PING"}, {"PING"}, {"ECHO", "x"}});
}

TEST_CASE("Empty commands are consumed without arguments", "[parser]") {
  for (std::string input : {"*0\r\n", "*-1\r\n", "*-10\r\n", "\r\n", "   \r\n", "\n"}) {
    RequestParser parser;
    Exact exact(input);
    const auto result = parser.parse(exact.view());
    REQUIRE(result.status == ParseStatus::kCommand);
    REQUIRE(result.consumed == input.size());
    REQUIRE(parser.args().empty());
  }
}

TEST_CASE("Malformed frames get Redis's protocol errors", "[parser]") {
  CHECK(error_for("*x\r\n") == "ERR Protocol error: invalid multibulk length");
  CHECK(error_for("*01\r\n") == "ERR Protocol error: invalid multibulk length");
  CHECK(error_for("*1048577\r\n") == "ERR Protocol error: invalid multibulk length");
  CHECK(error_for("*99999999999999999999999\r\n") == "ERR Protocol error: invalid multibulk length");
  CHECK(error_for("*1\r\n$-1\r\n") == "ERR Protocol error: invalid bulk length");
  CHECK(error_for("*1\r\n$x\r\n") == "ERR Protocol error: invalid bulk length");
  CHECK(error_for("*1\r\n$536870913\r\n") == "ERR Protocol error: invalid bulk length");
  CHECK(error_for("*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n") == "ERR Protocol error: expected '$', got 'f'");
  CHECK(error_for("*1\r\n+PING\r\n") == "ERR Protocol error: expected '$', got '+'");
  CHECK(error_for("\"unbalanced\r\n") == "ERR Protocol error: unbalanced quotes in request");
  CHECK(error_for("ECHO \"a\"b\r\n") == "ERR Protocol error: unbalanced quotes in request");
  CHECK(error_for(std::string(70000, 'x')) == "ERR Protocol error: too big inline request");
  CHECK(error_for("*" + std::string(70000, '1')) == "ERR Protocol error: too big mbulk count string");
  CHECK(error_for("*1\r\n$" + std::string(70000, '1')) == "ERR Protocol error: too big bulk count string");
}

TEST_CASE("Unauthenticated connections get Redis's tighter limits", "[parser]") {
  CHECK(error_for("*11\r\n", false) == "ERR Protocol error: unauthenticated multibulk length");
  CHECK(error_for("*1\r\n$16385\r\n", false) == "ERR Protocol error: unauthenticated bulk length");
  RequestParser parser;
  parser.set_authenticated(false);
  Exact ten("*10\r\n");
  CHECK(parser.parse(ten.view()).status == ParseStatus::kNeedMore);
  RequestParser authed;
  Exact big("*1\r\n$16385\r\n");
  CHECK(authed.parse(big.view()).status == ParseStatus::kNeedMore);
}

TEST_CASE("Configured limits are enforced before allocating", "[parser]") {
  ParserLimits limits;
  limits.max_bulk_len = 1024;
  limits.max_multibulk_len = 3;
  CHECK(error_for("*4\r\n", true, limits) == "ERR Protocol error: invalid multibulk length");
  CHECK(error_for("*1\r\n$1025\r\n", true, limits) == "ERR Protocol error: invalid bulk length");
  // A huge declared size within the limits asks for more input and records nothing yet.
  RequestParser parser;
  Exact huge("*1000000\r\n$536870912\r\n");
  const auto result = parser.parse(huge.view());
  CHECK(result.status == ParseStatus::kNeedMore);
  CHECK(parser.frame_bytes_needed() == huge.size + 536870912 + 2);
}

TEST_CASE("The CRLF after a bulk payload is skipped, as Redis does", "[parser]") {
  RequestParser parser;
  Exact exact("*1\r\n$4\r\nPINGxx");
  const auto result = parser.parse(exact.view());
  REQUIRE(result.status == ParseStatus::kCommand);
  REQUIRE(args_of(parser) == std::vector<std::string>{"PING"});
}

TEST_CASE("Inline arguments follow sdssplitargs", "[parser]") {
  std::vector<std::string> out;
  REQUIRE(runnel::protocol::split_inline_args(R"(a "b\x41\n" 'c\'d' "")", out));
  REQUIRE(out == std::vector<std::string>{"a", "bA\n", "c'd", ""});
  REQUIRE_FALSE(runnel::protocol::split_inline_args(R"("abc)", out));
  REQUIRE_FALSE(runnel::protocol::split_inline_args(R"('abc'd)", out));
}

TEST_CASE("Integers parse as Redis's string2ll", "[parser]") {
  std::int64_t v = 0;
  CHECK(runnel::protocol::parse_int64_strict("0", v));
  CHECK(runnel::protocol::parse_int64_strict("-9223372036854775808", v));
  CHECK(v == INT64_MIN);
  CHECK(runnel::protocol::parse_int64_strict("9223372036854775807", v));
  CHECK_FALSE(runnel::protocol::parse_int64_strict("9223372036854775808", v));
  CHECK_FALSE(runnel::protocol::parse_int64_strict("-0", v));
  CHECK_FALSE(runnel::protocol::parse_int64_strict("01", v));
  CHECK_FALSE(runnel::protocol::parse_int64_strict("+1", v));
  CHECK_FALSE(runnel::protocol::parse_int64_strict(" 1", v));
  CHECK_FALSE(runnel::protocol::parse_int64_strict("", v));
}
