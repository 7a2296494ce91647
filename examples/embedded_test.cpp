// A Catch2 test that starts a Runnel broker in-process (port 0, a temporary data dir) and
// drives it with the SDK: the pattern for testing an application that uses streams.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <runnel/broker/test_broker.hpp>
#include <runnel/client/client.hpp>
#include <runnel/client/sync_client.hpp>
#include <runnel/client/worker.hpp>

namespace asio = boost::asio;
using namespace runnel::client;
using namespace std::chrono_literals;

TEST_CASE("An order added to the stream is handled once by the billing worker") {
  runnel::TestBroker broker;  // started; stopped and its dir removed at the end
  ClientOptions options;
  options.port = broker.port();

  SyncClient admin(options);
  const StreamId id = admin.xadd("orders", Fields{{"order", "1"}, {"total", "9.50"}});

  asio::io_context io;
  Client client(io.get_executor(), options);
  std::atomic<int> handled{0};
  WorkerOptions work;
  work.stream = "orders";
  work.group = "billing";
  work.block = 100ms;
  Worker worker(client, work, [&](const Entry& entry) -> asio::awaitable<void> {
    CHECK(entry.id == id);
    CHECK(*entry.field("total") == "9.50");
    ++handled;
    co_return;
  });
  worker.start();
  std::thread runner([&] { io.run_for(10s); });
  for (int i = 0; i < 500 && handled == 0; ++i) std::this_thread::sleep_for(10ms);
  auto stopped = worker.stop(5s, asio::use_future);
  stopped.get();
  client.close();
  io.stop();
  runner.join();

  CHECK(handled == 1);
  CHECK(admin.xpending("orders", "billing").count == 0);
}
