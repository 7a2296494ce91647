#include "resp.hpp"

namespace runnel::bench {
namespace {

// Scans one value from `pos`; returns the position after it, or npos if incomplete.
std::size_t scan(std::string_view in, std::size_t pos, int depth) {
  if (pos >= in.size()) return std::string_view::npos;
  const std::size_t eol = in.find("\r\n", pos);
  if (eol == std::string_view::npos) return std::string_view::npos;
  const char type = in[pos];
  const std::string_view header = in.substr(pos + 1, eol - pos - 1);
  const std::size_t after = eol + 2;
  switch (type) {
    case '$':
    case '=':
    case '!': {
      const auto len = to_int(header);
      if (!len || *len < 0) return after;  // null, or malformed: ends here
      const std::size_t end = after + static_cast<std::size_t>(*len) + 2;
      return end <= in.size() ? end : std::string_view::npos;
    }
    case '*':
    case '%':
    case '~':
    case '>':
    case '|': {
      const auto n = to_int(header);
      if (!n || *n < 0 || depth > 32) return after;
      const std::int64_t items = (type == '%' || type == '|') ? *n * 2 : *n;
      std::size_t p = after;
      for (std::int64_t i = 0; i < items; ++i) {
        p = scan(in, p, depth + 1);
        if (p == std::string_view::npos) return p;
      }
      // An attribute ('|') precedes the value it describes.
      return type == '|' ? scan(in, p, depth + 1) : p;
    }
    default:
      return after;  // + - : _ , # (
  }
}

}  // namespace

std::optional<std::size_t> reply_length(std::string_view in) {
  const std::size_t end = scan(in, 0, 0);
  if (end == std::string_view::npos) return std::nullopt;
  return end;
}

std::string_view ReplyCursor::line() {
  if (pos_ >= in_.size()) {
    failed_ = true;
    return {};
  }
  const std::size_t eol = in_.find("\r\n", pos_);
  if (eol == std::string_view::npos) {
    failed_ = true;
    pos_ = in_.size();
    return {};
  }
  const std::string_view text = in_.substr(pos_ + 1, eol - pos_ - 1);
  pos_ = eol + 2;
  return text;
}

std::int64_t ReplyCursor::aggregate() {
  if (pos_ >= in_.size()) {
    failed_ = true;
    return 0;
  }
  const char type = in_[pos_];
  const std::string_view header = line();
  if (type == '_') return -1;
  if (type != '*' && type != '%' && type != '~' && type != '>') {
    failed_ = true;
    return 0;
  }
  const auto n = to_int(header);
  if (!n) {
    failed_ = true;
    return 0;
  }
  return (type == '%' && *n > 0) ? *n * 2 : *n;
}

std::string_view ReplyCursor::string() {
  if (pos_ >= in_.size()) {
    failed_ = true;
    return {};
  }
  const char type = in_[pos_];
  const std::string_view header = line();
  if (type == '+') return header;
  if (type != '$') {
    failed_ = true;
    return {};
  }
  const auto len = to_int(header);
  if (!len || *len < 0 || pos_ + static_cast<std::size_t>(*len) + 2 > in_.size()) {
    failed_ = true;
    return {};
  }
  const std::string_view text = in_.substr(pos_, static_cast<std::size_t>(*len));
  pos_ += static_cast<std::size_t>(*len) + 2;
  return text;
}

void ReplyCursor::skip() {
  const std::size_t end = scan(in_, pos_, 0);
  if (end == std::string_view::npos) {
    failed_ = true;
    pos_ = in_.size();
    return;
  }
  pos_ = end;
}

}  // namespace runnel::bench
