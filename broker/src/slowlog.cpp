#include "slowlog.hpp"

#include <algorithm>
#include <chrono>

namespace runnel {
namespace {

bool same(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x >= 'A' && x <= 'Z' ? x + 32 : x) == (y >= 'A' && y <= 'Z' ? y + 32 : y);
         });
}

// The arguments Redis shows as "(redacted)" (redactClientCommandArgument): passwords, and the
// values of sensitive configs.
std::vector<char> redactions(std::span<const std::string_view> args) {
  std::vector<char> out(args.size(), 0);
  if (args.empty()) return out;
  const auto mark = [&](std::size_t from, std::size_t count) {
    for (std::size_t i = from; i < from + count && i < args.size(); ++i) out[i] = 1;
  };
  if (same(args[0], "auth")) {
    mark(1, args.size());
  } else if (same(args[0], "hello")) {
    for (std::size_t i = 2; i < args.size(); ++i) {
      if (same(args[i], "auth")) mark(i + 1, 2);
    }
  } else if (same(args[0], "migrate")) {
    for (std::size_t i = 6; i < args.size(); ++i) {
      if (same(args[i], "auth")) mark(i + 1, 1);
      if (same(args[i], "auth2")) mark(i + 1, 2);
    }
  } else if (same(args[0], "config") && args.size() > 1 && same(args[1], "set")) {
    for (std::size_t i = 2; i + 1 < args.size(); i += 2) {
      if (same(args[i], "requirepass")) mark(i + 1, 1);
    }
  }
  return out;
}

}  // namespace

void SlowLog::configure(std::int64_t slower_than_us, std::uint64_t max_len) {
  slower_than_us_.store(slower_than_us, std::memory_order_relaxed);
  max_len_.store(max_len, std::memory_order_relaxed);  // applies at the next entry, as in Redis
}

void SlowLog::add(std::int64_t duration_us, std::span<const std::string_view> args, std::string_view client_addr,
                  std::string_view client_name) {
  SlowLogEntry entry;
  entry.time = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                   .count();
  entry.duration_us = duration_us;
  // slowlogCreateEntry: at most 32 arguments, the last one of them replaced by a count of
  // those left out; an argument past 128 bytes cut there, with the bytes left out.
  const std::size_t kept = std::min(args.size(), kMaxArgs);
  const std::vector<char> redacted = redactions(args);
  for (std::size_t i = 0; i < kept; ++i) {
    if (kept != args.size() && i == kMaxArgs - 1) {
      entry.args.push_back("... (" + std::to_string(args.size() - kMaxArgs + 1) + " more arguments)");
    } else if (redacted[i]) {
      entry.args.emplace_back("(redacted)");
    } else if (args[i].size() > kMaxArgBytes) {
      entry.args.push_back(std::string(args[i].substr(0, kMaxArgBytes)) + "... (" +
                           std::to_string(args[i].size() - kMaxArgBytes) + " more bytes)");
    } else {
      entry.args.emplace_back(args[i]);
    }
  }
  entry.client_addr = client_addr;
  entry.client_name = client_name;
  std::lock_guard lock(mutex_);
  entry.id = next_id_++;
  entries_.push_front(std::move(entry));
  const std::uint64_t max_len = max_len_.load(std::memory_order_relaxed);
  while (entries_.size() > max_len) entries_.pop_back();
}

std::vector<SlowLogEntry> SlowLog::newest(std::int64_t count) const {
  std::lock_guard lock(mutex_);
  const std::size_t n = count < 0 ? entries_.size() : std::min<std::size_t>(entries_.size(), static_cast<std::size_t>(count));
  return std::vector<SlowLogEntry>(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(n));
}

std::size_t SlowLog::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

void SlowLog::reset() {
  std::lock_guard lock(mutex_);
  entries_.clear();
}

}  // namespace runnel
