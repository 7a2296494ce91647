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

void write_delete_codes(protocol::ReplyWriter& reply, std::span<const DeleteCode> codes) {
  reply.array(codes.size());
  for (const DeleteCode code : codes) reply.integer(static_cast<std::int64_t>(code));
}

void write_ids(protocol::ReplyWriter& reply, std::span<const storage::StreamId> ids) {
  reply.array(ids.size());
  for (const storage::StreamId id : ids) write_stream_id(reply, id);
}

void write_entry(protocol::ReplyWriter& reply, const Entries& entries, const Entries::Item& item) {
  reply.array(entries.with_delivery() ? 4 : 2);
  write_stream_id(reply, item.id);
  if (item.deleted) {
    reply.null_array();
  } else {
    storage::FieldCursor fields(entries.payload(item));
    reply.array(fields.count());
    std::string_view field;
    while (fields.next(field)) reply.bulk(field);
  }
  if (entries.with_delivery()) {
    reply.integer(item.idle_ms);
    reply.integer(static_cast<std::int64_t>(item.deliveries));
  }
}

void write_entries(protocol::ReplyWriter& reply, const Entries& entries) {
  reply.array(entries.size());
  for (const Entries::Item& item : entries.items()) write_entry(reply, entries, item);
}

void write_keyed_entries(protocol::ReplyWriter& reply, std::span<const KeyEntries> keyed) {
  if (keyed.empty()) return reply.null_array();
  const bool resp3 = reply.version() == protocol::RespVersion::kResp3;
  if (resp3) {
    reply.map(keyed.size());
  } else {
    reply.array(keyed.size());
  }
  for (const KeyEntries& k : keyed) {
    if (!resp3) reply.array(2);
    reply.bulk(k.key);
    write_entries(reply, *k.entries);
  }
}

void write_claimed(protocol::ReplyWriter& reply, const Claimed& claimed, bool justid) {
  if (justid) return write_ids(reply, claimed.ids);
  write_entries(reply, claimed.entries);
}

void write_autoclaimed(protocol::ReplyWriter& reply, const AutoClaimed& claimed, bool justid) {
  reply.array(3);
  write_stream_id(reply, claimed.next);
  if (justid) {
    write_ids(reply, claimed.ids);
  } else {
    write_entries(reply, claimed.entries);
  }
  write_ids(reply, claimed.deleted);
}

void write_pending_summary(protocol::ReplyWriter& reply, const PendingSummary& summary) {
  reply.array(4);
  reply.integer(static_cast<std::int64_t>(summary.count));
  if (summary.count == 0) {
    reply.null();
    reply.null();
    reply.null_array();
    return;
  }
  write_stream_id(reply, summary.smallest);
  write_stream_id(reply, summary.largest);
  reply.array(summary.consumers.size());
  for (const auto& [name, count] : summary.consumers) {
    reply.array(2);
    reply.bulk(name);
    reply.bulk(std::to_string(count));
  }
}

void write_pending(protocol::ReplyWriter& reply, const std::vector<PendingItem>& items) {
  reply.array(items.size());
  for (const PendingItem& p : items) {
    reply.array(4);
    write_stream_id(reply, p.id);
    reply.bulk(p.owner);
    reply.integer(p.idle_ms);
    reply.integer(static_cast<std::int64_t>(p.delivery_count));
  }
}

void write_entries_read_and_lag(protocol::ReplyWriter& reply, const Stream& s, const ConsumerGroup& g) {
  reply.bulk("entries-read");
  if (g.entries_read() != kEntriesReadUnknown) {
    reply.integer(g.entries_read());
  } else {
    reply.null();
  }
  reply.bulk("lag");
  if (const auto lag = s.lag(g)) {
    reply.integer(*lag);
  } else {
    reply.null();
  }
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

std::string error_text(std::string_view key, const OpError& error) {
  if (error.code != Errc::kStorage) return error.text;
  read_errors.fetch_add(1, std::memory_order_relaxed);
  std::string text = error.cause.damage() ? "DAMAGED" : "IOERR";
  text += " cannot read stream '";
  text += key;
  text += "': ";
  text += error.cause.what;
  log_once("Stream '" + log::escape_sample(key) + "': a read failed, answered with an error: " + error.cause.what);
  return text;
}

void write_error(protocol::ReplyWriter& reply, std::string_view key, const OpError& error) {
  reply.error(error_text(key, error));
}

std::uint64_t storage_read_errors() { return read_errors.load(std::memory_order_relaxed); }

}  // namespace runnel
