// COPY source destination [DB n] [REPLACE]: the source stream read whole on its shard, as a
// value (storage/rdb.hpp's), then made again under the destination on that key's shard; the
// two keys may live on different shards. Like DUMP, a stream whose entries pass
// proto-max-bulk-len is refused.
#include "coordinator.hpp"
#include "shard.hpp"
#include "stream_reply.hpp"

namespace runnel {

awaitable<void> Coordinator::copy(std::span<const std::string_view> args) {
  ServerState& state = server_.state;
  protocol::ReplyWriter reply(link_.output(), session_.resp);
  bool replace = false;
  for (std::size_t i = 3; i < args.size(); ++i) {
    if (equals_ignore_case(args[i], "REPLACE")) {
      replace = true;
    } else if (equals_ignore_case(args[i], "DB") && i + 1 < args.size()) {
      std::int64_t db = 0;
      if (!parse_int64(args[++i], db)) co_return reply.error(kNotInteger);
      if (db != 0) co_return reply.error("ERR DB index is out of range");  // database 0 only, as SELECT
    } else {
      co_return reply.error("ERR syntax error");
    }
  }
  const std::string source(args[1]), destination(args[2]);
  if (source == destination) co_return reply.error("ERR source and destination objects are the same");
  Result<std::optional<storage::rdb::Stream>> value = std::optional<storage::rdb::Stream>();
  co_await on_shard_call(owner_of(source), [&](Shard& shard) {
    value = stream_value(shard, source, state);
    return false;
  });
  if (!value) co_return write_error(reply, source, value.error());
  if (!*value) co_return reply.integer(0);
  std::optional<OpError> failed;
  bool copied = false;
  const bool durable = co_await on_shard_call(owner_of(destination), [&](Shard& shard) {
    if (const std::string damage = shard.damage_of(destination); !damage.empty()) {
      failed = op_error(Errc::kArgument, damage);
      return false;
    }
    if (shard.keyspace.find(destination) != nullptr) {
      if (!replace) return false;
      shard.keyspace.erase(destination);
      shard.blocked.key_deleted(destination);
    }
    if (Result<void> made = make_stream(shard, destination, **value); !made) {
      failed = made.take_error();
      return false;
    }
    copied = true;
    shard.ran_command();  // settles the changes, so the ticket below covers them
    return true;          // the copy's reply waits for the disk
  });
  if (failed) co_return write_error(reply, destination, *failed);
  if (copied && !durable) co_return reply.error(misconf_text(state));
  reply.integer(copied ? 1 : 0);
}

}  // namespace runnel
