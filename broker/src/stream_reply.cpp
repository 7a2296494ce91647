#include "stream_reply.hpp"

namespace runnel {

void write_stream_id(protocol::ReplyWriter& reply, storage::StreamId id) {
  char buf[48];
  reply.bulk(std::string_view(buf, id.format(buf)));
}

void write_entry(protocol::ReplyWriter& reply, const storage::EntryView& entry) {
  reply.array(2);
  write_stream_id(reply, entry.id);
  storage::FieldCursor fields(entry.payload);
  reply.array(fields.count());
  std::string_view field;
  while (fields.next(field)) reply.bulk(field);
}

std::size_t write_range(protocol::ReplyWriter& reply, const storage::EntryStore& entries,
                        storage::StreamId start, storage::StreamId end, bool reverse,
                        std::size_t count,
                        const std::function<void(storage::StreamId)>& on_entry) {
  // The array header needs the count, known only after the scan: write the entries to a
  // side buffer first.
  std::string body;
  protocol::ReplyWriter out(body, reply.version());
  std::size_t emitted = 0;
  entries.scan(start, end, reverse, [&](const storage::EntryView& entry) {
    write_entry(out, entry);
    if (on_entry) on_entry(entry.id);
    ++emitted;
    return count == 0 || emitted < count;
  });
  reply.array(emitted);
  reply.buffer().append(body);
  return emitted;
}

}  // namespace runnel
