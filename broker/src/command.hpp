// The command table: one row per command (and per subcommand of a container such as CLIENT).
// Dispatch, arity and auth checks, routing to shards, and every COMMAND reply derive from it.
// A handler is parse -> op -> reply: it reads ctx.args, runs the operation on the data it
// was routed to, and writes one reply with ctx.reply. It never touches a socket.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <runnel/protocol/reply_writer.hpp>
#include <runnel/protocol/request_parser.hpp>

#include <runnel/storage/rdb.hpp>

#include "command_stats.hpp"
#include "pubsub.hpp"
#include "server_state.hpp"
#include "shard.hpp"

namespace runnel {

struct CommandSpec;
struct Session;

// A connection's own state, as commands see and change it. Lives on the connection's thread;
// a handler routed to another shard only reads it.
struct Session {
  std::shared_ptr<ClientInfo> info;
  protocol::RequestParser* parser = nullptr;
  protocol::RespVersion resp = protocol::RespVersion::kResp2;
  bool authenticated = false;
  bool close_after_reply = false;
  bool shutdown_after_reply = false;

  // MULTI: whether one was refused (EXEC then aborts with -EXECABORT).
  bool in_multi = false;
  bool multi_failed = false;

  // What MULTI queues and WATCH watches. Most connections use neither, so it is allocated by
  // the first command queued or key watched, and freed once both are empty again: 48 bytes
  // less per connection.
  struct Transaction {
    std::vector<std::vector<std::string>> queued;  // copied
    std::uint64_t queued_bytes = 0;
    // Each watched key with the version it had on its shard when watched.
    std::vector<std::pair<std::string, std::uint64_t>> watched;
  };
  std::unique_ptr<Transaction> transaction;  // null: nothing queued or watched

  Transaction& transaction_state() {
    if (!transaction) transaction = std::make_unique<Transaction>();
    return *transaction;
  }
  void release_transaction_if_empty() {
    if (transaction && transaction->queued.empty() && transaction->watched.empty()) transaction.reset();
  }
  [[nodiscard]] bool watching() const { return transaction && !transaction->watched.empty(); }

  // Pub/Sub: the names this connection subscribed to, by ChannelKind (null: none), and the
  // connection as the receiver (set by the connection; it knows its home shard's table).
  struct Subscriptions {
    std::set<std::string, std::less<>> names[3];
    // When the unsent messages last went past the pubsub soft limit (steady ms; -1: below).
    std::int64_t soft_limit_since_ms = -1;
  };
  std::unique_ptr<Subscriptions> subscriptions;
  Subscriber* subscriber = nullptr;
  // Redis's count in (un)subscribe replies: channels and patterns together, shard channels
  // apart.
  [[nodiscard]] std::size_t subscription_count(ChannelKind kind) const {
    if (!subscriptions) return 0;
    if (kind == ChannelKind::kShard) return subscriptions->names[2].size();
    return subscriptions->names[0].size() + subscriptions->names[1].size();
  }
  // RESP2's subscribed context: any subscription at all.
  [[nodiscard]] bool subscribed() const { return subscriptions != nullptr; }
};

// Flags as COMMAND INFO names them.
enum CommandFlag : std::uint32_t {
  kWrite = 1u << 0,
  kReadonly = 1u << 1,
  kDenyOom = 1u << 2,
  kAdmin = 1u << 3,
  kNoScript = 1u << 4,
  kLoading = 1u << 5,
  kStale = 1u << 6,
  kFast = 1u << 7,
  kNoAuth = 1u << 8,
  kAllowBusy = 1u << 9,
  kNoMulti = 1u << 10,
  kBlocking = 1u << 11,
  kMovableKeys = 1u << 12,
  kSkipSlowlog = 1u << 13,
  kPubsub = 1u << 14,
  // Not in COMMAND INFO: what a RESP2 connection with subscriptions may still run (Redis's
  // "only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET").
  kSubscribedContext = 1u << 30,
  // Not in COMMAND INFO: it changes the connection's subscriptions, which live in its home
  // shard's table; in EXEC the transaction runs where that table is.
  kChangesSubscriptions = 1u << 29,
  // Not in COMMAND INFO: SPUBLISH's shard channels rather than PUBLISH's channels.
  kShardChannel = 1u << 28,
  // Not in COMMAND INFO, set from the ACL categories: @stream commands get WRONGTYPE on a
  // string key; @string commands that add data get -OOM past --maxmemory-strings.
  kStreamCommand = 1u << 27,
  kStringCommand = 1u << 26,
};

// Where a command runs, and how: the Coordinator (server.cpp) and run_transaction
// (transaction.cpp) dispatch on this, never on a command's name.
enum class Route : std::uint8_t {
  kConnection,  // on the connection's thread; touches no stream
  kKey,         // on the shard that owns args[first_key]
  kEachShard,   // shard_part runs on every shard in order, then the handler replies from `gather`
  kStreamRead,  // XREAD: the keys after STREAMS are read on their shards; may block
  kGroupRead,   // XREADGROUP: the same, as a group's consumer
  kMulti,       // the transaction's own commands, run by the connection's Coordinator
  kExec,
  kDiscard,
  kWatch,
  kUnwatch,
  kReset,       // RESET: its handler, then MULTI and WATCH end
  kMigrate,     // MIGRATE: the keys dumped on their shards, sent to another server, then deleted
  kCopy,        // COPY: the source read on its shard, made again on the destination's
  kKeyPair,     // RENAME: args[1]'s shard and args[2]'s held at once (one hop, or EXEC's parking)
  kPublish,     // PUBLISH: here, by the Pub/Sub directory (pubsub.hpp); in EXEC, as kEachShard
  kKeys,        // MSET, MSETNX: every key's shard held at once (one hop, or EXEC's parking)
};

// What kEachShard commands collect across shards.
struct Gather {
  std::int64_t count = 0;
  std::vector<std::string> keys;
  std::vector<std::int64_t> counts;  // PUBSUB NUMSUB: one per channel asked about
  std::vector<std::optional<std::string>> values;  // MGET: one per key (nullopt: nil)
  std::vector<std::string> pubsub_names[3];  // INFO: each shard's channels, patterns, shard channels
  std::uint64_t cursor = 0;  // SCAN: where the next call resumes
  std::uint64_t blocked_registrations = 0;  // INFO: blocked-reader registrations
  std::uint64_t expires = 0;                // INFO: keys with a TTL
  std::uint64_t expired_keys = 0;           // INFO: keys deleted for their TTL
  std::vector<CommandStats> shard_command_stats;  // INFO commandstats: each shard's table
  StorageFigures storage;                   // INFO: the shards' storage, summed
  std::string shard_lines;                  // INFO: a line per shard
  bool done = false;         // SCAN: the later shards have nothing to add
};

struct CommandSpec;

struct CommandContext {
  std::span<const std::string_view> args;
  protocol::ReplyWriter& reply;
  Session& session;
  ServerState& server;
  const CommandSpec& spec;
  Shard* shard = nullptr;    // kKey: the owning shard, and we run on its thread
  Gather* gather = nullptr;  // kEachShard
};

struct ShardPartContext {
  std::span<const std::string_view> args;
  Shard& shard;
  unsigned shard_count;
  Gather& gather;
};

// kKeyPair: both keys' shards held by the running thread (one shard twice, or two with every
// other parked). The handler says which it changed, for the replies' durability waits.
struct KeyPairContext {
  std::span<const std::string_view> args;
  protocol::ReplyWriter& reply;
  Shard& from;  // owns args[1]
  Shard& to;    // owns args[2]
  bool wrote = false;
};

// kKeys: the shards of every key the command names, held by the running thread. The
// handler marks in `wrote` the shards it changed, for the replies' durability waits.
struct KeysContext {
  std::span<const std::string_view> args;
  protocol::ReplyWriter& reply;
  std::span<Shard* const> shards;  // every shard, by index; only the keys' owners may be used
  unsigned shard_count;
  std::vector<char>& wrote;
  ServerState& state;
};

using Handler = void (*)(CommandContext&);
using ShardPart = void (*)(ShardPartContext&);
using KeyPairHandler = void (*)(KeyPairContext&);
using KeysHandler = void (*)(KeysContext&);

// One key specification, as COMMAND INFO reports it (begin_search by index, find_keys by range).
struct KeySpec {
  std::string_view flags;  // space separated, e.g. "RW update"
  std::string_view keyword;  // begin_search by keyword (XREAD's "STREAMS") when set, else by index
  int begin_index = 1;       // the index, or the keyword's startfrom
  int last_key = 0;
  int key_step = 1;
  int limit = 0;
  std::string_view notes;
};

struct CommandDocs {
  std::string_view summary;
  std::string_view since;
  std::string_view group;
  std::string_view complexity;
};

struct CommandSpec {
  std::string_view name;  // lower case; a subcommand's is "container|sub"
  int arity;              // N: exactly N arguments with the name; -N: at least N
  std::uint32_t flags;
  int first_key, last_key, key_step;
  std::string_view acl_categories;  // space separated, e.g. "@write @stream @fast"
  std::string_view tips;            // space separated
  std::vector<KeySpec> key_specs;
  CommandDocs docs;
  Route route = Route::kConnection;
  Handler handler = nullptr;
  ShardPart shard_part = nullptr;
  std::vector<CommandSpec> subcommands;
  // Runs at once inside MULTI instead of being queued: MULTI, EXEC, DISCARD, WATCH, QUIT and
  // RESET, as in Redis's processCommand.
  bool runs_in_multi = false;
  KeyPairHandler key_pair = nullptr;  // kKeyPair
  KeysHandler keys = nullptr;         // kKeys
  std::uint16_t index = 0;            // its place in every CommandStats table

  [[nodiscard]] bool is_container() const { return !subcommands.empty(); }
};

class CommandTable {
 public:
  CommandTable();

  // Looks a command up by its arguments: args[0], and args[1] for containers.
  // Returns nullptr for an unknown command or subcommand.
  [[nodiscard]] const CommandSpec* lookup(std::span<const std::string_view> args) const;
  [[nodiscard]] const CommandSpec* find(std::string_view name) const;  // any case
  [[nodiscard]] const std::vector<CommandSpec>& all() const { return commands_; }
  // Rows and subcommand rows, by CommandSpec::index.
  [[nodiscard]] const std::vector<const CommandSpec*>& by_index() const { return by_index_; }

 private:
  std::vector<CommandSpec> commands_;
  std::unordered_map<std::string, const CommandSpec*> by_name_;  // lower-case names
  std::vector<const CommandSpec*> by_index_;
};

const CommandTable& command_table();

// This thread's table (a shard's), made for it when the shard starts.
void set_thread_command_stats(CommandStats* stats);
// This thread's counters of `spec`, current (null on a thread with no table).
CommandCounters* command_counters(const ServerState& state, const CommandSpec& spec);

// The clock commands are timed with: the CPU's time-stamp counter where it is invariant (a
// third of a vDSO clock_gettime's cost, which took 2.4% of XADD -P 16), else the steady
// clock; command_clock_us converts a difference to microseconds. Calibrated once, at the
// first call (Server::start makes it, before any command).
std::uint64_t command_clock();
std::int64_t command_clock_us(std::uint64_t ticks);

// Times a command from its construction to its destruction, on the thread that ran it: the
// time goes to INFO commandstats, and to SLOWLOG if it was slow (unless `slowlog` is false or
// the row has the skip_slowlog flag). A reply in `out` from `start` on that is an error
// counts the call as failed.
class CommandTimer {
 public:
  CommandTimer(ServerState& state, const CommandSpec& spec, std::span<const std::string_view> args,
               const Session& session, const std::string& out, bool slowlog = true)
      : state_(state), spec_(spec), args_(args), session_(session), out_(out), start_(out.size()),
        slowlog_(slowlog), started_(command_clock()) {}
  ~CommandTimer();
  // The command goes on elsewhere, which times it: nothing is counted here.
  void cancel() { cancelled_ = true; }
  CommandTimer(const CommandTimer&) = delete;
  CommandTimer& operator=(const CommandTimer&) = delete;

 private:
  ServerState& state_;
  const CommandSpec& spec_;
  std::span<const std::string_view> args_;
  const Session& session_;
  const std::string& out_;
  std::size_t start_;
  bool slowlog_;
  bool cancelled_ = false;
  std::uint64_t started_;
};

// Runs a single-key command whose key `shard` owns, on its thread: a damaged stream's error,
// or the handler, with its changes settled for the next flush. True if it is a write.
bool run_key_command(Shard& shard, const CommandSpec& spec, std::span<const std::string_view> args,
                     protocol::ReplyWriter& reply, Session& session, ServerState& state);

// What the connection checks before running a command, in Redis's order. Writes the error
// reply and returns false when the command must not run.
bool check_command(const CommandSpec* spec, std::span<const std::string_view> args,
                   const Session& session, protocol::ReplyWriter& reply);

// COMMAND INFO and COMMAND DOCS entries, derived from a row.
void write_command_info(const CommandSpec& spec, protocol::ReplyWriter& reply);
void write_command_docs(const CommandSpec& spec, protocol::ReplyWriter& reply);

// command_docs.cpp: a command's history and argument tree in COMMAND DOCS. more_docs_fields
// counts the map entries write_more_docs adds.
std::size_t more_docs_fields(std::string_view name);
void write_more_docs(std::string_view name, protocol::ReplyWriter& reply);

// DUMP's payload of the stream at `key` on `shard` (cmd_dump.cpp), for DUMP and MIGRATE:
// nullopt if there is no such key; an error for a damaged stream or one DUMP refuses.
Result<std::optional<std::string>> dump_payload(Shard& shard, std::string_view key, ServerState& state);
// COPY's two halves (cmd_dump.cpp): the whole stream at `key` as a value that can cross to
// another shard (nullopt: no such key), and a new stream at `key` made from one.
Result<std::optional<storage::rdb::Stream>> stream_value(Shard& shard, std::string_view key, ServerState& state);
Result<void> make_stream(Shard& shard, std::string_view key, const storage::rdb::Stream& value);

// COPY (copy.cpp): its arguments (the error written, and nullopt, when they are wrong), and
// its destination half: true if copied, false if the destination exists and no REPLACE.
struct CopyRequest {
  std::string source, destination;
  bool replace = false;
};
std::optional<CopyRequest> parse_copy(std::span<const std::string_view> args, protocol::ReplyWriter& reply);
// A key's whole value, of either type, with its TTL: what COPY carries between shards.
struct CopiedValue {
  std::optional<storage::rdb::Stream> stream;  // nullopt: a string
  std::string string;
  std::int64_t expires_at = 0;
};
// The source half: nullopt if there is no such key.
Result<std::optional<CopiedValue>> copy_value(Shard& shard, std::string_view key, ServerState& state);
Result<bool> copy_into(Shard& shard, const CopyRequest& request, const CopiedValue& value);

// --maxmemory-strings: string keys use at least that many bytes (then commands that add
// string data get kStringsOom, as Redis's denyoom commands past maxmemory).
bool strings_over_limit(const ServerState& state);
inline constexpr std::string_view kStringsOom = "OOM command not allowed when used memory > 'maxmemory-strings'.";

// Handlers, by family (defined in cmd_*.cpp).
namespace cmd {
// connection
void ping(CommandContext&);
void echo(CommandContext&);
void quit(CommandContext&);
void reset(CommandContext&);
void hello(CommandContext&);
void auth(CommandContext&);
void select(CommandContext&);
void client_id(CommandContext&);
void client_setname(CommandContext&);
void client_getname(CommandContext&);
void client_setinfo(CommandContext&);
void client_info(CommandContext&);
void client_list(CommandContext&);
void client_kill(CommandContext&);
void client_no_evict(CommandContext&);
void client_help(CommandContext&);
// server
void command(CommandContext&);
void command_count(CommandContext&);
void command_info(CommandContext&);
void command_docs(CommandContext&);
void command_list(CommandContext&);
void command_help(CommandContext&);
void info(CommandContext&);
void config_get(CommandContext&);
void config_set(CommandContext&);
void config_resetstat(CommandContext&);
void slowlog_get(CommandContext&);
void slowlog_len(CommandContext&);
void slowlog_reset(CommandContext&);
void slowlog_help(CommandContext&);
void config_help(CommandContext&);
void time(CommandContext&);
void function_flush(CommandContext&);
void function_list(CommandContext&);
void function_help(CommandContext&);
void script_flush(CommandContext&);
void script_help(CommandContext&);
void shutdown(CommandContext&);
// keyspace
void dbsize_part(ShardPartContext&);
void info_part(ShardPartContext&);
void del_part(ShardPartContext&);
void exists_part(ShardPartContext&);
void keys_part(ShardPartContext&);
void flush_part(ShardPartContext&);
void reply_count(CommandContext&);  // DBSIZE, DEL, UNLINK, EXISTS
void keys(CommandContext&);
void flushall(CommandContext&);
void type(CommandContext&);
void scan_part(ShardPartContext&);
void scan(CommandContext&);
// Pub/Sub (cmd_pubsub.cpp)
void subscribe(CommandContext&);
void psubscribe(CommandContext&);
void ssubscribe(CommandContext&);
void unsubscribe(CommandContext&);
void punsubscribe(CommandContext&);
void sunsubscribe(CommandContext&);
void unsubscribe_all(Session&);  // RESET, and a connection that closes
void publish_part(ShardPartContext&);
void spublish_part(ShardPartContext&);
void pubsub_channels_part(ShardPartContext&);
void pubsub_shardchannels_part(ShardPartContext&);
void pubsub_numpat_part(ShardPartContext&);
void pubsub_numsub_part(ShardPartContext&);
void pubsub_shardnumsub_part(ShardPartContext&);
void pubsub_names(CommandContext&);
void pubsub_numpat(CommandContext&);
void pubsub_numsub(CommandContext&);
void pubsub_help(CommandContext&);
// RENAME / RENAMENX (rename.cpp)
void rename(KeyPairContext&);
void renamenx(KeyPairContext&);
// strings and expiry (cmd_string.cpp)
void set(CommandContext&);
void setnx(CommandContext&);
void setex(CommandContext&);
void psetex(CommandContext&);
void get(CommandContext&);
void getdel(CommandContext&);
void getex(CommandContext&);
void getset(CommandContext&);
void incr(CommandContext&);
void decr(CommandContext&);
void incrby(CommandContext&);
void decrby(CommandContext&);
void incrbyfloat(CommandContext&);
void append(CommandContext&);
void strlen(CommandContext&);
void getrange(CommandContext&);
void setrange(CommandContext&);
void mget_part(ShardPartContext&);
void mget(CommandContext&);
void mset(KeysContext&);
void msetnx(KeysContext&);
void expire(CommandContext&);
void pexpire(CommandContext&);
void expireat(CommandContext&);
void pexpireat(CommandContext&);
void ttl(CommandContext&);
void pttl(CommandContext&);
void expiretime(CommandContext&);
void pexpiretime(CommandContext&);
void persist(CommandContext&);
// DUMP / RESTORE (cmd_dump.cpp)
void dump(CommandContext&);
void restore(CommandContext&);
// streams
void xadd(CommandContext&);
void xlen(CommandContext&);
void xrange(CommandContext&);
void xrevrange(CommandContext&);
void xdel(CommandContext&);
void xdelex(CommandContext&);
void xcfgset(CommandContext&);
void xtrim(CommandContext&);
void xsetid(CommandContext&);
void xinfo_stream(CommandContext&);
void xinfo_help(CommandContext&);
// consumer groups
void xgroup_create(CommandContext&);
void xgroup_setid(CommandContext&);
void xgroup_destroy(CommandContext&);
void xgroup_createconsumer(CommandContext&);
void xgroup_delconsumer(CommandContext&);
void xgroup_help(CommandContext&);
void xack(CommandContext&);
void xackdel(CommandContext&);
void xnack(CommandContext&);
void xpending(CommandContext&);
void xclaim(CommandContext&);
void xautoclaim(CommandContext&);
void xinfo_groups(CommandContext&);
void xinfo_consumers(CommandContext&);
}  // namespace cmd

// Helpers shared by handlers.
constexpr char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }
bool equals_ignore_case(std::string_view a, std::string_view b);
std::string to_lower(std::string_view text);
std::string to_upper(std::string_view text);
// Parses a whole signed 64-bit integer as Redis's getLongLongFromObject does.
bool parse_int64(std::string_view text, std::int64_t& value);
inline constexpr std::string_view kNotInteger = "ERR value is not an integer or out of range";

// "ERR wrong number of arguments for '<name>' command"
void reply_arity_error(protocol::ReplyWriter& reply, std::string_view name);
// Redis's addReplySubcommandSyntaxError: a container's subcommand with bad arguments.
void reply_subcommand_syntax_error(CommandContext& ctx);
// A container's HELP reply, framed as Redis frames it: the usage line with the container's
// name as typed (upper-cased), then `lines`, then HELP itself.
void reply_help(CommandContext& ctx, std::initializer_list<std::string_view> lines);

}  // namespace runnel
