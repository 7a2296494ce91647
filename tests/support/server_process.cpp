#include "server_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace runnel::test {

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot bind a free port");
  }
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TempDir::TempDir(const std::string& prefix) {
  std::random_device rd;
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto candidate = std::filesystem::temp_directory_path() /
                     (prefix + "-" + std::to_string(getpid()) + "-" + std::to_string(rd()));
    if (std::filesystem::create_directory(candidate)) {
      path_ = candidate;
      return;
    }
  }
  throw std::runtime_error("cannot create a temporary directory");
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

namespace {

// How the server on `port` answers a PING ("" if it does not accept or answer): a server
// still loading its data dir accepts connections and answers -LOADING, as Redis does.
std::string ping_reply(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {};
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  std::string got;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    static constexpr char kPing[] = "*1\r\n$4\r\nPING\r\n";
    char reply[64] = {};
    if (::send(fd, kPing, sizeof kPing - 1, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof kPing - 1)) {
      const ssize_t n = ::recv(fd, reply, sizeof reply - 1, 0);
      if (n > 0) got.assign(reply, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  return got;
}

}  // namespace

ServerProcess::ServerProcess(std::vector<std::string> argv, std::uint16_t port,
                             std::string log_path, std::chrono::milliseconds ready_timeout)
    : port_(port), log_path_(std::move(log_path)) {
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    const int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (log_fd >= 0) {
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
    }
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  // Sanitizer builds run several times slower: ./dev test --tsan and --sanitize scale the
  // wait with RUNNEL_TEST_TIME_SCALE.
  if (const char* scale = std::getenv("RUNNEL_TEST_TIME_SCALE"); scale != nullptr && std::atoi(scale) > 1) {
    ready_timeout *= std::atoi(scale);
  }
  const auto started = std::chrono::steady_clock::now();
  const auto deadline = started + ready_timeout;
  bool gone = false;
  while (std::chrono::steady_clock::now() < deadline) {
    // Ready once PING is answered with PONG, or with -NOAUTH (a server with a password,
    // which answers that before it says -LOADING) once its log says it is ready:
    // runnel-server logs "ready: <address>", redis-server "Ready to accept connections".
    if (const std::string reply = ping_reply(port_); !reply.empty() && reply.rfind("-LOADING", 0) != 0) {
      if (reply.rfind("-NOAUTH", 0) != 0) return;
      const std::string text = log();
      if (text.find(" ready: ") != std::string::npos || text.find("Ready to accept") != std::string::npos) return;
    }
    if ((gone = exited())) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  terminate(std::chrono::milliseconds(100));
  throw std::runtime_error("server " + argv[0] + (gone ? " exited" : " did not take connections") + " after " +
                           std::to_string(waited.count()) + " ms; log:\n" + log());
}

ServerProcess::~ServerProcess() { terminate(); }

bool ServerProcess::exited() {
  if (pid_ < 0) return true;
  const pid_t r = ::waitpid(pid_, &status_, WNOHANG);
  if (r == pid_) {
    pid_ = -1;
    return true;
  }
  return false;
}

int ServerProcess::terminate(std::chrono::milliseconds grace) {
  if (pid_ < 0) return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (exited()) return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status_, 0);
  pid_ = -1;
  return -1;
}

std::string ServerProcess::log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {
long status_kib(int pid, std::string_view field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with(field)) return std::stol(line.substr(field.size()));
  }
  return -1;
}
}  // namespace

long rss_kib(int pid) { return status_kib(pid, "VmRSS:"); }
long peak_rss_kib(int pid) { return status_kib(pid, "VmHWM:"); }

std::string runnel_server_path() { return RUNNEL_SERVER_PATH; }
std::string source_dir() { return RUNNEL_SOURCE_DIR; }

RunnelServer::RunnelServer(std::vector<std::string> extra_flags, unsigned threads)
    : dir("runnel-server"),
      port(free_port()),
      process(
          [&] {
            std::vector<std::string> argv = {runnel_server_path(),  "--port",
                                             std::to_string(port),  "--dir",
                                             (dir.path() / "data").string(), "--threads",
                                             std::to_string(threads)};
            argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
            return argv;
          }(),
          port, (dir.path() / "server.log").string()) {}

RedisServer::RedisServer(std::vector<std::string> extra_flags)
    : dir("redis-server"),
      port(free_port()),
      process(
          [&] {
            std::vector<std::string> argv = {"/usr/bin/redis-server",
                                             "--port",
                                             std::to_string(port),
                                             "--bind",
                                             "127.0.0.1",
                                             "--save",
                                             "",
                                             "--appendonly",
                                             "no",
                                             "--dir",
                                             dir.path().string()};
            argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
            return argv;
          }(),
          port, (dir.path() / "server.log").string()) {}

CommandRun run_command(const std::string& command, int timeout_seconds) {
  CommandRun run;
  FILE* pipe = ::popen(("timeout " + std::to_string(timeout_seconds) + " " + command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  while (std::fgets(buffer, sizeof(buffer), pipe) != nullptr) run.output += buffer;
  const int status = ::pclose(pipe);
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

}  // namespace runnel::test
