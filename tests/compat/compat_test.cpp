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

// --- !docs: replies written down from Redis's documentation -------------------------------
//
// For what Redis 7.0 cannot answer (commands and options of later versions, and the replies
// later versions changed), the scenario gives the reply itself, in a one-line notation:
//   :5  :?              an integer; any integer
//   +OK                 a simple string
//   "text"  $?          a bulk string (\" and \\ escaped); any bulk string
//   nil  nil*           a null bulk string ($-1); a null array (*-1)
//   [a, b, ...]  []     an array
//   {k: v, ...}         a RESP3 map
//   ?                   any one value
//   -ERR text           an error (the whole reply)
struct Node {
  char kind = '?';  // ':', '+', '-', '$', 'n' (nil), 'N' (nil*), '*', '%', '?', '_' (RESP3 null)
  std::string text;
  bool any = false;  // ':?' or '$?'
  std::vector<Node> children;
};

std::string render(const Node& n) {
  switch (n.kind) {
    case ':': return n.any ? ":?" : ":" + n.text;
    case '+': return "+" + n.text;
    case '-': return n.text;
    case '$': {
      if (n.any) return "$?";
      std::string out = "\"";
      for (char c : n.text) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
      }
      return out + "\"";
    }
    case 'n': return "nil";
    case 'N': return "nil*";
    case '_': return "_";
    case '?': return "?";
    default: {
      const bool map = n.kind == '%';
      std::string out = map ? "{" : "[";
      for (std::size_t i = 0; i < n.children.size(); ++i) {
        if (i > 0) out += map && i % 2 == 1 ? ": " : ", ";
        out += render(n.children[i]);
      }
      return out + (map ? "}" : "]");
    }
  }
}

// One reply's bytes as a Node (RESP2, and the RESP3 types the scenarios use).
Node from_resp(std::string_view& in) {
  Node n;
  const auto eol = in.find("\r\n");
  if (in.empty() || eol == std::string_view::npos) throw std::runtime_error("truncated reply");
  const char type = in[0];
  const std::string line(in.substr(1, eol - 1));
  in.remove_prefix(eol + 2);
  switch (type) {
    case '+': n.kind = '+'; n.text = line; break;
    case '-': n.kind = '-'; n.text = "-" + line; break;
    case ':': n.kind = ':'; n.text = line; break;
    case '_': n.kind = '_'; break;
    case '$': {
      const long len = std::stol(line);
      if (len < 0) {
        n.kind = 'n';
        break;
      }
      n.kind = '$';
      n.text = std::string(in.substr(0, static_cast<std::size_t>(len)));
      in.remove_prefix(static_cast<std::size_t>(len) + 2);
      break;
    }
    case '*':
    case '%': {
      const long count = std::stol(line);
      if (count < 0) {
        n.kind = 'N';
        break;
      }
      n.kind = type;
      for (long i = 0; i < count * (type == '%' ? 2 : 1); ++i) n.children.push_back(from_resp(in));
      break;
    }
    default: throw std::runtime_error("reply type not in the !docs notation: " + std::string(1, type));
  }
  return n;
}

struct NotationParser {
  std::string_view in;
  std::size_t at = 0;

  void skip() {
    while (at < in.size() && in[at] == ' ') ++at;
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("bad !docs reply (" + what + ") at " + std::to_string(at) + ": " + std::string(in));
  }
  Node value() {
    skip();
    if (at >= in.size()) fail("value expected");
    Node n;
    const char c = in[at];
    if (c == '[' || c == '{') {
      n.kind = c == '[' ? '*' : '%';
      const char close = c == '[' ? ']' : '}';
      ++at;
      skip();
      if (at < in.size() && in[at] == close) {
        ++at;
        return n;
      }
      while (true) {
        n.children.push_back(value());
        skip();
        if (at < in.size() && (in[at] == ',' || (close == '}' && in[at] == ':'))) {
          ++at;
          continue;
        }
        if (at < in.size() && in[at] == close) {
          ++at;
          return n;
        }
        fail("',' or closing bracket expected");
      }
    }
    if (c == '"') {
      n.kind = '$';
      for (++at; at < in.size() && in[at] != '"'; ++at) {
        if (in[at] == '\\' && at + 1 < in.size()) ++at;
        n.text += in[at];
      }
      if (at >= in.size()) fail("unterminated string");
      ++at;
      return n;
    }
    const std::size_t end = in.find_first_of(",]} ", at);
    const std::string word(in.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at));
    at = end == std::string_view::npos ? in.size() : end;
    if (word == "?") return n;
    if (word == "nil") n.kind = 'n';
    else if (word == "nil*") n.kind = 'N';
    else if (word == "_") n.kind = '_';
    else if (word == "$?") { n.kind = '$'; n.any = true; }
    else if (word == ":?") { n.kind = ':'; n.any = true; }
    else if (word.size() > 1 && word[0] == ':') { n.kind = ':'; n.text = word.substr(1); }
    else if (word.size() > 1 && word[0] == '+') { n.kind = '+'; n.text = word.substr(1); }
    else fail("unknown word '" + word + "'");
    return n;
  }
};

Node parse_notation(std::string_view text) {
  if (!text.empty() && text[0] == '-') return Node{'-', std::string(text), false, {}};
  NotationParser parser{text};
  Node n = parser.value();
  parser.skip();
  if (parser.at != text.size()) parser.fail("trailing text");
  return n;
}

bool matches(const Node& expected, const Node& actual) {
  if (expected.kind == '?') return true;
  if (expected.kind != actual.kind) return false;
  if (expected.any) return true;
  if (expected.text != actual.text || expected.children.size() != actual.children.size()) return false;
  for (std::size_t i = 0; i < expected.children.size(); ++i) {
    if (!matches(expected.children[i], actual.children[i])) return false;
  }
  return true;
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
    if (mode == "docs") {
      // Runnel only: its reply against the one written down (Redis 7.2 and later).
      const auto arrow = payload.rfind(" => ");
      if (arrow == std::string::npos) throw std::runtime_error("!docs needs ' => reply'");
      const std::string command = payload.substr(0, arrow);
      const Node expected = parse_notation(payload.substr(arrow + 4));
      std::vector<std::string> args;
      if (!runnel::protocol::split_inline_args(command, args)) throw std::runtime_error("bad quoting: " + command);
      std::vector<std::string_view> views(args.begin(), args.end());
      std::string raw;
      (void)runnel.conn->call(views, &raw);
      std::string_view bytes(raw);
      const Node actual = from_resp(bytes);
      INFO(file.filename().string() << ":" << number << ": " << command);
      INFO("documented: " << render(expected));
      INFO("runnel:     " << render(actual));
      CHECK(matches(expected, actual));
      continue;
    }
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
