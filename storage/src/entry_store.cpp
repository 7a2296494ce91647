// The entry payload encoding drawn in entry_store.hpp.
#include <runnel/storage/entry_store.hpp>

#include "varint.hpp"

namespace runnel::storage {

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
