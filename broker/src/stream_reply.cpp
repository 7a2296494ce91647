#include "stream_reply.hpp"

#include <atomic>
#include <mutex>
#include <unordered_set>

#include "log.hpp"

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

storage::Error write_range(protocol::ReplyWriter& reply, const storage::EntryStore& entries,
                           storage::StreamId start, storage::StreamId end, bool reverse, std::size_t count,
                           const std::function<void(storage::StreamId)>& on_entry, std::size_t* emitted) {
  // The array header needs the count, known only after the scan: write the entries to a
  // side buffer first.
  std::string body;
  protocol::ReplyWriter out(body, reply.version());
  std::size_t n = 0;
  storage::Error error = entries.scan(start, end, reverse, [&](const storage::EntryView& entry) {
    write_entry(out, entry);
    if (on_entry) on_entry(entry.id);
    ++n;
    return count == 0 || n < count;
  });
  if (emitted != nullptr) *emitted = error ? 0 : n;
  if (error) return error;
  reply.array(n);
  reply.buffer().append(body);
  return {};
}

namespace {

std::atomic<std::uint64_t> read_errors{0};

// Logs a cause the first time it is met (at most 1,024 causes are remembered).
void log_once(const std::string& line) {
  static std::mutex mutex;
  static std::unordered_set<std::string> seen;
  {
    std::lock_guard lock(mutex);
    if (seen.size() >= 1024 || !seen.insert(line).second) return;
  }
  log::warning(line);
}

}  // namespace

std::string read_error_text(std::string_view key, const storage::Error& error) {
  read_errors.fetch_add(1, std::memory_order_relaxed);
  std::string text = error.damage() ? "DAMAGED" : "IOERR";
  text += " cannot read stream '";
  text += key;
  text += "': ";
  text += error.what;
  log_once("Stream '" + log::escape_sample(key) + "': a read failed, answered with an error: " + error.what);
  return text;
}

std::uint64_t storage_read_errors() { return read_errors.load(std::memory_order_relaxed); }

}  // namespace runnel
