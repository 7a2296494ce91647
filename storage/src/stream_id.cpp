#include <runnel/storage/stream_id.hpp>

#include <charconv>

namespace runnel::storage {
namespace {

bool parse_u64(std::string_view text, std::uint64_t& value) {
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && ptr == text.data() + text.size();
}

}  // namespace

std::optional<StreamId> StreamId::next() const {
  if (seq != std::numeric_limits<std::uint64_t>::max()) return StreamId{ms, seq + 1};
  if (ms != std::numeric_limits<std::uint64_t>::max()) return StreamId{ms + 1, 0};
  return std::nullopt;
}

std::optional<StreamId> StreamId::prev() const {
  if (seq != 0) return StreamId{ms, seq - 1};
  if (ms != 0) return StreamId{ms - 1, std::numeric_limits<std::uint64_t>::max()};
  return std::nullopt;
}

std::size_t StreamId::format(char* out) const {
  char* end = std::to_chars(out, out + 20, ms).ptr;
  *end++ = '-';
  end = std::to_chars(end, end + 20, seq).ptr;
  return static_cast<std::size_t>(end - out);
}

std::string StreamId::to_string() const {
  char buf[48];
  return std::string(buf, format(buf));
}

std::optional<StreamId> parse_stream_id(std::string_view text, std::uint64_t default_seq) {
  StreamId id;
  const std::size_t dash = text.find('-');
  if (dash == std::string_view::npos) {
    if (!parse_u64(text, id.ms)) return std::nullopt;
    id.seq = default_seq;
    return id;
  }
  if (!parse_u64(text.substr(0, dash), id.ms) || !parse_u64(text.substr(dash + 1), id.seq)) {
    return std::nullopt;
  }
  return id;
}

}  // namespace runnel::storage
