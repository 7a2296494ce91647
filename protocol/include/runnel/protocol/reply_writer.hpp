// ReplyWriter: encodes replies in RESP2 or RESP3 into a byte buffer the caller owns.
// Types RESP2 lacks are written the way Redis writes them to RESP2 clients (a map becomes a
// flat array, a double a bulk string, a boolean an integer, null "$-1" or "*-1").
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace runnel::protocol {

enum class RespVersion : std::uint8_t { kResp2 = 2, kResp3 = 3 };

// Appends to `out`, which must outlive the writer. Aggregates are written as a header with the
// element count, followed by exactly that many elements (a map's count is its pairs).
class ReplyWriter {
 public:
  ReplyWriter(std::string& out, RespVersion version) : out_(&out), version_(version) {}

  [[nodiscard]] RespVersion version() const { return version_; }
  [[nodiscard]] std::string& buffer() { return *out_; }

  void simple(std::string_view text);  // +text (must hold no CR or LF)
  void error(std::string_view text);   // -text, e.g. error("ERR syntax error")
  void integer(std::int64_t value);    // :value
  void bulk(std::string_view bytes);   // $len bytes
  void null();                         // RESP2 "$-1", RESP3 "_"
  void null_array();                   // RESP2 "*-1", RESP3 "_"
  void array(std::size_t count);       // *count
  void map(std::size_t pairs);         // RESP3 %pairs, RESP2 *(2*pairs)
  void set(std::size_t count);         // RESP3 ~count, RESP2 *count
  void push(std::size_t count);        // RESP3 >count (out of band), RESP2 *count
  void boolean(bool value);            // RESP3 #t/#f, RESP2 :1/:0
  void dbl(double value);              // RESP3 ,value; RESP2 a bulk string, "%.17g" as Redis
  void verbatim(std::string_view text, std::string_view format = "txt");  // RESP3 =, RESP2 bulk
  void ok() { out_->append("+OK\r\n"); }

 private:
  void header(char type, std::int64_t count);

  std::string* out_;
  RespVersion version_;
};

}  // namespace runnel::protocol
