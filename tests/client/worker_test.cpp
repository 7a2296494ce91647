// The Producer and the consumer-group Worker against runnel-server and redis-server: batching
// and per-entry answers, retries, dead letters, a graceful stop, and at-least-once delivery
// across a worker process killed with SIGKILL mid-batch.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <runnel/client/client.hpp>
#include <runnel/client/producer.hpp>
#include <runnel/client/sync_client.hpp>
#include <runnel/client/worker.hpp>

#include "client_support.hpp"
#include "server_process.hpp"

namespace asio = boost::asio;
using namespace runnel::client;
using namespace std::chrono_literals;

using runnel::test::IoThread;
using runnel::test::options_for;

namespace {

// Polls `done` every 20 ms for at most `limit`; true once it held.
template <class F>
bool eventually(F&& done, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

// A test program run as a child process, stopped by its PID.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& output) {
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      const int fd = ::open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  ~Child() {
    if (pid_ > 0) kill(SIGKILL);
  }
  // Sends `signal` and waits (at most 15 s) for the exit; the exit status, or -1.
  int kill(int signal) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, signal);
    int status = 0;
    for (int i = 0; i < 1500; ++i) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(10ms);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return -1;
  }

 private:
  int pid_ = -1;
};

// Nothing pending in the group (false while the group does not exist yet).
bool nothing_pending(SyncClient& admin, std::string_view key, std::string_view group) {
  try {
    return admin.xpending(key, group).count == 0;
  } catch (const ServerError&) {
    return false;
  }
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The test servers, one after the other: runnel-server, then redis-server.
template <class F>
void against_both(F&& f) {
  {
    INFO("against runnel-server");
    runnel::test::RunnelServer runnel;
    f(runnel.port, runnel.dir.path().string());
  }
  {
    INFO("against redis-server");
    runnel::test::RedisServer redis;
    f(redis.port, redis.dir.path().string());
  }
}

}  // namespace

TEST_CASE("The Producer batches XADDs from many callers and gives each its own ID or error", "[client][producer]") {
  against_both([](std::uint16_t port, const std::string&) {
    IoThread io;
    Client client(io.io.get_executor(), options_for(port));
    ProducerOptions options;
    options.max_batch = 64;
    Producer producer(client, options);

    // 20 coroutines send 500 entries each, one after another.
    constexpr int kCallers = 20, kEach = 500;
    std::vector<std::future<std::vector<StreamId>>> callers;
    for (int c = 0; c < kCallers; ++c) {
      callers.push_back(asio::co_spawn(
          io.io,
          [&producer, c]() -> asio::awaitable<std::vector<StreamId>> {
            std::vector<StreamId> ids;
            for (int i = 0; i < kEach; ++i) {
              Fields fields;  // (built outside co_await: GCC 12 miscompiles an initializer list there)
              fields.emplace_back("caller", std::to_string(c));
              fields.emplace_back("n", std::to_string(i));
              ids.push_back(co_await producer.send("events", fields, asio::use_awaitable));
            }
            co_return ids;
          },
          asio::use_future));
    }
    std::set<StreamId> all;
    for (auto& f : callers) {
      const auto ids = f.get();
      REQUIRE(ids.size() == kEach);
      for (std::size_t i = 1; i < ids.size(); ++i) CHECK(ids[i - 1] < ids[i]);  // each caller's order kept
      all.insert(ids.begin(), ids.end());
    }
    CHECK(all.size() == kCallers * kEach);

    // An entry the server refuses fails for its caller only.
    auto good = producer.send("explicit", Fields{{"k", "v"}}, XAddOptions{StreamId{5, 1}, {}, {}}, asio::use_future);
    auto refused = producer.send("explicit", Fields{{"k", "v"}}, XAddOptions{StreamId{5, 1}, {}, {}}, asio::use_future);
    auto after = producer.send("explicit", Fields{{"k", "v"}}, XAddOptions{StreamId{6, 1}, {}, {}}, asio::use_future);
    producer.flush(asio::use_future).get();
    CHECK(good.get() == StreamId{5, 1});
    try {
      refused.get();
      FAIL("a duplicate ID was accepted");
    } catch (const ServerError& e) {
      CHECK(e.code() == "ERR");
      CHECK(std::string(e.what()).find("equal or smaller") != std::string::npos);
    }
    CHECK(after.get() == StreamId{6, 1});

    SyncClient check(options_for(port));
    CHECK(check.xlen("events") == static_cast<std::uint64_t>(kCallers * kEach));
    const auto stats = producer.stats();
    CHECK(stats.entries == kCallers * kEach + 3);
    CHECK(stats.failed == 1);
    CHECK(stats.batches < stats.entries);  // entries went out together
  });
}

TEST_CASE("The Producer refuses entries past max_buffered at once, and flush waits for everything sent", "[client][producer]") {
  runnel::test::RunnelServer runnel;
  asio::io_context io{1};  // not run while sending: nothing leaves meanwhile
  Client client(io.get_executor(), options_for(runnel.port));
  ProducerOptions options;
  options.max_buffered = 100;
  options.max_batch = 1000;
  options.linger = 10s;
  Producer producer(client, options);
  std::vector<std::future<StreamId>> sent;
  for (int i = 0; i < 150; ++i) sent.push_back(producer.send("s", Fields{{"i", std::to_string(i)}}, asio::use_future));
  auto flushed = producer.flush(asio::use_future);
  std::thread runner([&] { io.run_for(10s); });
  int ok = 0, full = 0;
  for (auto& f : sent) {
    try {
      f.get();
      ++ok;
    } catch (const ClientError& e) {
      CHECK(e.errc() == Errc::queue_full);
      ++full;
    }
  }
  flushed.get();  // the open batch left at flush(), without waiting out the linger
  client.close();
  io.stop();
  runner.join();
  CHECK(ok == 100);
  CHECK(full == 50);
}

TEST_CASE("The Worker retries a failed entry after a backoff, dead-letters it past max_deliveries, and acknowledges both", "[client][worker]") {
  against_both([](std::uint16_t port, const std::string&) {
    SyncClient admin(options_for(port));
    admin.xadd("jobs", Fields{{"kind", "flaky"}});
    admin.xadd("jobs", Fields{{"kind", "poison"}, {"payload", "p"}});
    admin.xadd("jobs", Fields{{"kind", "fine"}});

    IoThread io;
    Client client(io.io.get_executor(), options_for(port));
    WorkerOptions options;
    options.stream = "jobs";
    options.group = "g";
    options.consumer = "w1";
    options.max_deliveries = 3;
    options.retry_backoff = 20ms;
    options.block = 100ms;
    std::atomic<int> flaky_calls{0};
    std::atomic<int> retried{0}, dead_hooks{0}, processed_hooks{0};
    WorkerHooks hooks;
    hooks.retried = [&](const Entry&, std::uint64_t) { ++retried; };
    hooks.dead_lettered = [&](const Entry&, std::uint64_t, const std::string&) { ++dead_hooks; };
    hooks.processed = [&](const Entry&, std::chrono::nanoseconds) { ++processed_hooks; };
    Worker worker(
        client, options,
        [&](const Entry& entry) -> asio::awaitable<void> {
          const std::string kind = *entry.field("kind");
          if (kind == "flaky" && ++flaky_calls < 3) throw std::runtime_error("not yet");
          if (kind == "poison") throw std::runtime_error("cannot handle this one");
          co_return;
        },
        hooks);
    worker.start();
    REQUIRE(eventually([&] { return nothing_pending(admin, "jobs", "g") && admin.xlen("jobs:dlq") == 1; }, 20s));
    worker.stop(5s, asio::use_future).get();

    CHECK(flaky_calls == 3);
    CHECK(processed_hooks == 2);
    CHECK(dead_hooks == 1);
    CHECK(retried == 4);  // flaky twice, poison twice (deliveries 2 and 3)
    const auto stats = worker.stats();
    CHECK(stats.processed == 2);
    CHECK(stats.dead_lettered == 1);
    CHECK(stats.failed == 5);

    const auto dead = admin.xrange("jobs:dlq");
    REQUIRE(dead.size() == 1);
    const Entry& d = dead.front();
    CHECK(*d.field("dlq-stream") == "jobs");
    CHECK(*d.field("dlq-group") == "g");
    CHECK(*d.field("dlq-consumer") == "w1");
    CHECK(*d.field("dlq-deliveries") == "3");
    CHECK(d.field("dlq-error")->find("cannot handle this one") != std::string::npos);
    CHECK(*d.field("kind") == "poison");
    CHECK(*d.field("payload") == "p");
    const auto original = admin.xrange("jobs", "-", "+");
    CHECK(*d.field("dlq-id") == original[1].id.to_string());
  });
}

TEST_CASE("The Worker's stop lets running handlers finish and acknowledges them, and a missed deadline is an error", "[client][worker]") {
  runnel::test::RunnelServer runnel;
  SyncClient admin(options_for(runnel.port));
  for (int i = 0; i < 4; ++i) admin.xadd("slow", Fields{{"i", std::to_string(i)}});
  IoThread io;
  Client client(io.io.get_executor(), options_for(runnel.port));
  WorkerOptions options;
  options.stream = "slow";
  options.group = "g";
  options.concurrency = 4;
  options.block = 100ms;
  std::atomic<int> started{0}, finished{0};
  Worker worker(client, options, [&](const Entry&) -> asio::awaitable<void> {
    ++started;
    asio::steady_timer t(co_await asio::this_coro::executor, 300ms);
    co_await t.async_wait(asio::use_awaitable);
    ++finished;
  });
  worker.start();
  REQUIRE(eventually([&] { return started == 4; }, 10s));
  worker.stop(10s, asio::use_future).get();
  CHECK(finished == 4);
  CHECK(admin.xpending("slow", "g").count == 0);

  // A deadline shorter than a handler: stop() fails with a timeout, the handler still finishes.
  admin.xadd("slow", Fields{{"i", "late"}});
  Worker second(client, options, [&](const Entry&) -> asio::awaitable<void> {
    ++started;
    asio::steady_timer t(co_await asio::this_coro::executor, 500ms);
    co_await t.async_wait(asio::use_awaitable);
    ++finished;
  });
  second.start();
  REQUIRE(eventually([&] { return started == 5; }, 10s));
  try {
    second.stop(10ms, asio::use_future).get();
    FAIL("stop() met a deadline shorter than the handler");
  } catch (const ClientError& e) {
    CHECK(e.errc() == Errc::timeout);
  }
  CHECK(eventually([&] { return admin.xpending("slow", "g").count == 0; }, 10s));
  CHECK(finished == 5);
}

TEST_CASE("A handler slower than claim_after keeps its entry: the Worker never claims what it holds", "[client][worker]") {
  runnel::test::RunnelServer runnel;
  SyncClient admin(options_for(runnel.port));
  for (int i = 0; i < 3; ++i) admin.xadd("long", Fields{{"i", std::to_string(i)}});
  IoThread io;
  Client client(io.io.get_executor(), options_for(runnel.port));
  WorkerOptions options;
  options.stream = "long";
  options.group = "g";
  options.concurrency = 3;
  options.block = 50ms;
  options.claim_after = 100ms;
  options.claim_interval = 20ms;
  std::atomic<int> calls{0};
  std::mutex mutex;
  std::vector<std::uint64_t> deliveries_seen;
  Worker worker(client, options, [&](const Entry& entry) -> asio::awaitable<void> {
    ++calls;
    asio::steady_timer t(co_await asio::this_coro::executor, 500ms);  // five times claim_after
    co_await t.async_wait(asio::use_awaitable);
    XPendingOptions mine;
    mine.start = RangeBound(entry.id);
    mine.end = RangeBound(entry.id);
    mine.count = 1;
    auto lookup = cmd::xpending("long", "g", mine);
    const auto pending = co_await client.run(std::move(lookup), asio::use_awaitable);
    std::lock_guard lock(mutex);
    deliveries_seen.push_back(pending.empty() ? 0 : pending.front().deliveries);
  });
  worker.start();
  REQUIRE(eventually([&] { return calls == 3 && nothing_pending(admin, "long", "g"); }, 10s));
  worker.stop(5s, asio::use_future).get();
  CHECK(calls == 3);
  CHECK(worker.stats().claimed == 0);
  std::lock_guard lock(mutex);
  CHECK(deliveries_seen == std::vector<std::uint64_t>{1, 1, 1});  // no claim counted a delivery
}

TEST_CASE("A restarted Worker handles each entry of its own pending history once, while claiming runs", "[client][worker]") {
  runnel::test::RunnelServer runnel;
  SyncClient admin(options_for(runnel.port));
  constexpr int kEntries = 200;
  for (int i = 0; i < kEntries; ++i) admin.xadd("again", Fields{{"i", std::to_string(i)}});
  admin.xgroup_create("again", "g", "0");
  // A worker "w" read them all and died: they are its pending history, idle past claim_after.
  REQUIRE(admin.xreadgroup("g", "w", {{"again", ">"}}).front().entries.size() == kEntries);
  std::this_thread::sleep_for(150ms);

  IoThread io;
  Client client(io.io.get_executor(), options_for(runnel.port));
  WorkerOptions options;
  options.stream = "again";
  options.group = "g";
  options.consumer = "w";
  options.concurrency = 2;
  options.max_fetched = 2;  // the history takes a hundred reads, while claiming could run
  options.block = 50ms;
  options.claim_after = 100ms;
  options.claim_interval = 1ms;
  std::mutex mutex;
  std::map<StreamId, int> calls;
  Worker worker(client, options, [&](const Entry& entry) -> asio::awaitable<void> {
    {
      std::lock_guard lock(mutex);
      ++calls[entry.id];
    }
    asio::steady_timer t(co_await asio::this_coro::executor, 5ms);
    co_await t.async_wait(asio::use_awaitable);
  });
  worker.start();
  REQUIRE(eventually([&] { return nothing_pending(admin, "again", "g"); }, 30s));
  worker.stop(5s, asio::use_future).get();
  std::lock_guard lock(mutex);
  CHECK(calls.size() == kEntries);
  for (const auto& [id, n] : calls) {
    CAPTURE(id.to_string());
    CHECK(n == 1);
  }
}

TEST_CASE("The Worker reports the group's lag through its hook", "[client][worker]") {
  runnel::test::RunnelServer runnel;
  SyncClient admin(options_for(runnel.port));
  admin.xgroup_create("lagging", "g", "$", true);
  for (int i = 0; i < 10; ++i) admin.xadd("lagging", Fields{{"i", std::to_string(i)}});
  IoThread io;
  Client client(io.io.get_executor(), options_for(runnel.port));
  WorkerOptions options;
  options.stream = "lagging";
  options.group = "g";
  options.lag_interval = 50ms;
  options.block = 100ms;
  std::mutex mutex;
  std::vector<std::optional<std::uint64_t>> lags;
  WorkerHooks hooks;
  hooks.lag = [&](std::optional<std::uint64_t> lag, std::uint64_t) {
    std::lock_guard lock(mutex);
    lags.push_back(lag);
  };
  Worker worker(client, options, [](const Entry&) -> asio::awaitable<void> { co_return; }, hooks);
  worker.start();
  REQUIRE(eventually([&] {
    std::lock_guard lock(mutex);
    return !lags.empty() && lags.back() == std::optional<std::uint64_t>(0);
  }, 10s));
  worker.stop(5s, asio::use_future).get();
  std::lock_guard lock(mutex);
  CHECK(lags.back() == std::optional<std::uint64_t>(0));
}

TEST_CASE("A worker process killed mid-batch loses nothing: its successor handles every entry at least once, only the killed one's pending entries twice, and dead-letters the poison", "[client][worker][crash]") {
  against_both([](std::uint16_t port, const std::string& dir) {
    constexpr int kEntries = 3000;
    SyncClient admin(options_for(port));
    std::set<std::string> poison;
    for (int i = 0; i < kEntries; i += 100) {  // 30 producers' batches, each with a poison entry
      Transaction tx;
      for (int j = i; j < i + 100; ++j) {
        Fields fields{{"n", std::to_string(j)}};
        if (j % 100 == 37) fields.emplace_back("poison", "1");
        tx.add(cmd::xadd("work", fields));
      }
      const auto result = admin.exec(tx);
      for (int j = i; j < i + 100; ++j) {
        if (j % 100 == 37) poison.insert(result.replies[static_cast<std::size_t>(j - i)].str);
      }
    }
    const std::string worker_path = RUNNEL_TEST_WORKER_PATH;
    const std::string log = dir + "/handled.log";
    const auto start = [&](const std::string& consumer) {
      return std::make_unique<Child>(std::vector<std::string>{worker_path, std::to_string(port), "work", "g", consumer,
                                                              log, "500", "3"},
                                     dir + "/" + consumer + ".out");
    };

    auto first = start("A");
    REQUIRE(eventually([&] { return read_lines(log).size() >= 1000; }, 60s));
    first->kill(SIGKILL);
    XPendingOptions all;
    all.count = kEntries;
    all.consumer = "A";
    std::set<std::string> pending_at_kill;
    for (const auto& p : admin.xpending("work", "g", all)) pending_at_kill.insert(p.id.to_string());
    INFO("pending at the kill: " << pending_at_kill.size());
    CHECK(!pending_at_kill.empty());  // the kill came mid-batch

    auto second = start("B");
    const bool drained = eventually(
        [&] {
          return admin.xpending("work", "g").count == 0 && admin.xlen("work:dlq") == poison.size() &&
                 read_lines(log).size() >= kEntries - poison.size();
        },
        120s);
    CHECK(second->kill(SIGTERM) == 0);  // a graceful stop
    REQUIRE(drained);

    std::map<std::string, int> handled;
    for (const auto& id : read_lines(log)) ++handled[id];
    const auto entries = admin.xrange("work");
    REQUIRE(entries.size() == kEntries);
    int twice = 0;
    for (const Entry& e : entries) {
      const std::string id = e.id.to_string();
      if (poison.count(id) != 0) {
        CHECK(handled.count(id) == 0);
        continue;
      }
      CAPTURE(id);
      CHECK(handled[id] >= 1);  // at least once
      CHECK(handled[id] <= 2);
      if (handled[id] == 2) {
        ++twice;
        CHECK(pending_at_kill.count(id) == 1);  // only what the killed worker held
      }
    }
    WARN("entries pending at the kill: " << pending_at_kill.size() << ", handled twice: " << twice);
    CHECK(admin.xpending("work", "g").count == 0);

    // The poison entries are dead letters, each once, with their delivery count.
    const auto dead = admin.xrange("work:dlq");
    std::set<std::string> dead_ids;
    for (const Entry& d : dead) {
      const std::string id = *d.field("dlq-id");
      CHECK(dead_ids.insert(id).second);
      CHECK(poison.count(id) == 1);
      const int deliveries = std::stoi(*d.field("dlq-deliveries"));
      // 3 (max_deliveries); 4 when A failed its third delivery and died before dead-lettering
      // it, and B took it over (claiming counts a delivery).
      if (pending_at_kill.count(id) == 0) {
        CHECK(deliveries == 3);
        CHECK(d.field("dlq-error")->find("poison entry") != std::string::npos);
      } else {
        CHECK((deliveries == 3 || deliveries == 4));
      }
      CHECK(*d.field("poison") == "1");
    }
    CHECK(dead_ids == poison);
  });
}
