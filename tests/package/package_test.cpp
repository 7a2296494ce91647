// The package is whole: `cmake --install` into a temporary prefix, then examples/ (a
// separate CMake project) configures with find_package(runnel 0.2), builds against the
// installed tree, and its programs run: the embedded-broker test, and the producer against
// a runnel-server.
#include <catch2/catch.hpp>

#include <string>

#include <runnel/client/sync_client.hpp>

#include "server_process.hpp"

using runnel::test::run_command;

TEST_CASE("The installed package builds the examples, and they run", "[package]") {
  runnel::test::TempDir prefix("runnel-package");
  const std::string p = prefix.path().string();
  const std::string build = p + "/examples-build";

  auto install = run_command("cmake --install " RUNNEL_BUILD_DIR " --prefix " + p, 120);
  INFO(install.output);
  REQUIRE(install.status == 0);

  auto configure = run_command("cmake -S " + runnel::test::source_dir() + "/examples -B " + build +
                                   " -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=" + p,
                               120);
  INFO(configure.output);
  REQUIRE(configure.status == 0);
  // The project found the installed package, not the source tree.
  CHECK(configure.output.find("runnel_DIR") == std::string::npos);
  auto cache = run_command("grep '^runnel_DIR' " + build + "/CMakeCache.txt", 10);
  CHECK(cache.output.find(p) != std::string::npos);

  auto compile = run_command("cmake --build " + build + " --parallel 2", 600);
  INFO(compile.output);
  REQUIRE(compile.status == 0);

  auto embedded = run_command(build + "/embedded_test", 120);
  INFO(embedded.output);
  CHECK(embedded.status == 0);
  CHECK(embedded.output.find("All tests passed") != std::string::npos);

  runnel::test::RunnelServer server;
  auto produced = run_command(build + "/producer " + std::to_string(server.port) + " 1000", 60);
  INFO(produced.output);
  CHECK(produced.status == 0);
  runnel::client::ClientOptions options;
  options.port = server.port;
  runnel::client::SyncClient check(options);
  CHECK(check.xlen("orders") == 1000);
}
