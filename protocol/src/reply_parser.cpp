// Reply parsing for the client SDK and the test harnesses.
#include <runnel/protocol/reply_parser.hpp>

#include <runnel/protocol/request_parser.hpp>

namespace runnel::protocol {
namespace {

class Parser {
 public:
  Parser(std::string_view input, std::size_t max_depth) : in_(input), max_depth_(max_depth) {}

  ReplyStatus value(Reply& out, std::size_t depth) {
    if (depth > max_depth_) return ReplyStatus::kError;
    std::string_view line;
    if (auto st = read_line(line); st != ReplyStatus::kDone) return st;
    if (line.empty()) return ReplyStatus::kError;
    const char type = line[0];
    const std::string_view rest = line.substr(1);
    switch (type) {
      case '+': return text(out, Reply::Type::kSimple, rest);
      case '-': return text(out, Reply::Type::kError, rest);
      case ',': return text(out, Reply::Type::kDouble, rest);
      case '(': return text(out, Reply::Type::kBigNumber, rest);
      case '_': out.type = Reply::Type::kNull; return ReplyStatus::kDone;
      case ':': {
        out.type = Reply::Type::kInteger;
        return parse_int64_strict(rest, out.integer) ? ReplyStatus::kDone : ReplyStatus::kError;
      }
      case '#': {
        out.type = Reply::Type::kBoolean;
        if (rest != "t" && rest != "f") return ReplyStatus::kError;
        out.integer = rest == "t" ? 1 : 0;
        return ReplyStatus::kDone;
      }
      case '$':
      case '=': return blob(out, type, rest);
      case '*': return aggregate(out, Reply::Type::kArray, rest, depth, 1);
      case '%': return aggregate(out, Reply::Type::kMap, rest, depth, 2);
      case '~': return aggregate(out, Reply::Type::kSet, rest, depth, 1);
      case '>': return aggregate(out, Reply::Type::kPush, rest, depth, 1);
      default: return ReplyStatus::kError;
    }
  }

  [[nodiscard]] std::size_t pos() const { return pos_; }

 private:
  ReplyStatus read_line(std::string_view& line) {
    const std::size_t cr = in_.find("\r\n", pos_);
    if (cr == std::string_view::npos) return ReplyStatus::kNeedMore;
    line = in_.substr(pos_, cr - pos_);
    pos_ = cr + 2;
    return ReplyStatus::kDone;
  }

  static ReplyStatus text(Reply& out, Reply::Type type, std::string_view rest) {
    out.type = type;
    out.str.assign(rest);
    return ReplyStatus::kDone;
  }

  ReplyStatus blob(Reply& out, char type, std::string_view rest) {
    std::int64_t len = 0;
    if (!parse_int64_strict(rest, len)) return ReplyStatus::kError;
    if (len == -1 && type == '$') {
      out.type = Reply::Type::kNull;
      return ReplyStatus::kDone;
    }
    if (len < 0) return ReplyStatus::kError;
    const auto size = static_cast<std::size_t>(len);
    if (in_.size() - pos_ < size + 2) return ReplyStatus::kNeedMore;
    std::string_view payload = in_.substr(pos_, size);
    pos_ += size + 2;
    if (type == '=') {
      if (payload.size() < 4 || payload[3] != ':') return ReplyStatus::kError;
      out.type = Reply::Type::kVerbatim;
      payload.remove_prefix(4);
    } else {
      out.type = Reply::Type::kBulk;
    }
    out.str.assign(payload);
    return ReplyStatus::kDone;
  }

  ReplyStatus aggregate(Reply& out, Reply::Type type, std::string_view rest, std::size_t depth,
                        std::int64_t per_item) {
    std::int64_t count = 0;
    if (!parse_int64_strict(rest, count)) return ReplyStatus::kError;
    if (count == -1 && type == Reply::Type::kArray) {
      out.type = Reply::Type::kNull;
      return ReplyStatus::kDone;
    }
    if (count < 0) return ReplyStatus::kError;
    out.type = type;
    out.elements.clear();
    for (std::int64_t i = 0; i < count * per_item; ++i) {
      // Each element needs at least 3 bytes: do not trust the count beyond the input.
      if (in_.size() - pos_ < 3) return ReplyStatus::kNeedMore;
      Reply element;
      if (auto st = value(element, depth + 1); st != ReplyStatus::kDone) return st;
      out.elements.push_back(std::move(element));
    }
    return ReplyStatus::kDone;
  }

  std::string_view in_;
  std::size_t max_depth_;
  std::size_t pos_ = 0;
};

void render(const Reply& reply, std::string& out, int indent) {
  auto pad = [&] { out.append(static_cast<std::size_t>(indent) * 2, ' '); };
  switch (reply.type) {
    case Reply::Type::kSimple: out += reply.str; break;
    case Reply::Type::kError: out += "(error) " + reply.str; break;
    case Reply::Type::kInteger: out += "(integer) " + std::to_string(reply.integer); break;
    case Reply::Type::kBulk:
    case Reply::Type::kVerbatim: out += '"' + reply.str + '"'; break;
    case Reply::Type::kNull: out += "(nil)"; break;
    case Reply::Type::kDouble: out += "(double) " + reply.str; break;
    case Reply::Type::kBigNumber: out += "(big number) " + reply.str; break;
    case Reply::Type::kBoolean: out += reply.integer ? "(true)" : "(false)"; break;
    case Reply::Type::kArray:
    case Reply::Type::kMap:
    case Reply::Type::kSet:
    case Reply::Type::kPush: {
      if (reply.elements.empty()) {
        out += reply.type == Reply::Type::kMap ? "(empty hash)" : "(empty array)";
        break;
      }
      for (std::size_t i = 0; i < reply.elements.size(); ++i) {
        if (i > 0) {
          out += '\n';
          pad();
        }
        out += std::to_string(i + 1) + ") ";
        render(reply.elements[i], out, indent + 1);
      }
      break;
    }
  }
}

}  // namespace

ReplyParseResult parse_reply(std::string_view input, Reply& out, std::size_t max_depth) {
  Parser parser(input, max_depth);
  const ReplyStatus status = parser.value(out, 0);
  return {status, status == ReplyStatus::kDone ? parser.pos() : 0};
}

std::string to_display_string(const Reply& reply) {
  std::string out;
  render(reply, out, 0);
  return out;
}

}  // namespace runnel::protocol
