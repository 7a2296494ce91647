// --logfile: runnel-server's log lines go to a file, which SIGHUP opens again once logrotate
// has moved it; a file that cannot be opened stops the start with a message.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <runnel/client/connection.hpp>

#include "server_process.hpp"

using namespace std::chrono_literals;
using runnel::client::Connection;
namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

TEST_CASE("The log file of --logfile takes the log lines, and SIGHUP opens it again after logrotate moved it", "[ops]") {
  runnel::test::TempDir dir("runnel-logfile");
  const std::uint16_t port = runnel::test::free_port();
  const fs::path log = dir.path() / "runnel.log";
  runnel::test::ServerProcess server({runnel::test::runnel_server_path(), "--port", std::to_string(port), "--dir",
                                      (dir.path() / "data").string(), "--logfile", log.string()},
                                     port, (dir.path() / "stderr.log").string());
  CHECK(read_file(log).find("ready") != std::string::npos);
  CHECK(read_file(dir.path() / "stderr.log").find("ready") == std::string::npos);
  Connection c("127.0.0.1", port);
  CHECK(c.call({"CONFIG", "GET", "logfile"}).elements.at(1).str == log.string());
  // logrotate's move, then its SIGHUP: a new file, with the lines from then on.
  fs::rename(log, dir.path() / "runnel.log.1");
  REQUIRE(::kill(server.pid(), SIGHUP) == 0);
  bool reopened = false;
  for (int i = 0; i < 500 && !reopened; ++i) {
    reopened = read_file(log).find("Opened the log file again") != std::string::npos;
    if (!reopened) std::this_thread::sleep_for(10ms);
  }
  CHECK(reopened);
  CHECK(c.call({"PING"}).str == "PONG");  // still serving
  CHECK(server.terminate() == 0);
  CHECK(read_file(log).find("Received SIGTERM") != std::string::npos);
  CHECK(read_file(dir.path() / "runnel.log.1").find("Received SIGTERM") == std::string::npos);
}

TEST_CASE("A --logfile that cannot be opened stops the start with a message", "[ops]") {
  runnel::test::TempDir dir("runnel-logfile");
  const auto run = runnel::test::run_command(runnel::test::runnel_server_path() + " --port 0 --dir " +
                                                 (dir.path() / "data").string() + " --logfile " +
                                                 (dir.path() / "no-such-dir" / "x.log").string(),
                                             30);
  CHECK(run.status == 1);
  CHECK(run.output.find("cannot open the log file") != std::string::npos);
}
