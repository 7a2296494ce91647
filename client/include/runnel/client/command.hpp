// Command: one request's arguments, encoded as a RESP array as they are added, so sending
// it is one append to a connection's write buffer. Shared by the async and sync clients.
#pragma once

#include <charconv>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace runnel::client {

class Command {
 public:
  Command() = default;
  // Command("XADD", key, "*", "f", "v"): each argument a string, or an integer.
  template <class... Args>
  explicit Command(std::string_view name, const Args&... args) {
    arg(name);
    (arg(args), ...);
  }

  Command& arg(std::string_view value) {
    char head[24];
    head[0] = '$';
    const auto end = std::to_chars(head + 1, head + sizeof head, value.size()).ptr;
    body_.append(head, end);
    body_ += "\r\n";
    body_.append(value);
    body_ += "\r\n";
    ++count_;
    return *this;
  }
  Command& arg(const std::string& value) { return arg(std::string_view(value)); }
  Command& arg(const char* value) { return arg(std::string_view(value)); }
  template <std::integral T>
  Command& arg(T value) {
    char text[24];
    const auto end = std::to_chars(text, text + sizeof text, value).ptr;
    return arg(std::string_view(text, static_cast<std::size_t>(end - text)));
  }

  // A command of frames that are already encoded (MULTI, its commands and EXEC, sent as one
  // request); encode() appends them as they are.
  static Command from_frames(std::string frames) {
    Command command;
    command.body_ = std::move(frames);
    command.frames_ = true;
    return command;
  }

  // Appends the whole RESP frame ("*N\r\n" then the arguments) to `out`.
  void encode(std::string& out) const {
    if (frames_) {
      out += body_;
      return;
    }
    char head[24];
    head[0] = '*';
    const auto end = std::to_chars(head + 1, head + sizeof head, count_).ptr;
    out.append(head, end);
    out += "\r\n";
    out += body_;
  }
  [[nodiscard]] std::string encoded() const {
    std::string out;
    encode(out);
    return out;
  }
  [[nodiscard]] std::size_t arg_count() const { return count_; }
  // For XREAD and XREADGROUP with BLOCK: its milliseconds (0: no end); else -1. Lets a
  // command sent as it is (execute) still get a connection of its own when it blocks.
  [[nodiscard]] std::int64_t block_ms() const;
  // Bytes of the encoded frame, less its few header bytes.
  [[nodiscard]] std::size_t size_bytes() const { return body_.size(); }
  [[nodiscard]] bool empty() const { return count_ == 0; }

 private:
  std::string body_;
  std::size_t count_ = 0;
  bool frames_ = false;
};

}  // namespace runnel::client
