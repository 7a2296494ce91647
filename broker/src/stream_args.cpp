#include "stream_args.hpp"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <string>

#include <runnel/protocol/request_parser.hpp>

namespace runnel {

bool redis_string2ull(std::string_view text, std::uint64_t& value) {
  text = text.substr(0, text.find('\0'));  // C string semantics
  std::int64_t ll = 0;
  if (protocol::parse_int64_strict(text, ll)) {
    if (ll < 0) return false;
    value = static_cast<std::uint64_t>(ll);
    return true;
  }
  if (text.empty()) return false;
  const std::string copy(text);
  errno = 0;
  char* end = nullptr;
  value = std::strtoull(copy.c_str(), &end, 10);
  if (errno == EINVAL || errno == ERANGE) return false;
  return end == copy.c_str() + copy.size() && end != copy.c_str();
}

std::optional<ParsedId> parse_id_arg(std::string_view text, std::uint64_t missing_seq, bool strict,
                                     bool allow_seq_star) {
  if (text.size() > 127) return std::nullopt;
  text = text.substr(0, text.find('\0'));
  if (strict && (text == "-" || text == "+")) return std::nullopt;
  if (text == "-") return ParsedId{storage::StreamId::min(), true};
  if (text == "+") return ParsedId{storage::StreamId::max(), true};
  ParsedId parsed;
  const std::size_t dash = text.find('-');
  if (!redis_string2ull(text.substr(0, dash), parsed.id.ms)) return std::nullopt;
  if (dash == std::string_view::npos) {
    parsed.id.seq = missing_seq;
    return parsed;
  }
  const std::string_view seq = text.substr(dash + 1);
  if (allow_seq_star && seq == "*") {
    parsed.id.seq = 0;
    parsed.seq_given = false;
    return parsed;
  }
  if (!redis_string2ull(seq, parsed.id.seq)) return std::nullopt;
  return parsed;
}

namespace {

Result<storage::StreamId> parse_bound(std::string_view text, bool start) {
  const bool exclusive = text.size() > 1 && text[0] == '(';
  const std::uint64_t missing_seq = start ? 0 : UINT64_MAX;
  const auto parsed = exclusive ? parse_id_arg(text.substr(1), missing_seq, true)
                                : parse_id_arg(text, missing_seq, false);
  if (!parsed) return op_error(Errc::kArgument, std::string(errors::kInvalidStreamId));
  if (!exclusive) return parsed->id;
  const auto moved = start ? parsed->id.next() : parsed->id.prev();
  if (!moved) {
    return op_error(Errc::kArgument, start ? "ERR invalid start ID for the interval" : "ERR invalid end ID for the interval");
  }
  return *moved;
}

}  // namespace

namespace {

bool same_word(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

}  // namespace

bool parse_ref_policy(std::string_view word, RefPolicy& policy) {
  if (same_word(word, "keepref")) policy = RefPolicy::kKeep;
  else if (same_word(word, "delref")) policy = RefPolicy::kDelete;
  else if (same_word(word, "acked")) policy = RefPolicy::kAcked;
  else return false;
  return true;
}

std::string parse_ack_del_args(std::span<const std::string_view> args, std::size_t start, AckDelArgs& out) {
  bool policy_given = false;
  bool ids_given = false;
  for (std::size_t j = start; j < args.size();) {
    if (!policy_given && parse_ref_policy(args[j], out.policy)) {
      policy_given = true;
      ++j;
    } else if (same_word(args[j], "ids") && j + 1 < args.size()) {
      std::int64_t n = 0;
      if (!protocol::parse_int64_strict(args[j + 1], n) || n < 1) {
        return "ERR Number of IDs must be a positive integer";
      }
      if (static_cast<std::uint64_t>(n) > args.size() - j - 2) {
        return "ERR The `numids` parameter must match the number of arguments";
      }
      out.first_id = j + 2;
      out.count = static_cast<std::size_t>(n);
      ids_given = true;  // a second IDS block replaces the first, as in Redis
      j = out.first_id + out.count;
    } else {
      return "ERR syntax error";
    }
  }
  if (!ids_given) return "ERR IDS option is required";
  return {};
}

Result<storage::StreamId> parse_range_start(std::string_view text) { return parse_bound(text, true); }
Result<storage::StreamId> parse_range_end(std::string_view text) { return parse_bound(text, false); }

}  // namespace runnel
