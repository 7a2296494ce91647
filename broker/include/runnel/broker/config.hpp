// Config: every setting of a Runnel server. Names follow redis.conf where the concept is the
// same; runnel-server maps each field to a flag of the same name (see docs/configuration.md).
#pragma once

#include <cstdint>
#include <string>

namespace runnel {

// The least each of the disk bounds below may be set to.
inline constexpr std::uint64_t kMinDiskBound = 1024 * 1024;

struct Config {
  std::string bind = "127.0.0.1";
  std::uint16_t port = 6379;  // 0 picks a free port (see Broker::port())
  std::string dir = "./data";
  unsigned threads = 0;  // shards; 0 means one per core
  std::string requirepass;  // empty: no password
  std::uint32_t maxclients = 10000;
  std::string loglevel = "notice";  // debug, verbose, notice, warning
  std::string logfile;              // runnel-server's log lines go here ("": stderr)

  // Storage (docs/storage.md). Streams live in <dir>/streams as segment files.
  std::string fsync = "everysec";  // always, everysec or no (Redis's appendfsync)
  std::uint64_t segment_bytes = 64ull * 1024 * 1024;  // a segment file rolls at this size
  std::uint64_t cache_bytes = 128ull * 1024 * 1024;   // tail cache, all streams together
  // Retention for every stream, beyond Redis (Kafka's retention.bytes and retention.ms):
  // whole old segments are dropped past these bounds (0: no bound).
  std::uint64_t stream_max_bytes = 0;
  std::uint64_t stream_max_age = 0;  // seconds
  // Per shard, bounds on what waits for the disk. Under fsync always: the write-ahead log
  // is checkpointed early once it is this long (it bounds the replay after a crash) ...
  std::uint64_t wal_checkpoint_bytes = 32ull * 1024 * 1024;
  // ... and at most this many bytes the log holds wait in memory for their streams' files;
  // past it, flushes write the files directly.
  std::uint64_t write_behind_bytes = 256ull * 1024 * 1024;
  // Most stream files (segments, group journals) open at once, over all shards; the least
  // recently used is closed when another must open. 0: an eighth of the open files limit
  // (after it is raised to the hard limit), at least 16 and at most 16384.
  std::uint64_t max_open_files = 0;
  // Under everysec and no: while a batch of an eighth of this is being written, a writer to
  // a stream with a 64th of it waiting gets its reply once its own batch is written; while a
  // batch of this much is, every writer does.

  // Where a stream's nodes close (Redis's stream-node-max-entries and -bytes; 0: no limit,
  // which Runnel caps at 10000 entries and 1 MiB). CONFIG SET changes them while running.
  std::uint64_t stream_node_max_entries = 100;
  std::uint64_t stream_node_max_bytes = 4096;

  // Protocol limits, checked before allocating.
  std::uint64_t proto_max_bulk_len = 512ull * 1024 * 1024;
  std::uint64_t proto_max_multibulk_len = 1024 * 1024;
  std::uint64_t proto_inline_max_size = 64 * 1024;
  // A connection whose unparsed input passes this is closed (Redis's client-query-buffer-limit).
  std::uint64_t client_query_buffer_limit = 1024ull * 1024 * 1024;
  // Reading from a connection pauses while its unsent replies exceed this many bytes.
  std::uint64_t reply_pause_bytes = 4 * 1024 * 1024;
  // A connection whose unsent replies exceed this is disconnected (0: no limit).
  std::uint64_t client_output_buffer_limit = 1024ull * 1024 * 1024;
  // A subscriber whose unsent messages pass this is closed (Redis's pubsub class hard
  // limit, 32 MB; 0: never).
  std::uint64_t pubsub_output_buffer_limit = 32ull * 1024 * 1024;
  // Redis's pubsub class soft limit: a subscriber whose unsent messages stay past this for
  // more than the seconds is closed (0 bytes: none).
  std::uint64_t pubsub_output_buffer_soft_limit = 8ull * 1024 * 1024;
  std::uint64_t pubsub_output_buffer_soft_seconds = 60;
  // Redis's replica class, kept for CONFIG GET/SET only: Runnel has no replicas.
  std::uint64_t replica_output_buffer_limits[3] = {256ull * 1024 * 1024, 64ull * 1024 * 1024, 60};
  // Messages a PUBLISH may leave queued for another shard's subscribers, in bytes, before
  // publishers wait for that shard to deliver them (0: no bound).
  std::uint64_t pubsub_backlog_bytes = 32ull * 1024 * 1024;
  // String keys live in memory: past this many bytes of them (keys, values and 64 bytes
  // each), writes that add string bytes get -OOM (0: no limit).
  std::uint64_t maxmemory_strings = 256ull * 1024 * 1024;
  // SLOWLOG: commands that take at least this many microseconds are logged (negative: none,
  // 0: every command), the newest slowlog-max-len kept.
  std::int64_t slowlog_log_slower_than = 10000;
  std::uint64_t slowlog_max_len = 128;
};

}  // namespace runnel
