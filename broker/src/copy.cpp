// COPY source destination [DB n] [REPLACE]: the source stream read whole on its shard, as a
// value (storage/rdb.hpp's), then made again under the destination on that key's shard; the
// two keys may live on different shards. Like DUMP, a stream whose entries pass
// proto-max-bulk-len is refused. Run by the Coordinator (two hops) or inside EXEC (both
// shards held).
#include "coordinator.hpp"
#include "shard.hpp"
#include "stream_reply.hpp"

namespace runnel {

std::optional<CopyRequest> parse_copy(std::span<const std::string_view> args, protocol::ReplyWriter& reply) {
  CopyRequest request{std::string(args[1]), std::string(args[2]), false};
  for (std::size_t i = 3; i < args.size(); ++i) {
    if (equals_ignore_case(args[i], "REPLACE")) {
      request.replace = true;
    } else if (equals_ignore_case(args[i], "DB") && i + 1 < args.size()) {
      std::int64_t db = 0;
      if (!parse_int64(args[++i], db)) {
        reply.error(kNotInteger);
        return std::nullopt;
      }
      if (db != 0) {
        reply.error("ERR DB index is out of range");  // database 0 only, as SELECT
        return std::nullopt;
      }
    } else {
      reply.error("ERR syntax error");
      return std::nullopt;
    }
  }
  if (request.source == request.destination) {
    reply.error("ERR source and destination objects are the same");
    return std::nullopt;
  }
  return request;
}

Result<std::optional<CopiedValue>> copy_value(Shard& shard, std::string_view key, ServerState& state) {
  shard.expire_if_due(key);
  const KeyValue* value = shard.keyspace.lookup(key);
  if (value != nullptr && !value->is_stream()) {
    return std::optional<CopiedValue>(CopiedValue{std::nullopt, value->string, value->expires_at});
  }
  Result<std::optional<storage::rdb::Stream>> stream = stream_value(shard, key, state);
  if (!stream) return stream.take_error();
  if (!*stream) return std::optional<CopiedValue>();
  return std::optional<CopiedValue>(CopiedValue{std::move(*stream), {}, value->expires_at});
}

Result<bool> copy_into(Shard& shard, const CopyRequest& request, const CopiedValue& value) {
  if (const std::string damage = shard.damage_of(request.destination); !damage.empty()) {
    return op_error(Errc::kArgument, damage);
  }
  shard.expire_if_due(request.destination);
  if (shard.keyspace.lookup(request.destination) != nullptr) {
    if (!request.replace) return false;
    (void)shard.delete_key(request.destination);
  }
  if (!value.stream) {
    shard.keyspace.set_string(request.destination, value.string, value.expires_at);
    shard.signal_modified(request.destination);
    return true;
  }
  if (Result<void> made = make_stream(shard, request.destination, *value.stream); !made) return made.take_error();
  if (value.expires_at != 0) {
    if (KeyValue* made = shard.keyspace.lookup(request.destination)) {
      shard.keyspace.set_expiry(request.destination, *made, value.expires_at);
    }
  }
  return true;
}

awaitable<void> Coordinator::copy(std::span<const std::string_view> args) {
  ServerState& state = server_.state;
  protocol::ReplyWriter reply(link_.output(), session_.resp);
  const std::optional<CopyRequest> request = parse_copy(args, reply);
  if (!request) co_return;
  Result<std::optional<CopiedValue>> value = std::optional<CopiedValue>();
  co_await on_shard_call(owner_of(request->source), [&](Shard& shard) {
    value = copy_value(shard, request->source, state);
    return false;
  });
  if (!value) co_return write_error(reply, request->source, value.error());
  if (!*value) co_return reply.integer(0);
  Result<bool> copied = false;
  const bool durable = co_await on_shard_call(owner_of(request->destination), [&](Shard& shard) {
    copied = copy_into(shard, *request, **value);
    if (!copied || !*copied) return false;
    shard.ran_command();  // settles the changes, so the hop's wait covers them
    return true;          // the copy's reply waits for the disk
  });
  if (!copied) co_return write_error(reply, request->destination, copied.error());
  if (*copied && !durable) co_return reply.error(misconf_text(state));
  reply.integer(*copied ? 1 : 0);
}

}  // namespace runnel
