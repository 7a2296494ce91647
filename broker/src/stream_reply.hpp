// Writing stream entries as replies: an entry is [id, [field, value, ...]], a range is an
// array of entries. Shared by XRANGE, XREAD, XINFO and the blocked-reader wake-ups.
#pragma once

#include <cstddef>
#include <functional>

#include <runnel/protocol/reply_writer.hpp>
#include <runnel/storage/entry_store.hpp>

namespace runnel {

void write_stream_id(protocol::ReplyWriter& reply, storage::StreamId id);
void write_entry(protocol::ReplyWriter& reply, const storage::EntryView& entry);
// Writes the entries with start <= id <= end as an array, at most `count` of them (0: all),
// calling `on_entry` (if given) with each ID written. Returns how many it wrote.
std::size_t write_range(protocol::ReplyWriter& reply, const storage::EntryStore& entries,
                        storage::StreamId start, storage::StreamId end, bool reverse,
                        std::size_t count,
                        const std::function<void(storage::StreamId)>& on_entry = {});

}  // namespace runnel
