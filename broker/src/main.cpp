// runnel-server: the command-line front of runnel::Broker.
#include <csignal>
#include <cstdio>
#include <thread>

#include <CLI/CLI.hpp>

#include <runnel/broker/broker.hpp>

#include "log.hpp"

int main(int argc, char** argv) {
  runnel::Config config;
  CLI::App app{"Runnel: an event broker that speaks Redis Streams and keeps them on disk"};
  app.set_config("--config", "", "Read flags from an INI/TOML file (key = value per line)");
  app.add_option("--port", config.port, "TCP port (0 picks a free one)")->capture_default_str();
  app.add_option("--bind", config.bind, "Address to listen on")->capture_default_str();
  app.add_option("--dir", config.dir, "Data directory")->capture_default_str();
  app.add_option("--threads", config.threads, "Shards (threads); 0 = one per core")
      ->capture_default_str();
  app.add_option("--requirepass", config.requirepass, "Password for AUTH (empty: none)");
  app.add_option("--maxclients", config.maxclients, "Maximum connected clients")
      ->capture_default_str()
      ->check(CLI::Range(1u, 4294967295u));
  app.add_option("--logfile", config.logfile,
                 "Append log lines to this file instead of stderr; SIGHUP opens it again (for logrotate)");
  app.add_option("--loglevel", config.loglevel, "debug, verbose, notice or warning")
      ->capture_default_str()
      ->check(CLI::IsMember({"debug", "verbose", "notice", "warning"}));
  app.add_option("--fsync", config.fsync,
                 "When the stream log is fsync'ed: always (before replying), everysec, no")
      ->capture_default_str()
      ->check(CLI::IsMember({"always", "everysec", "no"}));
  app.add_option("--segment-bytes", config.segment_bytes, "A segment file rolls at this size")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{4096}, std::uint64_t{1} << 40));
  app.add_option("--cache-bytes", config.cache_bytes,
                 "Memory for the newest entries of all streams (older ones are read from disk)")
      ->capture_default_str();
  app.add_option("--stream-max-bytes", config.stream_max_bytes,
                 "Drop a stream's oldest segments while it is larger than this (0: no limit)")
      ->capture_default_str();
  app.add_option("--stream-max-age", config.stream_max_age,
                 "Drop a stream's segments whose entries are all older than this many seconds (0: no limit)")
      ->capture_default_str();
  app.add_option("--wal-checkpoint-bytes", config.wal_checkpoint_bytes,
                 "fsync always: checkpoint a shard's write-ahead log early once it is this long")
      ->capture_default_str()
      ->check(CLI::Range(runnel::kMinDiskBound, std::uint64_t{INT64_MAX}));
  app.add_option("--write-behind-bytes", config.write_behind_bytes,
                 "fsync always: most bytes per shard waiting in memory for their files once logged")
      ->capture_default_str()
      ->check(CLI::Range(runnel::kMinDiskBound, std::uint64_t{INT64_MAX}));
  app.add_option("--max-open-files", config.max_open_files,
                 "Most stream files kept open at once (0: an eighth of the open files limit)")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{1} << 30));
  app.add_option("--stream-node-max-entries", config.stream_node_max_entries,
                 "A stream node closes after this many entries (0: no limit, capped at 10000)")
      ->capture_default_str();
  app.add_option("--stream-node-max-bytes", config.stream_node_max_bytes,
                 "A stream node closes at this many bytes of Redis's listpack (0: no limit, capped at 1 MiB)")
      ->capture_default_str();
  app.add_option("--proto-max-bulk-len", config.proto_max_bulk_len,
                 "Largest bulk string a client may send, in bytes")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1024 * 1024}, std::uint64_t{INT64_MAX}));
  app.add_option("--proto-max-multibulk-len", config.proto_max_multibulk_len,
                 "Most arguments in one command")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{INT32_MAX}));
  app.add_option("--client-query-buffer-limit", config.client_query_buffer_limit,
                 "Largest unparsed input per connection, in bytes")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1024 * 1024}, std::uint64_t{INT64_MAX}));
  app.add_option("--client-output-buffer-limit", config.client_output_buffer_limit,
                 "Disconnect a client whose unsent replies exceed this many bytes (0: never)")
      ->capture_default_str();
  app.add_option("--pubsub-output-buffer-limit", config.pubsub_output_buffer_limit,
                 "Disconnect a subscriber whose unsent messages exceed this many bytes (0: never)")
      ->capture_default_str();
  app.add_option("--pubsub-output-buffer-soft-limit", config.pubsub_output_buffer_soft_limit,
                 "Disconnect a subscriber whose unsent messages stay above this many bytes for longer than "
                 "--pubsub-output-buffer-soft-seconds (0: never)")
      ->capture_default_str();
  app.add_option("--pubsub-output-buffer-soft-seconds", config.pubsub_output_buffer_soft_seconds,
                 "How long a subscriber may stay above the soft limit")
      ->capture_default_str();
  app.add_option("--pubsub-backlog-bytes", config.pubsub_backlog_bytes,
                 "Bytes of messages a shard may have queued from other shards' PUBLISHes before "
                 "publishers wait for it (0: no bound)")
      ->capture_default_str();
  app.add_option("--maxmemory-strings", config.maxmemory_strings,
                 "Refuse string writes with -OOM once string keys use this many bytes of memory (0: no limit)")
      ->capture_default_str();
  app.add_option("--slowlog-log-slower-than", config.slowlog_log_slower_than,
                 "SLOWLOG keeps commands that take at least this many microseconds (negative: none, 0: all)")
      ->capture_default_str();
  app.add_option("--slowlog-max-len", config.slowlog_max_len, "SLOWLOG keeps this many entries at most")
      ->capture_default_str();
  app.add_option("--reply-pause-bytes", config.reply_pause_bytes,
                 "Stop reading from a client while its unsent replies exceed this many bytes")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1024}, std::uint64_t{INT64_MAX}));
  CLI11_PARSE(app, argc, argv);

  // SIGINT and SIGTERM are taken by a thread of our own, so the stop runs in normal context.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);   // --logfile: open it again
  sigaddset(&signals, SIGUSR1);  // sent by main itself to end the signal thread
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  if (const std::string error = runnel::log::open_file(config.logfile); !error.empty()) {
    std::fprintf(stderr, "runnel-server: %s\n", error.c_str());
    return 1;
  }
  runnel::Broker broker(config);
  try {
    broker.start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "runnel-server: %s\n", e.what());
    return 1;
  }
  std::thread signal_thread([&] {
    int received = 0;
    sigwait(&signals, &received);
    while (received == SIGHUP) {
      runnel::log::reopen();
      sigwait(&signals, &received);
    }
    if (received == SIGUSR1) return;
    runnel::log::notice(received == SIGINT ? "Received SIGINT, shutting down" : "Received SIGTERM, shutting down");
    broker.stop();
  });
  broker.wait();
  // The signal thread may still be waiting; wake it so it can be joined.
  pthread_kill(signal_thread.native_handle(), SIGUSR1);
  signal_thread.join();
  return 0;
}
