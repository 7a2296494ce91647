// Running a transaction's queued commands (transaction.hpp).
#include "transaction.hpp"

#include <optional>

#include "command.hpp"
#include "stream_read.hpp"
#include "stream_reply.hpp"

namespace runnel {
namespace {

unsigned owner_of(std::string_view key, unsigned shard_count) {
  return static_cast<unsigned>(key_hash(key) % shard_count);
}

std::vector<std::string_view> views(const std::vector<std::string>& args) {
  return std::vector<std::string_view>(args.begin(), args.end());
}

// XREAD / XREADGROUP without blocking, over shards the caller owns.
void stream_read_now(const CommandSpec& spec, std::span<const std::string_view> args, Session&,
                     std::span<Shard* const> shards, protocol::ReplyWriter& reply, std::vector<char>& wrote) {
  xread::Request request;
  const bool group_mode = spec.route == Route::kGroupRead;
  if (const std::string error = xread::parse(args, group_mode, request); !error.empty()) {
    return reply.error(error);
  }
  const auto shard_count = static_cast<unsigned>(shards.size());
  std::vector<std::vector<std::size_t>> by_shard(shard_count);
  for (std::size_t i = 0; i < request.keys.size(); ++i) {
    by_shard[owner_of(request.keys[i], shard_count)].push_back(i);
  }
  if (group_mode) {
    std::vector<char> ok(request.keys.size(), 0);
    for (unsigned s = 0; s < shard_count; ++s) {
      if (!by_shard[s].empty()) xread::check_groups(*shards[s], request, by_shard[s], ok);
    }
    if (const std::string error = xread::first_error(request, ok); !error.empty()) return reply.error(error);
  }
  xread::KeyResults results(request.keys.size());
  for (unsigned s = 0; s < shard_count; ++s) {
    if (by_shard[s].empty()) continue;
    xread::run_on_shard(*shards[s], request, by_shard[s], results, nullptr);
    if (!group_mode) continue;
    shards[s]->settle();
    wrote[s] = 1;
  }
  xread::write_reply(reply, request, results);
}

}  // namespace

std::vector<unsigned> shards_touched(const std::vector<std::vector<std::string>>& queued,
                                     unsigned shard_count, unsigned home) {
  std::vector<char> touched(shard_count, 0);
  for (const auto& args : queued) {
    const auto v = views(args);
    const CommandSpec* spec = command_table().lookup(v);
    if (spec == nullptr) continue;
    // (P|S)SUBSCRIBE and their undoing change the home shard's Pub/Sub table.
    if ((spec->flags & kChangesSubscriptions) != 0) touched[home] = 1;
    if (spec->route == Route::kKey) {
      touched[owner_of(args[static_cast<std::size_t>(spec->first_key)], shard_count)] = 1;
    } else if (spec->route == Route::kKeys) {
      for (std::size_t i = 1; i < args.size(); i += static_cast<std::size_t>(spec->key_step)) {
        touched[owner_of(args[i], shard_count)] = 1;
      }
    } else if ((spec->route == Route::kCopy || spec->route == Route::kKeyPair) && args.size() >= 3) {
      touched[owner_of(args[1], shard_count)] = 1;
      touched[owner_of(args[2], shard_count)] = 1;
    } else if (spec->route == Route::kEachShard || spec->route == Route::kPublish || spec->route == Route::kStreamRead ||
               spec->route == Route::kGroupRead) {
      std::fill(touched.begin(), touched.end(), 1);
    }
  }
  std::vector<unsigned> out;
  for (unsigned s = 0; s < shard_count; ++s) {
    if (touched[s]) out.push_back(s);
  }
  return out;
}

void run_transaction(const std::vector<std::vector<std::string>>& queued, Session& session,
                     ServerState& state, std::span<Shard* const> shards,
                     protocol::ReplyWriter& reply, std::vector<char>& wrote) {
  const auto shard_count = static_cast<unsigned>(shards.size());
  // Blocked readers are served after the whole transaction, on its final state: a shard a
  // command runs on holds its ready keys until the end. (Only those: a transaction on one
  // shard runs on that shard's thread, and must not touch the others.)
  std::vector<char> held(shard_count, 0);
  for (const auto& stored : queued) {
    const auto args = views(stored);
    const CommandSpec* spec = command_table().lookup(args);
    const std::size_t before = reply.buffer().size();
    // SLOWLOG: each command of the transaction on its own, as Redis logs them (EXEC itself is
    // not logged); key commands time themselves (run_key_command).
    std::optional<CommandTimer> timer;
    if (spec->route != Route::kKey) timer.emplace(state, *spec, args, session, reply.buffer());
    switch (spec->route) {
      case Route::kConnection: {
        CommandContext ctx{args, reply, session, state, *spec};
        spec->handler(ctx);
        break;
      }
      case Route::kUnwatch:  // the keys were let go when EXEC began
        reply.ok();
        break;
      case Route::kMigrate:  // it waits on another server, which EXEC's shards cannot
        reply.error("ERR MIGRATE cannot run inside a transaction in Runnel");
        break;
      case Route::kCopy: {  // both shards are this transaction's: no hop
        const std::optional<CopyRequest> request = parse_copy(args, reply);
        if (!request) break;
        Shard& from = *shards[owner_of(request->source, shard_count)];
        const unsigned to_index = owner_of(request->destination, shard_count);
        Result<std::optional<CopiedValue>> value = copy_value(from, request->source, state);
        if (!value) {
          write_error(reply, request->source, value.error());
          break;
        }
        if (!*value) {
          reply.integer(0);
          break;
        }
        if (!held[to_index]) {
          held[to_index] = 1;
          ++shards[to_index]->holding_ready;
        }
        const Result<bool> copied = copy_into(*shards[to_index], *request, **value);
        if (!copied) {
          write_error(reply, request->destination, copied.error());
          break;
        }
        if (*copied) {
          shards[to_index]->ran_command();
          wrote[to_index] = 1;
        }
        reply.integer(*copied ? 1 : 0);
        break;
      }
      case Route::kKeyPair: {  // both shards are this transaction's
        Shard& from = *shards[owner_of(args[1], shard_count)];
        const unsigned to_index = owner_of(args[2], shard_count);
        Shard& to = *shards[to_index];
        for (const unsigned s : {owner_of(args[1], shard_count), to_index}) {
          if (!held[s]) {
            held[s] = 1;
            ++shards[s]->holding_ready;
          }
        }
        KeyPairContext ctx{args, reply, from, to};
        spec->key_pair(ctx);
        if (ctx.wrote) {
          from.ran_command();
          if (&to != &from) to.ran_command();
          wrote[owner_of(args[1], shard_count)] = 1;
          wrote[to_index] = 1;
        }
        break;
      }
      case Route::kKeys: {  // every key's shard is this transaction's
        for (std::size_t i = 1; i < args.size(); i += static_cast<std::size_t>(spec->key_step)) {
          const unsigned s = owner_of(args[i], shard_count);
          if (!held[s]) {
            held[s] = 1;
            ++shards[s]->holding_ready;
          }
        }
        std::vector<char> changed(shard_count, 0);
        KeysContext ctx{args, reply, shards, shard_count, changed, state};
        spec->keys(ctx);
        for (unsigned s = 0; s < shard_count; ++s) {
          if (!changed[s]) continue;
          shards[s]->ran_command();
          wrote[s] = 1;
        }
        break;
      }
      case Route::kMulti:  // never queued (runs_in_multi)
      case Route::kExec:
      case Route::kDiscard:
      case Route::kWatch:
      case Route::kReset:
        break;
      case Route::kKey: {
        const unsigned owner = owner_of(args[static_cast<std::size_t>(spec->first_key)], shard_count);
        if (!held[owner]) {
          held[owner] = 1;
          ++shards[owner]->holding_ready;
        }
        if (run_key_command(*shards[owner], *spec, args, reply, session, state)) wrote[owner] = 1;
        break;
      }
      case Route::kEachShard:
      case Route::kPublish: {  // every shard is held: each delivers and counts, exactly
        Gather gather;
        for (unsigned s = 0; s < shard_count; ++s) {
          ShardPartContext part{args, *shards[s], shard_count, gather};
          spec->shard_part(part);
          if ((spec->flags & kWrite) != 0) {  // DEL, FLUSHALL: EXEC waits for the disk
            shards[s]->settle();
            wrote[s] = 1;
          }
        }
        CommandContext ctx{args, reply, session, state, *spec, nullptr, &gather};
        spec->handler(ctx);
        break;
      }
      case Route::kStreamRead:
      case Route::kGroupRead:
        stream_read_now(*spec, args, session, shards, reply, wrote);
        break;
    }
    const std::string& out = reply.buffer();
    if (out.size() > before && out[before] == '-') state.stats.error_reply(std::string_view(out).substr(before));
  }
  for (unsigned s = 0; s < shard_count; ++s) {
    if (!held[s]) continue;
    --shards[s]->holding_ready;
    shards[s]->serve_ready();
  }
}

}  // namespace runnel
