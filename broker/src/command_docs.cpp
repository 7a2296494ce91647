// What COMMAND DOCS gives beyond a command's summary: its history and its argument tree, the
// two things redis-cli builds its hints from. Each tree is written in a small notation, one
// argument per line, two spaces of indent per level of nesting:
//
//   NAME TYPE [display=TEXT] [key=N] [token=TOKEN] [since=V] [deprecated=V] [FLAG...]
//       [summary=TEXT]
//
// where FLAG is optional, multiple or multiple_token, and summary takes the rest of the line;
// token="" is the empty token (MIGRATE's empty key).
// A oneof or block has its arguments on the lines below it. The rows of the commands Redis 7.0
// has are its own replies (`COMMAND DOCS` of redis-server 7.0.15) written in this notation,
// and the differential test holds them to it. What is marked "newer" follows Redis's later
// docs (redis/redis src/commands/*.json, the docs site's COMMAND DOCS dump) for what Runnel
// took from there; docs/compatibility.md lists the choices.
#include <algorithm>
#include <vector>

#include "command.hpp"

namespace runnel {
namespace {

struct MoreDocs {
  std::string_view name;
  std::string_view history;    // "VERSION TEXT" lines
  std::string_view arguments;  // the notation above
  std::string_view deprecated_since = {};  // a deprecated command: since when (doc_flags "deprecated")
  std::string_view replaced_by = {};
};

// Sorted by name. Commands without a row have neither history nor arguments.
constexpr MoreDocs kMoreDocs[] = {
    {"append",
     "",
     "key key key=0\n"
     "value string\n"},
    {"auth",
     "6.0.0 Added ACL style (username and password).\n",
     "username string since=6.0.0 optional\n"
     "password string\n"},
    {"client|kill",
     "2.8.12 Added new filter format.\n"
     "2.8.12 `ID` option.\n"
     "3.2.0 Added `master` type in for `TYPE` option.\n"
     "5.0.0 Replaced `slave` `TYPE` with `replica`. `slave` still supported for backward "
     "compatibility.\n"
     "6.2.0 `LADDR` option.\n",
     "filter oneof\n"
     "  ip:port string deprecated=2.8.12\n"
     "  new-format oneof multiple\n"
     "    client-id integer token=ID since=2.8.12 optional\n"
     "    normal_master_slave_pubsub oneof token=TYPE since=2.8.12 optional\n"
     "      normal pure-token token=NORMAL\n"
     "      master pure-token token=MASTER since=3.2.0\n"
     "      slave pure-token token=SLAVE\n"
     "      replica pure-token token=REPLICA since=5.0.0\n"
     "      pubsub pure-token token=PUBSUB\n"
     "    username string token=USER optional\n"
     "    ip:port string token=ADDR optional\n"
     "    ip:port string token=LADDR since=6.2.0 optional\n"
     "    yes/no string token=SKIPME optional\n"},
    {"client|list",
     "2.8.12 Added unique client `id` field.\n"
     "5.0.0 Added optional `TYPE` filter.\n"
     "6.0.0 Added `user` field.\n"
     "6.2.0 Added `argv-mem`, `tot-mem`, `laddr` and `redir` fields and the optional `ID` filter.\n"
     "7.0.0 Added `resp`, `multi-mem`, `rbs` and `rbp` fields.\n"
     "7.0.3 Added `ssub` field.\n",
     "normal_master_replica_pubsub oneof token=TYPE since=5.0.0 optional\n"
     "  normal pure-token token=NORMAL\n"
     "  master pure-token token=MASTER\n"
     "  replica pure-token token=REPLICA\n"
     "  pubsub pure-token token=PUBSUB\n"
     "id block token=ID since=6.2.0 optional\n"
     "  client-id integer multiple\n"},
    {"client|no-evict",
     {},
     "enabled oneof\n"
     "  on pure-token token=ON\n"
     "  off pure-token token=OFF\n"},
    {"client|setname",
     {},
     "connection-name string\n"},
    {"command|docs",
     {},
     "command-name string optional multiple\n"},
    {"command|info",
     "7.0.0 Allowed to be called with no argument to get info on all commands.\n",
     "command-name string optional multiple\n"},
    {"command|list",
     {},
     "filterby oneof token=FILTERBY optional\n"
     "  module-name string token=MODULE\n"
     "  category string token=ACLCAT\n"
     "  pattern pattern token=PATTERN\n"},
    {"config|get",
     "7.0.0 Added the ability to pass multiple pattern parameters in one call\n",
     "parameter block multiple\n"
     "  parameter string\n"},
    {"config|set",
     "7.0.0 Added the ability to set multiple parameters in one call.\n",
     "parameter_value block multiple\n"
     "  parameter string\n"
     "  value string\n"},
    {"copy",
     {},
     "source key key=0\n"
     "destination key key=1\n"
     "destination-db integer token=DB optional\n"
     "replace pure-token token=REPLACE optional\n"},
    {"decr",
     "",
     "key key key=0\n"},
    {"decrby",
     "",
     "key key key=0\n"
     "decrement integer\n"},
    {"del",
     {},
     "key key key=0 multiple\n"},
    {"dump",
     {},
     "key key key=0\n"},
    {"echo",
     {},
     "message string\n"},
    {"exists",
     "3.0.3 Accepts multiple `key` arguments.\n",
     "key key key=0 multiple\n"},
    {"expire",
     "7.0.0 Added options: `NX`, `XX`, `GT` and `LT`.\n",
     "key key key=0\n"
     "seconds integer\n"
     "condition oneof since=7.0.0 optional\n"
     "  nx pure-token token=NX\n"
     "  xx pure-token token=XX\n"
     "  gt pure-token token=GT\n"
     "  lt pure-token token=LT\n"},
    {"expireat",
     "7.0.0 Added options: `NX`, `XX`, `GT` and `LT`.\n",
     "key key key=0\n"
     "unix-time-seconds unix-time\n"
     "condition oneof since=7.0.0 optional\n"
     "  nx pure-token token=NX\n"
     "  xx pure-token token=XX\n"
     "  gt pure-token token=GT\n"
     "  lt pure-token token=LT\n"},
    {"expiretime",
     "",
     "key key key=0\n"},
    {"flushall",
     "4.0.0 Added the `ASYNC` flushing mode modifier.\n"
     "6.2.0 Added the `SYNC` flushing mode modifier.\n",
     "async oneof optional\n"
     "  async pure-token token=ASYNC since=4.0.0\n"
     "  sync pure-token token=SYNC since=6.2.0\n"},
    {"flushdb",
     "4.0.0 Added the `ASYNC` flushing mode modifier.\n"
     "6.2.0 Added the `SYNC` flushing mode modifier.\n",
     "async oneof optional\n"
     "  async pure-token token=ASYNC since=4.0.0\n"
     "  sync pure-token token=SYNC since=6.2.0\n"},
    {"function|flush",
     {},
     "async oneof optional\n"
     "  async pure-token token=ASYNC\n"
     "  sync pure-token token=SYNC\n"},
    {"function|list",
     {},
     "library-name-pattern string token=LIBRARYNAME optional\n"
     "withcode pure-token token=WITHCODE optional\n"},
    {"get",
     "",
     "key key key=0\n"},
    {"getdel",
     "",
     "key key key=0\n"},
    {"getex",
     "",
     "key key key=0\n"
     "expiration oneof optional\n"
     "  seconds integer token=EX\n"
     "  milliseconds integer token=PX\n"
     "  unix-time-seconds unix-time token=EXAT\n"
     "  unix-time-milliseconds unix-time token=PXAT\n"
     "  persist pure-token token=PERSIST\n"},
    {"getrange",
     "",
     "key key key=0\n"
     "start integer\n"
     "end integer\n"},
    {"getset",
     "",
     "key key key=0\n"
     "value string\n",
     "6.2.0",
     "`SET` with the `!GET` argument"},
    {"hello",
     "6.2.0 `protover` made optional; when called without arguments the command reports the "
     "current connection's context.\n",
     "arguments block optional\n"
     "  protover integer\n"
     "  username_password block token=AUTH optional\n"
     "    username string\n"
     "    password string\n"
     "  clientname string token=SETNAME optional\n"},
    {"incr",
     "",
     "key key key=0\n"},
    {"incrby",
     "",
     "key key key=0\n"
     "increment integer\n"},
    {"incrbyfloat",
     "",
     "key key key=0\n"
     "increment double\n"},
    {"info",
     "7.0.0 Added support for taking multiple section arguments.\n",
     "section string optional multiple\n"},
    {"keys",
     {},
     "pattern pattern\n"},
    {"mget",
     "",
     "key key key=0 multiple\n"},
    {"migrate",
     "3.0.0 Added the `COPY` and `REPLACE` options.\n"
     "3.0.6 Added the `KEYS` option.\n"
     "4.0.7 Added the `AUTH` option.\n"
     "6.0.0 Added the `AUTH2` option.\n",
     "host string\n"
     "port integer\n"
     "key_or_empty_string oneof\n"
     "  key key key=0\n"
     "  empty_string pure-token token=\"\"\n"
     "destination-db integer\n"
     "timeout integer\n"
     "copy pure-token token=COPY since=3.0.0 optional\n"
     "replace pure-token token=REPLACE since=3.0.0 optional\n"
     "authentication oneof optional\n"
     "  password string token=AUTH since=4.0.7 optional\n"
     "  username_password block token=AUTH2 since=6.0.0 optional\n"
     "    username string\n"
     "    password string\n"
     "key key key=1 token=KEYS since=3.0.6 optional multiple\n"},
    {"mset",
     "",
     "key_value block multiple\n"
     "  key key key=0\n"
     "  value string\n"},
    {"msetnx",
     "",
     "key_value block multiple\n"
     "  key key key=0\n"
     "  value string\n"},
    {"persist",
     "",
     "key key key=0\n"},
    {"pexpire",
     "7.0.0 Added options: `NX`, `XX`, `GT` and `LT`.\n",
     "key key key=0\n"
     "milliseconds integer\n"
     "condition oneof since=7.0.0 optional\n"
     "  nx pure-token token=NX\n"
     "  xx pure-token token=XX\n"
     "  gt pure-token token=GT\n"
     "  lt pure-token token=LT\n"},
    {"pexpireat",
     "7.0.0 Added options: `NX`, `XX`, `GT` and `LT`.\n",
     "key key key=0\n"
     "unix-time-milliseconds unix-time\n"
     "condition oneof since=7.0.0 optional\n"
     "  nx pure-token token=NX\n"
     "  xx pure-token token=XX\n"
     "  gt pure-token token=GT\n"
     "  lt pure-token token=LT\n"},
    {"pexpiretime",
     "",
     "key key key=0\n"},
    {"ping",
     {},
     "message string optional\n"},
    {"psetex",
     "",
     "key key key=0\n"
     "milliseconds integer\n"
     "value string\n"},
    {"psubscribe",
     {},
     "pattern block multiple\n"
     "  pattern pattern\n"},
    {"pttl",
     "2.8.0 Added the -2 reply.\n",
     "key key key=0\n"},
    {"publish",
     {},
     "channel string\n"
     "message string\n"},
    {"pubsub|channels",
     {},
     "pattern pattern optional\n"},
    {"pubsub|numsub",
     {},
     "channel string optional multiple\n"},
    {"pubsub|shardchannels",
     {},
     "pattern pattern optional\n"},
    {"pubsub|shardnumsub",
     {},
     "shardchannel string optional multiple\n"},
    {"punsubscribe",
     {},
     "pattern pattern optional multiple\n"},
    {"rename",
     {},
     "key key key=0\n"
     "newkey key key=1\n"},
    {"renamenx",
     "3.2.0 The command no longer returns an error when source and destination names are the same.\n",
     "key key key=0\n"
     "newkey key key=1\n"},
    {"restore",
     "3.0.0 Added the `REPLACE` modifier.\n"
     "5.0.0 Added the `ABSTTL` modifier.\n"
     "5.0.0 Added the `IDLETIME` and `FREQ` options.\n",
     "key key key=0\n"
     "ttl integer\n"
     "serialized-value string\n"
     "replace pure-token token=REPLACE since=3.0.0 optional\n"
     "absttl pure-token token=ABSTTL since=5.0.0 optional\n"
     "seconds integer token=IDLETIME since=5.0.0 optional\n"
     "frequency integer token=FREQ since=5.0.0 optional\n"},
    {"scan",
     "6.0.0 Added the `TYPE` subcommand.\n",
     "cursor integer\n"
     "pattern pattern token=MATCH optional\n"
     "count integer token=COUNT optional\n"
     "type string token=TYPE since=6.0.0 optional\n"},
    {"script|flush",
     "6.2.0 Added the `ASYNC` and `SYNC` flushing mode modifiers.\n",
     "async oneof since=6.2.0 optional\n"
     "  async pure-token token=ASYNC\n"
     "  sync pure-token token=SYNC\n"},
    {"select",
     {},
     "index integer\n"},
    {"set",
     "2.6.12 Added the `EX`, `PX`, `NX` and `XX` options.\n"
     "6.0.0 Added the `KEEPTTL` option.\n"
     "6.2.0 Added the `GET`, `EXAT` and `PXAT` option.\n"
     "7.0.0 Allowed the `NX` and `GET` options to be used together.\n",
     "key key key=0\n"
     "value string\n"
     "condition oneof since=2.6.12 optional\n"
     "  nx pure-token token=NX\n"
     "  xx pure-token token=XX\n"
     "get pure-token token=GET since=6.2.0 optional\n"
     "expiration oneof optional\n"
     "  seconds integer token=EX since=2.6.12\n"
     "  milliseconds integer token=PX since=2.6.12\n"
     "  unix-time-seconds unix-time token=EXAT since=6.2.0\n"
     "  unix-time-milliseconds unix-time token=PXAT since=6.2.0\n"
     "  keepttl pure-token token=KEEPTTL since=6.0.0\n"},
    {"setex",
     "",
     "key key key=0\n"
     "seconds integer\n"
     "value string\n"},
    {"setnx",
     "",
     "key key key=0\n"
     "value string\n"},
    {"setrange",
     "",
     "key key key=0\n"
     "offset integer\n"
     "value string\n"},
    {"shutdown",
     "7.0.0 Added the `NOW`, `FORCE` and `ABORT` modifiers.\n",
     "nosave_save oneof optional\n"
     "  nosave pure-token token=NOSAVE\n"
     "  save pure-token token=SAVE\n"
     "now pure-token token=NOW since=7.0.0 optional\n"
     "force pure-token token=FORCE since=7.0.0 optional\n"
     "abort pure-token token=ABORT since=7.0.0 optional\n"},
    {"slowlog|get",
     "4.0.0 Added client IP address, port and name to the reply.\n",
     "count integer optional\n"},
    {"spublish",
     {},
     "shardchannel string\n"
     "message string\n"},
    {"ssubscribe",
     {},
     "shardchannel string multiple\n"},
    {"strlen",
     "",
     "key key key=0\n"},
    {"subscribe",
     {},
     "channel string multiple\n"},
    {"sunsubscribe",
     {},
     "shardchannel string optional multiple\n"},
    {"touch",
     {},
     "key key key=0 multiple\n"},
    {"ttl",
     "2.8.0 Added the -2 reply.\n",
     "key key key=0\n"},
    {"type",
     {},
     "key key key=0\n"},
    {"unlink",
     {},
     "key key key=0 multiple\n"},
    {"unsubscribe",
     {},
     "channel string optional multiple\n"},
    {"watch",
     {},
     "key key key=0 multiple\n"},
    {"xack",
     {},
     "key key key=0\n"
     "group string\n"
     "id string multiple\n"},
    {"xackdel",  // newer
     {},
     "key key key=0\n"
     "group string\n"
     "condition oneof optional\n"
     "  keepref pure-token token=KEEPREF\n"
     "  delref pure-token token=DELREF\n"
     "  acked pure-token token=ACKED\n"
     "ids block token=IDS\n"
     "  numids integer\n"
     "  id string multiple\n"},
    {"xadd",
     "6.2.0 Added the `NOMKSTREAM` option, `MINID` trimming strategy and the `LIMIT` option.\n"
     "7.0.0 Added support for the `<ms>-*` explicit ID form.\n"
     "8.2.0 Added the `KEEPREF`, `DELREF` and `ACKED` options.\n",  // newer
     "key key key=0\n"
     "nomkstream pure-token token=NOMKSTREAM since=6.2.0 optional\n"
     "condition oneof since=8.2.0 optional\n"  // newer, to the end of the "idmp" block
     "  keepref pure-token token=KEEPREF\n"
     "  delref pure-token token=DELREF\n"
     "  acked pure-token token=ACKED\n"
     "idmp oneof since=8.6.0 optional\n"
     "  producer-id string token=IDMPAUTO\n"
     "  idmp block token=IDMP\n"
     "    producer-id string\n"
     "    idempotent-id string\n"
     "trim block optional\n"
     "  strategy oneof\n"
     "    maxlen pure-token token=MAXLEN\n"
     "    minid pure-token token=MINID since=6.2.0\n"
     "  operator oneof optional\n"
     "    equal pure-token token==\n"
     "    approximately pure-token token=~\n"
     "  threshold string\n"
     "  count integer token=LIMIT since=6.2.0 optional\n"
     "id_or_auto oneof\n"
     "  auto_id pure-token token=*\n"
     "  id string\n"
     "field_value block multiple\n"
     "  field string\n"
     "  value string\n"},
    {"xautoclaim",
     "7.0.0 Added an element to the reply array, containing deleted entries the command "
     "cleared from the PEL\n",
     "key key key=0\n"
     "group string\n"
     "consumer string\n"
     "min-idle-time string\n"
     "start string\n"
     "count integer token=COUNT optional\n"
     "justid pure-token token=JUSTID optional\n"},
    {"xcfgset",  // newer
     {},
     "key key key=0\n"
     "idmp-duration integer token=IDMP-DURATION optional\n"
     "idmp-maxsize integer token=IDMP-MAXSIZE optional\n"},
    {"xclaim",
     {},
     "key key key=0\n"
     "group string\n"
     "consumer string\n"
     "min-idle-time string\n"
     "id string multiple\n"
     "ms integer token=IDLE optional\n"
     "unix-time-milliseconds unix-time token=TIME optional\n"
     "count integer token=RETRYCOUNT optional\n"
     "force pure-token token=FORCE optional\n"
     "justid pure-token token=JUSTID optional\n"
     "id string token=LASTID optional\n"},
    {"xdel",
     {},
     "key key key=0\n"
     "id string multiple\n"},
    {"xdelex",  // newer
     {},
     "key key key=0\n"
     "condition oneof optional\n"
     "  keepref pure-token token=KEEPREF\n"
     "  delref pure-token token=DELREF\n"
     "  acked pure-token token=ACKED\n"
     "ids block token=IDS\n"
     "  numids integer\n"
     "  id string multiple\n"},
    {"xgroup|create",
     "7.0.0 Added the `entries_read` named argument.\n",
     "key key key=0\n"
     "groupname string\n"
     "id oneof\n"
     "  id string\n"
     "  new_id pure-token token=$\n"
     "mkstream pure-token token=MKSTREAM optional\n"
     "entries_read integer token=ENTRIESREAD optional\n"},
    {"xgroup|createconsumer",
     {},
     "key key key=0\n"
     "groupname string\n"
     "consumername string\n"},
    {"xgroup|delconsumer",
     {},
     "key key key=0\n"
     "groupname string\n"
     "consumername string\n"},
    {"xgroup|destroy",
     {},
     "key key key=0\n"
     "groupname string\n"},
    {"xgroup|setid",
     "7.0.0 Added the optional `entries_read` argument.\n",
     "key key key=0\n"
     "groupname string\n"
     "id oneof\n"
     "  id string\n"
     "  new_id pure-token token=$\n"
     "entries_read integer token=ENTRIESREAD optional\n"},
    {"xinfo|consumers",
     "7.2.0 Added the `inactive` field, and changed the meaning of `idle`.\n",  // newer
     "key key key=0\n"
     "groupname string\n"},
    {"xinfo|groups",
     "7.0.0 Added the `entries-read` and `lag` fields\n",
     "key key key=0\n"},
    {"xinfo|stream",
     "6.0.0 Added the `FULL` modifier.\n"
     "7.0.0 Added the `max-deleted-entry-id`, `entries-added`, `recorded-first-entry-id`, "
     "`entries-read` and `lag` fields\n"
     "7.2.0 Added the `active-time` field, and changed the meaning of `seen-time`.\n"  // newer
     "8.6.0 Added the `idmp-duration`, `idmp-maxsize`, `pids-tracked`, `iids-tracked`, "
     "`iids-added` and `iids-duplicates` fields for IDMP tracking.\n",
     "key key key=0\n"
     "full block token=FULL optional\n"
     "  count integer token=COUNT optional\n"},
    {"xlen",
     {},
     "key key key=0\n"},
    {"xnack",  // newer
     {},
     "key key key=0\n"
     "group string\n"
     "mode oneof\n"
     "  silent pure-token token=SILENT\n"
     "  fail pure-token token=FAIL\n"
     "  fatal pure-token token=FATAL\n"
     "ids block token=IDS\n"
     "  numids integer\n"
     "  id string multiple\n"
     "count integer token=RETRYCOUNT optional\n"
     "force pure-token token=FORCE optional\n"},
    {"xpending",
     "6.2.0 Added the `IDLE` option and exclusive range intervals.\n",
     "key key key=0\n"
     "group string\n"
     "filters block optional\n"
     "  min-idle-time integer token=IDLE since=6.2.0 optional\n"
     "  start string\n"
     "  end string\n"
     "  count integer\n"
     "  consumer string optional\n"},
    {"xrange",
     "6.2.0 Added exclusive ranges.\n",
     "key key key=0\n"
     "start string\n"
     "end string\n"
     "count integer token=COUNT optional\n"},
    {"xread",
     {},
     "count integer token=COUNT optional\n"
     "milliseconds integer token=BLOCK optional\n"
     "streams block token=STREAMS\n"
     "  key key key=0 multiple\n"
     "  id string multiple\n"},
    {"xreadgroup",
     "8.4.0 Added the `CLAIM` option.\n",  // newer
     "group_consumer block token=GROUP\n"
     "  group string\n"
     "  consumer string\n"
     "count integer token=COUNT optional\n"
     "milliseconds integer token=BLOCK optional\n"
     "min-idle-time integer token=CLAIM since=8.4.0 optional\n"  // newer
     "noack pure-token token=NOACK optional\n"
     "streams block token=STREAMS\n"
     "  key key key=0 multiple\n"
     "  id string multiple\n"},
    {"xrevrange",
     "6.2.0 Added exclusive ranges.\n",
     "key key key=0\n"
     "end string\n"
     "start string\n"
     "count integer token=COUNT optional\n"},
    {"xsetid",
     "7.0.0 Added the `entries_added` and `max_deleted_entry_id` arguments.\n",
     "key key key=0\n"
     "last-id string\n"
     "entries_added integer token=ENTRIESADDED since=7.0.0 optional\n"
     "max_deleted_entry_id string token=MAXDELETEDID since=7.0.0 optional\n"},
    {"xtrim",
     "6.2.0 Added the `MINID` trimming strategy and the `LIMIT` option.\n"
     "8.2.0 Added the `KEEPREF`, `DELREF` and `ACKED` options.\n",  // newer
     "key key key=0\n"
     "trim block\n"
     "  strategy oneof\n"
     "    maxlen pure-token token=MAXLEN\n"
     "    minid pure-token token=MINID since=6.2.0\n"
     "  operator oneof optional\n"
     "    equal pure-token token==\n"
     "    approximately pure-token token=~\n"
     "  threshold string\n"
     "  count integer token=LIMIT since=6.2.0 optional\n"
     "  condition oneof since=8.2.0 optional\n"  // newer
     "    keepref pure-token token=KEEPREF\n"
     "    delref pure-token token=DELREF\n"
     "    acked pure-token token=ACKED\n"},
};

std::string_view next_line(std::string_view& text) {
  const std::size_t end = text.find('\n');
  std::string_view line = text.substr(0, end);
  text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
  return line;
}

std::string_view next_word(std::string_view& text) {
  const std::size_t end = text.find(' ');
  std::string_view word = text.substr(0, end);
  text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
  return word;
}

struct Argument {
  std::size_t depth = 0;
  std::string_view name, type, display, key_spec_index, token, since, deprecated, summary;
  std::vector<std::string_view> flags;
  bool has_token = false;  // token="" is a token too
};

Argument parse_argument(std::string_view line) {
  Argument arg;
  while (line.starts_with("  ")) {
    line.remove_prefix(2);
    ++arg.depth;
  }
  arg.name = next_word(line);
  arg.type = next_word(line);
  while (!line.empty()) {
    if (line.starts_with("summary=")) {
      arg.summary = line.substr(8);
      break;
    }
    const std::string_view word = next_word(line);
    const std::size_t eq = word.find('=');
    if (eq == std::string_view::npos) {
      arg.flags.push_back(word);
      continue;
    }
    const std::string_view key = word.substr(0, eq), value = word.substr(eq + 1);
    if (key == "display") arg.display = value;
    if (key == "key") arg.key_spec_index = value;
    if (key == "token") {
      arg.token = value == "\"\"" ? std::string_view() : value;
      arg.has_token = true;
    }
    if (key == "since") arg.since = value;
    if (key == "deprecated") arg.deprecated = value;
  }
  return arg;
}

// Writes args[first] and its nested arguments; returns the index after them.
std::size_t write_argument(const std::vector<Argument>& args, std::size_t first,
                           protocol::ReplyWriter& reply) {
  const Argument& arg = args[first];
  std::size_t children = 0, end = first + 1;
  for (; end < args.size() && args[end].depth > arg.depth; ++end) {
    if (args[end].depth == arg.depth + 1) ++children;
  }
  const auto present = [](std::string_view field) { return field.empty() ? 0 : 1; };
  reply.map(2 + present(arg.display) + present(arg.key_spec_index) + (arg.has_token ? 1 : 0) +
            present(arg.summary) + present(arg.since) + present(arg.deprecated) +
            (arg.flags.empty() ? 0 : 1) + (children == 0 ? 0 : 1));
  reply.bulk("name");
  reply.bulk(arg.name);
  reply.bulk("type");
  reply.bulk(arg.type);
  const auto field = [&reply](std::string_view key, std::string_view value) {
    if (value.empty()) return;
    reply.bulk(key);
    reply.bulk(value);
  };
  field("display_text", arg.display);
  if (!arg.key_spec_index.empty()) {
    reply.bulk("key_spec_index");
    std::int64_t index = 0;
    parse_int64(arg.key_spec_index, index);
    reply.integer(index);
  }
  if (arg.has_token) {
    reply.bulk("token");
    reply.bulk(arg.token);
  }
  field("summary", arg.summary);
  field("since", arg.since);
  field("deprecated_since", arg.deprecated);
  if (!arg.flags.empty()) {
    reply.bulk("flags");
    reply.set(arg.flags.size());
    for (std::string_view flag : arg.flags) reply.simple(flag);
  }
  if (children != 0) {
    reply.bulk("arguments");
    reply.array(children);
    for (std::size_t next = first + 1; next < end;) next = write_argument(args, next, reply);
  }
  return end;
}

static_assert(std::ranges::is_sorted(kMoreDocs, {}, &MoreDocs::name), "kMoreDocs is searched");

const MoreDocs* find_more_docs(std::string_view name) {
  const auto* it = std::lower_bound(std::begin(kMoreDocs), std::end(kMoreDocs), name,
                                    [](const MoreDocs& row, std::string_view key) {
                                      return row.name < key;
                                    });
  return it != std::end(kMoreDocs) && it->name == name ? it : nullptr;
}

}  // namespace

std::size_t more_docs_fields(std::string_view name) {
  const MoreDocs* row = find_more_docs(name);
  if (row == nullptr) return 0;
  return (row->history.empty() ? 0 : 1) + (row->arguments.empty() ? 0 : 1) +
         (row->deprecated_since.empty() ? 0 : 2) + (row->replaced_by.empty() ? 0 : 1);
}

void write_more_docs(std::string_view name, protocol::ReplyWriter& reply) {
  const MoreDocs* row = find_more_docs(name);
  if (row == nullptr) return;
  if (!row->deprecated_since.empty()) {
    reply.bulk("doc_flags");
    reply.set(1);
    reply.simple("deprecated");
    reply.bulk("deprecated_since");
    reply.bulk(row->deprecated_since);
  }
  if (!row->replaced_by.empty()) {
    reply.bulk("replaced_by");
    reply.bulk(row->replaced_by);
  }
  if (!row->history.empty()) {
    reply.bulk("history");
    std::string_view text = row->history;
    reply.set(static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')));
    while (!text.empty()) {
      std::string_view line = next_line(text);
      const std::string_view version = next_word(line);
      reply.array(2);
      reply.bulk(version);
      reply.bulk(line);
    }
  }
  if (!row->arguments.empty()) {
    std::vector<Argument> args;
    std::string_view text = row->arguments;
    while (!text.empty()) args.push_back(parse_argument(next_line(text)));
    std::size_t top = 0;
    for (const Argument& arg : args) top += arg.depth == 0 ? 1 : 0;
    reply.bulk("arguments");
    reply.array(top);
    for (std::size_t next = 0; next < args.size();) next = write_argument(args, next, reply);
  }
}

}  // namespace runnel
