// Encoding of RESP2/RESP3 replies.
#include <runnel/protocol/reply_writer.hpp>

#include <charconv>
#include <cmath>
#include <cstdio>

namespace runnel::protocol {

void ReplyWriter::header(char type, std::int64_t count) {
  char buf[24];
  buf[0] = type;
  auto [end, ec] = std::to_chars(buf + 1, buf + sizeof(buf) - 2, count);
  (void)ec;  // 22 characters always hold an int64
  *end++ = '\r';
  *end++ = '\n';
  out_->append(buf, static_cast<std::size_t>(end - buf));
}

void ReplyWriter::simple(std::string_view text) {
  out_->push_back('+');
  out_->append(text);
  out_->append("\r\n");
}

void ReplyWriter::error(std::string_view text) {
  out_->push_back('-');
  out_->append(text);
  out_->append("\r\n");
}

void ReplyWriter::integer(std::int64_t value) { header(':', value); }

void ReplyWriter::bulk(std::string_view bytes) {
  header('$', static_cast<std::int64_t>(bytes.size()));
  out_->append(bytes);
  out_->append("\r\n");
}

void ReplyWriter::null() {
  out_->append(version_ == RespVersion::kResp3 ? "_\r\n" : "$-1\r\n");
}

void ReplyWriter::null_array() {
  out_->append(version_ == RespVersion::kResp3 ? "_\r\n" : "*-1\r\n");
}

void ReplyWriter::array(std::size_t count) { header('*', static_cast<std::int64_t>(count)); }

void ReplyWriter::map(std::size_t pairs) {
  if (version_ == RespVersion::kResp3) {
    header('%', static_cast<std::int64_t>(pairs));
  } else {
    header('*', static_cast<std::int64_t>(pairs * 2));
  }
}

void ReplyWriter::set(std::size_t count) {
  header(version_ == RespVersion::kResp3 ? '~' : '*', static_cast<std::int64_t>(count));
}

void ReplyWriter::push(std::size_t count) {
  header(version_ == RespVersion::kResp3 ? '>' : '*', static_cast<std::int64_t>(count));
}

void ReplyWriter::boolean(bool value) {
  if (version_ == RespVersion::kResp3) {
    out_->append(value ? "#t\r\n" : "#f\r\n");
  } else {
    out_->append(value ? ":1\r\n" : ":0\r\n");
  }
}

void ReplyWriter::dbl(double value) {
  char buf[64];
  int len = 0;
  if (std::isinf(value)) {
    len = std::snprintf(buf, sizeof(buf), "%s", value > 0 ? "inf" : "-inf");
  } else {
    len = std::snprintf(buf, sizeof(buf), "%.17g", value);
  }
  const std::string_view text(buf, static_cast<std::size_t>(len));
  if (version_ == RespVersion::kResp3) {
    out_->push_back(',');
    out_->append(text);
    out_->append("\r\n");
  } else {
    bulk(text);
  }
}

void ReplyWriter::verbatim(std::string_view text, std::string_view format) {
  if (version_ == RespVersion::kResp3) {
    header('=', static_cast<std::int64_t>(text.size() + format.size() + 1));
    out_->append(format);
    out_->push_back(':');
    out_->append(text);
    out_->append("\r\n");
  } else {
    bulk(text);
  }
}

}  // namespace runnel::protocol
