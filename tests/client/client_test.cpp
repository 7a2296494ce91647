// The async Client's core against real servers (runnel-server and Debian's redis-server):
// pipelining, the handshake (RESP3, the RESP2 fallback, AUTH, SETNAME, SETINFO), reconnects,
// timeouts, back-pressure, blocking reads on their own connection, and faults (no server, a
// server that never answers, closes mid-reply, sends bytes that are not RESP, or a reply past
// the limit). The faults are played by a bare TCP listener that sends fixed bytes.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <runnel/client/client.hpp>
#include <runnel/client/sync_client.hpp>

#include "client_support.hpp"
#include "server_process.hpp"

namespace asio = boost::asio;
using runnel::client::Client;
using runnel::client::ClientError;
using runnel::client::ClientOptions;
using runnel::client::Command;
using runnel::client::Errc;
using runnel::client::Reply;
using runnel::client::ServerError;
using runnel::client::SyncClient;
using namespace std::chrono_literals;

using runnel::test::IoThread;
using runnel::test::options_for;

namespace {

// The Errc a call failed with (or 0 if it did not fail with a ClientError).
template <class F>
Errc client_errc(F&& f) {
  try {
    f();
  } catch (const ClientError& e) {
    INFO(e.what());
    return e.errc();
  }
  return Errc{};
}

// A TCP listener on a free loopback port; each accepted connection is handed to `serve` on
// its own thread. Plays servers that misbehave.
class BareServer {
 public:
  explicit BareServer(std::function<void(int fd)> serve) : serve_(std::move(serve)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    REQUIRE(::listen(listener_, 16) == 0);
    thread_ = std::thread([this] {
      for (int i = 0; i < 16; ++i) {  // bounded: a test makes a few connections at most
        const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) return;
        sessions_.emplace_back([this, fd] {
          serve_(fd);
          ::close(fd);
        });
      }
    });
  }
  ~BareServer() {
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    thread_.join();
    for (auto& s : sessions_) s.join();
  }
  [[nodiscard]] std::uint16_t port() const { return port_; }

  // Reads and drops what arrives for `how_long`, or until the peer closes.
  static void drain(int fd, std::chrono::milliseconds how_long) {
    const auto until = std::chrono::steady_clock::now() + how_long;
    while (std::chrono::steady_clock::now() < until) {
      timeval tv{0, 50000};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      char buffer[4096];
      const ssize_t n = ::read(fd, buffer, sizeof buffer);
      if (n == 0) return;
    }
  }
  // Reads what arrives first (waiting at most `wait`).
  static std::string read_some(int fd, std::chrono::milliseconds wait = 2000ms) {
    timeval tv{static_cast<time_t>(wait.count() / 1000), static_cast<suseconds_t>((wait.count() % 1000) * 1000)};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buffer[4096];
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
  }
  static void write_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::write(fd, bytes.data(), bytes.size());
      if (n <= 0) return;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }

 private:
  std::function<void(int)> serve_;
  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::vector<std::thread> sessions_;
};

// A client that sends no handshake at all (RESP2, no name, no SETINFO): the bare servers
// then see the test's command first.
ClientOptions bare_options(std::uint16_t port) {
  ClientOptions options = options_for(port);
  options.resp3 = false;
  options.lib_name.clear();
  options.lib_version.clear();
  options.reconnect = false;
  options.connect_timeout = 2s;
  options.request_timeout = 3s;
  return options;
}

// Kills every connection to the server but `admin`'s own (CLIENT LIST, then CLIENT KILL ID).
void kill_other_clients(SyncClient& admin) {
  const auto own = admin.execute("CLIENT", "ID").integer;
  const std::string list = admin.execute("CLIENT", "LIST").str;
  for (std::size_t at = list.find("id="); at != std::string::npos; at = list.find("\nid=", at + 1)) {
    const std::size_t start = list.find("id=", at) + 3;
    const std::string id = list.substr(start, list.find(' ', start) - start);
    if (id != std::to_string(own)) admin.execute("CLIENT", "KILL", "ID", id);
  }
}

}  // namespace

TEST_CASE("Concurrent requests on one connection go out pipelined and are answered in order", "[client]") {
  runnel::test::RunnelServer runnel;
  IoThread io;
  Client client(io.io.get_executor(), options_for(runnel.port));
  constexpr int kRequests = 2000;
  std::vector<std::future<Reply>> replies;
  replies.reserve(kRequests);
  for (int i = 0; i < kRequests; ++i) {
    replies.push_back(client.execute(Command("ECHO", std::to_string(i)), asio::use_future));
  }
  for (int i = 0; i < kRequests; ++i) {
    REQUIRE(replies[static_cast<std::size_t>(i)].get().str == std::to_string(i));
  }
  const auto stats = client.stats();
  CHECK(stats.requests >= kRequests);
  CHECK(stats.connects == 1);
  // Requests issued while a write was in flight went out together.
  CHECK(stats.writes < stats.requests);
}

TEST_CASE("The client works with coroutines, callbacks and futures alike", "[client]") {
  runnel::test::RedisServer redis;
  IoThread io;
  Client client(io.io.get_executor(), options_for(redis.port));

  auto coroutine = asio::co_spawn(
      io.io,
      [&]() -> asio::awaitable<std::string> {
        Reply r = co_await client.execute(Command("PING", "from-a-coroutine"), asio::use_awaitable);
        co_return r.str;
      },
      asio::use_future);
  CHECK(coroutine.get() == "from-a-coroutine");

  std::promise<std::string> by_callback;
  client.execute(Command("ECHO", "by-callback"), [&](std::exception_ptr error, Reply reply) {
    by_callback.set_value(error ? "error" : reply.str);
  });
  CHECK(by_callback.get_future().get() == "by-callback");

  CHECK(client.execute(Command("ECHO", "by-future"), asio::use_future).get().str == "by-future");

  // An error reply is a ServerError with the server's code and text, through a coroutine too.
  auto failing = asio::co_spawn(
      io.io,
      [&]() -> asio::awaitable<std::string> {
        try {
          co_await client.execute(Command("XGROUP", "CREATE", "nostream", "g", "$"), asio::use_awaitable);
        } catch (const ServerError& e) {
          co_return e.code() + "|" + e.what();
        }
        co_return "no error";
      },
      asio::use_future);
  const std::string failed = failing.get();
  CHECK(failed.rfind("ERR|ERR The XGROUP subcommand requires the key to exist", 0) == 0);
}

TEST_CASE("The handshake speaks RESP3, and RESP2 when the server refuses HELLO", "[client]") {
  SECTION("RESP3 with a name and the library's name, against Runnel") {
    runnel::test::RunnelServer runnel;
    ClientOptions options = options_for(runnel.port);
    options.client_name = "orders-relay";
    SyncClient client(options);
    CHECK(client.protocol() == 3);
    CHECK(client.execute("CLIENT", "GETNAME").str == "orders-relay");
    const std::string info = client.execute("CLIENT", "INFO").str;
    CHECK(info.find("lib-name=runnel-cpp") != std::string::npos);
    CHECK(info.find("lib-ver=0.2.0") != std::string::npos);
    CHECK(info.find("resp=3") != std::string::npos);
  }
  SECTION("RESP2 when asked, against redis-server") {
    runnel::test::RedisServer redis;
    ClientOptions options = options_for(redis.port);
    options.resp3 = false;
    options.client_name = "legacy";
    SyncClient client(options);
    CHECK(client.protocol() == 2);
    CHECK(client.execute("CLIENT", "GETNAME").str == "legacy");
  }
  SECTION("RESP2 when the server has no HELLO (renamed away in redis-server)") {
    runnel::test::RedisServer redis({"--rename-command", "HELLO", "", "--requirepass", "s3cret"});
    ClientOptions options = options_for(redis.port);
    options.password = "s3cret";
    options.client_name = "fallback";
    SyncClient client(options);
    CHECK(client.protocol() == 2);
    CHECK(client.execute("CLIENT", "GETNAME").str == "fallback");
    CHECK(client.execute("PING").str == "PONG");
  }
}

TEST_CASE("The client authenticates with a password or a user, and a refusal is a clear error", "[client]") {
  runnel::test::RedisServer redis({"--requirepass", "s3cret"});
  {
    ClientOptions options = options_for(redis.port);
    options.password = "s3cret";
    SyncClient client(options);
    CHECK(client.execute("PING").str == "PONG");
    client.execute("ACL", "SETUSER", "relay", "on", ">relay-pass", "~*", "+@all");
  }
  for (bool resp3 : {true, false}) {
    CAPTURE(resp3);
    ClientOptions options = options_for(redis.port);
    options.resp3 = resp3;
    options.username = "relay";
    options.password = "relay-pass";
    SyncClient client(options);
    CHECK(client.execute("ACL", "WHOAMI").str == "relay");
  }
  ClientOptions wrong = options_for(redis.port);
  wrong.password = "nope";
  wrong.reconnect = false;
  try {
    SyncClient client(wrong);
    FAIL("a wrong password connected");
  } catch (const ClientError& e) {
    INFO(e.what());
    CHECK(e.errc() == Errc::handshake_failed);
    CHECK(std::string(e.what()).find("WRONGPASS") != std::string::npos);
  }
}

TEST_CASE("After a lost connection the client reconnects and says hello again, and requests in flight fail and are never resent", "[client]") {
  runnel::test::RunnelServer runnel;
  ClientOptions options = options_for(runnel.port);
  options.client_name = "survivor";
  SyncClient client(options);
  SyncClient admin(options_for(runnel.port));
  const auto id = client.execute("CLIENT", "ID").integer;

  // A blocking read in flight on its own connection, then every connection is killed.
  auto reader = std::async(std::launch::async, [&] {
    return client_errc([&] {
      client.run(runnel::client::raw_request(Command("XREAD", "BLOCK", "0", "STREAMS", "never", "$"), 0));
    });
  });
  // Its connection shows up as blocked once the read is in (bounded wait).
  for (int i = 0; i < 200 && admin.execute("INFO", "clients").str.find("blocked_clients:1") == std::string::npos; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  kill_other_clients(admin);
  REQUIRE(reader.wait_for(10s) == std::future_status::ready);
  CHECK(reader.get() == Errc::connection_lost);

  // The next call goes out on a new connection, with the handshake run again.
  std::string name;
  for (int i = 0; i < 100 && name.empty(); ++i) {  // the first may still meet the old connection
    try {
      name = client.execute("CLIENT", "GETNAME").str;
    } catch (const ClientError& e) {
      CHECK(e.errc() == Errc::connection_lost);
    }
  }
  CHECK(name == "survivor");
  CHECK(client.execute("CLIENT", "ID").integer != id);

  // XADDs in flight when the connection is killed: a blocking read kept on the main connection
  // (raw_request with block_ms -1 says it is not one) holds the 100 XADDs written behind it
  // unanswered. The kill fails all of them with connection_lost, and none is ever
  // resent: the stream stays empty, and the same IDs are accepted afterwards.
  IoThread io;
  Client async(io.io.get_executor(), options_for(runnel.port));
  auto held = async.run(runnel::client::raw_request(Command("XREAD", "BLOCK", "5000", "STREAMS", "never", "$"), -1),
                        asio::use_future);
  std::vector<std::future<Reply>> adds;
  for (int i = 1; i <= 100; ++i) {
    adds.push_back(async.execute(Command("XADD", "once", std::to_string(i) + "-1", "n", std::to_string(i)),
                                 asio::use_future));
  }
  REQUIRE(async.execute(Command("PING"), asio::use_future).wait_for(100ms) == std::future_status::timeout);
  for (int i = 0; i < 200 && admin.execute("INFO", "clients").str.find("blocked_clients:1") == std::string::npos; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  kill_other_clients(admin);
  CHECK(client_errc([&] { held.get(); }) == Errc::connection_lost);
  for (auto& f : adds) CHECK(client_errc([&] { f.get(); }) == Errc::connection_lost);
  CHECK(async.stats().lost >= 101);
  CHECK(admin.execute("XLEN", "once").integer == 0);
  // The client is back (after its backoff); the IDs were never used, so a resend never happened.
  std::string added;
  for (int i = 0; i < 100 && added.empty(); ++i) {
    try {
      added = async.execute(Command("XADD", "once", "1-1", "n", "1"), asio::use_future).get().str;
    } catch (const ClientError& e) {
      CHECK(e.errc() == Errc::connection_lost);
    }
  }
  CHECK(added == "1-1");
}

TEST_CASE("A request can carry its own timeout, shorter than the client's", "[client]") {
  runnel::test::RedisServer redis({"--enable-debug-command", "yes"});
  ClientOptions options = options_for(redis.port);
  options.request_timeout = 0s;  // none for the client's other requests
  SyncClient client(options);
  const auto sleeping = runnel::client::with_timeout(runnel::client::raw_request(Command("DEBUG", "SLEEP", "0.5")), 100ms);
  CHECK(client_errc([&] { client.run(sleeping); }) == Errc::timeout);
  CHECK(client.execute("ECHO", "after").str == "after");  // waits out the sleep: no timeout
}

TEST_CASE("Past the queue bound a call waits for room, or fails at once when so configured", "[client]") {
  runnel::test::RunnelServer runnel;
  SECTION("fail fast") {
    asio::io_context io{1};  // not run until all calls are made: nothing completes meanwhile
    ClientOptions options = options_for(runnel.port);
    options.max_queued_requests = 4;
    options.fail_when_full = true;
    Client client(io.get_executor(), options);
    std::vector<std::future<Reply>> replies;
    for (int i = 0; i < 10; ++i) replies.push_back(client.execute(Command("ECHO", std::to_string(i)), asio::use_future));
    std::thread runner([&] { io.run_for(5s); });
    int ok = 0, full = 0;
    for (auto& f : replies) {
      try {
        f.get();
        ++ok;
      } catch (const ClientError& e) {
        CHECK(e.errc() == Errc::queue_full);
        ++full;
      }
    }
    client.close();
    io.stop();
    runner.join();
    CHECK(ok == 4);
    CHECK(full == 6);
  }
  SECTION("wait for room, in call order") {
    IoThread io;
    ClientOptions options = options_for(runnel.port);
    options.max_queued_requests = 3;
    options.max_queued_bytes = 200;
    Client client(io.io.get_executor(), options);
    std::vector<std::future<Reply>> replies;
    for (int i = 0; i < 500; ++i) replies.push_back(client.execute(Command("ECHO", std::to_string(i)), asio::use_future));
    for (int i = 0; i < 500; ++i) CHECK(replies[static_cast<std::size_t>(i)].get().str == std::to_string(i));
    // A single request larger than the byte bound still goes through when alone.
    CHECK(client.execute(Command("ECHO", std::string(1000, 'x')), asio::use_future).get().str.size() == 1000);
  }
}

TEST_CASE("A blocking read runs on a connection of its own and holds up no other request", "[client]") {
  runnel::test::RunnelServer runnel;
  IoThread io;
  Client client(io.io.get_executor(), options_for(runnel.port));
  auto read = client.run(runnel::client::raw_request(Command("XREAD", "BLOCK", "0", "STREAMS", "events", "$"), 0),
                         asio::use_future);
  // Requests behind it are answered while it blocks.
  for (int i = 0; i < 50; ++i) CHECK(client.execute(Command("PING"), asio::use_future).get().str == "PONG");
  CHECK(read.wait_for(0s) == std::future_status::timeout);
  client.execute(Command("XADD", "events", "1-1", "k", "v"), asio::use_future).get();
  const Reply got = read.get();
  REQUIRE(got.is_aggregate());
  CHECK(runnel::protocol::to_display_string(got).find("1-1") != std::string::npos);
}

TEST_CASE("A blocking XREAD sent through execute() gets a connection of its own", "[client]") {
  CHECK(Command("XREAD", "COUNT", "1", "BLOCK", "250", "STREAMS", "s", "$").block_ms() == 250);
  CHECK(Command("xreadgroup", "GROUP", "g", "c", "block", "0", "STREAMS", "s", ">").block_ms() == 0);
  CHECK(Command("XREAD", "STREAMS", "BLOCK", "0").block_ms() == -1);  // a key named BLOCK
  CHECK(Command("XADD", "BLOCK", "5", "f", "v").block_ms() == -1);
  runnel::test::RunnelServer runnel;
  SyncClient client(options_for(runnel.port));
  // BLOCK 10000, not 0: if the entry never reached it, the read still ends, and the test fails
  // instead of hanging.
  auto read = std::async(std::launch::async, [&] { return client.execute("XREAD", "BLOCK", "10000", "STREAMS", "s", "$"); });
  for (int i = 0; i < 20; ++i) CHECK(client.execute("PING").str == "PONG");  // not held up
  CHECK(read.wait_for(0s) == std::future_status::timeout);
  // The XADD must come after the read took '$' (it blocks at once on an empty stream): before,
  // the XADD could win the race, and the read then waited for an entry above 1-1.
  bool blocked = false;
  for (int i = 0; i < 500 && !blocked; ++i) {
    blocked = client.execute("INFO", "clients").str.find("blocked_clients:1\r\n") != std::string::npos;
    if (!blocked) std::this_thread::sleep_for(10ms);
  }
  REQUIRE(blocked);
  client.execute("XADD", "s", "1-1", "f", "v");
  REQUIRE(read.wait_for(10s) == std::future_status::ready);
  CHECK(runnel::protocol::to_display_string(read.get()).find("1-1") != std::string::npos);
}

TEST_CASE("An unreachable server or one that never answers gives a clear error, never a hang", "[client]") {
  SECTION("nothing listens on the port") {
    const auto port = runnel::test::free_port();
    ClientOptions options = bare_options(port);
    CHECK(client_errc([&] { SyncClient client(options); }) == Errc::connect_failed);
  }
  SECTION("nothing listens, and the client keeps trying: a request says it could not connect") {
    IoThread io;
    ClientOptions options = options_for(runnel::test::free_port());
    options.request_timeout = 300ms;
    options.connect_timeout = 200ms;
    Client client(io.io.get_executor(), options);
    auto reply = client.execute(Command("PING"), asio::use_future);
    CHECK(client_errc([&] { reply.get(); }) == Errc::connect_failed);
  }
  SECTION("the server accepts and never answers the handshake") {
    BareServer silent([](int fd) { BareServer::drain(fd, 3000ms); });
    ClientOptions options = bare_options(silent.port());
    options.resp3 = true;  // HELLO 3 is sent, and never answered
    options.connect_timeout = 300ms;
    CHECK(client_errc([&] { SyncClient client(options); }) == Errc::connect_failed);
  }
  SECTION("the server answers nothing to a request") {
    BareServer silent([](int fd) { BareServer::drain(fd, 3000ms); });
    ClientOptions options = bare_options(silent.port());
    options.request_timeout = 300ms;
    SyncClient client(options);
    CHECK(client_errc([&] { client.execute("PING"); }) == Errc::timeout);
  }
}

TEST_CASE("A server that closes mid-reply, sends bytes that are not RESP, or a reply past the limit gives a clear error", "[client]") {
  SECTION("closed mid-reply") {
    BareServer server([](int fd) {
      BareServer::read_some(fd);
      BareServer::write_all(fd, "$10\r\nabc");
    });
    SyncClient client(bare_options(server.port()));
    CHECK(client_errc([&] { client.execute("GET", "k"); }) == Errc::connection_lost);
  }
  SECTION("not RESP") {
    BareServer server([](int fd) {
      BareServer::read_some(fd);
      BareServer::write_all(fd, "HTTP/1.1 400 Bad Request\r\n\r\n");
      BareServer::read_some(fd, 500ms);
    });
    SyncClient client(bare_options(server.port()));
    CHECK(client_errc([&] { client.execute("PING"); }) == Errc::protocol_error);
  }
  SECTION("a reply larger than max_reply_bytes, against Runnel") {
    runnel::test::RunnelServer runnel;
    SyncClient writer(options_for(runnel.port));
    writer.execute("XADD", "big", "1-1", "payload", std::string(100000, 'p'));
    ClientOptions options = options_for(runnel.port);
    options.max_reply_bytes = 50000;
    SyncClient reader(options);
    CHECK(client_errc([&] { reader.execute("XRANGE", "big", "-", "+"); }) == Errc::reply_too_large);
    // The client reconnects and goes on with small replies.
    std::string pong;
    for (int i = 0; i < 100 && pong.empty(); ++i) {
      try {
        pong = reader.execute("PING").str;
      } catch (const ClientError&) {
      }
    }
    CHECK(pong == "PONG");
  }
}

TEST_CASE("Room freed by a lost connection goes to the requests waiting for it", "[client]") {
  // The first connection takes every request and answers none, then drops; the second
  // records what reaches it.
  std::atomic<int> sessions{0};
  std::promise<std::string> second_got;
  BareServer server([&](int fd) {
    if (sessions++ == 0) {
      BareServer::drain(fd, 300ms);
      return;  // closed: the requests in flight are lost
    }
    std::string got;
    for (int i = 0; i < 40 && got.find("third") == std::string::npos; ++i) got += BareServer::read_some(fd, 50ms);
    second_got.set_value(got);
    BareServer::drain(fd, 1000ms);
  });
  IoThread io;
  ClientOptions options = bare_options(server.port());
  options.reconnect = true;
  options.request_timeout = 0ms;  // no sweep to save the day
  options.max_queued_requests = 2;
  Client client(io.io.get_executor(), options);
  auto first = client.execute(Command("ECHO", "first"), asio::use_future);
  auto second = client.execute(Command("ECHO", "second"), asio::use_future);
  auto third = client.execute(Command("ECHO", "third"), asio::use_future);  // waits for room
  CHECK(client_errc([&] { first.get(); }) == Errc::connection_lost);
  CHECK(client_errc([&] { second.get(); }) == Errc::connection_lost);
  auto got = second_got.get_future();
  REQUIRE(got.wait_for(10s) == std::future_status::ready);
  CHECK(got.get().find("third") != std::string::npos);  // admitted and written
  client.close();
  CHECK(client_errc([&] { third.get(); }) == Errc::stopped);
}

TEST_CASE("A server that stops answering is dropped once the timed-out requests pass the queue bound", "[client]") {
  std::atomic<int> sessions{0};
  BareServer silent([&](int fd) {
    ++sessions;
    BareServer::drain(fd, 3000ms);
  });
  ClientOptions options = bare_options(silent.port());
  options.reconnect = true;
  options.request_timeout = 50ms;
  options.max_queued_requests = 4;
  SyncClient client(options);
  // Each request times out and keeps its slot on the connection; past 4 such slots the
  // connection goes (so they cannot pile up without bound), and the client reconnects.
  for (int i = 0; i < 30 && sessions.load() < 2; ++i) {
    const Errc errc = client_errc([&] { client.execute("PING"); });
    CHECK((errc == Errc::timeout || errc == Errc::connection_lost));
  }
  CHECK(sessions.load() >= 2);
}

TEST_CASE("connect() on a client whose connection is down for good fails at once", "[client]") {
  BareServer server([](int fd) { BareServer::read_some(fd, 500ms); });  // reads, then hangs up
  IoThread io;
  Client client(io.io.get_executor(), bare_options(server.port()));  // reconnect off
  CHECK(client_errc([&] { client.execute(Command("PING"), asio::use_future).get(); }) == Errc::connection_lost);
  auto again = client.connect(asio::use_future);
  REQUIRE(again.wait_for(5s) == std::future_status::ready);
  CHECK(client_errc([&] { again.get(); }) == Errc::not_connected);
}

TEST_CASE("Closing a client fails what is pending with a clear error", "[client]") {
  runnel::test::RunnelServer runnel;
  IoThread io;
  auto client = std::make_unique<Client>(io.io.get_executor(), options_for(runnel.port));
  auto blocked = client->run(runnel::client::raw_request(Command("XREAD", "BLOCK", "0", "STREAMS", "s", "$"), 0),
                             asio::use_future);
  client->execute(Command("PING"), asio::use_future).get();
  client.reset();
  CHECK(client_errc([&] { blocked.get(); }) == Errc::stopped);
}
