// libFuzzer target for RESTORE's decoder (storage/rdb.hpp). The input is a stream value; the
// target adds the type byte's neighbours (the RDB version and a correct checksum) so the
// fuzzer's bytes reach the decoder instead of stopping at the checksum. The decoder must
// never read out of bounds or allocate for counts the payload cannot hold, and what it
// accepts must DUMP and RESTORE again to the same entries.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <variant>

#include <runnel/storage/rdb.hpp>

namespace rdb = runnel::storage::rdb;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string payload(reinterpret_cast<const char*>(data), size);
  payload.push_back(static_cast<char>(rdb::kRdbVersion & 0xff));
  payload.push_back(static_cast<char>(rdb::kRdbVersion >> 8));
  const std::uint64_t crc = rdb::crc64(0, payload);
  for (int i = 0; i < 8; ++i) payload.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  const auto got = rdb::restore_stream(payload);
  if (const auto* stream = std::get_if<rdb::Stream>(&got)) {
    const auto again = rdb::restore_stream(rdb::dump_stream(*stream));
    const auto* same = std::get_if<rdb::Stream>(&again);
    if (same == nullptr || same->entries.size() != stream->entries.size() ||
        same->groups.size() != stream->groups.size()) {
      std::abort();
    }
    for (std::size_t i = 0; i < stream->entries.size(); ++i) {
      if (same->entries[i].id != stream->entries[i].id || same->entries[i].fields != stream->entries[i].fields) std::abort();
    }
  }
  return 0;
}
