// MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH pw | AUTH2 user pw]
// [KEYS key...]: Redis's way of moving keys to another server, run by the connection's
// Coordinator. Each key is DUMPed on its shard; the payloads go to the target as RESTOREs over
// one connection made here, without blocking any shard; then each key the target took is
// deleted on its shard (not with COPY). Redis blocks its one thread meanwhile; Runnel does
// not, so a key is deleted only if nothing changed it while it was sent (its WATCH version),
// else it is kept and the reply says so: a write is never lost to a MIGRATE.
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <deque>
#include <string_view>
#include <vector>

#include <runnel/protocol/reply_parser.hpp>

#include "coordinator.hpp"
#include "log.hpp"
#include "shard.hpp"
#include "stream_reply.hpp"

namespace runnel {
namespace {

using namespace asio::experimental::awaitable_operators;
using asio::ip::tcp;

struct MigrateRequest {
  std::string host;
  std::string port;
  std::vector<std::string> keys;
  std::string db;
  std::chrono::milliseconds timeout{1000};
  bool copy = false, replace = false;
  std::vector<std::string> auth;  // AUTH's arguments: [password] or [user, password]
};

// Redis's argument checks, in its order. Returns an error text, or "" with `out` filled.
std::string parse(std::span<const std::string_view> args, MigrateRequest& out) {
  std::size_t first_key_of_keys = 0;
  for (std::size_t i = 6; i < args.size(); ++i) {
    const std::size_t more = args.size() - i - 1;
    if (equals_ignore_case(args[i], "COPY")) {
      out.copy = true;
    } else if (equals_ignore_case(args[i], "REPLACE")) {
      out.replace = true;
    } else if (equals_ignore_case(args[i], "AUTH")) {
      if (more < 1) return "ERR syntax error";
      out.auth = {std::string(args[++i])};
    } else if (equals_ignore_case(args[i], "AUTH2")) {
      if (more < 2) return "ERR syntax error";
      out.auth = {std::string(args[i + 1]), std::string(args[i + 2])};
      i += 2;
    } else if (equals_ignore_case(args[i], "KEYS")) {
      if (!args[3].empty()) {
        return "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string";
      }
      first_key_of_keys = i + 1;
      break;
    } else {
      return "ERR syntax error";
    }
  }
  std::int64_t timeout = 0, db = 0;
  if (!parse_int64(args[5], timeout) || !parse_int64(args[4], db)) return std::string(kNotInteger);
  out.timeout = std::chrono::milliseconds(timeout <= 0 ? 1000 : timeout);
  out.db = std::to_string(db);
  out.host = std::string(args[1]);
  out.port = std::string(args[2]);
  if (first_key_of_keys != 0) {
    for (std::size_t i = first_key_of_keys; i < args.size(); ++i) out.keys.emplace_back(args[i]);
  } else {
    out.keys.emplace_back(args[3]);
  }
  return {};
}

// One RESP exchange with the target, each step bounded by `timeout`.
class Target {
 public:
  Target(asio::any_io_executor executor, std::chrono::milliseconds timeout)
      : socket_(executor), timer_(executor), timeout_(timeout) {}

  awaitable<bool> connect(const std::string& host, const std::string& port) {
    tcp::resolver resolver(socket_.get_executor());
    timer_.expires_after(timeout_);
    auto resolved = co_await (resolver.async_resolve(host, port, asio::as_tuple(asio::use_awaitable)) ||
                              timer_.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (resolved.index() != 0 || std::get<0>(std::get<0>(resolved))) co_return false;
    const auto endpoints = std::get<1>(std::get<0>(resolved));
    timer_.expires_after(timeout_);
    auto connected = co_await (asio::async_connect(socket_, endpoints, asio::as_tuple(asio::use_awaitable)) ||
                               timer_.async_wait(asio::as_tuple(asio::use_awaitable)));
    co_return connected.index() == 0 && !std::get<0>(std::get<0>(connected));
  }

  // Writes `parts` in order, gathered (the payloads are not copied into one buffer).
  awaitable<bool> write(const std::vector<std::string_view>& parts) {
    std::vector<asio::const_buffer> buffers;
    buffers.reserve(parts.size());
    for (std::string_view part : parts) buffers.emplace_back(part.data(), part.size());
    timer_.expires_after(timeout_);
    auto done = co_await (asio::async_write(socket_, buffers, asio::as_tuple(asio::use_awaitable)) ||
                          timer_.async_wait(asio::as_tuple(asio::use_awaitable)));
    co_return done.index() == 0 && !std::get<0>(std::get<0>(done));
  }

  // The next reply, or nullopt on a timeout, a closed connection or bytes that are not RESP.
  awaitable<std::optional<protocol::Reply>> read() {
    for (;;) {
      protocol::Reply reply;
      const protocol::ReplyParseResult parsed = protocol::parse_reply(in_, reply);
      if (parsed.status == protocol::ReplyStatus::kDone) {
        in_.erase(0, parsed.consumed);
        co_return reply;
      }
      if (parsed.status == protocol::ReplyStatus::kError || in_.size() > kMaxReplyBytes) co_return std::nullopt;
      char chunk[4096];
      timer_.expires_after(timeout_);
      auto got = co_await (socket_.async_read_some(asio::buffer(chunk), asio::as_tuple(asio::use_awaitable)) ||
                           timer_.async_wait(asio::as_tuple(asio::use_awaitable)));
      if (got.index() != 0 || std::get<0>(std::get<0>(got))) co_return std::nullopt;
      in_.append(chunk, std::get<1>(std::get<0>(got)));
    }
  }

 private:
  static constexpr std::size_t kMaxReplyBytes = 1 << 20;  // RESTORE and AUTH answer in a line
  tcp::socket socket_;
  asio::steady_timer timer_;
  std::chrono::milliseconds timeout_;
  std::string in_;
};

}  // namespace

awaitable<void> Coordinator::migrate(std::span<const std::string_view> args) {
  ServerState& state = server_.state;
  MigrateRequest request;
  if (const std::string error = parse(args, request); !error.empty()) {
    protocol::ReplyWriter(link_.output(), session_.resp).error(error);
    co_return;
  }
  // DUMP each key on its shard, watching it: its version says later whether it changed.
  struct Moving {
    std::string key;
    unsigned owner;
    std::uint64_t version = 0;
    std::string payload;
  };
  std::vector<Moving> moving;
  std::string refused;
  // The payloads are held until the target has them: together, at most proto-max-bulk-len.
  const std::uint64_t limit = state.config.snapshot().proto_max_bulk_len;
  std::uint64_t held = 0;
  for (const std::string& key : request.keys) {
    Moving m{key, owner_of(key), 0, {}};
    bool found = false;
    co_await on_shard_call(m.owner, [&](Shard& shard) {
      Result<std::optional<std::string>> payload = dump_payload(shard, key, state);
      if (!payload) {
        refused = payload.error().text.empty() ? "ERR cannot read stream '" + key + "'" : payload.error().text;
        return false;
      }
      if (!*payload) return false;
      m.payload = std::move(**payload);
      m.version = shard.watch(key);
      found = true;
      return false;
    });
    if (found) {
      held += m.payload.size();
      moving.push_back(std::move(m));
    }
    if (refused.empty() && held > limit) {
      refused = "ERR MIGRATE would send more than proto-max-bulk-len (" + std::to_string(limit) +
                " bytes) at once: move fewer keys at a time";
    }
    if (!refused.empty()) break;
  }
  auto unwatch = [&](const Moving& m) -> awaitable<void> {
    co_await on_shard_call(m.owner, [&](Shard& shard) {
      shard.unwatch(m.key);
      return false;
    });
  };
  if (!refused.empty() || moving.empty()) {
    for (const Moving& m : moving) co_await unwatch(m);
    protocol::ReplyWriter reply(link_.output(), session_.resp);
    if (!refused.empty()) {
      reply.error(refused);
    } else {
      reply.simple("NOKEY");
    }
    co_return;
  }

  // The target: AUTH, SELECT and a RESTORE per key, pipelined, as Redis sends them.
  Target target(link_.executor(), request.timeout);
  // The commands as views: their framing in `framing` (a deque keeps its strings in place),
  // the payloads where they are, so the wire adds no second copy of them.
  std::deque<std::string> framing;
  std::vector<std::string_view> wire;
  auto add = [&](std::initializer_list<std::string_view> parts) {
    framing.push_back("*" + std::to_string(parts.size()) + "\r\n");
    wire.emplace_back(framing.back());
    for (std::string_view part : parts) {
      framing.push_back("$" + std::to_string(part.size()) + "\r\n");
      wire.emplace_back(framing.back());
      wire.push_back(part);
      wire.emplace_back("\r\n");
    }
  };
  if (request.auth.size() == 1) add({"AUTH", request.auth[0]});
  if (request.auth.size() == 2) add({"AUTH", request.auth[0], request.auth[1]});
  add({"SELECT", request.db});
  for (const Moving& m : moving) {
    if (request.replace) {
      add({"RESTORE", m.key, "0", m.payload, "REPLACE"});
    } else {
      add({"RESTORE", m.key, "0", m.payload});
    }
  }
  std::string error;
  std::vector<bool> taken(moving.size(), false);
  if (!co_await target.connect(request.host, request.port)) {
    error = "IOERR error or timeout connecting to the client";
  } else if (!co_await target.write(wire)) {
    error = "IOERR error or timeout writing to target instance";
  } else {
    const std::size_t preamble = request.auth.empty() ? 1 : 2;
    for (std::size_t i = 0; i < preamble + moving.size(); ++i) {
      const std::optional<protocol::Reply> reply = co_await target.read();
      if (!reply) {
        error = "IOERR error or timeout reading to target instance";
        break;
      }
      if (reply->is_error()) {
        if (error.empty()) error = "ERR Target instance replied with error: " + reply->str;
        if (i < preamble) break;  // AUTH or SELECT refused: no RESTORE ran
        continue;
      }
      if (i >= preamble) taken[i - preamble] = true;
    }
  }
  // Delete what the target took (not with COPY), unless it changed meanwhile.
  std::vector<std::string> kept;
  for (std::size_t i = 0; i < moving.size(); ++i) {
    const Moving& m = moving[i];
    co_await on_shard_call(m.owner, [&](Shard& shard) {
      bool deleted = false;
      if (taken[i] && !request.copy) {
        if (shard.watched_version(m.key) == m.version) {
          deleted = shard.delete_key(m.key);
        } else {
          kept.push_back(m.key);
        }
      }
      shard.unwatch(m.key);
      if (deleted) shard.ran_command();  // settles the deletion, so the hop can wait for it
      return deleted;                    // a deletion's reply waits for the disk
    });
  }
  protocol::ReplyWriter reply(link_.output(), session_.resp);
  if (!error.empty()) {
    reply.error(error);
  } else if (!kept.empty()) {
    reply.error("ERR MIGRATE copied '" + kept.front().substr(0, 128) +
                "' but kept it here: it changed while it was sent, and deleting it would lose that change");
  } else {
    reply.ok();
  }
}

}  // namespace runnel
