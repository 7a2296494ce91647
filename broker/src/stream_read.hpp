// XREAD, split into what runs where: parse() on the connection's thread; run_on_shard() on
// each shard that owns some of the keys, in shard order; write_reply() back on the connection.
// When nothing is found and BLOCK was given, run_on_shard() registers the waiter on its shard
// in the same step that found nothing, so no XADD can slip in between (no lost wake-up).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <runnel/protocol/reply_writer.hpp>
#include <runnel/storage/stream_id.hpp>

#include "streams/entries.hpp"

namespace runnel {

struct Shard;
struct StreamWaiter;

namespace xread {

struct Request {
  std::int64_t count = 0;                 // 0: no limit
  std::optional<std::int64_t> block_ms;   // BLOCK's milliseconds (0: forever)
  std::vector<std::string> keys;
  std::vector<std::optional<storage::StreamId>> ids;  // nullopt: '$' (XREAD) or '>' (XREADGROUP)
  std::vector<char> last_entry;           // XREAD: per key, '+' (the stream's last entry)
  // XREADGROUP only:
  bool group_mode = false;
  std::string group;
  std::string consumer;
  bool noack = false;
  std::optional<std::int64_t> claim_min_idle;  // CLAIM min-idle-time (Redis 8.4)
  std::vector<std::string> id_errors;     // per key: its ID's error, reported in key order
  // Filled while running on the shards:
  bool found_elsewhere = false;           // an earlier shard found entries
  std::vector<unsigned> registered_shards;  // shards the waiter was registered on
  // XREADGROUP: a key's stream or group went away between the check and the read (a DEL,
  // FLUSHALL or XGROUP DESTROY in between). The read came first, so a blocking one gets what
  // Redis answers a reader blocked when the key goes: this error, instead of waiting on a
  // key nobody will ever serve.
  std::string gone_error;
  // A key whose entries could not be read back (read_error_text): the command's answer is
  // this error, never a reply short of that key's entries.
  std::string read_error;
  // CLAIM, nothing found: the earliest time (ms since 1970) a pending entry of some key
  // becomes claimable, when one will; a blocked reader is looked at again then.
  std::optional<std::int64_t> claim_wake_ms;
};

// Returns the error to reply with, or an empty string. For XREADGROUP, errors that Redis
// reports key by key (after checking each key's group) are left in out.id_errors.
std::string parse(std::span<const std::string_view> args, bool xreadgroup, Request& out);

// XREADGROUP: sets ok[i] for each key of `indices` (owned by `shard`) whose stream has the
// group.
void check_groups(Shard& shard, const Request& request, std::span<const std::size_t> indices,
                  std::vector<char>& ok);
// The error Redis reports first, going key by key: a missing group, then a bad ID.
std::string first_error(const Request& request, const std::vector<char>& ok);

// Per key, what the read found: nothing (nullopt), or entries (an XREADGROUP history may be
// empty, and is still answered).
using KeyResults = std::vector<std::optional<Entries>>;

// Reads the keys listed in `indices` (all owned by `shard`) into results[i]. If none has
// entries, no earlier shard found any, and `waiter` is given, registers the waiter for those
// keys. Returns whether it found entries.
bool run_on_shard(Shard& shard, Request& request, std::span<const std::size_t> indices, KeyResults& results,
                  const std::shared_ptr<StreamWaiter>& waiter);

// The reply for the keys that have entries, or a null array when none has (encoded on the
// connection's thread).
void write_reply(protocol::ReplyWriter& reply, const Request& request, const KeyResults& results);

}  // namespace xread
}  // namespace runnel
