// RENAME and RENAMENX: the stream keeps its folder, its files and its memory; only the key
// that names it changes. With both keys' shards held (route kKeyPair):
//
//   1. the folder's manifest is rewritten with the new key and a new claim epoch, durably:
//      this is the step a crash cannot split (segment_log.hpp);
//   2. a stream already at the new key (RENAME) is deleted, its folder into the trash; if a
//      crash comes between 1 and 2, start-up finds two folders naming the key and keeps
//      the higher epoch, the renamed one;
//   3. the stream moves in memory to the new key. Across shards its files (and what waits to
//      be written) go to the new shard's storage, its cached nodes to that shard's cache.
//
// Watchers of both keys see them modified. Readers blocked on the new key are served on the
// final state, as after any write (an XREADGROUP reader whose group the renamed stream lacks
// gets -NOGROUP); group readers blocked on the old key are told it is gone (-UNBLOCKED), as
// after DEL.
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>

#include "command.hpp"
#include "shard.hpp"
#include "stream_reply.hpp"

namespace runnel::cmd {
namespace {

// RUNNEL_TEST_RENAME_CRASH (tests): the process kills itself between a RENAME's manifest and
// its deletion of the key it replaces, the crash the claim epochs are there for.
bool crash_between_steps() {
  static const bool set = std::getenv("RUNNEL_TEST_RENAME_CRASH") != nullptr;
  return set;
}

void rename_key(KeyPairContext& ctx, bool nx) {
  const std::string_view source = ctx.args[1];
  const std::string_view destination = ctx.args[2];
  if (const std::string damage = ctx.from.damage_of(source); !damage.empty()) return ctx.reply.error(damage);
  ctx.wrote = ctx.from.expire_if_due(source);
  ctx.wrote = ctx.to.expire_if_due(destination) || ctx.wrote;
  KeyValue* value = ctx.from.keyspace.lookup(source);
  if (value == nullptr) return ctx.reply.error("ERR no such key");
  if (source == destination) return nx ? ctx.reply.integer(0) : ctx.reply.ok();
  // A damaged stream at the destination is a key too: RENAMENX leaves it, RENAME deletes it.
  const bool taken = ctx.to.keyspace.lookup(destination) != nullptr;
  if (taken && nx) return ctx.reply.integer(0);
  if (!value->is_stream()) {  // a string: its value and TTL move, in memory and in the journals
    std::string moved = value->string;  // a copy: erase() uncounts the source's bytes by its size
    const std::int64_t expires_at = value->expires_at;
    ctx.from.keyspace.erase(source);
    if (taken) ctx.to.delete_key(destination);
    ctx.to.keyspace.set_string(destination, std::move(moved), expires_at);
    ctx.from.signal_modified(source);
    ctx.to.signal_modified(destination);
    ctx.wrote = true;
    return nx ? ctx.reply.integer(1) : ctx.reply.ok();
  }
  Stream* stream = value->stream.get();

  if (ctx.from.storage != nullptr) {
    if (Result<void> renamed = ctx.from.storage->rekey(*stream, destination); !renamed) {
      return write_error(ctx.reply, source, renamed.error());
    }
  }
  if (taken && crash_between_steps()) ::kill(::getpid(), SIGKILL);
  if (taken) ctx.to.keyspace.erase(destination);  // its readers wait for the final state
  std::int64_t expires_at = 0;
  std::unique_ptr<Stream> moved = ctx.from.keyspace.extract(source, &expires_at);
  Stream& renamed = *moved;
  std::shared_ptr<ShardStorage::Moving> files;
  const bool across = &ctx.from != &ctx.to;
  if (across && ctx.from.storage != nullptr) files = ctx.from.storage->detach(renamed);
  ctx.to.keyspace.insert(destination, std::move(moved));
  if (expires_at != 0) {
    if (KeyValue* now_at = ctx.to.keyspace.lookup(destination)) ctx.to.keyspace.set_expiry(destination, *now_at, expires_at);
  }
  if (across && ctx.to.storage != nullptr) {
    ctx.to.storage->adopt(renamed, std::move(files));
    ctx.to.durability->fence_behind(*ctx.from.durability);
  }

  ctx.from.signal_modified(source);
  ctx.from.blocked.key_deleted(source);
  ctx.to.signal_modified(destination);
  ctx.to.signal_ready(destination);
  ctx.wrote = true;
  if (nx) return ctx.reply.integer(1);
  ctx.reply.ok();
}

}  // namespace

void rename(KeyPairContext& ctx) { rename_key(ctx, false); }
void renamenx(KeyPairContext& ctx) { rename_key(ctx, true); }

}  // namespace runnel::cmd
