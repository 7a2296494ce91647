// Connection commands: PING, ECHO, QUIT, RESET, HELLO, AUTH, SELECT and CLIENT.
#include <algorithm>
#include <string>

#include "command.hpp"
#include "version.hpp"

namespace runnel {
namespace {

using protocol::RespVersion;

// Redis refuses names with characters outside '!'..'~' (spaces, newlines, ...).
bool valid_client_name(std::string_view name) {
  for (char c : name) {
    if (c < '!' || c > '~') return false;
  }
  return true;
}

void set_authenticated(Session& session, bool authenticated) {
  session.authenticated = authenticated;
  session.info->authenticated.store(authenticated, std::memory_order_relaxed);
  if (session.parser) session.parser->set_authenticated(authenticated);
}

// Compares a password with the configured one in a time that depends only on their lengths,
// never on where they first differ, so the timing of failed AUTHs tells nothing of its bytes.
bool equal_in_constant_time(std::string_view given, std::string_view required) {
  const std::size_t n = std::max(given.size(), required.size());
  unsigned char diff = given.size() == required.size() ? 0 : 1;
  for (std::size_t i = 0; i < n; ++i) {
    const auto a = static_cast<unsigned char>(i < given.size() ? given[i] : 0);
    const auto b = static_cast<unsigned char>(i < required.size() ? required[i] : 0);
    diff = static_cast<unsigned char>(diff | (a ^ b));
  }
  // Read through a volatile, so the compiler cannot end the loop at the first difference.
  const volatile unsigned char result = diff;
  return result == 0;
}

// Checks a username/password pair against the single "default" user. A server without a
// password accepts any password for "default", as Redis's nopass default user does.
bool credentials_ok(const ServerState& server, std::string_view user, std::string_view pass) {
  if (user != "default") return false;
  const std::string required = server.config.snapshot().requirepass;
  return required.empty() || equal_in_constant_time(pass, required);
}

std::string client_line(const ClientInfo& c, std::string_view command_override = {}) {
  const auto now = std::chrono::steady_clock::now();
  const auto age = std::chrono::duration_cast<std::chrono::seconds>(now - c.created).count();
  const auto idle = (steady_now_ms() - c.last_interaction_ms.load(std::memory_order_relaxed)) / 1000;
  std::string name, lib_name, lib_ver;
  bool no_evict = false;
  {
    std::lock_guard lock(c.mutex);
    if (c.names) {
      name = c.names->name;
      lib_name = c.names->lib_name;
      lib_ver = c.names->lib_ver;
    }
    no_evict = c.no_evict;
  }
  const std::uint64_t qbuf = c.query_buffer_bytes.load(std::memory_order_relaxed);
  const std::uint64_t obuf = c.output_buffer_bytes.load(std::memory_order_relaxed);
  std::string line;
  line += "id=" + std::to_string(c.id);
  line += " addr=" + c.addr;
  line += " laddr=" + c.laddr;
  line += " fd=" + std::to_string(c.fd);
  line += " name=" + name;
  line += " age=" + std::to_string(age);
  line += " idle=" + std::to_string(idle < 0 ? 0 : idle);
  const std::int64_t subs[3] = {c.subscriptions_of(0), c.subscriptions_of(1), c.subscriptions_of(2)};
  std::string flags;
  if (subs[0] + subs[1] + subs[2] > 0) flags += 'P';
  if (no_evict) flags += 'e';
  line += " flags=" + (flags.empty() ? std::string("N") : flags);
  line += " db=0 sub=" + std::to_string(subs[0]) + " psub=" + std::to_string(subs[1]) +
          " ssub=" + std::to_string(subs[2]) + " multi=-1";
  line += " qbuf=" + std::to_string(qbuf);
  line += " qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0";
  line += " obl=" + std::to_string(obuf);
  line += " oll=0 omem=" + std::to_string(obuf);
  line += " tot-mem=" + std::to_string(qbuf + obuf);
  line += " events=r cmd=";
  line += command_override.empty() ? std::string_view(c.last_command.load()) : command_override;
  line += " user=default redir=-1 resp=" + std::to_string(c.resp.load(std::memory_order_relaxed));
  line += " lib-name=" + lib_name;
  line += " lib-ver=" + lib_ver;
  line += '\n';
  return line;
}

}  // namespace

namespace cmd {

void ping(CommandContext& ctx) {
  if (ctx.args.size() > 2) return reply_arity_error(ctx.reply, "ping");
  if (ctx.session.subscribed() && ctx.session.resp == RespVersion::kResp2) {
    // In RESP2's subscribed context, as a message would come: ["pong", message or ""].
    ctx.reply.array(2);
    ctx.reply.bulk("pong");
    return ctx.reply.bulk(ctx.args.size() == 2 ? ctx.args[1] : std::string_view());
  }
  if (ctx.args.size() == 2) return ctx.reply.bulk(ctx.args[1]);
  ctx.reply.simple("PONG");
}

void echo(CommandContext& ctx) { ctx.reply.bulk(ctx.args[1]); }

void quit(CommandContext& ctx) {
  ctx.session.close_after_reply = true;
  ctx.reply.ok();
}

void reset(CommandContext& ctx) {
  Session& s = ctx.session;
  unsubscribe_all(s);
  s.resp = RespVersion::kResp2;
  s.info->resp.store(2, std::memory_order_relaxed);
  {
    std::lock_guard lock(s.info->mutex);
    if (s.info->names) s.info->names->name.clear();
    s.info->no_evict = false;
  }
  set_authenticated(s, ctx.server.config.snapshot().requirepass.empty());
  ctx.reply.simple("RESET");
}

void hello(CommandContext& ctx) {
  const auto& args = ctx.args;
  std::int64_t version = static_cast<std::int64_t>(ctx.session.resp);
  std::size_t next = 1;
  if (args.size() >= 2) {
    if (!parse_int64(args[1], version)) {
      return ctx.reply.error("ERR Protocol version is not an integer or out of range");
    }
    if (version < 2 || version > 3) return ctx.reply.error("NOPROTO unsupported protocol version");
    next = 2;
  }
  std::string_view user, pass, name;
  bool has_auth = false, has_name = false;
  for (std::size_t i = next; i < args.size(); ++i) {
    const std::size_t more = args.size() - i - 1;
    if (equals_ignore_case(args[i], "AUTH") && more >= 2) {
      has_auth = true;
      user = args[i + 1];
      pass = args[i + 2];
      i += 2;
    } else if (equals_ignore_case(args[i], "SETNAME") && more >= 1) {
      has_name = true;
      name = args[i + 1];
      i += 1;
    } else {
      return ctx.reply.error("ERR Syntax error in HELLO option '" + std::string(args[i]) + "'");
    }
  }
  if (has_auth) {
    if (!credentials_ok(ctx.server, user, pass)) {
      return ctx.reply.error("WRONGPASS invalid username-password pair or user is disabled.");
    }
    set_authenticated(ctx.session, true);
  }
  if (!ctx.session.authenticated) {
    return ctx.reply.error(
        "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
        "HELLO AUTH <user> <pass> option can be used to authenticate the client and select "
        "the RESP protocol version at the same time");
  }
  if (has_name) {
    if (!valid_client_name(name)) {
      return ctx.reply.error(
          "ERR Client names cannot contain spaces, newlines or special characters.");
    }
    std::lock_guard lock(ctx.session.info->mutex);
    ctx.session.info->names_to_set().name.assign(name);
  }
  ctx.session.resp = static_cast<RespVersion>(version);
  ctx.session.info->resp.store(static_cast<int>(version), std::memory_order_relaxed);
  protocol::ReplyWriter out(ctx.reply.buffer(), ctx.session.resp);  // reply in the new protocol
  out.map(7);
  out.bulk("server");
  out.bulk(kServerName);
  out.bulk("version");
  out.bulk(kRedisCompatVersion);
  out.bulk("proto");
  out.integer(version);
  out.bulk("id");
  out.integer(static_cast<std::int64_t>(ctx.session.info->id));
  out.bulk("mode");
  out.bulk("standalone");
  out.bulk("role");
  out.bulk("master");
  out.bulk("modules");
  out.array(0);
}

void auth(CommandContext& ctx) {
  const auto& args = ctx.args;
  if (args.size() > 3) return ctx.reply.error("ERR syntax error");
  const bool with_user = args.size() == 3;
  if (!with_user && ctx.server.config.snapshot().requirepass.empty()) {
    return ctx.reply.error(
        "ERR AUTH <password> called without any password configured for the default user. "
        "Are you sure your configuration is correct?");
  }
  const std::string_view user = with_user ? args[1] : std::string_view("default");
  if (!credentials_ok(ctx.server, user, args.back())) {
    return ctx.reply.error("WRONGPASS invalid username-password pair or user is disabled.");
  }
  set_authenticated(ctx.session, true);
  ctx.reply.ok();
}

void select(CommandContext& ctx) {
  std::int64_t db = 0;
  if (!parse_int64(ctx.args[1], db)) {
    return ctx.reply.error(std::string(kNotInteger));
  }
  // Runnel has one database. Redis's own error for an index it does not have.
  if (db != 0) return ctx.reply.error("ERR DB index is out of range");
  ctx.reply.ok();
}

void client_id(CommandContext& ctx) {
  ctx.reply.integer(static_cast<std::int64_t>(ctx.session.info->id));
}

void client_setname(CommandContext& ctx) {
  if (!valid_client_name(ctx.args[2])) {
    return ctx.reply.error("ERR Client names cannot contain spaces, newlines or special characters.");
  }
  std::lock_guard lock(ctx.session.info->mutex);
  ctx.session.info->names_to_set().name.assign(ctx.args[2]);
  ctx.reply.ok();
}

void client_getname(CommandContext& ctx) {
  std::string name;
  {
    std::lock_guard lock(ctx.session.info->mutex);
    if (ctx.session.info->names) name = ctx.session.info->names->name;
  }
  if (name.empty()) return ctx.reply.null();
  ctx.reply.bulk(name);
}

void client_setinfo(CommandContext& ctx) {
  const std::string_view attr = ctx.args[2];
  const std::string_view value = ctx.args[3];
  const bool is_name = equals_ignore_case(attr, "lib-name");
  if (!is_name && !equals_ignore_case(attr, "lib-ver")) {
    return ctx.reply.error("ERR Unrecognized option '" + std::string(attr) + "'");
  }
  if (!valid_client_name(value)) {
    return ctx.reply.error(to_lower(attr) +
                           " cannot contain spaces, newlines or special characters.");
  }
  std::lock_guard lock(ctx.session.info->mutex);
  ClientInfo::Names& names = ctx.session.info->names_to_set();
  (is_name ? names.lib_name : names.lib_ver).assign(value);
  ctx.reply.ok();
}

void client_info(CommandContext& ctx) {
  ctx.reply.verbatim(client_line(*ctx.session.info, "client|info"));
}

void client_list(CommandContext& ctx) {
  const auto& args = ctx.args;
  std::vector<std::uint64_t> ids;
  bool filter_ids = false;
  if (args.size() > 2) {
    if (args.size() == 4 && equals_ignore_case(args[2], "TYPE")) {
      if (!equals_ignore_case(args[3], "normal") && !equals_ignore_case(args[3], "master") &&
          !equals_ignore_case(args[3], "replica") && !equals_ignore_case(args[3], "slave") &&
          !equals_ignore_case(args[3], "pubsub")) {
        return ctx.reply.error("ERR Unknown client type '" + std::string(args[3]) + "'");
      }
      // Every Runnel client is "normal".
      if (!equals_ignore_case(args[3], "normal")) return ctx.reply.verbatim("");
    } else if (args.size() >= 4 && equals_ignore_case(args[2], "ID")) {
      filter_ids = true;
      for (std::size_t i = 3; i < args.size(); ++i) {
        std::int64_t id = 0;
        if (!parse_int64(args[i], id)) return ctx.reply.error("ERR Invalid client ID");
        if (id > 0) ids.push_back(static_cast<std::uint64_t>(id));
      }
    } else {
      return ctx.reply.error("ERR syntax error");
    }
  }
  std::string text;
  const std::uint64_t self = ctx.session.info->id;
  ctx.server.clients.for_each([&](const ClientInfo& c) {
    if (filter_ids && std::find(ids.begin(), ids.end(), c.id) == ids.end()) return;
    text += client_line(c, c.id == self ? "client|list" : std::string_view{});
  });
  ctx.reply.verbatim(text);
}

void client_kill(CommandContext& ctx) {
  const auto& args = ctx.args;
  if (args.size() == 3) {  // old form: CLIENT KILL ip:port
    std::uint64_t target = 0;
    ctx.server.clients.for_each([&](const ClientInfo& c) {
      if (c.addr == args[2]) target = c.id;
    });
    if (target == 0 || !ctx.server.clients.kill(target)) {
      return ctx.reply.error("ERR No such client");
    }
    if (target == ctx.session.info->id) ctx.session.close_after_reply = true;
    return ctx.reply.ok();
  }
  std::optional<std::uint64_t> id;
  std::optional<std::string> addr, laddr;
  bool skipme = true;
  if ((args.size() - 2) % 2 != 0) return ctx.reply.error("ERR syntax error");
  for (std::size_t i = 2; i + 1 < args.size(); i += 2) {
    const std::string_view opt = args[i];
    const std::string_view val = args[i + 1];
    if (equals_ignore_case(opt, "ID")) {
      std::int64_t v = 0;
      if (!parse_int64(val, v) || v <= 0) {
        return ctx.reply.error("ERR client-id should be greater than 0");
      }
      id = static_cast<std::uint64_t>(v);
    } else if (equals_ignore_case(opt, "ADDR")) {
      addr = std::string(val);
    } else if (equals_ignore_case(opt, "LADDR")) {
      laddr = std::string(val);
    } else if (equals_ignore_case(opt, "SKIPME")) {
      if (equals_ignore_case(val, "yes")) {
        skipme = true;
      } else if (equals_ignore_case(val, "no")) {
        skipme = false;
      } else {
        return ctx.reply.error("ERR syntax error");
      }
    } else {
      return ctx.reply.error("ERR syntax error");
    }
  }
  std::vector<std::uint64_t> victims;
  const std::uint64_t self = ctx.session.info->id;
  ctx.server.clients.for_each([&](const ClientInfo& c) {
    if (id && c.id != *id) return;
    if (addr && c.addr != *addr) return;
    if (laddr && c.laddr != *laddr) return;
    if (skipme && c.id == self) return;
    victims.push_back(c.id);
  });
  std::int64_t killed = 0;
  for (std::uint64_t victim : victims) {
    if (victim == self) {
      ctx.session.close_after_reply = true;
      ++killed;
    } else if (ctx.server.clients.kill(victim)) {
      ++killed;
    }
  }
  ctx.reply.integer(killed);
}

void client_no_evict(CommandContext& ctx) {
  const std::string_view mode = ctx.args[2];
  if (!equals_ignore_case(mode, "on") && !equals_ignore_case(mode, "off")) {
    return ctx.reply.error("ERR syntax error");
  }
  std::lock_guard lock(ctx.session.info->mutex);
  ctx.session.info->no_evict = equals_ignore_case(mode, "on");
  ctx.reply.ok();
}

void client_help(CommandContext& ctx) {
  reply_help(ctx,
             {"GETNAME", "    Return the name of the current connection.", "ID",
              "    Return the ID of the current connection.", "INFO",
              "    Return information about the current client connection.", "KILL <ip:port>",
              "    Kill connection made from <ip:port>.",
              "KILL <option> <value> [<option> <value> [...]]",
              "    Kill connections. Options are:", "    * ID <client-id>",
              "      Kill connections by client id.", "    * ADDR (<ip:port>|<unixsocket>:0)",
              "      Kill connections made from the specified address",
              "    * LADDR (<ip:port>|<unixsocket>:0)",
              "      Kill connections made to specified local address", "    * SKIPME (YES|NO)",
              "      Skip killing current connection (default: yes).", "LIST [options ...]",
              "    Return information about client connections. Options:",
              "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
              "      Return clients of specified type.", "    * ID <client-id> [...]",
              "      Return clients with the given ids.", "SETNAME <name>",
              "    Assign the name <name> to the current connection.",
              "SETINFO <LIB-NAME|LIB-VER> <value>",
              "    Set the client library name or version.", "NO-EVICT (ON|OFF)",
              "    Protect current client connection from eviction."});
}

}  // namespace cmd
}  // namespace runnel
