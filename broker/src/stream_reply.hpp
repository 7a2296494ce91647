// Writing stream entries as replies: an entry is [id, [field, value, ...]], a range is an
// array of entries. Shared by XRANGE, XREAD, XINFO and the blocked-reader wake-ups.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <runnel/protocol/reply_writer.hpp>
#include <runnel/storage/entry_store.hpp>

namespace runnel {

void write_stream_id(protocol::ReplyWriter& reply, storage::StreamId id);
void write_entry(protocol::ReplyWriter& reply, const storage::EntryView& entry);
// Writes the entries with start <= id <= end as an array, at most `count` of them (0: all),
// calling `on_entry` (if given) with each ID written, and setting `*emitted` (if given) to
// how many it wrote. If an entry cannot be read back, it writes nothing and returns the
// error: the caller answers with read_error_text, never with the part before it.
[[nodiscard]] storage::Error write_range(protocol::ReplyWriter& reply, const storage::EntryStore& entries,
                                         storage::StreamId start, storage::StreamId end, bool reverse,
                                         std::size_t count,
                                         const std::function<void(storage::StreamId)>& on_entry = {},
                                         std::size_t* emitted = nullptr);

// The error reply (without its '-') to a command whose read of `key` met `error`: DAMAGED for
// bytes on disk that are wrong, IOERR for a read the system refused, with the stream and the
// cause. Each call counts one read error (INFO's storage_read_errors); each cause is logged
// once.
std::string read_error_text(std::string_view key, const storage::Error& error);
std::uint64_t storage_read_errors();

}  // namespace runnel
