// Test support: start a server process (runnel-server or redis-server) on a free loopback
// port with its own temporary directory, wait until it accepts connections, and stop it by
// its PID when the test ends.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace runnel::test {

// A port that was free a moment ago (bound to port 0, then released).
std::uint16_t free_port();

// A fresh directory under the system temp dir, removed on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "runnel-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

class ServerProcess {
 public:
  // Starts `argv` (argv[0] is the program path); stderr and stdout go to `log_path`.
  // Waits at most `ready_timeout` for `port` to accept connections; throws if it does not.
  ServerProcess(std::vector<std::string> argv, std::uint16_t port, std::string log_path,
                std::chrono::milliseconds ready_timeout = std::chrono::seconds(10));
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] int pid() const { return pid_; }
  [[nodiscard]] std::string log() const;
  // Sends SIGTERM and waits (bounded) for exit; returns the exit status, or -1 if it had
  // to be killed.
  int terminate(std::chrono::milliseconds grace = std::chrono::seconds(10));
  // True if the process has exited (reaps it).
  bool exited();

 private:
  int pid_ = -1;
  std::uint16_t port_;
  std::string log_path_;
  int status_ = 0;
};

// A shell command's exit status (-1 if it did not exit normally; 124 if `timeout` ended it)
// and what it printed on stdout and stderr together.
struct CommandRun {
  int status = -1;
  std::string output;
};
// Runs `command` with sh, ended after `timeout_seconds` (coreutils' timeout).
CommandRun run_command(const std::string& command, int timeout_seconds);

// A process's resident set (VmRSS), in KiB; -1 if it cannot be read.
long rss_kib(int pid);
// The process's peak resident set (VmHWM), in KiB.
long peak_rss_kib(int pid);

// Paths of the programs under test, from the build (set by CMake).
std::string runnel_server_path();
std::string source_dir();

// runnel-server on a free port with a temporary data dir.
struct RunnelServer {
  explicit RunnelServer(std::vector<std::string> extra_flags = {}, unsigned threads = 1);
  TempDir dir;
  std::uint16_t port;
  ServerProcess process;
};

// Debian's redis-server on a free port, without persistence.
struct RedisServer {
  explicit RedisServer(std::vector<std::string> extra_flags = {});
  TempDir dir;
  std::uint16_t port;
  ServerProcess process;
};

}  // namespace runnel::test
