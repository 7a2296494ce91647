// The command table: lookup, the checks before a command runs (in Redis's order), and the
// COMMAND INFO entries derived from the rows.
#include <catch2/catch.hpp>

#include <runnel/protocol/reply_parser.hpp>

#include "command.hpp"

using namespace runnel;
using protocol::ReplyWriter;
using protocol::RespVersion;

namespace {
std::string check(std::vector<std::string_view> args, bool authenticated = true) {
  Session session;
  session.authenticated = authenticated;
  std::string out;
  ReplyWriter reply(out, RespVersion::kResp2);
  const CommandSpec* spec = command_table().lookup(args);
  return check_command(spec, args, session, reply) ? "run" : out;
}
}  // namespace

TEST_CASE("Commands and subcommands are found in any case", "[command_table]") {
  std::vector<std::string_view> a{"xAdD", "s", "*", "f", "v"};
  REQUIRE(command_table().lookup(a)->name == "xadd");
  std::vector<std::string_view> b{"client", "SETNAME", "x"};
  REQUIRE(command_table().lookup(b)->name == "client|setname");
  std::vector<std::string_view> c{"CLIENT"};
  REQUIRE(command_table().lookup(c)->name == "client");
  REQUIRE(command_table().find("CLIENT|LIST")->name == "client|list");
}

TEST_CASE("Unknown commands and subcommands get Redis's errors", "[command_table]") {
  CHECK(check({"foo", "a", "b"}) == "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n");
  CHECK(check({"foo"}) == "-ERR unknown command 'foo', with args beginning with: \r\n");
  CHECK(check({"foo", "a\r\nb"}) == "-ERR unknown command 'foo', with args beginning with: 'a  b' \r\n");
  CHECK(check({"client", "nope"}) == "-ERR unknown subcommand 'nope'. Try CLIENT HELP.\r\n");
}

TEST_CASE("Arity is checked against the row, with the full subcommand name", "[command_table]") {
  CHECK(check({"xadd", "s"}) == "-ERR wrong number of arguments for 'xadd' command\r\n");
  CHECK(check({"echo"}) == "-ERR wrong number of arguments for 'echo' command\r\n");
  CHECK(check({"client", "setname"}) == "-ERR wrong number of arguments for 'client|setname' command\r\n");
  CHECK(check({"client"}) == "-ERR wrong number of arguments for 'client' command\r\n");
  CHECK(check({"echo", "x"}) == "run");
}

TEST_CASE("Authentication is checked after lookup and arity, as Redis does", "[command_table]") {
  CHECK(check({"ping"}, false) == "-NOAUTH Authentication required.\r\n");
  CHECK(check({"xadd", "s"}, false) == "-ERR wrong number of arguments for 'xadd' command\r\n");
  CHECK(check({"auth", "pw"}, false) == "run");
  CHECK(check({"hello", "3"}, false) == "run");
  CHECK(check({"quit"}, false) == "run");
}

TEST_CASE("COMMAND INFO is derived from the row", "[command_table]") {
  std::string out;
  ReplyWriter reply(out, RespVersion::kResp2);
  write_command_info(*command_table().find("xlen"), reply);
  protocol::Reply parsed;
  REQUIRE(protocol::parse_reply(out, parsed).status == protocol::ReplyStatus::kDone);
  REQUIRE(parsed.elements.size() == 10);
  CHECK(parsed.elements[0].str == "xlen");
  CHECK(parsed.elements[1].integer == 2);
  CHECK(parsed.elements[2].elements.size() == 2);  // readonly, fast
  CHECK(parsed.elements[3].integer == 1);
  CHECK(parsed.elements[8].elements.size() == 1);  // one key spec
}

TEST_CASE("Every row has a handler and a consistent route", "[command_table]") {
  for (const CommandSpec& spec : command_table().all()) {
    INFO(spec.name);
    CHECK(spec.arity != 0);
    // Rows without a handler are run by the Coordinator, by their route.
    const bool coordinated = spec.route == Route::kStreamRead || spec.route == Route::kGroupRead ||
                             spec.route == Route::kMulti || spec.route == Route::kExec ||
                             spec.route == Route::kDiscard || spec.route == Route::kWatch ||
                             spec.route == Route::kUnwatch || spec.route == Route::kMigrate ||
                             spec.route == Route::kCopy;
    if (spec.route == Route::kKeyPair) CHECK(spec.key_pair != nullptr);
    if (spec.route == Route::kKeys) CHECK(spec.keys != nullptr);
    CHECK((spec.handler != nullptr || spec.is_container() || coordinated || spec.route == Route::kKeyPair ||
           spec.route == Route::kKeys));
    if (spec.route == Route::kKey) CHECK(spec.first_key >= 1);
    if (spec.route == Route::kEachShard) CHECK(spec.shard_part != nullptr);
    for (const CommandSpec& sub : spec.subcommands) {
      INFO(sub.name);
      CHECK(sub.handler != nullptr);
      CHECK(sub.name.substr(0, spec.name.size() + 1) == std::string(spec.name) + "|");
    }
  }
}
