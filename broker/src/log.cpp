#include "log.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>
#include <string>

namespace runnel::log {
namespace {
std::atomic<Level> g_level{Level::kNotice};
std::mutex g_file_mutex;       // guards the two below, and every line written to the file
std::FILE* g_file = nullptr;   // null: stderr
std::string g_path;
}

std::string open_file(const std::string& path) {
  std::FILE* file = nullptr;
  if (!path.empty()) {
    file = std::fopen(path.c_str(), "a");
    if (file == nullptr) return "cannot open the log file '" + path + "': " + std::strerror(errno);
    std::setvbuf(file, nullptr, _IOLBF, 0);  // a line at a time, as stderr
  }
  std::lock_guard lock(g_file_mutex);
  if (g_file != nullptr) std::fclose(g_file);
  g_file = file;
  g_path = path;
  return {};
}

void reopen() {
  std::string path;
  {
    std::lock_guard lock(g_file_mutex);
    path = g_path;
  }
  if (path.empty()) return;
  if (const std::string error = open_file(path); !error.empty()) {
    warning(error + " (SIGHUP): logging goes on in the file opened before");
    return;
  }
  notice("Opened the log file again (SIGHUP)");
}

void set_level(Level level) { g_level.store(level, std::memory_order_relaxed); }
Level level() { return g_level.load(std::memory_order_relaxed); }

bool parse_level(std::string_view text, Level& level) {
  static constexpr std::string_view kNames[] = {"debug", "verbose", "notice", "warning"};
  for (int i = 0; i < 4; ++i) {
    if (text == kNames[i]) {
      level = static_cast<Level>(i);
      return true;
    }
  }
  return false;
}

std::string_view level_name(Level level) {
  static constexpr std::string_view kNames[] = {"debug", "verbose", "notice", "warning"};
  return kNames[static_cast<int>(level)];
}

void write(Level lvl, std::string_view message) {
  if (lvl < level()) return;
  static constexpr char kMarks[] = {'.', '-', '*', '#'};
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  localtime_r(&secs, &tm);
  char stamp[64];
  std::strftime(stamp, sizeof(stamp), "%d %b %Y %H:%M:%S", &tm);
  std::lock_guard lock(g_file_mutex);
  std::fprintf(g_file != nullptr ? g_file : stderr, "%d:M %s.%03d %c %.*s\n", static_cast<int>(getpid()), stamp,
               static_cast<int>(millis), kMarks[static_cast<int>(lvl)],
               static_cast<int>(message.size()), message.data());
}

std::string escape_sample(std::string_view bytes, std::size_t max) {
  std::string out;
  for (std::size_t i = 0; i < bytes.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  if (bytes.size() > max) out += "...";
  return out;
}

}  // namespace runnel::log
