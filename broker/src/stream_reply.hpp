// Encoders: one per reply shape of the stream and group ops, turning their typed results
// (streams/) into RESP2 or RESP3. An entry is [id, [field, value, ...]] ([id, nil] when
// deleted), a range is an array of entries.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <runnel/protocol/reply_writer.hpp>
#include <runnel/storage/stream_id.hpp>

#include "streams/entries.hpp"
#include "streams/result.hpp"
#include "streams/stream.hpp"

namespace runnel {

void write_stream_id(protocol::ReplyWriter& reply, storage::StreamId id);
void write_ids(protocol::ReplyWriter& reply, std::span<const storage::StreamId> ids);
// XDELEX's and XACKDEL's reply: an integer per ID (the same in RESP2 and RESP3).
void write_delete_codes(protocol::ReplyWriter& reply, std::span<const DeleteCode> codes);
// One entry, and an array of them.
void write_entry(protocol::ReplyWriter& reply, const Entries& entries, const Entries::Item& item);
void write_entries(protocol::ReplyWriter& reply, const Entries& entries);
// XREAD's reply: for each key with entries, [key, entries] (a map in RESP3).
struct KeyEntries {
  std::string_view key;
  const Entries* entries;
};
void write_keyed_entries(protocol::ReplyWriter& reply, std::span<const KeyEntries> keyed);
// XCLAIM's and XAUTOCLAIM's.
void write_claimed(protocol::ReplyWriter& reply, const Claimed& claimed, bool justid);
void write_autoclaimed(protocol::ReplyWriter& reply, const AutoClaimed& claimed, bool justid);
// XPENDING's two forms.
void write_pending_summary(protocol::ReplyWriter& reply, const PendingSummary& summary);
void write_pending(protocol::ReplyWriter& reply, const std::vector<PendingItem>& items);
// The "entries-read" and "lag" fields (names and values; null when unknown), as XINFO GROUPS
// and XINFO STREAM FULL show them.
void write_entries_read_and_lag(protocol::ReplyWriter& reply, const Stream& s, const ConsumerGroup& g);

// The error reply text (without '-') for an op's error on `key`. A failed read becomes
// DAMAGED (bytes on disk that are wrong) or IOERR (a read the system refused), with the
// stream and the cause; each counts one read error (INFO's storage_read_errors), and each
// cause is logged once.
std::string error_text(std::string_view key, const OpError& error);
void write_error(protocol::ReplyWriter& reply, std::string_view key, const OpError& error);
std::uint64_t storage_read_errors();

}  // namespace runnel
