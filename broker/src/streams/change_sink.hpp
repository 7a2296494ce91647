// ChangeSink: where a shard's streams report what changed, so it can be made durable. One
// per shard (ShardStorage implements it); a stream kept in memory only has none. The model
// (stream.hpp, group.hpp) calls it from its ops and knows nothing of files, journals or
// flushes.
#pragma once

#include <memory>
#include <string_view>

#include <runnel/storage/entry_store.hpp>
#include <runnel/storage/stream_id.hpp>

#include "streams/result.hpp"

namespace runnel {

class Stream;

class ChangeSink {
 public:
  virtual ~ChangeSink() = default;

  // A stream is being created under `key`: the store its entries live in.
  [[nodiscard]] virtual Result<std::unique_ptr<storage::EntryStore>> create_store(std::string_view key) = 0;
  // The stream `key`, made by create_store's store, now exists.
  virtual void stream_created(std::string_view key, Stream& stream) = 0;
  // The stream `key` is being deleted.
  virtual void stream_removed(std::string_view key, Stream& stream) = 0;

  // Entries were appended, trimmed or deleted, or the stream's metadata changed.
  virtual void stream_changed(Stream& stream) = 0;
  // A group was created, or its last-delivered ID or entries-read changed.
  virtual void group_changed(Stream& stream, std::string_view group) = 0;
  virtual void group_destroyed(Stream& stream, std::string_view group) = 0;
  // A consumer was created, deleted, or became active.
  virtual void consumer_changed(Stream& stream, std::string_view group, std::string_view consumer) = 0;
  // A consumer's seen time alone changed (a read or claim attempt): kept with the stream's
  // next write, or written within a second, but nothing waits for it.
  virtual void consumer_seen(Stream& stream, std::string_view group, std::string_view consumer) = 0;
  // Idempotent producers (Redis 8.6): the window was set (XCFGSET), an idempotent ID
  // recorded with the entry it added, or a duplicate counted.
  virtual void idmp_configured(Stream& stream) = 0;
  virtual void idmp_recorded(Stream& stream, std::string_view pid, std::string_view iid, storage::StreamId id) = 0;
  virtual void idmp_counted(Stream& stream) = 0;
  // A pending entry was added, delivered again, claimed or acknowledged.
  virtual void pending_changed(Stream& stream, std::string_view group, storage::StreamId id) = 0;

  // Keys of every type (keyspace.hpp), as whole states: a string's value and the time it
  // expires at (0: never); a stream's TTL (0: none); a key that held a string or a TTL is
  // gone (deleted, expired, renamed away).
  virtual void string_written(std::string_view key, std::string_view value, std::int64_t expires_at) = 0;
  virtual void ttl_written(std::string_view key, std::int64_t expires_at) = 0;
  virtual void key_forgotten(std::string_view key) = 0;
};

}  // namespace runnel
