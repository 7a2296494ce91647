// The entry payload encoding drawn in entry_store.hpp.
#include <runnel/storage/entry_store.hpp>

namespace runnel::storage {
namespace {

void put_varint(std::uint64_t value, std::string& out) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

bool get_varint(std::string_view& in, std::uint64_t& value) {
  value = 0;
  for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
    const auto byte = static_cast<unsigned char>(in.front());
    in.remove_prefix(1);
    value |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

}  // namespace

void encode_fields(std::span<const std::string_view> fields, std::string& out) {
  put_varint(fields.size(), out);
  for (std::string_view field : fields) {
    put_varint(field.size(), out);
    out.append(field);
  }
}

FieldCursor::FieldCursor(std::string_view payload) : rest_(payload) {
  if (!get_varint(rest_, count_)) count_ = 0;
}

bool FieldCursor::next(std::string_view& out) {
  if (read_ >= count_) return false;
  std::uint64_t len = 0;
  if (!get_varint(rest_, len) || len > rest_.size()) {
    read_ = count_;
    return false;
  }
  out = rest_.substr(0, len);
  rest_.remove_prefix(len);
  ++read_;
  return true;
}

}  // namespace runnel::storage
