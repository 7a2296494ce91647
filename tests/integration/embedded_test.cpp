// The embedded broker: runnel::Broker started in-process on port 0 with a temporary dir.
#include <catch2/catch.hpp>

#include <runnel/broker/broker.hpp>
#include <runnel/client/connection.hpp>

#include "server_process.hpp"

using runnel::Broker;
using runnel::Config;
using runnel::client::Connection;

TEST_CASE("An embedded broker serves clients on the port it picked", "[embedded]") {
  runnel::test::TempDir dir;
  Config config;
  config.port = 0;
  config.dir = (dir.path() / "data").string();
  config.threads = 2;
  config.loglevel = "warning";
  Broker broker(config);
  broker.start();
  REQUIRE(broker.port() != 0);
  {
    Connection c("127.0.0.1", broker.port());
    REQUIRE(c.call({"XADD", "events", "5-1", "k", "v"}).str == "5-1");
    const auto range = c.call({"XRANGE", "events", "-", "+"});
    REQUIRE(range.elements.size() == 1);
    REQUIRE(range.elements[0].elements[0].str == "5-1");
  }
  broker.stop();
  broker.stop();  // idempotent
  REQUIRE_THROWS(Connection("127.0.0.1", broker.port(), std::chrono::seconds(1)));
}

TEST_CASE("Two embedded brokers cannot share a data dir", "[embedded]") {
  runnel::test::TempDir dir;
  Config config;
  config.port = 0;
  config.dir = (dir.path() / "data").string();
  config.loglevel = "warning";
  Broker first(config);
  first.start();
  Broker second(config);
  REQUIRE_THROWS_WITH(second.start(), Catch::Contains("in use by another runnel-server"));
  first.stop();
  Broker third(config);  // the lock goes with the first broker
  REQUIRE_NOTHROW(third.start());
}
