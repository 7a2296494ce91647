// Redis 7.0's DUMP/RESTORE format for streams; the layout is drawn in rdb.hpp.
#include <runnel/storage/rdb.hpp>

#include "listpack_size.hpp"

#include <array>
#include <limits>
#include <optional>
#include <set>

namespace runnel::storage::rdb {
namespace {

// --- CRC64 (Jones, reflected) -------------------------------------------------------------

constexpr std::array<std::uint64_t, 256> make_crc_table() {
  constexpr std::uint64_t kReflectedPoly = 0x95ac9329ac4bc9b5ULL;  // 0xad93d23594c935a9 reversed
  std::array<std::uint64_t, 256> table{};
  for (std::uint64_t i = 0; i < 256; ++i) {
    std::uint64_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc & 1) ? (crc >> 1) ^ kReflectedPoly : crc >> 1;
    table[i] = crc;
  }
  return table;
}
constexpr auto kCrcTable = make_crc_table();

// --- writing -------------------------------------------------------------------------------

void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_be(std::string& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_len(std::string& out, std::uint64_t len) {
  if (len < 64) {
    out.push_back(static_cast<char>(len));
  } else if (len < 16384) {
    out.push_back(static_cast<char>(0x40 | (len >> 8)));
    out.push_back(static_cast<char>(len & 0xff));
  } else if (len <= std::numeric_limits<std::uint32_t>::max()) {
    out.push_back(static_cast<char>(0x80));
    put_be(out, len, 4);
  } else {
    out.push_back(static_cast<char>(0x81));
    put_be(out, len, 8);
  }
}

// Plain strings only (no integer or LZF forms): every Redis reads them.
void put_string(std::string& out, std::string_view s) {
  put_len(out, s.size());
  out.append(s);
}

void put_raw_id(std::string& out, StreamId id) {
  put_be(out, id.ms, 8);
  put_be(out, id.seq, 8);
}

std::string raw_id(StreamId id) {
  std::string out;
  put_raw_id(out, id);
  return out;
}


class ListpackWriter {
 public:
  ListpackWriter() { bytes_.assign(6, '\0'); }

  void add_int(std::int64_t v) {
    const std::size_t start = bytes_.size();
    const auto u = static_cast<std::uint64_t>(v);
    if (v >= 0 && v <= 127) {
      bytes_.push_back(static_cast<char>(v));
    } else if (v >= -4096 && v <= 4095) {
      const std::uint64_t t = u & 0x1fff;
      bytes_.push_back(static_cast<char>(0xc0 | (t >> 8)));
      bytes_.push_back(static_cast<char>(t & 0xff));
    } else if (v >= -32768 && v <= 32767) {
      bytes_.push_back(static_cast<char>(0xf1));
      put_le(bytes_, u, 2);
    } else if (v >= -8388608 && v <= 8388607) {
      bytes_.push_back(static_cast<char>(0xf2));
      put_le(bytes_, u, 3);
    } else if (v >= std::numeric_limits<std::int32_t>::min() && v <= std::numeric_limits<std::int32_t>::max()) {
      bytes_.push_back(static_cast<char>(0xf3));
      put_le(bytes_, u, 4);
    } else {
      bytes_.push_back(static_cast<char>(0xf4));
      put_le(bytes_, u, 8);
    }
    finish_element(start);
  }

  void add(std::string_view s) {
    std::int64_t v = 0;
    if (listpack::as_int64(s, v)) return add_int(v);
    const std::size_t start = bytes_.size();
    if (s.size() < 64) {
      bytes_.push_back(static_cast<char>(0x80 | s.size()));
    } else if (s.size() < 4096) {
      bytes_.push_back(static_cast<char>(0xe0 | (s.size() >> 8)));
      bytes_.push_back(static_cast<char>(s.size() & 0xff));
    } else {
      bytes_.push_back(static_cast<char>(0xf0));
      put_le(bytes_, s.size(), 4);
    }
    bytes_.append(s);
    finish_element(start);
  }

  [[nodiscard]] std::size_t size() const { return bytes_.size() + 1; }  // with the end byte
  // Rewrites the one-byte element at `offset` (a 7-bit integer), keeping its size.
  void patch_small_int(std::size_t offset, std::uint8_t value) { bytes_[offset] = static_cast<char>(value & 127); }

  std::string finish() {
    bytes_.push_back(static_cast<char>(0xff));
    std::string head;
    put_le(head, bytes_.size(), 4);
    put_le(head, std::min<std::size_t>(elements_, 65535), 2);
    bytes_.replace(0, 6, head);
    return std::move(bytes_);
  }

 private:
  // The back-length: the element's size in 7-bit groups, most significant first, each but
  // the first with its high bit set (listpack.c's lpEncodeBacklen).
  void finish_element(std::size_t start) {
    const std::uint64_t len = bytes_.size() - start;
    int groups = 1;
    while (groups < 5 && (len >> (7 * groups)) != 0) ++groups;
    for (int g = groups - 1; g >= 0; --g) {
      const auto part = static_cast<char>((len >> (7 * g)) & 127);
      bytes_.push_back(g == groups - 1 ? part : static_cast<char>(part | 128));
    }
    ++elements_;
  }

  std::string bytes_;
  std::size_t elements_ = 0;
};

constexpr std::int64_t kFlagDeleted = 1;
constexpr std::int64_t kFlagSameFields = 2;

// One node, built as it grows: the master entry at the front (its count written last: at
// most 100, one byte), the entries after it.
class NodeWriter {
 public:
  static constexpr std::size_t kCountOffset = 6;  // the first element, after the header

  NodeWriter(const Entry& first, const NodeLimits& limits) : master_(first.id), limits_(limits) {
    lp_.add_int(0);  // count, patched in finish()
    lp_.add_int(0);  // deleted
    lp_.add_int(static_cast<std::int64_t>(first.fields.size()));
    for (const auto& [field, value] : first.fields) {
      fields_.push_back(field);
      lp_.add(field);
    }
    lp_.add_int(0);
  }

  // Whether `e` still goes into this node, by Redis's rule for closing one (streamAppendItem:
  // the listpack's bytes plus the entry's raw field and value bytes, and the entry count).
  [[nodiscard]] bool fits(const Entry& e) const {
    std::size_t raw = 0;
    for (const auto& [field, value] : e.fields) raw += field.size() + value.size();
    return entries_ < limits_.entries() && lp_.size() + raw < limits_.bytes();
  }

  void add(const Entry& e) {
    bool same = e.fields.size() == fields_.size();
    for (std::size_t i = 0; same && i < fields_.size(); ++i) same = e.fields[i].first == fields_[i];
    lp_.add_int(same ? kFlagSameFields : 0);
    lp_.add_int(static_cast<std::int64_t>(e.id.ms - master_.ms));
    lp_.add_int(static_cast<std::int64_t>(e.id.seq - master_.seq));
    std::int64_t count = 3;
    if (!same) {
      lp_.add_int(static_cast<std::int64_t>(e.fields.size()));
      ++count;
    }
    for (const auto& [field, value] : e.fields) {
      if (!same) {
        lp_.add(field);
        ++count;
      }
      lp_.add(value);
      ++count;
    }
    lp_.add_int(count);
    ++entries_;
  }

  [[nodiscard]] StreamId master() const { return master_; }
  std::string finish() {
    lp_.patch_small_int(kCountOffset, static_cast<std::uint8_t>(entries_));
    return lp_.finish();
  }

 private:
  StreamId master_;
  const NodeLimits& limits_;
  std::vector<std::string> fields_;
  ListpackWriter lp_;
  std::size_t entries_ = 0;
};

// --- reading -------------------------------------------------------------------------------

struct Bad {
  std::string what;
};
// The stream's entries would pass the decoded-size limit.
struct TooLarge {};

class Reader {
 public:
  // `limit`: the most bytes a decoded string, and the stream's entries together, may take.
  explicit Reader(std::string_view bytes, std::uint64_t limit = UINT64_MAX) : rest_(bytes), limit_(limit) {}

  // A new stream value: its entries are counted from 0.
  void start_value() { decoded_ = 0; }
  // Counts `bytes` more of decoded entries against the limit.
  void charge(std::uint64_t bytes) {
    decoded_ += bytes;
    if (decoded_ > limit_) throw TooLarge{};
  }

  [[nodiscard]] bool empty() const { return rest_.empty(); }
  [[nodiscard]] std::size_t left() const { return rest_.size(); }

  std::uint8_t byte() {
    need(1);
    const auto b = static_cast<std::uint8_t>(rest_[0]);
    rest_.remove_prefix(1);
    return b;
  }

  std::uint64_t be(int n) {
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v = (v << 8) | byte();
    return v;
  }

  std::uint64_t le(int n) {
    need(static_cast<std::size_t>(n));
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(static_cast<std::uint8_t>(rest_[static_cast<std::size_t>(i)])) << (8 * i);
    rest_.remove_prefix(static_cast<std::size_t>(n));
    return v;
  }

  std::string_view take(std::uint64_t n) {
    if (n > rest_.size()) throw Bad{"a length runs past the payload"};
    const std::string_view out = rest_.substr(0, static_cast<std::size_t>(n));
    rest_.remove_prefix(static_cast<std::size_t>(n));
    return out;
  }

  // A length; `special` (when given) is set for the 11xxxxxx string forms, which then return
  // their 6-bit code.
  std::uint64_t len(bool* special = nullptr) {
    const std::uint8_t b = byte();
    switch (b >> 6) {
      case 0: return b & 0x3f;
      case 1: return (static_cast<std::uint64_t>(b & 0x3f) << 8) | byte();
      case 2:
        if (b == 0x80) return be(4);
        if (b == 0x81) return be(8);
        throw Bad{"an unknown length form"};
      default:
        if (special == nullptr) throw Bad{"a string form where a length belongs"};
        *special = true;
        return b & 0x3f;
    }
  }

  // A count of things that each take at least `min_bytes` of what is left: a count the
  // payload cannot hold is refused before anything is reserved for it.
  std::uint64_t count(std::size_t min_bytes) {
    const std::uint64_t n = len();
    if (min_bytes != 0 && n > rest_.size() / min_bytes) throw Bad{"a count larger than the payload can hold"};
    return n;
  }

  std::string string() {
    bool special = false;
    const std::uint64_t n = len(&special);
    if (!special) return std::string(take(n));
    switch (n) {
      case 0: return std::to_string(static_cast<std::int8_t>(byte()));
      case 1: return std::to_string(static_cast<std::int16_t>(le(2)));
      case 2: return std::to_string(static_cast<std::int32_t>(le(4)));
      case 3: return lzf();
      default: throw Bad{"an unknown string encoding"};
    }
  }

  std::int64_t time_ms() { return static_cast<std::int64_t>(le(8)); }

  StreamId raw_id() {
    StreamId id;
    id.ms = be(8);
    id.seq = be(8);
    return id;
  }

  StreamId len_id() {
    StreamId id;
    id.ms = len();
    id.seq = len();
    return id;
  }

 private:
  void need(std::size_t n) const {
    if (rest_.size() < n) throw Bad{"the payload ends early"};
  }

  // LZF (liblzf's format, as Redis writes it): literal runs and back-references.
  std::string lzf() {
    const std::uint64_t compressed = len();
    const std::uint64_t plain = len();
    const std::string_view in = take(compressed);
    if (plain > compressed * 256 + 64) throw Bad{"an LZF string that claims too much"};
    if (plain > limit_) throw TooLarge{};  // nothing is reserved for what the limit refuses
    std::string out;
    out.reserve(static_cast<std::size_t>(plain));
    std::size_t i = 0;
    while (i < in.size()) {
      const auto ctrl = static_cast<std::uint8_t>(in[i++]);
      if (ctrl < 32) {
        const std::size_t run = ctrl + 1u;
        if (i + run > in.size() || out.size() + run > plain) throw Bad{"a bad LZF literal"};
        out.append(in.substr(i, run));
        i += run;
        continue;
      }
      std::size_t length = ctrl >> 5;
      if (length == 7) {
        if (i >= in.size()) throw Bad{"a bad LZF reference"};
        length += static_cast<std::uint8_t>(in[i++]);
      }
      length += 2;
      if (i >= in.size()) throw Bad{"a bad LZF reference"};
      const std::size_t back = ((ctrl & 0x1fu) << 8) + static_cast<std::uint8_t>(in[i++]) + 1;
      if (back > out.size() || out.size() + length > plain) throw Bad{"a bad LZF reference"};
      for (std::size_t k = 0; k < length; ++k) out.push_back(out[out.size() - back]);
    }
    if (out.size() != plain) throw Bad{"an LZF string of the wrong length"};
    return out;
  }

  std::string_view rest_;
  std::uint64_t limit_;
  std::uint64_t decoded_ = 0;
};

// A listpack's elements, each an integer or a string.
struct Element {
  bool is_int = false;
  std::int64_t value = 0;
  std::string_view text;

  [[nodiscard]] std::string str() const { return is_int ? std::to_string(value) : std::string(text); }
  [[nodiscard]] std::int64_t integer() const {
    if (is_int) return value;
    std::int64_t v = 0;
    if (!listpack::as_int64(text, v)) throw Bad{"a string where a stream node holds an integer"};
    return v;
  }
};

std::int64_t sign_extend(std::uint64_t v, int bits) {
  const std::uint64_t sign = std::uint64_t{1} << (bits - 1);
  return static_cast<std::int64_t>((v ^ sign) - sign);
}

std::vector<Element> read_listpack(std::string_view lp) {
  if (lp.size() < 7) throw Bad{"a listpack shorter than its header"};
  Reader head(lp.substr(0, 6));
  if (head.le(4) != lp.size()) throw Bad{"a listpack whose size is not its length"};
  const std::uint64_t declared = head.le(2);
  if (static_cast<std::uint8_t>(lp.back()) != 0xff) throw Bad{"a listpack without its end byte"};
  std::vector<Element> out;
  std::string_view rest = lp.substr(6, lp.size() - 7);
  while (!rest.empty()) {
    Reader r(rest);
    const std::uint8_t b = r.byte();
    Element e;
    if ((b & 0x80) == 0) {
      e = {true, b, {}};
    } else if ((b & 0xc0) == 0x80) {
      e.text = r.take(b & 0x3f);
    } else if ((b & 0xe0) == 0xc0) {
      e = {true, sign_extend((static_cast<std::uint64_t>(b & 0x1f) << 8) | r.byte(), 13), {}};
    } else if ((b & 0xf0) == 0xe0) {
      e.text = r.take((static_cast<std::uint64_t>(b & 0x0f) << 8) | r.byte());
    } else if (b == 0xf0) {
      e.text = r.take(r.le(4));
    } else if (b >= 0xf1 && b <= 0xf4) {
      const int bytes = b == 0xf1 ? 2 : b == 0xf2 ? 3 : b == 0xf3 ? 4 : 8;
      e = {true, sign_extend(r.le(bytes), 8 * bytes), {}};
    } else {
      throw Bad{"an unknown listpack element encoding"};
    }
    const std::size_t encoded = rest.size() - r.left();
    // The back-length must say the element's size, as it is written.
    int groups = 1;
    while (groups < 5 && (static_cast<std::uint64_t>(encoded) >> (7 * groups)) != 0) ++groups;
    if (r.left() < static_cast<std::size_t>(groups)) throw Bad{"a listpack element without its back-length"};
    for (int g = groups - 1; g >= 0; --g) {
      const auto part = static_cast<std::uint8_t>((encoded >> (7 * g)) & 127);
      const std::uint8_t want = g == groups - 1 ? part : static_cast<std::uint8_t>(part | 128);
      if (r.byte() != want) throw Bad{"a listpack element with a wrong back-length"};
    }
    rest.remove_prefix(rest.size() - r.left());
    out.push_back(e);
  }
  if (declared != 65535 && declared != out.size()) throw Bad{"a listpack whose element count is wrong"};
  return out;
}

// The entries of one node. Each is charged to `r` as DUMP counts it (its fields and values,
// plus 16): a SAMEFIELDS entry of a few bytes repeats the master's field names, so what a
// payload decodes to can be far larger than the payload.
void read_node(Reader& r, StreamId master, std::string_view lp, std::vector<Entry>& entries) {
  const std::vector<Element> el = read_listpack(lp);
  std::size_t i = 0;
  auto next = [&]() -> const Element& {
    if (i >= el.size()) throw Bad{"a stream node that ends inside an entry"};
    return el[i++];
  };
  const std::int64_t count = next().integer();
  const std::int64_t deleted = next().integer();
  const std::int64_t nfields = next().integer();
  if (count < 0 || deleted < 0 || nfields < 0 || static_cast<std::uint64_t>(nfields) > el.size()) {
    throw Bad{"a stream node with a bad master entry"};
  }
  if (count + deleted == 0) throw Bad{"an empty stream node"};
  std::vector<std::string> master_fields;
  for (std::int64_t f = 0; f < nfields; ++f) master_fields.push_back(next().str());
  if (next().integer() != 0) throw Bad{"a stream node's master entry without its end"};
  std::int64_t live = 0, dead = 0;
  while (i < el.size()) {
    const std::size_t first = i;
    const std::int64_t flags = next().integer();
    if ((flags & ~(kFlagDeleted | kFlagSameFields)) != 0) throw Bad{"unknown stream entry flags"};
    StreamId id;
    id.ms = master.ms + static_cast<std::uint64_t>(next().integer());
    id.seq = master.seq + static_cast<std::uint64_t>(next().integer());
    Entry e{id, {}};
    std::int64_t n = nfields;
    const bool same = (flags & kFlagSameFields) != 0;
    if (!same) {
      n = next().integer();
      if (n < 0 || static_cast<std::uint64_t>(n) > el.size()) throw Bad{"a stream entry with a bad field count"};
    }
    std::uint64_t bytes = 16;
    for (std::int64_t f = 0; f < n; ++f) {
      const std::size_t at = static_cast<std::size_t>(f);
      bytes += (same ? master_fields[at].size() : 0);
      r.charge(bytes);
      bytes = 0;
      std::string field = same ? master_fields[at] : next().str();
      std::string value = next().str();
      r.charge(value.size() + (same ? 0 : field.size()));
      e.fields.emplace_back(std::move(field), std::move(value));
    }
    const std::int64_t lp_count = next().integer();
    if (lp_count != static_cast<std::int64_t>(i - first - 1)) throw Bad{"a stream entry whose element count is wrong"};
    if ((flags & kFlagDeleted) != 0) {
      ++dead;
      continue;
    }
    ++live;
    if (!entries.empty() && !(entries.back().id < id)) throw Bad{"stream entries out of order"};
    if (e.fields.empty()) throw Bad{"a stream entry without fields"};
    entries.push_back(std::move(e));
  }
  if (live != count || dead != deleted) throw Bad{"a stream node whose counts are wrong"};
}

Stream read_stream(Reader& r, std::uint8_t type) {
  r.start_value();
  Stream s;
  const std::uint64_t nodes = r.count(2);
  StreamId previous_master;
  for (std::uint64_t n = 0; n < nodes; ++n) {
    const std::string key = r.string();
    if (key.size() != 16) throw Bad{"a stream node key that is not an ID"};
    Reader k(key);
    const StreamId master = k.raw_id();
    if (n > 0 && !(previous_master < master)) throw Bad{"stream nodes out of order"};
    previous_master = master;
    const std::string lp = r.string();
    read_node(r, master, lp, s.entries);
  }
  const std::uint64_t length = r.len();
  if (length != s.entries.size()) throw Bad{"a stream length that is not its entry count"};
  s.last_id = r.len_id();
  if (!s.entries.empty() && s.last_id < s.entries.back().id) throw Bad{"a last ID below the last entry"};
  if (type >= kTypeStreamListpacks2) {
    s.first_id = r.len_id();
    s.max_deleted_id = r.len_id();
    s.entries_added = r.len();
  } else {
    s.first_id = s.entries.empty() ? StreamId::min() : s.entries.front().id;
    s.entries_added = length;  // what Redis 7.0 assumes for an older payload
  }
  const std::uint64_t groups = r.count(4);
  std::set<std::string> names;
  for (std::uint64_t g = 0; g < groups; ++g) {
    Group group;
    group.name = r.string();
    if (!names.insert(group.name).second) throw Bad{"a consumer group twice"};
    group.last_delivered = r.len_id();
    if (type >= kTypeStreamListpacks2) group.entries_read = static_cast<std::int64_t>(r.len());
    const std::uint64_t pel = r.count(17);
    std::set<StreamId> pending;
    for (std::uint64_t p = 0; p < pel; ++p) {
      PendingEntry e;
      e.id = r.raw_id();
      e.delivery_time_ms = r.time_ms();
      e.delivery_count = r.len();
      if (!pending.insert(e.id).second) throw Bad{"a pending entry twice in a group"};
      group.pel.push_back(e);
    }
    std::set<StreamId> owned;
    std::set<std::string> consumer_names;
    const std::uint64_t consumers = r.count(9);
    for (std::uint64_t c = 0; c < consumers; ++c) {
      Consumer consumer;
      consumer.name = r.string();
      if (!consumer_names.insert(consumer.name).second) throw Bad{"a consumer twice in a group"};
      consumer.seen_time_ms = r.time_ms();
      if (type >= kTypeStreamListpacks3) consumer.active_time_ms = r.time_ms();
      const std::uint64_t own = r.count(16);
      for (std::uint64_t p = 0; p < own; ++p) {
        const StreamId id = r.raw_id();
        if (pending.count(id) == 0) throw Bad{"a consumer's pending entry missing from its group's PEL"};
        if (!owned.insert(id).second) throw Bad{"a pending entry owned twice"};
        consumer.pending.push_back(id);
      }
      group.consumers.push_back(std::move(consumer));
    }
    if (owned.size() != pending.size()) throw Bad{"a pending entry without a consumer"};
    s.groups.push_back(std::move(group));
  }
  return s;
}

// Redis's RDB type numbers, and what to call them in a summary.
const char* type_name(std::uint8_t type) {
  switch (type) {
    case 0: return "string";
    case 1: case 10: case 14: case 18: return "list";
    case 2: case 11: case 20: return "set";
    case 3: case 5: case 12: case 17: return "zset";
    case 4: case 9: case 13: case 16: return "hash";
    case 6: case 7: return "module";
    default: return "unknown";
  }
}

// An old-style zset score: a length byte, then that much text (253-255: NaN, +inf, -inf).
void skip_text_double(Reader& r) {
  const std::uint8_t n = r.byte();
  if (n < 253) (void)r.take(n);
}

// Steps over a value that is not a stream. False: a type this reader cannot skip.
bool skip_value(Reader& r, std::uint8_t type) {
  switch (type) {
    case 0: case 9: case 10: case 11: case 12: case 13: case 16: case 17: case 20:
      (void)r.string();  // a plain string, or one blob (ziplist, intset, listpack, zipmap)
      return true;
    case 1: case 2: case 14: {
      for (std::uint64_t n = r.count(1); n > 0; --n) (void)r.string();
      return true;
    }
    case 3: {
      for (std::uint64_t n = r.count(2); n > 0; --n) {
        (void)r.string();
        skip_text_double(r);
      }
      return true;
    }
    case 4: {
      for (std::uint64_t n = r.count(2); n > 0; --n) {
        (void)r.string();
        (void)r.string();
      }
      return true;
    }
    case 5: {
      for (std::uint64_t n = r.count(9); n > 0; --n) {
        (void)r.string();
        (void)r.take(8);
      }
      return true;
    }
    case 18: {
      for (std::uint64_t n = r.count(2); n > 0; --n) {
        (void)r.len();  // the node's container kind
        (void)r.string();
      }
      return true;
    }
    case 7: {  // a module value that says where it ends: typed fields up to an EOF opcode
      (void)r.len();  // module ID
      for (;;) {
        switch (r.len()) {
          case 0: return true;
          case 1: case 2: (void)r.len(); break;
          case 3: (void)r.take(4); break;
          case 4: (void)r.take(8); break;
          case 5: (void)r.string(); break;
          default: throw Bad{"a module value with an unknown field"};
        }
      }
    }
    default:
      return false;
  }
}

}  // namespace

std::string read_rdb_file(std::string_view file, const std::function<void(FileStream&&)>& on_stream,
                          std::map<std::string, std::uint64_t>& skipped, std::uint64_t max_entry_bytes) {
  if (file.size() < 9 || file.substr(0, 5) != "REDIS") return "not an RDB file (no REDIS header)";
  int version = 0;
  for (const char c : file.substr(5, 4)) {
    if (c < '0' || c > '9') return "not an RDB file (a bad version)";
    version = version * 10 + (c - '0');
  }
  if (version > kMaxRdbVersion) return "RDB version " + std::to_string(version) + " is newer than this reader knows";
  Reader r(file.substr(9), max_entry_bytes);
  std::int64_t expire_ms = -1;
  std::uint64_t db = 0;  // Runnel has database 0 only: the others' keys are counted, not read
  try {
    for (;;) {
      const std::uint8_t op = r.byte();
      switch (op) {
        case 0xff: {  // EOF, then the checksum (0: none was computed)
          if (version >= 5) {
            const std::uint64_t crc = r.le(8);
            if (crc != 0 && crc != crc64(0, file.substr(0, file.size() - r.left() - 8))) return "the file's checksum is wrong";
          }
          return "";
        }
        case 0xfa: (void)r.string(); (void)r.string(); continue;  // AUX field
        case 0xfb: (void)r.len(); (void)r.len(); continue;        // RESIZEDB
        case 0xfe: db = r.len(); continue;                        // SELECTDB
        case 0xfd: expire_ms = static_cast<std::int64_t>(r.le(4)) * 1000; continue;
        case 0xfc: expire_ms = static_cast<std::int64_t>(r.le(8)); continue;
        case 0xf8: (void)r.len(); continue;   // IDLE
        case 0xf9: (void)r.byte(); continue;  // FREQ
        case 0xf5: (void)r.string(); ++skipped["function library"]; continue;  // FUNCTION2
        case 0xf7: return "a module's auxiliary data, which this reader cannot skip";
        default: break;
      }
      std::string key = r.string();
      const bool stream = op == kTypeStreamListpacks || op == kTypeStreamListpacks2 || op == kTypeStreamListpacks3;
      if (stream && db == 0) {
        on_stream(FileStream{std::move(key), expire_ms, read_stream(r, op)});
      } else if (stream) {
        (void)read_stream(r, op);
        ++skipped["stream in a database other than 0"];
      } else if (skip_value(r, op)) {
        ++skipped[type_name(op)];
      } else {
        return "a value of RDB type " + std::to_string(op) + " (key '" + key.substr(0, 64) +
               "'), which this reader cannot skip";
      }
      expire_ms = -1;
    }
  } catch (const Bad& bad) {
    return "the file is damaged: " + bad.what;
  } catch (const TooLarge&) {
    return "a stream whose entries pass " + std::to_string(max_entry_bytes) +
           " bytes, more than one RESTORE may carry (proto-max-bulk-len)";
  }
}

std::uint64_t crc64(std::uint64_t crc, std::string_view bytes) {
  for (const char c : bytes) crc = kCrcTable[(crc ^ static_cast<std::uint8_t>(c)) & 0xff] ^ (crc >> 8);
  return crc;
}

std::string dump_stream(const Stream& stream, const NodeLimits& limits) {
  std::string out;
  out.push_back(static_cast<char>(kTypeStreamListpacks2));
  // The nodes, Redis's way: a new one after stream-node-max-entries, or where the next would
  // take the listpack to stream-node-max-bytes.
  std::vector<std::pair<StreamId, std::string>> nodes;
  std::optional<NodeWriter> node;
  for (const Entry& e : stream.entries) {
    if (node && !node->fits(e)) {
      nodes.emplace_back(node->master(), node->finish());
      node.reset();
    }
    if (!node) node.emplace(e, limits);
    node->add(e);
  }
  if (node) nodes.emplace_back(node->master(), node->finish());
  put_len(out, nodes.size());
  for (const auto& [master, lp] : nodes) {
    put_string(out, raw_id(master));
    put_string(out, lp);
  }
  put_len(out, stream.entries.size());
  put_len(out, stream.last_id.ms);
  put_len(out, stream.last_id.seq);
  put_len(out, stream.first_id.ms);
  put_len(out, stream.first_id.seq);
  put_len(out, stream.max_deleted_id.ms);
  put_len(out, stream.max_deleted_id.seq);
  put_len(out, stream.entries_added);
  put_len(out, stream.groups.size());
  for (const Group& g : stream.groups) {
    put_string(out, g.name);
    put_len(out, g.last_delivered.ms);
    put_len(out, g.last_delivered.seq);
    put_len(out, static_cast<std::uint64_t>(g.entries_read));
    put_len(out, g.pel.size());
    for (const PendingEntry& p : g.pel) {
      put_raw_id(out, p.id);
      put_le(out, static_cast<std::uint64_t>(p.delivery_time_ms), 8);
      put_len(out, p.delivery_count);
    }
    put_len(out, g.consumers.size());
    for (const Consumer& c : g.consumers) {
      put_string(out, c.name);
      put_le(out, static_cast<std::uint64_t>(c.seen_time_ms), 8);
      put_len(out, c.pending.size());
      for (const StreamId id : c.pending) put_raw_id(out, id);
    }
  }
  put_le(out, kRdbVersion, 2);
  put_le(out, crc64(0, out), 8);
  return out;
}

std::variant<Stream, RestoreError> restore_stream(std::string_view payload, std::uint64_t max_entry_bytes) {
  using Kind = RestoreError::Kind;
  if (payload.size() < 10) return RestoreError{Kind::kChecksum, "shorter than its trailer"};
  const std::string_view body = payload.substr(0, payload.size() - 10);
  Reader trailer(payload.substr(payload.size() - 10));
  const auto version = static_cast<std::uint16_t>(trailer.le(2));
  const std::uint64_t crc = trailer.le(8);
  if (version > kMaxRdbVersion) return RestoreError{Kind::kChecksum, "RDB version " + std::to_string(version)};
  // A zero checksum means "not computed" to Redis (RDB files written with it off).
  if (crc != 0 && crc != crc64(0, payload.substr(0, payload.size() - 8))) {
    return RestoreError{Kind::kChecksum, "checksum"};
  }
  Reader r(body, max_entry_bytes);
  try {
    const std::uint8_t type = r.byte();
    if (type != kTypeStreamListpacks && type != kTypeStreamListpacks2 && type != kTypeStreamListpacks3) {
      return RestoreError{Kind::kNotAStream, "RDB type " + std::to_string(type)};
    }
    Stream s = read_stream(r, type);
    if (!r.empty()) throw Bad{"bytes after the stream"};
    return s;
  } catch (const Bad& bad) {
    return RestoreError{Kind::kBadFormat, bad.what};
  } catch (const TooLarge&) {
    return RestoreError{Kind::kTooLarge, "its entries pass " + std::to_string(max_entry_bytes) + " bytes"};
  }
}

}  // namespace runnel::storage::rdb
