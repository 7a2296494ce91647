// A stream as Redis's DUMP/RESTORE carry it: Redis 7.0's RDB serialization of one stream
// value, and back. This is the whole codec (no I/O, no server): the broker turns its streams
// into `rdb::Stream` and back, and `dump_stream` / `restore_stream` do the bytes.
//
// The DUMP payload (Redis's createDumpPayload / verifyDumpPayload):
//
//   +------+---------------------+-------------+----------------------+
//   | type | the value (below)   | RDB version | CRC64 of all before  |
//   | 1 B  |                     | 2 B, LE     | 8 B, LE              |
//   +------+---------------------+-------------+----------------------+
//
//   type 15 RDB_TYPE_STREAM_LISTPACKS (Redis 5-6.2), 19 _2 (7.0, written here), 21 _3 (7.2+).
//   The version written is 10 (Redis 7.0's); any up to kMaxRdbVersion is read.
//   CRC64: Jones polynomial, reflected, init 0, no final xor (Redis's crc64.c).
//
// RDB primitives:
//
//   length   00xxxxxx                         6 bits
//            01xxxxxx xxxxxxxx                14 bits, big-endian
//            0x80 + 4 bytes big-endian        32 bits
//            0x81 + 8 bytes big-endian        64 bits
//   string   length + bytes, or a special form 11xxxxxx: 0xC0 int8, 0xC1 int16 LE,
//            0xC2 int32 LE (the decimal text of that integer), 0xC3 LZF (compressed length,
//            plain length, then LZF data)
//   time ms  8 bytes, little-endian
//   raw ID   16 bytes: ms then seq, each 64 bits big-endian
//
// The stream value:
//
//   nodes: length N, then N times: string (raw ID of the node's master entry) and string
//          (the node's listpack)
//   length, last ID (ms, seq as lengths), [19+: first ID, max-deleted ID, entries-added]
//   groups: length G, then per group:
//     name (string), last-delivered ID (ms, seq), [19+: entries-read (length; -1 as 2^64-1)]
//     PEL: length P, then per entry: raw ID, delivery time (ms), delivery count (length)
//     consumers: length C, then per consumer: name, seen time (ms), [21: active time (ms)],
//                its PEL: length, then raw IDs (each also in the group's PEL)
//
// A listpack (Redis's listpack.c):
//
//   +-------------+-------------+-----------+-----------+-----+------+
//   | total bytes | elements    | element 1 | element 2 | ... | 0xFF |
//   | 4 B, LE     | 2 B, LE     |           |           |     |      |
//   +-------------+-------------+-----------+-----------+-----+------+
//
//   element = encoding (+ data) + back-length (the encoding's and data's size, 1 to 5 bytes
//             of 7 bits, read from its end)
//   0xxxxxxx            7-bit unsigned integer
//   10xxxxxx + data     string of up to 63 bytes
//   110xxxxx yyyyyyyy   13-bit signed integer
//   1110xxxx yyyyyyyy   string of up to 4095 bytes, then data
//   0xF0 + 4 B LE len   string, then data
//   0xF1/F2/F3/F4       16/24/32/64-bit signed integer, little-endian
//   A string that reads as an integer (no sign '+', no leading zero) is stored as one.
//
// A stream node's listpack (Redis's t_stream.c):
//
//   master entry: count, deleted, N, field 1 .. field N, 0
//   each entry:   flags, ms - master ms, seq - master seq,
//                 [N', field 1, value 1 .. field N', value N']   (flags without SAMEFIELDS)
//                 [value 1 .. value N]                            (flags with SAMEFIELDS)
//                 element count of the entry before this one (flags to the last value)
//   flags: 1 DELETED (a tombstone, skipped here), 2 SAMEFIELDS (the master's fields)
//
// Runnel writes no tombstones and starts a node after stream-node-max-entries, or where the
// next entry would take the listpack to stream-node-max-bytes, as Redis does.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <runnel/storage/node_limits.hpp>
#include <runnel/storage/stream_id.hpp>

namespace runnel::storage::rdb {

inline constexpr std::uint8_t kTypeStreamListpacks = 15;
inline constexpr std::uint8_t kTypeStreamListpacks2 = 19;
inline constexpr std::uint8_t kTypeStreamListpacks3 = 21;
inline constexpr std::uint16_t kRdbVersion = 10;     // what DUMP writes: Redis 7.0's
inline constexpr std::uint16_t kMaxRdbVersion = 12;  // what RESTORE reads: up to Redis 7.4/8's
inline constexpr std::uint64_t kDefaultMaxEntryBytes = 512ull * 1024 * 1024;  // proto-max-bulk-len's default

struct Entry {
  StreamId id;
  std::vector<std::pair<std::string, std::string>> fields;
};

struct PendingEntry {
  StreamId id;
  std::int64_t delivery_time_ms = 0;
  std::uint64_t delivery_count = 0;
};

struct Consumer {
  std::string name;
  std::int64_t seen_time_ms = 0;
  std::optional<std::int64_t> active_time_ms;  // none before type 21; -1: never active
  std::vector<StreamId> pending;     // each also in the group's PEL
};

struct Group {
  std::string name;
  StreamId last_delivered;
  std::int64_t entries_read = -1;  // -1: unknown (Redis's SCG_INVALID_ENTRIES_READ)
  std::vector<PendingEntry> pel;   // ordered by ID
  std::vector<Consumer> consumers;
};

struct Stream {
  std::vector<Entry> entries;  // ordered by ID
  StreamId last_id;
  StreamId first_id;
  StreamId max_deleted_id;
  std::uint64_t entries_added = 0;
  std::vector<Group> groups;
};

// The DUMP payload of `stream`, in Redis 7.0's format (type 19, RDB version 10), its nodes
// closed where `limits` say.
[[nodiscard]] std::string dump_stream(const Stream& stream, const NodeLimits& limits = NodeLimits::defaults());

// What RESTORE found wrong with a payload, in Redis's words where Redis has them.
struct RestoreError {
  enum class Kind { kChecksum, kNotAStream, kBadFormat, kTooLarge } kind;
  std::string detail;  // what exactly, for the log
};

// Decodes a DUMP payload: checks the version and the checksum, then the stream value, and
// everything it says about itself (counts, ID order, each PEL entry owned once). Its entries
// may decode to at most `max_entry_bytes` (fields and values, plus 16 per entry, as DUMP
// counts them): field names shared by a node's entries, and LZF strings, make a payload
// decode to far more than its size, and kTooLarge stops that before it is allocated.
[[nodiscard]] std::variant<Stream, RestoreError> restore_stream(std::string_view payload,
                                                                std::uint64_t max_entry_bytes = kDefaultMaxEntryBytes);

// An RDB file (Redis 5.0 to 7.x, RDB versions up to kMaxRdbVersion), read value by value.
// Streams are decoded and handed to `on_stream` with their key and expiry (ms since the
// epoch, -1: none); every other value is skipped and counted by its type's name in `skipped`.
// Returns "" when the whole file was read (its checksum checked when it has one), else what
// stopped the reading (a value of a type this reader cannot skip, damage).
// A stream whose entries pass `max_entry_bytes` (counted as DUMP counts them) stops the
// reading: nothing larger is ever held in memory.
struct FileStream {
  std::string key;
  std::int64_t expire_ms = -1;
  Stream stream;
};
[[nodiscard]] std::string read_rdb_file(std::string_view file, const std::function<void(FileStream&&)>& on_stream,
                                        std::map<std::string, std::uint64_t>& skipped,
                                        std::uint64_t max_entry_bytes = kDefaultMaxEntryBytes);

// Redis's CRC64 (crc64.c), for tests.
[[nodiscard]] std::uint64_t crc64(std::uint64_t crc, std::string_view bytes);

}  // namespace runnel::storage::rdb
