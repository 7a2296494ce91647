// MULTI/EXEC: the part of a transaction that runs its queued commands, once every shard they
// touch is this thread's to use: either the one shard they all live on (the transaction made
// one hop there), or every shard, parked behind a short global barrier (server.cpp). The
// connection does the queueing, WATCH and the hops; this file has no Asio.
//
//   MULTI ──> commands are checked (unknown, arity, auth, MISCONF) and queued as copies;
//             a refused one marks the transaction failed
//   EXEC  ──> failed? -EXECABORT. A watched key changed? null. Else: shards_touched() says
//             where to run, run_transaction() runs everything in order, one reply each.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <runnel/protocol/reply_writer.hpp>

namespace runnel {

struct Session;
struct Shard;
struct ServerState;

// The shards the queued commands touch, in ascending order: a key's owner, or every shard
// for commands that fan out (DEL, KEYS, XREAD, ...), and the connection's `home` for those
// that change its subscriptions.
std::vector<unsigned> shards_touched(const std::vector<std::vector<std::string>>& queued,
                                     unsigned shard_count, unsigned home);

// Runs the queued commands in order, each writing one reply to `reply`, as EXEC's reply
// elements. `shards` holds every shard (index = shard number); only those shards_touched()
// named may be used, and the caller must own them for the whole call. XREAD and XREADGROUP
// never block here, as in Redis. `wrote[s]` is set for each shard a write command ran on.
void run_transaction(const std::vector<std::vector<std::string>>& queued, Session& session,
                     ServerState& state, std::span<Shard* const> shards,
                     protocol::ReplyWriter& reply, std::vector<char>& wrote);

}  // namespace runnel
