// Just enough RESP for a load generator: find where a reply ends without building it, and walk
// a whole reply's parts (XREADGROUP's entries) as views, without allocating.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string_view>

namespace runnel::bench {

// The length of the whole reply at the start of `in`, or nullopt if more bytes are needed.
// Malformed input counts as complete (the caller sees it when it reads the reply).
std::optional<std::size_t> reply_length(std::string_view in);

// Walks a whole reply. Every call on a malformed or unexpected reply sets failed().
class ReplyCursor {
 public:
  explicit ReplyCursor(std::string_view reply) : in_(reply) {}

  // An aggregate's element count (-1 for a null); `kind` is '*', '%', '~' or '>'.
  std::int64_t aggregate();
  // A bulk or simple string.
  std::string_view string();
  // Skips one whole value of any kind.
  void skip();
  [[nodiscard]] bool failed() const { return failed_; }
  [[nodiscard]] bool at_end() const { return pos_ >= in_.size(); }

 private:
  std::string_view line();  // the rest of the current line after its type byte

  std::string_view in_;
  std::size_t pos_ = 0;
  bool failed_ = false;
};

inline std::optional<std::int64_t> to_int(std::string_view text) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

}  // namespace runnel::bench
