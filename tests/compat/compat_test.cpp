// The differential harness: every scenario file in tests/compat/scenarios runs against Debian's
// redis-server and against runnel-server (at 1 and at 2 threads), and the replies are compared
// byte for byte. See tests/compat/README.md for the scenario format.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>

#include <runnel/client/connection.hpp>
#include <runnel/protocol/request_parser.hpp>

#include "server_process.hpp"

using namespace std::chrono_literals;
using runnel::client::Connection;
using runnel::protocol::Reply;

namespace {

std::string escape(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c == '\r') out += "\\r";
    else if (c == '\n') out += "\\n";
    else if (c >= 0x20 && c < 0x7f) out += static_cast<char>(c);
    else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

// Types and sizes only, for replies whose values legitimately differ (ids, times, versions).
std::string shape(const Reply& r) {
  std::string out = std::to_string(static_cast<int>(r.type));
  if (r.is_aggregate()) {
    out += "[";
    for (const Reply& e : r.elements) out += shape(e) + ",";
    out += "]";
  }
  return out;
}

// The top-level elements, sorted, for replies whose order is not defined (KEYS).
std::string unordered(const Reply& r) {
  std::vector<std::string> parts;
  for (const Reply& e : r.elements) parts.push_back(runnel::protocol::to_display_string(e));
  std::sort(parts.begin(), parts.end());
  std::string out = std::to_string(static_cast<int>(r.type)) + ":";
  for (auto& p : parts) out += p + "|";
  return out;
}

// Blanks the value after each named field, at any depth (flat RESP2 maps and RESP3 maps).
void blank_fields(Reply& r, const std::vector<std::string>& names) {
  if (!r.is_aggregate()) return;
  for (std::size_t i = 0; i + 1 < r.elements.size(); ++i) {
    const Reply& key = r.elements[i];
    if ((key.type == Reply::Type::kBulk || key.type == Reply::Type::kSimple) &&
        std::find(names.begin(), names.end(), key.str) != names.end()) {
      r.elements[i + 1] = Reply{Reply::Type::kSimple, "<ignored>", 0, {}};
      ++i;
    }
  }
  for (Reply& e : r.elements) blank_fields(e, names);
}

// XPENDING's extended form: [id, consumer, idle ms, deliveries] per entry. The idle time
// differs between two servers; it is checked for plausibility and left out of the comparison.
std::string pending_without_idle(Reply r) {
  for (Reply& e : r.elements) {
    if (e.elements.size() != 4 || e.elements[2].type != Reply::Type::kInteger) continue;
    const bool plausible = e.elements[2].integer >= 0 && e.elements[2].integer < 600000;
    e.elements[2] = Reply{Reply::Type::kSimple, plausible ? "<idle>" : "<implausible idle>", 0, {}};
  }
  return std::to_string(static_cast<int>(r.type)) + runnel::protocol::to_display_string(r);
}

// Blanks absolute times (milliseconds since 1970, so at least 10^12): they differ between
// two servers. Counts and lengths in these replies are far smaller.
void blank_times(Reply& r) {
  if (r.type == Reply::Type::kInteger && r.integer >= 1000000000000) {
    r = Reply{Reply::Type::kSimple, "<time>", 0, {}};
  }
  for (Reply& e : r.elements) blank_times(e);
}

std::string unescape_raw(std::string_view text) {
  std::vector<std::string> parts;
  if (!runnel::protocol::split_inline_args(text, parts) || parts.size() != 1) {
    throw std::runtime_error("!raw takes one quoted string");
  }
  return parts[0];
}

struct Side {
  std::uint16_t port;
  std::unique_ptr<Connection> conn;
  std::vector<std::string> ignored;  // fields whose values !ignore leaves out
  void connect() { conn = std::make_unique<Connection>("127.0.0.1", port, 10s); }

  // Runs one scenario line; returns what is compared.
  std::string run(const std::string& mode, const std::string& payload) {
    if (mode == "raw") {
      conn->send_raw(payload);
      std::string got = conn->read_until_close(500ms);
      connect();
      return got;
    }
    std::vector<std::string> args;
    if (!runnel::protocol::split_inline_args(payload, args)) {
      throw std::runtime_error("bad quoting in scenario line: " + payload);
    }
    std::vector<std::string_view> views(args.begin(), args.end());
    std::string raw;
    const Reply reply = conn->call(views, &raw);
    if (!views.empty() && (args[0] == "QUIT" || args[0] == "quit")) connect();
    if (mode == "shape") return shape(reply);
    if (mode == "unordered") return unordered(reply);
    if (mode == "pending") return pending_without_idle(reply);

    if (!ignored.empty()) {
      Reply copy = reply;
      blank_fields(copy, ignored);
      if (std::find(ignored.begin(), ignored.end(), "<times>") != ignored.end()) blank_times(copy);
      return std::to_string(static_cast<int>(copy.type)) + runnel::protocol::to_display_string(copy);
    }
    return raw;
  }
};

void run_scenario(const std::filesystem::path& file, Side& redis, Side& runnel) {
  for (Side* side : {&redis, &runnel}) {
    side->connect();
    side->conn->call({"FLUSHALL"});
  }
  std::ifstream in(file);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty() || line[0] == '#') continue;
    std::string mode = "exact";
    std::string payload = line;
    if (line[0] == '!') {
      const auto space = line.find(' ');
      mode = line.substr(1, space - 1);
      payload = space == std::string::npos ? "" : line.substr(space + 1);
      if (mode == "reconnect") {
        redis.connect();
        runnel.connect();
        continue;
      }
      if (mode == "raw") payload = unescape_raw(payload);
    }
    int repeat = 1;
    if (mode == "repeat") {
      const auto space = payload.find(' ');
      repeat = std::stoi(payload.substr(0, space));
      payload = payload.substr(space + 1);
      mode = "exact";
    }
    redis.ignored.clear();
    if (mode == "ignore") {
      const auto space = payload.find(' ');
      std::string list = payload.substr(0, space);
      payload = payload.substr(space + 1);
      for (std::size_t at = 0; at != std::string::npos;) {
        const auto comma = list.find(',', at);
        redis.ignored.push_back(list.substr(at, comma == std::string::npos ? comma : comma - at));
        at = comma == std::string::npos ? comma : comma + 1;
      }
      mode = "exact";
    }
    runnel.ignored = redis.ignored;
    for (int i = 1; i <= repeat; ++i) {
      std::string command = payload;
      for (auto at = command.find("{i}"); at != std::string::npos; at = command.find("{i}")) {
        command.replace(at, 3, std::to_string(i));
      }
      const std::string expected = redis.run(mode, command);
      const std::string actual = runnel.run(mode, command);
      INFO(file.filename().string() << ":" << number << ": " << command);
      INFO("redis:  " << escape(expected));
      INFO("runnel: " << escape(actual));
      CHECK(actual == expected);
    }
  }
}

}  // namespace

TEST_CASE("Runnel replies byte for byte as redis-server does", "[compat]") {
  runnel::test::RedisServer redis_server;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(RUNNEL_COMPAT_DIR)) {
    if (entry.path().extension() == ".txt") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  REQUIRE(!files.empty());
  for (unsigned threads : {1u, 2u, 4u}) {
    runnel::test::RunnelServer runnel_server({}, threads);
    for (const auto& file : files) {
      DYNAMIC_SECTION(file.filename().string() << " at --threads " << threads) {
        Side redis{redis_server.port, nullptr, {}};
        Side runnel{runnel_server.port, nullptr, {}};
        run_scenario(file, redis, runnel);
      }
    }
  }
}
