// libFuzzer target for the request parser. The input is fed in pieces (sizes taken from the
// first byte) the way a socket delivers it, with an exactly sized buffer each time, and the
// parser must never read out of bounds, loop, or return a consumed count past the input.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include <runnel/protocol/request_parser.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t step = 1 + data[0] % 64;
  const bool authenticated = data[0] & 0x80;
  ++data;
  --size;
  runnel::protocol::ParserLimits limits;
  limits.max_bulk_len = 1 << 20;
  limits.max_inline_len = 4096;
  runnel::protocol::RequestParser parser(limits);
  parser.set_authenticated(authenticated);
  std::string pending;
  std::size_t offset = 0;
  while (offset < size) {
    const std::size_t n = std::min(step, size - offset);
    pending.append(reinterpret_cast<const char*>(data + offset), n);
    offset += n;
    while (!pending.empty()) {
      auto exact = std::make_unique<char[]>(pending.size());
      std::memcpy(exact.get(), pending.data(), pending.size());
      const std::string_view view(exact.get(), pending.size());
      const auto result = parser.parse(view);
      if (result.status == runnel::protocol::ParseStatus::kError) return 0;
      if (result.status == runnel::protocol::ParseStatus::kNeedMore) break;
      if (result.consumed == 0 || result.consumed > pending.size()) __builtin_trap();
      for (std::string_view arg : parser.args()) {
        // Arguments must lie inside the input or in the parser's own storage; touch them.
        volatile char sink = 0;
        for (char c : arg) sink ^= c;
        (void)sink;
      }
      pending.erase(0, result.consumed);
    }
  }
  return 0;
}
