// The rows of the command table and what derives from them: lookup, the pre-run checks and
// the COMMAND INFO / COMMAND DOCS entries. Flags, arities, categories, tips and key specs
// are those Redis 7.0 declares for the same commands.
#include <algorithm>
#include <cctype>

#include "command.hpp"

#include <chrono>
#include <thread>

#if defined(__x86_64__)
#include <cpuid.h>
#include <x86intrin.h>
#endif

namespace runnel {
namespace {

constexpr std::uint32_t kConnFlags = kNoScript | kLoading | kStale | kFast | kNoAuth | kAllowBusy;
constexpr std::uint32_t kClientFlags = kNoScript | kLoading | kStale;
constexpr std::uint32_t kClientAdminFlags = kAdmin | kNoScript | kLoading | kStale;
constexpr std::string_view kClientCats = "@slow @connection";
constexpr std::string_view kClientAdminCats = "@admin @slow @dangerous @connection";
constexpr std::string_view kAdminCats = "@admin @slow @dangerous";

KeySpec one_key(std::string_view flags, std::string_view notes = {}, int index = 1) {
  return KeySpec{flags, {}, index, 0, 1, 0, notes};
}
KeySpec all_keys(std::string_view flags) { return KeySpec{flags, {}, 1, -1, 1, 0, {}}; }

// A command that touches no keys.
CommandSpec plain(std::string_view name, int arity, std::uint32_t flags, std::string_view cats,
                  std::string_view tips, CommandDocs docs, Handler handler) {
  return CommandSpec{name, arity, flags, 0, 0, 0, cats, tips, {}, docs,
                     Route::kConnection, handler, nullptr, {}};
}

// A command on one key, run on the shard that owns it.
CommandSpec keyed(std::string_view name, int arity, std::uint32_t flags, std::string_view cats,
                  std::string_view tips, KeySpec spec, CommandDocs docs, Handler handler) {
  return CommandSpec{name, arity, flags, 1, 1, 1, cats, tips, {spec}, docs,
                     Route::kKey, handler, nullptr, {}};
}

// A subcommand whose key is its second argument (XGROUP CREATE <key>, XINFO STREAM <key>).
CommandSpec keyed_sub(std::string_view name, int arity, std::uint32_t flags, std::string_view cats,
                      std::string_view tips, std::string_view key_flags, CommandDocs docs,
                      Handler handler) {
  CommandSpec spec = keyed(name, arity, flags, cats, tips, one_key(key_flags, {}, 2), docs, handler);
  spec.first_key = spec.last_key = 2;
  return spec;
}

// A command whose work is split over every shard.
CommandSpec fanned(std::string_view name, int arity, std::uint32_t flags, int first_key,
                   int last_key, std::string_view cats, std::string_view tips,
                   std::vector<KeySpec> specs, CommandDocs docs, ShardPart part, Handler handler) {
  return CommandSpec{name, arity, flags, first_key, last_key, first_key ? 1 : 0, cats, tips,
                     std::move(specs), docs, Route::kEachShard, handler, part, {}};
}

// A command on several keys whose shards it holds at once (MSET: keys at 1, 3, 5...).
CommandSpec atomic_keys(std::string_view name, int arity, std::uint32_t flags, std::string_view cats,
                        std::string_view tips, KeySpec spec, CommandDocs docs, KeysHandler handler) {
  CommandSpec row{name, arity, flags, 1, -1, spec.key_step, cats, tips, {spec}, docs,
                  Route::kKeys, nullptr, nullptr, {}};
  row.keys = handler;
  return row;
}

CommandSpec container(std::string_view name, int arity, std::string_view cats, CommandDocs docs,
                      std::vector<CommandSpec> subcommands) {
  return CommandSpec{name, arity, 0, 0, 0, 0, cats, {}, {}, docs,
                     Route::kConnection, nullptr, nullptr, std::move(subcommands)};
}

std::vector<CommandSpec> build_table() {
  std::vector<CommandSpec> t;
  // Connection.
  t.push_back(plain("ping", -1, kFast | kSubscribedContext, "@fast @connection",
                    "request_policy:all_shards response_policy:all_succeeded",
                    {"Ping the server", "1.0.0", "connection", "O(1)"}, cmd::ping));
  t.push_back(plain("echo", 2, kLoading | kStale | kFast, "@fast @connection", {},
                    {"Echo the given string", "1.0.0", "connection", "O(1)"}, cmd::echo));
  {
    CommandSpec quit = plain("quit", -1, kConnFlags | kSubscribedContext, "@fast @connection", {},
                             {"Close the connection", "1.0.0", "connection", "O(1)"}, cmd::quit);
    quit.runs_in_multi = true;
    t.push_back(std::move(quit));
  }
  // Transactions (run by the connection: server.cpp, transaction.cpp).
  constexpr std::uint32_t kTxFlags = kNoScript | kLoading | kStale | kFast | kAllowBusy;
  auto transaction = [](CommandSpec spec, Route route, bool runs_in_multi = true) {
    spec.route = route;
    spec.runs_in_multi = runs_in_multi;
    return spec;
  };
  t.push_back(transaction(plain("multi", 1, kTxFlags, "@fast @transaction", {},
                                {"Mark the start of a transaction block", "1.2.0", "transactions", "O(1)"},
                                nullptr), Route::kMulti));
  t.push_back(transaction(plain("exec", 1, kNoScript | kLoading | kStale | kSkipSlowlog,
                                "@slow @transaction", {},
                                {"Execute all commands issued after MULTI", "1.2.0", "transactions",
                                 "Depends on commands in the transaction"},
                                nullptr), Route::kExec));
  t.push_back(transaction(plain("discard", 1, kTxFlags, "@fast @transaction", {},
                                {"Discard all commands issued after MULTI", "2.0.0", "transactions",
                                 "O(N), when N is the number of queued commands"},
                                nullptr), Route::kDiscard));
  {
    CommandSpec watch = plain("watch", -2, kTxFlags, "@fast @transaction", {},
                              {"Watch the given keys to determine execution of the MULTI/EXEC block",
                               "2.2.0", "transactions", "O(1) for every key."},
                              nullptr);
    watch.first_key = 1;
    watch.last_key = -1;
    watch.key_step = 1;
    watch.key_specs = {all_keys("RO")};
    t.push_back(transaction(watch, Route::kWatch));
  }
  t.push_back(transaction(plain("unwatch", 1, kTxFlags, "@fast @transaction", {},
                                {"Forget about all watched keys", "2.2.0", "transactions", "O(1)"},
                                nullptr), Route::kUnwatch, false));
  {
    CommandSpec reset = plain("reset", 1, kConnFlags | kSubscribedContext | kChangesSubscriptions, "@fast @connection", {},
                              {"Reset the connection", "6.2.0", "connection", "O(1)"}, cmd::reset);
    reset.route = Route::kReset;
    reset.runs_in_multi = true;
    t.push_back(std::move(reset));
  }
  t.push_back(plain("hello", -1, kConnFlags, "@fast @connection", {},
                    {"Handshake with Redis", "6.0.0", "connection", "O(1)"}, cmd::hello));
  t.push_back(plain("auth", -2, kConnFlags, "@fast @connection", {},
                    {"Authenticate to the server", "1.0.0", "connection",
                     "O(N) where N is the number of passwords defined for the user"},
                    cmd::auth));
  t.push_back(plain("select", 2, kLoading | kStale | kFast, "@fast @connection", {},
                    {"Change the selected database for the current connection", "1.0.0",
                     "connection", "O(1)"},
                    cmd::select));
  t.push_back(container(
      "client", -2, "@slow",
      {"A container for client connection commands", "2.4.0", "connection",
       "Depends on subcommand."},
      {
          plain("client|id", 2, kClientFlags, kClientCats, {},
                {"Returns the client ID for the current connection", "5.0.0", "connection", "O(1)"},
                cmd::client_id),
          plain("client|setname", 3, kClientFlags, kClientCats, {},
                {"Set the current connection name", "2.6.9", "connection", "O(1)"},
                cmd::client_setname),
          plain("client|getname", 2, kClientFlags, kClientCats, {},
                {"Get the current connection name", "2.6.9", "connection", "O(1)"},
                cmd::client_getname),
          // CLIENT SETINFO is Redis 7.2's; clients (ioredis, node-redis) send it on connect.
          plain("client|setinfo", 4, kClientFlags, kClientCats, "request_policy:all_nodes response_policy:all_succeeded",
                {"Set client or connection specific info", "7.2.0", "connection", "O(1)"},
                cmd::client_setinfo),
          plain("client|info", 2, kClientFlags, kClientCats, "nondeterministic_output",
                {"Returns information about the current client connection.", "6.2.0",
                 "connection", "O(1)"},
                cmd::client_info),
          plain("client|list", -2, kClientAdminFlags, kClientAdminCats, "nondeterministic_output",
                {"Get the list of client connections", "2.4.0", "connection",
                 "O(N) where N is the number of client connections"},
                cmd::client_list),
          plain("client|kill", -3, kClientAdminFlags, kClientAdminCats, {},
                {"Kill the connection of a client", "2.4.0", "connection",
                 "O(N) where N is the number of client connections"},
                cmd::client_kill),
          plain("client|no-evict", 3, kClientAdminFlags, kClientAdminCats, {},
                {"Set client eviction mode for the current connection", "7.0.0", "connection",
                 "O(1)"},
                cmd::client_no_evict),
          plain("client|help", 2, kLoading | kStale, kClientCats, {},
                {"Show helpful text about the different subcommands", "5.0.0", "connection",
                 "O(1)"},
                cmd::client_help),
      }));
  // Pub/Sub (cmd_pubsub.cpp).
  {
    constexpr std::uint32_t kSubFlags = kPubsub | kNoScript | kLoading | kStale | kSubscribedContext | kChangesSubscriptions;
    auto subscription = [&](std::string_view name, int arity, CommandDocs docs, Handler handler, bool keyed_by_shard) {
      CommandSpec spec = plain(name, arity, kSubFlags, "@pubsub @slow", {}, docs, handler);
      if (keyed_by_shard) {
        spec.first_key = 1;
        spec.last_key = -1;
        spec.key_step = 1;
        spec.key_specs = {KeySpec{"not_key", {}, 1, -1, 1, 0, {}}};
      }
      t.push_back(std::move(spec));
    };
    subscription("subscribe", -2, {"Listen for messages published to the given channels", "2.0.0", "pubsub",
                                   "O(N) where N is the number of channels to subscribe to."},
                 cmd::subscribe, false);
    subscription("unsubscribe", -1, {"Stop listening for messages posted to the given channels", "2.0.0", "pubsub",
                                     "O(N) where N is the number of clients already subscribed to a channel."},
                 cmd::unsubscribe, false);
    subscription("psubscribe", -2, {"Listen for messages published to channels matching the given patterns", "2.0.0",
                                    "pubsub", "O(N) where N is the number of patterns the client is already subscribed to."},
                 cmd::psubscribe, false);
    subscription("punsubscribe", -1,
                 {"Stop listening for messages posted to channels matching the given patterns", "2.0.0", "pubsub",
                  "O(N+M) where N is the number of patterns the client is already subscribed and M is the number of "
                  "total patterns subscribed in the system (by any client)."},
                 cmd::punsubscribe, false);
    subscription("ssubscribe", -2, {"Listen for messages published to the given shard channels", "7.0.0", "pubsub",
                                    "O(N) where N is the number of shard channels to subscribe to."},
                 cmd::ssubscribe, true);
    subscription("sunsubscribe", -1, {"Stop listening for messages posted to the given shard channels", "7.0.0", "pubsub",
                                      "O(N) where N is the number of clients already subscribed to a shard channel."},
                 cmd::sunsubscribe, true);
    constexpr std::uint32_t kPublishFlags = kPubsub | kLoading | kStale | kFast;
    CommandSpec publish = fanned("publish", 3, kPublishFlags, 0, 0, "@pubsub @fast", {}, {},
                                 {"Post a message to a channel", "2.0.0", "pubsub",
                                  "O(N+M) where N is the number of clients subscribed to the receiving channel and M "
                                  "is the total number of subscribed patterns (by any client)."},
                                 cmd::publish_part, cmd::reply_count);
    publish.route = Route::kPublish;
    t.push_back(std::move(publish));
    CommandSpec spublish = fanned("spublish", 3, kPublishFlags | kShardChannel, 1, 1, "@pubsub @fast", {},
                                  {KeySpec{"not_key", {}, 1, 0, 1, 0, {}}},
                                  {"Post a message to a shard channel", "7.0.0", "pubsub",
                                   "O(N) where N is the number of clients subscribed to the receiving shard channel."},
                                  cmd::spublish_part, cmd::reply_count);
    spublish.route = Route::kPublish;
    t.push_back(std::move(spublish));
    constexpr std::uint32_t kQueryFlags = kPubsub | kLoading | kStale;
    t.push_back(container(
        "pubsub", -2, "@slow",
        {"A container for Pub/Sub commands", "2.8.0", "pubsub", "Depends on subcommand."},
        {
            fanned("pubsub|channels", -2, kQueryFlags, 0, 0, "@pubsub @slow", {}, {},
                   {"List active channels", "2.8.0", "pubsub",
                    "O(N) where N is the number of active channels, and assuming constant time pattern matching "
                    "(relatively short channels and patterns)"},
                   cmd::pubsub_channels_part, cmd::pubsub_names),
            fanned("pubsub|numsub", -2, kQueryFlags, 0, 0, "@pubsub @slow", {}, {},
                   {"Get the count of subscribers for channels", "2.8.0", "pubsub",
                    "O(N) for the NUMSUB subcommand, where N is the number of requested channels"},
                   cmd::pubsub_numsub_part, cmd::pubsub_numsub),
            fanned("pubsub|numpat", 2, kQueryFlags, 0, 0, "@pubsub @slow", {}, {},
                   {"Get the count of unique patterns pattern subscriptions", "2.8.0", "pubsub", "O(1)"},
                   cmd::pubsub_numpat_part, cmd::pubsub_numpat),
            fanned("pubsub|shardchannels", -2, kQueryFlags, 0, 0, "@pubsub @slow", {}, {},
                   {"List active shard channels", "7.0.0", "pubsub",
                    "O(N) where N is the number of active shard channels, and assuming constant time pattern "
                    "matching (relatively short shard channels)."},
                   cmd::pubsub_shardchannels_part, cmd::pubsub_names),
            fanned("pubsub|shardnumsub", -2, kQueryFlags, 0, 0, "@pubsub @slow", {}, {},
                   {"Get the count of subscribers for shard channels", "7.0.0", "pubsub",
                    "O(N) for the SHARDNUMSUB subcommand, where N is the number of requested shard channels"},
                   cmd::pubsub_shardnumsub_part, cmd::pubsub_numsub),
            plain("pubsub|help", 2, kLoading | kStale, "@slow", {},
                  {"Show helpful text about the different subcommands", "6.2.0", "pubsub", "O(1)"},
                  cmd::pubsub_help),
        }));
  }
  // Server.
  t.push_back(container(
      "command", -1, "@slow @connection",
      {"Get array of Redis command details", "2.8.13", "server",
       "O(N) where N is the total number of Redis commands"},
      {
          plain("command|count", 2, kLoading | kStale, "@slow @connection", {},
                {"Get total number of Redis commands", "2.8.13", "server", "O(1)"},
                cmd::command_count),
          plain("command|info", -2, kLoading | kStale, "@slow @connection",
                "nondeterministic_output_order",
                {"Get array of specific Redis command details, or all when no argument is given.",
                 "2.8.13", "server", "O(N) where N is the number of commands to look up"},
                cmd::command_info),
          plain("command|docs", -2, kLoading | kStale, "@slow @connection",
                "nondeterministic_output_order",
                {"Get array of specific Redis command documentation", "7.0.0", "server",
                 "O(N) where N is the number of commands to look up"},
                cmd::command_docs),
          plain("command|list", -2, kLoading | kStale, "@slow @connection",
                "nondeterministic_output_order",
                {"Get an array of Redis command names", "7.0.0", "server",
                 "O(N) where N is the total number of Redis commands"},
                cmd::command_list),
          plain("command|help", 2, kLoading | kStale, "@slow @connection", {},
                {"Show helpful text about the different subcommands", "5.0.0", "server", "O(1)"},
                cmd::command_help),
      }));
  t.back().flags = kLoading | kStale;
  t.back().tips = "nondeterministic_output_order";
  t.back().handler = cmd::command;
  t.push_back(fanned("info", -1, kLoading | kStale, 0, 0, "@slow @dangerous",
                     "nondeterministic_output request_policy:all_shards response_policy:special",
                     {}, {"Get information and statistics about the server", "1.0.0", "server",
                          "O(1)"},
                     cmd::info_part, cmd::info));
  t.push_back(container(
      "config", -2, "@slow",
      {"A container for server configuration commands", "2.0.0", "server",
       "Depends on subcommand."},
      {
          plain("config|get", -3, kClientAdminFlags, kAdminCats, {},
                {"Get the values of configuration parameters", "2.0.0", "server",
                 "O(N) when N is the number of configuration parameters provided"},
                cmd::config_get),
          plain("config|set", -4, kClientAdminFlags, kAdminCats,
                "request_policy:all_nodes response_policy:all_succeeded",
                {"Set configuration parameters to the given values", "2.0.0", "server",
                 "O(N) when N is the number of configuration parameters provided"},
                cmd::config_set),
          plain("config|resetstat", 2, kClientAdminFlags, kAdminCats, {},
                {"Reset the stats returned by INFO", "2.0.0", "server", "O(1)"},
                cmd::config_resetstat),
          plain("config|help", 2, kLoading | kStale, "@slow", {},
                {"Show helpful text about the different subcommands", "5.0.0", "server", "O(1)"},
                cmd::config_help),
      }));
  t.push_back(container(
      "slowlog", -2, "@slow",
      {"A container for slow log commands", "2.2.12", "server", "Depends on subcommand."},
      {
          plain("slowlog|len", 2, kAdmin | kLoading | kStale, kAdminCats,
                "request_policy:all_nodes response_policy:agg_sum nondeterministic_output",
                {"Get the slow log's length", "2.2.12", "server", "O(1)"}, cmd::slowlog_len),
          plain("slowlog|help", 2, kLoading | kStale, "@slow", {},
                {"Show helpful text about the different subcommands", "6.2.0", "server", "O(1)"},
                cmd::slowlog_help),
          plain("slowlog|get", -2, kAdmin | kLoading | kStale, kAdminCats,
                "request_policy:all_nodes nondeterministic_output",
                {"Get the slow log's entries", "2.2.12", "server", "O(N) where N is the number of entries returned"},
                cmd::slowlog_get),
          plain("slowlog|reset", 2, kAdmin | kLoading | kStale, kAdminCats,
                "request_policy:all_nodes response_policy:all_succeeded",
                {"Clear all entries from the slow log", "2.2.12", "server",
                 "O(N) where N is the number of entries in the slowlog"},
                cmd::slowlog_reset),
      }));
  // Functions and scripts: Runnel has none, and answers what harnesses send to reset a server.
  t.push_back(container(
      "function", -2, "@slow",
      {"A container for function commands", "7.0.0", "scripting", "Depends on subcommand."},
      {
          plain("function|flush", -2, kWrite | kNoScript, "@write @slow @scripting",
                "request_policy:all_shards response_policy:all_succeeded",
                {"Deleting all functions", "7.0.0", "scripting",
                 "O(N) where N is the number of functions deleted"},
                cmd::function_flush),
          plain("function|list", -2, kNoScript, "@slow @scripting", "nondeterministic_output_order",
                {"List information about all the functions", "7.0.0", "scripting",
                 "O(N) where N is the number of functions"},
                cmd::function_list),
          plain("function|help", 2, kLoading | kStale, "@slow @scripting", {},
                {"Show helpful text about the different subcommands", "7.0.0", "scripting", "O(1)"},
                cmd::function_help),
      }));
  t.push_back(container(
      "script", -2, "@slow",
      {"A container for Lua scripts management commands", "2.6.0", "scripting",
       "Depends on subcommand."},
      {
          plain("script|flush", -2, kNoScript, "@slow @scripting",
                "request_policy:all_nodes response_policy:all_succeeded",
                {"Remove all the scripts from the script cache.", "2.6.0", "scripting",
                 "O(N) with N being the number of scripts in cache"},
                cmd::script_flush),
          plain("script|help", 2, kLoading | kStale, "@slow @scripting", {},
                {"Show helpful text about the different subcommands", "5.0.0", "scripting", "O(1)"},
                cmd::script_help),
      }));
  t.push_back(plain("time", 1, kLoading | kStale | kFast, "@fast", "nondeterministic_output",
                    {"Return the current server time", "2.6.0", "server", "O(1)"}, cmd::time));
  t.push_back(plain("shutdown", -1, kAdmin | kNoScript | kLoading | kStale | kNoMulti | kAllowBusy,
                    kAdminCats, {},
                    {"Synchronously save the dataset to disk and then shut down the server",
                     "1.0.0", "server",
                     "O(N) when saving, where N is the total number of keys in all databases "
                     "when saving data, otherwise O(1)"},
                    cmd::shutdown));
  t.push_back(fanned("dbsize", 1, kReadonly | kFast, 0, 0, "@keyspace @read @fast",
                     "request_policy:all_shards response_policy:agg_sum", {},
                     {"Return the number of keys in the selected database", "1.0.0", "server",
                      "O(1)"},
                     cmd::dbsize_part, cmd::reply_count));
  t.push_back(fanned("flushall", -1, kWrite, 0, 0, "@keyspace @write @slow @dangerous",
                     "request_policy:all_shards response_policy:all_succeeded", {},
                     {"Remove all keys from all databases", "1.0.0", "server",
                      "O(N) where N is the total number of keys in all databases"},
                     cmd::flush_part, cmd::flushall));
  t.push_back(fanned("flushdb", -1, kWrite, 0, 0, "@keyspace @write @slow @dangerous",
                     "request_policy:all_shards response_policy:all_succeeded", {},
                     {"Remove all keys from the current database", "1.0.0", "server",
                      "O(N) where N is the number of keys in the selected database"},
                     cmd::flush_part, cmd::flushall));
  // Keyspace.
  t.push_back(fanned("del", -2, kWrite, 1, -1, "@keyspace @write @slow",
                     "request_policy:multi_shard response_policy:agg_sum",
                     {all_keys("RM delete")},
                     {"Delete a key", "1.0.0", "generic",
                      "O(N) where N is the number of keys that will be removed. When a key to "
                      "remove holds a value other than a string, the individual complexity for "
                      "this key is O(M) where M is the number of elements in the list, set, "
                      "sorted set or hash. Removing a single key that holds a string value is "
                      "O(1)."},
                     cmd::del_part, cmd::reply_count));
  t.push_back(fanned("unlink", -2, kWrite | kFast, 1, -1, "@keyspace @write @fast",
                     "request_policy:multi_shard response_policy:agg_sum",
                     {all_keys("RM delete")},
                     {"Delete a key asynchronously in another thread. Otherwise it is just as "
                      "DEL, but non blocking.",
                      "4.0.0", "generic",
                      "O(1) for each key removed regardless of its size. Then the command does "
                      "O(N) work in a different thread in order to reclaim memory, where N is "
                      "the number of allocations the deleted objects where composed of."},
                     cmd::del_part, cmd::reply_count));
  t.push_back(fanned("exists", -2, kReadonly | kFast, 1, -1, "@keyspace @read @fast",
                     "request_policy:multi_shard response_policy:agg_sum", {all_keys("RO")},
                     {"Determine if a key exists", "1.0.0", "generic",
                      "O(N) where N is the number of keys to check."},
                     cmd::exists_part, cmd::reply_count));
  {
    CommandSpec copy{"copy", -3, kWrite | kDenyOom, 1, 2, 1, "@keyspace @write @slow", {},
                     {KeySpec{"RO access", {}, 1, 0, 1, 0, {}}, KeySpec{"OW update", {}, 2, 0, 1, 0, {}}},
                     {"Copy a key", "6.2.0", "generic",
                      "O(N) worst case for collections, where N is the number of nested items. O(1) for "
                      "string values."},
                     Route::kCopy, nullptr, nullptr, {}};
    t.push_back(std::move(copy));
  }
  {
    CommandSpec rename{"rename", 3, kWrite, 1, 2, 1, "@keyspace @write @slow", {},
                       {KeySpec{"RW access delete", {}, 1, 0, 1, 0, {}}, KeySpec{"OW update", {}, 2, 0, 1, 0, {}}},
                       {"Rename a key", "1.0.0", "generic", "O(1)"},
                       Route::kKeyPair, nullptr, nullptr, {}};
    rename.key_pair = cmd::rename;
    t.push_back(std::move(rename));
    CommandSpec renamenx{"renamenx", 3, kWrite | kFast, 1, 2, 1, "@keyspace @write @fast", {},
                         {KeySpec{"RW access delete", {}, 1, 0, 1, 0, {}}, KeySpec{"OW insert", {}, 2, 0, 1, 0, {}}},
                         {"Rename a key, only if the new key does not exist", "1.0.0", "generic", "O(1)"},
                         Route::kKeyPair, nullptr, nullptr, {}};
    renamenx.key_pair = cmd::renamenx;
    t.push_back(std::move(renamenx));
  }
  t.push_back(keyed("dump", 2, kReadonly, "@keyspace @read @slow", "nondeterministic_output",
                    one_key("RO access"),
                    {"Return a serialized version of the value stored at the specified key.", "2.6.0",
                     "generic",
                     "O(1) to access the key and additional O(N*M) to serialize it, where N is the "
                     "number of Redis objects composing the value and M their average size. For small "
                     "string values the time complexity is thus O(1)+O(1*M) where M is small, so "
                     "simply O(1)."},
                    cmd::dump));
  {
    CommandSpec migrate{"migrate", -6, kWrite | kMovableKeys, 3, 3, 1, "@keyspace @write @slow @dangerous",
                        "nondeterministic_output",
                        {KeySpec{"RW access delete", {}, 3, 0, 1, 0, {}},
                         KeySpec{"RW access delete incomplete", "KEYS", -2, -1, 1, 0, {}}},
                        {"Atomically transfer a key from a Redis instance to another one.", "2.6.0", "generic",
                         "This command actually executes a DUMP+DEL in the source instance, and a RESTORE "
                         "in the target instance. See the pages of these commands for time complexity. "
                         "Also an O(N) data transfer between the two instances is performed."},
                        Route::kMigrate, nullptr, nullptr, {}};
    t.push_back(std::move(migrate));
  }
  t.push_back(keyed("restore", -4, kWrite | kDenyOom, "@keyspace @write @slow @dangerous", {},
                    one_key("OW update"),
                    {"Create a key using the provided serialized value, previously obtained using "
                     "DUMP.",
                     "2.6.0", "generic",
                     "O(1) to create the new key and additional O(N*M) to reconstruct the serialized "
                     "value, where N is the number of Redis objects composing the value and M their "
                     "average size. For small string values the time complexity is thus "
                     "O(1)+O(1*M) where M is small, so simply O(1). However for sorted set values "
                     "the complexity is O(N*M*log(N)) because inserting values into sorted sets is "
                     "O(log(N))."},
                    cmd::restore));
  // No eviction, so no access times to alter: TOUCH counts the keys that exist, as EXISTS.
  t.push_back(fanned("touch", -2, kReadonly | kFast, 1, -1, "@keyspace @read @fast",
                     "request_policy:multi_shard response_policy:agg_sum", {all_keys("RO")},
                     {"Alters the last access time of a key(s). Returns the number of existing keys "
                      "specified.",
                      "3.2.1", "generic", "O(N) where N is the number of keys that will be touched."},
                     cmd::exists_part, cmd::reply_count));
  t.push_back(keyed("type", 2, kReadonly | kFast, "@keyspace @read @fast", {}, one_key("RO"),
                    {"Determine the type stored at key", "1.0.0", "generic", "O(1)"}, cmd::type));
  t.push_back(fanned("keys", 2, kReadonly, 0, 0, "@keyspace @read @slow @dangerous",
                     "request_policy:all_shards nondeterministic_output_order", {},
                     {"Find all keys matching the given pattern", "1.0.0", "generic",
                      "O(N) with N being the number of keys in the database, under the "
                      "assumption that the key names in the database and the given pattern "
                      "have limited length."},
                     cmd::keys_part, cmd::keys));
  t.push_back(fanned("scan", -2, kReadonly, 0, 0, "@keyspace @read @slow",
                     "nondeterministic_output request_policy:special", {},
                     {"Incrementally iterate the keys space", "2.8.0", "generic",
                      "O(1) for every call. O(N) for a complete iteration, including enough "
                      "command calls for the cursor to return back to 0. N is the number of "
                      "elements inside the collection."},
                     cmd::scan_part, cmd::scan));
  // Strings and expiry (cmd_string.cpp); rows as redis-server 7.0's COMMAND INFO and DOCS.
  t.push_back(keyed("set", -3, kWrite | kDenyOom, "@write @string @slow", {}, KeySpec{"RW access update variable_flags", {}, 1, 0, 1, 0, "RW and ACCESS due to the optional `GET` argument"},
                    {"Set the string value of a key", "1.0.0", "string", "O(1)"}, cmd::set));
  t.push_back(keyed("get", 2, kReadonly | kFast, "@read @string @fast", {}, KeySpec{"RO access", {}, 1, 0, 1, 0, {}},
                    {"Get the value of a key", "1.0.0", "string", "O(1)"}, cmd::get));
  t.push_back(keyed("getdel", 2, kWrite | kFast, "@write @string @fast", {}, KeySpec{"RW access delete", {}, 1, 0, 1, 0, {}},
                    {"Get the value of a key and delete the key", "6.2.0", "string", "O(1)"}, cmd::getdel));
  t.push_back(keyed("getex", -2, kWrite | kFast, "@write @string @fast", {}, KeySpec{"RW access update", {}, 1, 0, 1, 0, "RW and UPDATE because it changes the TTL"},
                    {"Get the value of a key and optionally set its expiration", "6.2.0", "string", "O(1)"}, cmd::getex));
  t.push_back(keyed("getset", 3, kWrite | kDenyOom | kFast, "@write @string @fast", {}, KeySpec{"RW access update", {}, 1, 0, 1, 0, {}},
                    {"Set the string value of a key and return its old value", "1.0.0", "string", "O(1)"}, cmd::getset));
  t.push_back(fanned("mget", -2, kReadonly | kFast, 1, -1, "@read @string @fast", "request_policy:multi_shard", {KeySpec{"RO access", {}, 1, -1, 1, 0, {}}},
                     {"Get the values of all the given keys", "1.0.0", "string", "O(N) where N is the number of keys to retrieve."}, cmd::mget_part, cmd::mget));
  t.push_back(atomic_keys("mset", -3, kWrite | kDenyOom, "@write @string @slow", "request_policy:multi_shard response_policy:all_succeeded", KeySpec{"OW update", {}, 1, -1, 2, 0, {}},
                          {"Set multiple keys to multiple values", "1.0.1", "string", "O(N) where N is the number of keys to set."}, cmd::mset));
  t.push_back(atomic_keys("msetnx", -3, kWrite | kDenyOom, "@write @string @slow", "request_policy:multi_shard response_policy:agg_min", KeySpec{"OW insert", {}, 1, -1, 2, 0, {}},
                          {"Set multiple keys to multiple values, only if none of the keys exist", "1.0.1", "string", "O(N) where N is the number of keys to set."}, cmd::msetnx));
  t.push_back(keyed("setnx", 3, kWrite | kDenyOom | kFast, "@write @string @fast", {}, KeySpec{"OW insert", {}, 1, 0, 1, 0, {}},
                    {"Set the value of a key, only if the key does not exist", "1.0.0", "string", "O(1)"}, cmd::setnx));
  t.push_back(keyed("setex", 4, kWrite | kDenyOom, "@write @string @slow", {}, KeySpec{"OW update", {}, 1, 0, 1, 0, {}},
                    {"Set the value and expiration of a key", "2.0.0", "string", "O(1)"}, cmd::setex));
  t.push_back(keyed("psetex", 4, kWrite | kDenyOom, "@write @string @slow", {}, KeySpec{"OW update", {}, 1, 0, 1, 0, {}},
                    {"Set the value and expiration in milliseconds of a key", "2.6.0", "string", "O(1)"}, cmd::psetex));
  t.push_back(keyed("incr", 2, kWrite | kDenyOom | kFast, "@write @string @fast", {}, KeySpec{"RW access update", {}, 1, 0, 1, 0, {}},
                    {"Increment the integer value of a key by one", "1.0.0", "string", "O(1)"}, cmd::incr));
  t.push_back(keyed("incrby", 3, kWrite | kDenyOom | kFast, "@write @string @fast", {}, KeySpec{"RW access update", {}, 1, 0, 1, 0, {}},
                    {"Increment the integer value of a key by the given amount", "1.0.0", "string", "O(1)"}, cmd::incrby));
  t.push_back(keyed("decr", 2, kWrite | kDenyOom | kFast, "@write @string @fast", {}, KeySpec{"RW access update", {}, 1, 0, 1, 0, {}},
                    {"Decrement the integer value of a key by one", "1.0.0", "string", "O(1)"}, cmd::decr));
  t.push_back(keyed("decrby", 3, kWrite | kDenyOom | kFast, "@write @string @fast", {}, KeySpec{"RW access update", {}, 1, 0, 1, 0, {}},
                    {"Decrement the integer value of a key by the given number", "1.0.0", "string", "O(1)"}, cmd::decrby));
  t.push_back(keyed("incrbyfloat", 3, kWrite | kDenyOom | kFast, "@write @string @fast", {}, KeySpec{"RW access update", {}, 1, 0, 1, 0, {}},
                    {"Increment the float value of a key by the given amount", "2.6.0", "string", "O(1)"}, cmd::incrbyfloat));
  t.push_back(keyed("append", 3, kWrite | kDenyOom | kFast, "@write @string @fast", {}, KeySpec{"RW insert", {}, 1, 0, 1, 0, {}},
                    {"Append a value to a key", "2.0.0", "string", "O(1). The amortized time complexity is O(1) assuming the appended value is small and the already present value is of any size, since the dynamic string library used by Redis will double the free space available on every reallocation."}, cmd::append));
  t.push_back(keyed("strlen", 2, kReadonly | kFast, "@read @string @fast", {}, KeySpec{"RO", {}, 1, 0, 1, 0, {}},
                    {"Get the length of the value stored in a key", "2.2.0", "string", "O(1)"}, cmd::strlen));
  t.push_back(keyed("getrange", 4, kReadonly, "@read @string @slow", {}, KeySpec{"RO access", {}, 1, 0, 1, 0, {}},
                    {"Get a substring of the string stored at a key", "2.4.0", "string", "O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings."}, cmd::getrange));
  t.push_back(keyed("setrange", 4, kWrite | kDenyOom, "@write @string @slow", {}, KeySpec{"RW update", {}, 1, 0, 1, 0, {}},
                    {"Overwrite part of a string at key starting at the specified offset", "2.2.0", "string", "O(1), not counting the time taken to copy the new string in place. Usually, this string is very small so the amortized complexity is O(1). Otherwise, complexity is O(M) with M being the length of the value argument."}, cmd::setrange));
  t.push_back(keyed("expire", -3, kWrite | kFast, "@keyspace @write @fast", {}, KeySpec{"RW update", {}, 1, 0, 1, 0, {}},
                    {"Set a key's time to live in seconds", "1.0.0", "generic", "O(1)"}, cmd::expire));
  t.push_back(keyed("pexpire", -3, kWrite | kFast, "@keyspace @write @fast", {}, KeySpec{"RW update", {}, 1, 0, 1, 0, {}},
                    {"Set a key's time to live in milliseconds", "2.6.0", "generic", "O(1)"}, cmd::pexpire));
  t.push_back(keyed("expireat", -3, kWrite | kFast, "@keyspace @write @fast", {}, KeySpec{"RW update", {}, 1, 0, 1, 0, {}},
                    {"Set the expiration for a key as a UNIX timestamp", "1.2.0", "generic", "O(1)"}, cmd::expireat));
  t.push_back(keyed("pexpireat", -3, kWrite | kFast, "@keyspace @write @fast", {}, KeySpec{"RW update", {}, 1, 0, 1, 0, {}},
                    {"Set the expiration for a key as a UNIX timestamp specified in milliseconds", "2.6.0", "generic", "O(1)"}, cmd::pexpireat));
  t.push_back(keyed("ttl", 2, kReadonly | kFast, "@keyspace @read @fast", "nondeterministic_output", KeySpec{"RO access", {}, 1, 0, 1, 0, {}},
                    {"Get the time to live for a key in seconds", "1.0.0", "generic", "O(1)"}, cmd::ttl));
  t.push_back(keyed("pttl", 2, kReadonly | kFast, "@keyspace @read @fast", "nondeterministic_output", KeySpec{"RO access", {}, 1, 0, 1, 0, {}},
                    {"Get the time to live for a key in milliseconds", "2.6.0", "generic", "O(1)"}, cmd::pttl));
  t.push_back(keyed("expiretime", 2, kReadonly | kFast, "@keyspace @read @fast", {}, KeySpec{"RO access", {}, 1, 0, 1, 0, {}},
                    {"Get the expiration Unix timestamp for a key", "7.0.0", "generic", "O(1)"}, cmd::expiretime));
  t.push_back(keyed("pexpiretime", 2, kReadonly | kFast, "@keyspace @read @fast", {}, KeySpec{"RO access", {}, 1, 0, 1, 0, {}},
                    {"Get the expiration Unix timestamp for a key in milliseconds", "7.0.0", "generic", "O(1)"}, cmd::pexpiretime));
  t.push_back(keyed("persist", 2, kWrite | kFast, "@keyspace @write @fast", {}, KeySpec{"RW update", {}, 1, 0, 1, 0, {}},
                    {"Remove the expiration from a key", "2.2.0", "generic", "O(1)"}, cmd::persist));
  // Streams.
  t.push_back(keyed("xadd", -5, kWrite | kDenyOom | kFast, "@write @stream @fast",
                    "nondeterministic_output",
                    one_key("RW update",
                            "UPDATE instead of INSERT because of the optional trimming feature"),
                    {"Appends a new entry to a stream", "5.0.0", "stream",
                     "O(1) when adding a new entry, O(N) when trimming where N being the number "
                     "of entries evicted."},
                    cmd::xadd));
  t.push_back(keyed("xlen", 2, kReadonly | kFast, "@read @stream @fast", {}, one_key("RO"),
                    {"Return the number of entries in a stream", "5.0.0", "stream", "O(1)"},
                    cmd::xlen));
  t.push_back(keyed("xrange", -4, kReadonly, "@read @stream @slow", {}, one_key("RO access"),
                    {"Return a range of elements in a stream, with IDs matching the specified "
                     "IDs interval",
                     "5.0.0", "stream",
                     "O(N) with N being the number of elements being returned. If N is "
                     "constant (e.g. always asking for the first 10 elements with COUNT), you "
                     "can consider it O(1)."},
                    cmd::xrange));
  t.push_back(keyed("xrevrange", -4, kReadonly, "@read @stream @slow", {}, one_key("RO access"),
                    {"Return a range of elements in a stream, with IDs matching the specified "
                     "IDs interval, in reverse order (from greater to smaller IDs) compared to "
                     "XRANGE",
                     "5.0.0", "stream",
                     "O(N) with N being the number of elements returned. If N is constant "
                     "(e.g. always asking for the first 10 elements with COUNT), you can "
                     "consider it O(1)."},
                    cmd::xrevrange));
  t.push_back(keyed("xdel", -3, kWrite | kFast, "@write @stream @fast", {}, one_key("RW delete"),
                    {"Removes the specified entries from the stream. Returns the number of items "
                     "actually deleted, that may be different from the number of IDs passed in "
                     "case certain IDs do not exist.",
                     "5.0.0", "stream",
                     "O(1) for each single item to delete in the stream, regardless of the stream "
                     "size."},
                    cmd::xdel));
  t.push_back(keyed("xdelex", -5, kWrite | kFast, "@write @stream @fast", {}, one_key("RW delete"),
                    {"Deletes one or multiple entries from the stream.", "8.2.0", "stream",
                     "O(1) for each single item to delete in the stream, regardless of the stream "
                     "size."},
                    cmd::xdelex));
  t.push_back(keyed("xcfgset", -2, kWrite | kFast, "@write @stream @fast", {}, one_key("RW update"),
                    {"Sets the IDMP configuration parameters for a stream.", "8.6.0", "stream", "O(1)"},
                    cmd::xcfgset));
  t.push_back(keyed("xtrim", -4, kWrite, "@write @stream @slow", "nondeterministic_output",
                    one_key("RW delete"),
                    {"Trims the stream to (approximately if '~' is passed) a certain size", "5.0.0",
                     "stream",
                     "O(N), with N being the number of evicted entries. Constant times are very "
                     "small however, since entries are organized in macro nodes containing "
                     "multiple entries that can be released with a single deallocation."},
                    cmd::xtrim));
  t.push_back(keyed("xsetid", -3, kWrite | kDenyOom | kFast, "@write @stream @fast", {},
                    one_key("RW update"),
                    {"An internal command for replicating stream values", "5.0.0", "stream", "O(1)"},
                    cmd::xsetid));
  {
    CommandSpec xread{"xread", -4, kReadonly | kBlocking | kMovableKeys, 0, 0, 0,
                      "@read @stream @slow @blocking", {},
                      {KeySpec{"RO access", "STREAMS", 1, -1, 1, 2, {}}},
                      {"Return never seen elements in multiple streams, with IDs greater than the "
                       "ones reported by the caller for each stream. Can block.",
                       "5.0.0", "stream",
                       "For each stream mentioned: O(N) with N being the number of elements being "
                       "returned, it means that XREAD-ing with a fixed COUNT is O(1). Note that "
                       "when the BLOCK option is used, XADD will pay O(M) time in order to serve "
                       "the M clients blocked on the stream getting new data."},
                      Route::kStreamRead, nullptr, nullptr, {}};
    t.push_back(std::move(xread));
  }
  t.push_back(container(
      "xinfo", -2, "@slow",
      {"A container for stream introspection commands", "5.0.0", "stream",
       "Depends on subcommand."},
      {keyed_sub("xinfo|stream", -3, kReadonly, "@read @stream @slow", {}, "RO access",
                 {"Get information about a stream", "5.0.0", "stream", "O(1)"},
                 cmd::xinfo_stream),
       keyed_sub("xinfo|groups", 3, kReadonly, "@read @stream @slow", {}, "RO access",
                 {"List the consumer groups of a stream", "5.0.0", "stream", "O(1)"},
                 cmd::xinfo_groups),
       keyed_sub("xinfo|consumers", 4, kReadonly, "@read @stream @slow",
                 "nondeterministic_output", "RO access",
                 {"List the consumers in a consumer group", "5.0.0", "stream", "O(1)"},
                 cmd::xinfo_consumers),
       plain("xinfo|help", 2, kLoading | kStale, "@stream @slow", {},
             {"Show helpful text about the different subcommands", "5.0.0", "stream", "O(1)"},
             cmd::xinfo_help)}));
  t.push_back(container(
      "xgroup", -2, "@slow",
      {"A container for consumer groups commands", "5.0.0", "stream", "Depends on subcommand."},
      {keyed_sub("xgroup|create", -5, kWrite | kDenyOom, "@write @stream @slow", {}, "RW insert",
                 {"Create a consumer group.", "5.0.0", "stream", "O(1)"}, cmd::xgroup_create),
       keyed_sub("xgroup|createconsumer", 5, kWrite | kDenyOom, "@write @stream @slow", {},
                 "RW insert", {"Create a consumer in a consumer group.", "6.2.0", "stream", "O(1)"},
                 cmd::xgroup_createconsumer),
       keyed_sub("xgroup|destroy", 4, kWrite, "@write @stream @slow", {}, "RW delete",
                 {"Destroy a consumer group.", "5.0.0", "stream",
                  "O(N) where N is the number of entries in the group's pending entries list "
                  "(PEL)."},
                 cmd::xgroup_destroy),
       keyed_sub("xgroup|delconsumer", 5, kWrite, "@write @stream @slow", {}, "RW delete",
                 {"Delete a consumer from a consumer group.", "5.0.0", "stream", "O(1)"},
                 cmd::xgroup_delconsumer),
       keyed_sub("xgroup|setid", -5, kWrite, "@write @stream @slow", {}, "RW update",
                 {"Set a consumer group to an arbitrary last delivered ID value.", "5.0.0",
                  "stream", "O(1)"},
                 cmd::xgroup_setid),
       plain("xgroup|help", 2, kLoading | kStale, "@stream @slow", {},
             {"Show helpful text about the different subcommands", "5.0.0", "stream", "O(1)"},
             cmd::xgroup_help)}));
  {
    CommandSpec xreadgroup{"xreadgroup", -7, kWrite | kBlocking | kMovableKeys, 0, 0, 0,
                           "@write @stream @slow @blocking", {},
                           {KeySpec{"RO access", "STREAMS", 4, -1, 1, 2, {}}},
                           {"Return new entries from a stream using a consumer group, or access "
                            "the history of the pending entries for a given consumer. Can block.",
                            "5.0.0", "stream",
                            "For each stream mentioned: O(M) with M being the number of elements "
                            "returned. If M is constant (e.g. always asking for the first 10 "
                            "elements with COUNT), you can consider it O(1). On the other side "
                            "when XREADGROUP blocks, XADD will pay the O(N) time in order to "
                            "serve the N clients blocked on the stream getting new data."},
                           Route::kGroupRead, nullptr, nullptr, {}};
    t.push_back(std::move(xreadgroup));
  }
  t.push_back(keyed("xack", -4, kWrite | kFast, "@write @stream @fast", {}, one_key("RW update"),
                    {"Marks a pending message as correctly processed, effectively removing it "
                     "from the pending entries list of the consumer group. Return value of the "
                     "command is the number of messages successfully acknowledged, that is, the "
                     "IDs we were actually able to resolve in the PEL.",
                     "5.0.0", "stream", "O(1) for each message ID processed."},
                    cmd::xack));
  t.push_back(keyed("xackdel", -6, kWrite | kFast, "@write @stream @fast", {}, one_key("RW update delete"),
                    {"Acknowledges and deletes one or multiple messages for a stream consumer "
                     "group.",
                     "8.2.0", "stream", "O(1) for each message ID processed."},
                    cmd::xackdel));
  t.push_back(keyed("xnack", -7, kWrite | kFast, "@write @stream @fast", {}, one_key("RW update"),
                    {"Releases claimed messages back to the group's PEL without acknowledging "
                     "them, making them available for re-delivery.",
                     "8.8.0", "stream", "O(1) for each message ID processed."},
                    cmd::xnack));
  t.push_back(keyed("xclaim", -6, kWrite | kFast, "@write @stream @fast", "nondeterministic_output",
                    one_key("RW update"),
                    {"Changes (or acquires) ownership of a message in a consumer group, as if the "
                     "message was delivered to the specified consumer.",
                     "5.0.0", "stream",
                     "O(log N) with N being the number of messages in the PEL of the consumer "
                     "group."},
                    cmd::xclaim));
  t.push_back(keyed("xautoclaim", -6, kWrite | kFast, "@write @stream @fast",
                    "nondeterministic_output", one_key("RW delete"),
                    {"Changes (or acquires) ownership of messages in a consumer group, as if the "
                     "messages were delivered to the specified consumer.",
                     "6.2.0", "stream", "O(1) if COUNT is small."},
                    cmd::xautoclaim));
  t.push_back(keyed("xpending", -3, kReadonly, "@read @stream @slow", "nondeterministic_output",
                    one_key("RO access"),
                    {"Return information and entries from a stream consumer group pending "
                     "entries list, that are messages fetched but never acknowledged.",
                     "5.0.0", "stream",
                     "O(N) with N being the number of elements returned, so asking for a small "
                     "fixed number of entries per call is O(1). O(M), where M is the total "
                     "number of entries scanned when used with the IDLE filter. When the command "
                     "returns just the summary and the list of consumers is small, it runs in "
                     "O(1) time; otherwise, an additional O(N) time for iterating every "
                     "consumer."},
                    cmd::xpending));
  return t;
}

std::vector<std::string_view> split_words(std::string_view text) {
  std::vector<std::string_view> words;
  while (!text.empty()) {
    const std::size_t space = text.find(' ');
    if (space != 0) words.push_back(text.substr(0, space));
    if (space == std::string_view::npos) break;
    text.remove_prefix(space + 1);
  }
  return words;
}

void write_flags(std::uint32_t flags, protocol::ReplyWriter& reply) {
  static constexpr std::pair<CommandFlag, std::string_view> kNames[] = {
      {kWrite, "write"},       {kReadonly, "readonly"}, {kDenyOom, "denyoom"},
      {kAdmin, "admin"},       {kPubsub, "pubsub"},     {kNoScript, "noscript"}, {kBlocking, "blocking"},
      {kLoading, "loading"},   {kStale, "stale"},       {kSkipSlowlog, "skip_slowlog"},
      {kFast, "fast"},
      {kNoAuth, "no_auth"},    {kNoMulti, "no_multi"},  {kAllowBusy, "allow_busy"},
      {kMovableKeys, "movablekeys"},
  };
  std::size_t count = 0;
  for (const auto& [flag, name] : kNames) count += (flags & flag) ? 1 : 0;
  reply.set(count);
  for (const auto& [flag, name] : kNames) {
    if (flags & flag) reply.simple(name);
  }
}

void write_key_spec(const KeySpec& spec, protocol::ReplyWriter& reply) {
  const auto flags = split_words(spec.flags);
  reply.map(spec.notes.empty() ? 3 : 4);
  if (!spec.notes.empty()) {
    reply.bulk("notes");
    reply.bulk(spec.notes);
  }
  reply.bulk("flags");
  reply.set(flags.size());
  for (auto f : flags) reply.simple(f);
  reply.bulk("begin_search");
  reply.map(2);
  reply.bulk("type");
  if (spec.keyword.empty()) {
    reply.bulk("index");
    reply.bulk("spec");
    reply.map(1);
    reply.bulk("index");
    reply.integer(spec.begin_index);
  } else {
    reply.bulk("keyword");
    reply.bulk("spec");
    reply.map(2);
    reply.bulk("keyword");
    reply.bulk(spec.keyword);
    reply.bulk("startfrom");
    reply.integer(spec.begin_index);
  }
  reply.bulk("find_keys");
  reply.map(2);
  reply.bulk("type");
  reply.bulk("range");
  reply.bulk("spec");
  reply.map(3);
  reply.bulk("lastkey");
  reply.integer(spec.last_key);
  reply.bulk("keystep");
  reply.integer(spec.key_step);
  reply.bulk("limit");
  reply.integer(spec.limit);
}

}  // namespace

namespace {
void mark_types(CommandSpec& spec) {
  if (spec.acl_categories.find("@stream") != std::string_view::npos) spec.flags |= kStreamCommand;
  if (spec.acl_categories.find("@string") != std::string_view::npos) spec.flags |= kStringCommand;
  for (CommandSpec& sub : spec.subcommands) mark_types(sub);
}
}  // namespace

CommandTable::CommandTable() : commands_(build_table()) {
  for (CommandSpec& spec : commands_) {
    mark_types(spec);
    spec.index = static_cast<std::uint16_t>(by_index_.size());
    by_index_.push_back(&spec);
    for (CommandSpec& sub : spec.subcommands) {
      sub.index = static_cast<std::uint16_t>(by_index_.size());
      by_index_.push_back(&sub);
    }
  }
  for (const CommandSpec& spec : commands_) by_name_.emplace(spec.name, &spec);
}

const CommandTable& command_table() {
  static const CommandTable table;
  return table;
}

namespace {

// Finds a top-level row by name, in any case, without allocating.
const CommandSpec* find_base(const std::unordered_map<std::string, const CommandSpec*>& by_name,
                             std::string_view name) {
  char lower[32];
  if (name.size() > sizeof(lower)) return nullptr;  // longer than any command name
  for (std::size_t i = 0; i < name.size(); ++i) lower[i] = ascii_lower(name[i]);
  // C++20's unordered_map has no heterogeneous find; a short std::string stays in SSO.
  auto it = by_name.find(std::string(lower, name.size()));
  return it == by_name.end() ? nullptr : it->second;
}

const CommandSpec* find_sub(const CommandSpec& container, std::string_view sub_name) {
  for (const CommandSpec& sub : container.subcommands) {
    if (equals_ignore_case(sub.name.substr(container.name.size() + 1), sub_name)) return &sub;
  }
  return nullptr;
}

}  // namespace

const CommandSpec* CommandTable::find(std::string_view name) const {
  const std::size_t bar = name.find('|');
  const CommandSpec* base = find_base(by_name_, name.substr(0, bar));
  if (base == nullptr || bar == std::string_view::npos) return base;
  return find_sub(*base, name.substr(bar + 1));
}

const CommandSpec* CommandTable::lookup(std::span<const std::string_view> args) const {
  if (args.empty()) return nullptr;
  const CommandSpec* base = find_base(by_name_, args[0]);
  if (base == nullptr || !base->is_container() || args.size() == 1) return base;
  return find_sub(*base, args[1]);
}

namespace {

// Redis formats these errors with "%.128s" of C strings and turns CR/LF into spaces, so the
// reply stays one line.
std::string c_string_prefix(std::string_view text, std::size_t max) {
  std::string out(text.substr(0, std::min(text.find('\0'), max)));
  std::replace(out.begin(), out.end(), '\r', ' ');
  std::replace(out.begin(), out.end(), '\n', ' ');
  return out;
}

}  // namespace

bool run_key_command(Shard& shard, const CommandSpec& spec, std::span<const std::string_view> args,
                     protocol::ReplyWriter& reply, Session& session, ServerState& state) {
  const CommandTimer timer(state, spec, args, session, reply.buffer());
  const std::string_view key = args[static_cast<std::size_t>(spec.first_key)];
  if (const std::string damage = shard.damage_of(key); !damage.empty()) {
    reply.error(damage);
    return false;
  }
  const bool expired = shard.expire_if_due(key);  // a key past its time is gone first
  if ((spec.flags & kStreamCommand) != 0 && shard.keyspace.has_strings() &&
      shard.keyspace.type_of(key) == KeyType::kString) {
    reply.error(kWrongType);
    if (expired) shard.ran_command();
    return expired;
  }
  if ((spec.flags & (kStringCommand | kDenyOom)) == (kStringCommand | kDenyOom) && strings_over_limit(state)) {
    reply.error(kStringsOom);
    if (expired) shard.ran_command();
    return expired;
  }
  CommandContext ctx{args, reply, session, state, spec, &shard};
  spec.handler(ctx);
  shard.ran_command();
  return (spec.flags & kWrite) != 0;
}

namespace {
thread_local CommandStats* t_command_stats = nullptr;

std::uint64_t steady_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

// The time-stamp counter, when the CPU says it runs at a constant rate in every state
// (CPUID 0x80000007, EDX bit 8), with its rate measured against the steady clock.
struct CommandClock {
  bool tsc = false;
  double us_per_tick = 0.001;  // the steady clock's nanoseconds
  CommandClock() {
#if defined(__x86_64__)
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (__get_cpuid(0x80000007, &a, &b, &c, &d) == 0 || (d & (1u << 8)) == 0) return;
    const std::uint64_t ns0 = steady_ns();
    const std::uint64_t t0 = __rdtsc();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const std::uint64_t ns1 = steady_ns();
    const std::uint64_t t1 = __rdtsc();
    if (t1 <= t0 || ns1 <= ns0) return;
    us_per_tick = static_cast<double>(ns1 - ns0) / 1000.0 / static_cast<double>(t1 - t0);
    tsc = true;
#endif
  }
};

const CommandClock& clock_source() {
  static const CommandClock clock;
  return clock;
}
}  // namespace

std::uint64_t command_clock() {
#if defined(__x86_64__)
  if (clock_source().tsc) return __rdtsc();
#endif
  return steady_ns();
}

std::int64_t command_clock_us(std::uint64_t ticks) {
  return static_cast<std::int64_t>(static_cast<double>(ticks) * clock_source().us_per_tick);
}

void set_thread_command_stats(CommandStats* stats) { t_command_stats = stats; }

CommandCounters* command_counters(const ServerState& state, const CommandSpec& spec) {
  CommandStats* stats = t_command_stats;
  if (stats == nullptr) return nullptr;
  const std::uint64_t epoch = state.command_stats_epoch.load(std::memory_order_relaxed);
  if (stats->epoch != epoch || stats->by_command.size() != command_table().by_index().size()) {
    stats->by_command.assign(command_table().by_index().size(), CommandCounters{});
    stats->epoch = epoch;
  }
  return &stats->by_command[spec.index];
}

CommandTimer::~CommandTimer() {
  if (cancelled_) return;
  const std::uint64_t now = command_clock();
  const std::int64_t us = now > started_ ? command_clock_us(now - started_) : 0;
  if (CommandCounters* counters = command_counters(state_, spec_)) {
    ++counters->calls;
    counters->usec += static_cast<std::uint64_t>(us);
    if (out_.size() > start_ && out_[start_] == '-') ++counters->failed;
  }
  if (!slowlog_ || (spec_.flags & kSkipSlowlog) != 0) return;
  if (!state_.slowlog.wants(us)) return;
  std::string name;
  if (session_.info) {
    std::lock_guard lock(session_.info->mutex);
    if (session_.info->names) name = session_.info->names->name;
  }
  state_.slowlog.add(us, args_, session_.info ? std::string_view(session_.info->addr) : std::string_view(), name);
}

bool strings_over_limit(const ServerState& state) {
  const std::int64_t limit = state.maxmemory_strings.load(std::memory_order_relaxed);
  return limit > 0 && state.string_bytes.load(std::memory_order_relaxed) >= limit;
}

bool check_command(const CommandSpec* spec, std::span<const std::string_view> args,
                   const Session& session, protocol::ReplyWriter& reply) {
  if (spec == nullptr) {
    const CommandSpec* base = command_table().find(args[0]);
    std::string message;
    if (base != nullptr && base->is_container() && args.size() > 1) {
      message = "ERR unknown subcommand '" + c_string_prefix(args[1], 128) + "'. Try " +
                to_upper(base->name) + " HELP.";
    } else {
      std::string listed;
      for (std::size_t i = 1; i < args.size() && listed.size() < 128; ++i) {
        listed += "'" + c_string_prefix(args[i], 128 - listed.size()) + "' ";
      }
      message = "ERR unknown command '" + c_string_prefix(args[0], 128) +
                "', with args beginning with: " + listed;
    }
    std::replace(message.begin(), message.end(), '\r', ' ');
    std::replace(message.begin(), message.end(), '\n', ' ');
    reply.error(message);
    return false;
  }
  const auto argc = static_cast<int>(args.size());
  if ((spec->arity > 0 && argc != spec->arity) || (spec->arity < 0 && argc < -spec->arity)) {
    reply_arity_error(reply, spec->name);
    return false;
  }
  if (!session.authenticated && !(spec->flags & kNoAuth)) {
    reply.error("NOAUTH Authentication required.");
    return false;
  }
  if (session.subscribed() && session.resp == protocol::RespVersion::kResp2 && !(spec->flags & kSubscribedContext)) {
    reply.error("ERR Can't execute '" + std::string(spec->name) +
                "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context");
    return false;
  }
  return true;
}

void write_command_info(const CommandSpec& spec, protocol::ReplyWriter& reply) {
  reply.array(10);
  reply.bulk(spec.name);
  reply.integer(spec.arity);
  write_flags(spec.flags, reply);
  reply.integer(spec.first_key);
  reply.integer(spec.last_key);
  reply.integer(spec.key_step);
  const auto cats = split_words(spec.acl_categories);
  reply.set(cats.size());
  for (auto c : cats) reply.simple(c);
  const auto tips = split_words(spec.tips);
  reply.array(tips.size());
  for (auto tip : tips) reply.bulk(tip);
  reply.array(spec.key_specs.size());
  for (const KeySpec& key_spec : spec.key_specs) write_key_spec(key_spec, reply);
  reply.array(spec.subcommands.size());
  for (const CommandSpec& sub : spec.subcommands) write_command_info(sub, reply);
}

void write_command_docs(const CommandSpec& spec, protocol::ReplyWriter& reply) {
  reply.map(4 + more_docs_fields(spec.name) + (spec.is_container() ? 1 : 0));
  reply.bulk("summary");
  reply.bulk(spec.docs.summary);
  reply.bulk("since");
  reply.bulk(spec.docs.since);
  reply.bulk("group");
  reply.bulk(spec.docs.group);
  reply.bulk("complexity");
  reply.bulk(spec.docs.complexity);
  write_more_docs(spec.name, reply);
  if (spec.is_container()) {
    reply.bulk("subcommands");
    reply.map(spec.subcommands.size());
    for (const CommandSpec& sub : spec.subcommands) {
      reply.bulk(sub.name);
      write_command_docs(sub, reply);
    }
  }
}

bool equals_ignore_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

std::string to_lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string to_upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool parse_int64(std::string_view text, std::int64_t& value) {
  return protocol::parse_int64_strict(text, value);
}

void reply_help(CommandContext& ctx, std::initializer_list<std::string_view> lines) {
  ctx.reply.array(lines.size() + 3);
  ctx.reply.simple(to_upper(ctx.args[0]) + " <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
  for (std::string_view line : lines) ctx.reply.simple(line);
  ctx.reply.simple("HELP");
  ctx.reply.simple("    Prints this help.");
}

void reply_subcommand_syntax_error(CommandContext& ctx) {
  ctx.reply.error("ERR unknown subcommand or wrong number of arguments for '" +
                  std::string(ctx.args[1].substr(0, 128)) + "'. Try " + to_upper(ctx.args[0]) +
                  " HELP.");
}

void reply_arity_error(protocol::ReplyWriter& reply, std::string_view name) {
  std::string message = "ERR wrong number of arguments for '";
  message.append(name);
  message.append("' command");
  reply.error(message);
}

}  // namespace runnel
