// The request parser follows Redis's networking.c step for step where that decides which
// bytes get which error, because clients and tests see those replies.
#include <runnel/protocol/request_parser.hpp>

#include <cstring>
#include <limits>

namespace runnel::protocol {
namespace {

// Finds '\r' at or after `from`; npos if absent.
std::size_t find_cr(std::string_view input, std::size_t from) {
  if (from >= input.size()) return std::string_view::npos;
  const void* hit = std::memchr(input.data() + from, '\r', input.size() - from);
  return hit ? static_cast<const char*>(hit) - input.data() : std::string_view::npos;
}

bool is_hex_digit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

// isspace() in the C locale, as sdssplitargs uses it.
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

}  // namespace

bool parse_int64_strict(std::string_view text, std::int64_t& value) {
  if (text.empty() || text.size() > 20) return false;
  std::size_t i = 0;
  bool negative = false;
  if (text[0] == '-') {
    negative = true;
    i = 1;
    if (text.size() == 1) return false;
  }
  if (text.size() == 1 && text[0] == '0') {
    value = 0;
    return true;
  }
  if (text[i] < '1' || text[i] > '9') return false;  // no leading zeros, no "-0"
  std::uint64_t magnitude = 0;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c < '0' || c > '9') return false;
    const std::uint64_t digit = static_cast<std::uint64_t>(c - '0');
    if (magnitude > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) return false;
    magnitude = magnitude * 10 + digit;
  }
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (negative) {
    if (magnitude > kMax + 1) return false;
    value = magnitude == kMax + 1 ? std::numeric_limits<std::int64_t>::min()
                                  : -static_cast<std::int64_t>(magnitude);
  } else {
    if (magnitude > kMax) return false;
    value = static_cast<std::int64_t>(magnitude);
  }
  return true;
}

bool split_inline_args(std::string_view line, std::vector<std::string>& out) {
  out.clear();
  // sdssplitargs works on a C string: a NUL ends the line.
  if (const auto nul = line.find('\0'); nul != std::string_view::npos) line = line.substr(0, nul);
  const std::size_t n = line.size();
  auto at = [&](std::size_t i) { return i < n ? line[i] : '\0'; };
  std::size_t p = 0;
  while (true) {
    while (p < n && is_space(line[p])) ++p;
    if (p >= n) return true;
    std::string current;
    bool in_double = false;
    bool in_single = false;
    bool done = false;
    while (!done) {
      const char c = at(p);
      if (in_double) {
        if (c == '\\' && at(p + 1) == 'x' && is_hex_digit(at(p + 2)) && is_hex_digit(at(p + 3))) {
          current.push_back(static_cast<char>(hex_value(at(p + 2)) * 16 + hex_value(at(p + 3))));
          p += 3;
        } else if (c == '\\' && at(p + 1) != '\0') {
          ++p;
          switch (line[p]) {
            case 'n': current.push_back('\n'); break;
            case 'r': current.push_back('\r'); break;
            case 't': current.push_back('\t'); break;
            case 'b': current.push_back('\b'); break;
            case 'a': current.push_back('\a'); break;
            default: current.push_back(line[p]); break;
          }
        } else if (c == '"') {
          // A closing quote must be followed by a space or by nothing at all.
          if (at(p + 1) != '\0' && !is_space(at(p + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;
        } else {
          current.push_back(c);
        }
      } else if (in_single) {
        if (c == '\\' && at(p + 1) == '\'') {
          ++p;
          current.push_back('\'');
        } else if (c == '\'') {
          if (at(p + 1) != '\0' && !is_space(at(p + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;
        } else {
          current.push_back(c);
        }
      } else {
        switch (c) {
          case ' ':
          case '\n':
          case '\r':
          case '\t':
          case '\0': done = true; break;
          case '"': in_double = true; break;
          case '\'': in_single = true; break;
          default: current.push_back(c); break;
        }
      }
      if (p < n) ++p;
    }
    out.push_back(std::move(current));
  }
}

void RequestParser::reset_frame() {
  in_multibulk_ = false;
  pos_ = 0;
  args_remaining_ = 0;
  bulk_len_ = -1;
  frame_bytes_needed_ = 0;
  spans_.clear();
}

ParseResult RequestParser::fail(std::string_view message) {
  rare().error.assign("ERR Protocol error: ");
  rare().error.append(message);
  reset_frame();
  return {ParseStatus::kError, 0};
}

ParseResult RequestParser::parse(std::string_view input) {
  args_.clear();
  if (!in_multibulk_) {
    if (input.empty()) return {ParseStatus::kNeedMore, 0};
    if (input[0] != '*') return parse_inline(input);
    in_multibulk_ = true;
    pos_ = 0;
  }
  return parse_multibulk(input);
}

ParseResult RequestParser::parse_inline(std::string_view input) {
  const std::size_t newline = input.find('\n');
  if (newline == std::string_view::npos) {
    if (input.size() > limits_.max_inline_len) return fail("too big inline request");
    return {ParseStatus::kNeedMore, 0};
  }
  std::size_t line_len = newline;
  if (line_len > 0 && input[line_len - 1] == '\r') --line_len;
  std::vector<std::string>& inline_args = rare().inline_args;
  if (!split_inline_args(input.substr(0, line_len), inline_args)) {
    return fail("unbalanced quotes in request");
  }
  args_.assign(inline_args.begin(), inline_args.end());
  return {ParseStatus::kCommand, newline + 1};
}

ParseResult RequestParser::parse_multibulk(std::string_view input) {
  if (pos_ == 0) {
    // The "*<count>\r\n" header.
    const std::size_t cr = find_cr(input, 0);
    if (cr == std::string_view::npos) {
      if (input.size() > limits_.max_inline_len) return fail("too big mbulk count string");
      return {ParseStatus::kNeedMore, 0};
    }
    if (cr + 1 >= input.size()) return {ParseStatus::kNeedMore, 0};  // '\n' not here yet
    std::int64_t count = 0;
    if (!parse_int64_strict(input.substr(1, cr - 1), count) ||
        count > static_cast<std::int64_t>(limits_.max_multibulk_len)) {
      return fail("invalid multibulk length");
    }
    if (!authenticated_ && count > static_cast<std::int64_t>(limits_.unauthenticated_max_multibulk_len)) {
      return fail("unauthenticated multibulk length");
    }
    pos_ = cr + 2;
    if (count <= 0) {  // Redis treats "*0" and "*-1" as an empty command.
      const std::size_t consumed = pos_;
      reset_frame();
      return {ParseStatus::kCommand, consumed};
    }
    args_remaining_ = count;
    bulk_len_ = -1;
    spans_.clear();
  }

  while (args_remaining_ > 0) {
    if (bulk_len_ < 0) {
      // The "$<len>\r\n" header of the next argument.
      const std::size_t cr = find_cr(input, pos_);
      if (cr == std::string_view::npos) {
        if (input.size() - pos_ > limits_.max_inline_len) return fail("too big bulk count string");
        return {ParseStatus::kNeedMore, 0};
      }
      if (cr + 1 >= input.size()) return {ParseStatus::kNeedMore, 0};
      if (input[pos_] != '$') {
        std::string message = "expected '$', got '";
        message.push_back(input[pos_]);
        message.push_back('\'');
        return fail(message);
      }
      std::int64_t len = 0;
      if (!parse_int64_strict(input.substr(pos_ + 1, cr - pos_ - 1), len) || len < 0 ||
          static_cast<std::uint64_t>(len) > limits_.max_bulk_len) {
        return fail("invalid bulk length");
      }
      if (!authenticated_ && static_cast<std::uint64_t>(len) > limits_.unauthenticated_max_bulk_len) {
        return fail("unauthenticated bulk length");
      }
      pos_ = cr + 2;
      bulk_len_ = len;
    }
    const std::size_t needed = pos_ + static_cast<std::size_t>(bulk_len_) + 2;
    if (input.size() < needed) {
      frame_bytes_needed_ = needed;
      return {ParseStatus::kNeedMore, 0};
    }
    // Like Redis, the two bytes after the payload are skipped, not checked.
    spans_.push_back({pos_, static_cast<std::size_t>(bulk_len_)});
    pos_ = needed;
    bulk_len_ = -1;
    --args_remaining_;
  }

  args_.reserve(spans_.size());
  for (const Span& span : spans_) args_.push_back(input.substr(span.offset, span.size));
  const std::size_t consumed = pos_;
  reset_frame();
  return {ParseStatus::kCommand, consumed};
}

}  // namespace runnel::protocol
