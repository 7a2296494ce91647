// RequestParser: a resumable push parser for client requests, both RESP multibulk frames
// (`*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n`) and inline commands (`ECHO hi\r\n`, as telnet sends).
// It does no I/O: feed it bytes, it says how many it consumed and whether a command is ready.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace runnel::protocol {

// Every limit is checked before anything is allocated for it; declared counts are never
// trusted (argument storage grows as arguments arrive).
struct ParserLimits {
  std::size_t max_bulk_len = 512ull * 1024 * 1024;  // proto-max-bulk-len
  std::size_t max_multibulk_len = 1024 * 1024;      // arguments in one command
  std::size_t max_inline_len = 64 * 1024;           // one inline line, and one length line
  // Redis's tighter limits for connections that have not yet authenticated (CVE-2021-32675).
  std::size_t unauthenticated_max_bulk_len = 16384;
  std::size_t unauthenticated_max_multibulk_len = 10;
};

enum class ParseStatus : std::uint8_t {
  kCommand,   // a whole command was parsed: args() holds it (it may be empty, e.g. "*0\r\n")
  kNeedMore,  // the input ends inside a frame: call again with the same bytes plus more
  kError,     // malformed input: error() holds Redis's reply text; the connection must close
};

struct ParseResult {
  ParseStatus status;
  std::size_t consumed;  // bytes of the input that belong to the finished command (0 otherwise)
};

// Lifecycle: one parser per connection. parse() is given the unconsumed bytes, starting at the
// first byte of the current frame. After kNeedMore, the next call must start with those same
// bytes (the caller may have moved them to a bigger buffer) followed by whatever arrived since;
// parsing resumes where it stopped, so a large frame arriving in pieces costs O(size).
// After kCommand, args() views the input bytes (multibulk) or the parser's own storage (inline);
// the views are valid until the next parse() call or until the caller moves those bytes.
// Not thread-safe; it belongs to its connection.
class RequestParser {
 public:
  explicit RequestParser(ParserLimits limits = {}) : limits_(limits) {}

  // Applies from the next frame on.
  void set_limits(const ParserLimits& limits) { limits_ = limits; }
  void set_authenticated(bool authenticated) { authenticated_ = authenticated; }

  [[nodiscard]] ParseResult parse(std::string_view input);

  [[nodiscard]] std::span<const std::string_view> args() const { return args_; }
  // After kError: the error text without the leading '-' or trailing CRLF,
  // e.g. "ERR Protocol error: invalid bulk length".
  [[nodiscard]] std::string_view error() const { return rare_ ? std::string_view(rare_->error) : std::string_view(); }
  // While a bulk argument is incomplete: the bytes the whole frame needs at least, so the
  // caller can size its buffer once the length is known and accepted (0 when unknown).
  [[nodiscard]] std::size_t frame_bytes_needed() const { return frame_bytes_needed_; }

 private:
  ParseResult parse_multibulk(std::string_view input);
  ParseResult parse_inline(std::string_view input);
  ParseResult fail(std::string_view message);
  void reset_frame();

  ParserLimits limits_;
  bool authenticated_ = true;

  // State of the frame in progress (multibulk only; inline lines are parsed whole).
  bool in_multibulk_ = false;
  std::size_t pos_ = 0;               // next byte of the frame to look at
  std::int64_t args_remaining_ = 0;   // bulk arguments still expected
  std::int64_t bulk_len_ = -1;        // length of the bulk being read, -1 before its header
  std::size_t frame_bytes_needed_ = 0;
  struct Span {
    std::size_t offset;
    std::size_t size;
  };
  std::vector<Span> spans_;

  std::vector<std::string_view> args_;
  // What few connections need: made by the first inline command or protocol error (56 bytes
  // less for every connection, which an idle one feels).
  struct Rare {
    std::vector<std::string> inline_args;  // unescaped inline arguments own their bytes
    std::string error;
  };
  std::unique_ptr<Rare> rare_;
  Rare& rare() {
    if (!rare_) rare_ = std::make_unique<Rare>();
    return *rare_;
  }
};

// Splits an inline command line into arguments the way Redis's sdssplitargs does: spaces
// separate, "double quotes" take \n \r \t \b \a \\ \" and \xHH escapes, 'single quotes' take \'.
// Returns false on unbalanced quotes (or a closing quote not followed by a space).
[[nodiscard]] bool split_inline_args(std::string_view line, std::vector<std::string>& out);

// Parses a decimal integer the way Redis's string2ll does: optional '-', no '+', no leading
// zeros, no spaces, no overflow. Returns false if the text is not such an integer.
[[nodiscard]] bool parse_int64_strict(std::string_view text, std::int64_t& value);

}  // namespace runnel::protocol
