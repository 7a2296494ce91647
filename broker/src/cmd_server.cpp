// Server commands: COMMAND, INFO, CONFIG, TIME and SHUTDOWN.
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <set>

#include <runnel/storage/file.hpp>

#include "command.hpp"
#include "glob.hpp"
#include "log.hpp"
#include "memory.hpp"
#include "stream_reply.hpp"
#include "version.hpp"

namespace runnel {
namespace {

std::string human_bytes(std::uint64_t bytes) {
  char buf[32];
  const double b = static_cast<double>(bytes);
  if (bytes < 1024) {
    std::snprintf(buf, sizeof(buf), "%lluB", static_cast<unsigned long long>(bytes));
  } else if (bytes < 1024ull * 1024) {
    std::snprintf(buf, sizeof(buf), "%.2fK", b / 1024);
  } else if (bytes < 1024ull * 1024 * 1024) {
    std::snprintf(buf, sizeof(buf), "%.2fM", b / (1024 * 1024));
  } else {
    std::snprintf(buf, sizeof(buf), "%.2fG", b / (1024.0 * 1024 * 1024));
  }
  return buf;
}

// --- CONFIG -----------------------------------------------------------------------------

// Parses "100", "1k" (1000), "1kb" (1024), "2mb", "1gb", as Redis's memtoull does.
bool parse_memory(std::string_view text, std::uint64_t& value) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return false;
  const std::string unit = to_lower(text.substr(digits));
  std::uint64_t mul = 1;
  if (unit.empty() || unit == "b") mul = 1;
  else if (unit == "k") mul = 1000;
  else if (unit == "kb") mul = 1024;
  else if (unit == "m") mul = 1000 * 1000;
  else if (unit == "mb") mul = 1024 * 1024;
  else if (unit == "g") mul = 1000ull * 1000 * 1000;
  else if (unit == "gb") mul = 1024ull * 1024 * 1024;
  else return false;
  std::int64_t number = 0;
  if (!parse_int64(text.substr(0, digits), number) || number < 0) return false;
  if (static_cast<std::uint64_t>(number) > UINT64_MAX / mul) return false;
  value = static_cast<std::uint64_t>(number) * mul;
  return true;
}

struct ConfigParam {
  std::string_view name;
  std::function<std::string(const Config&)> get;
  // Null for parameters fixed at start-up. Returns an error text, or empty on success.
  std::function<std::string(Config&, std::string_view)> set;
};

std::function<std::string(Config&, std::string_view)> memory_setter(
    std::uint64_t Config::*field, std::uint64_t min) {
  return [field, min](Config& c, std::string_view v) -> std::string {
    std::uint64_t value = 0;
    if (!parse_memory(v, value)) return "argument must be a memory value";
    if (value < min || value > static_cast<std::uint64_t>(INT64_MAX)) {
      return "argument must be between " + std::to_string(min) +
             " and 9223372036854775807 inclusive";
    }
    c.*field = value;
    return {};
  };
}

// CONFIG SET client-output-buffer-limit, as Redis's setConfigClientOutputBufferLimitOption
// reads it (its error texts), all classes checked before any is set.
std::string set_output_buffer_limits(Config& c, std::string_view v) {
  std::vector<std::string_view> words;
  for (std::size_t at = 0; at < v.size();) {
    const std::size_t end = std::min(v.find(' ', at), v.size());
    if (end > at) words.push_back(v.substr(at, end - at));
    at = end + 1;
  }
  if (words.size() == 1) {  // one value: the normal class's hard limit
    std::uint64_t hard = 0;
    if (!parse_memory(words[0], hard)) return "argument must be a memory value";
    c.client_output_buffer_limit = hard;
    return {};
  }
  if (words.empty() || words.size() % 4 != 0) return "Wrong number of arguments in buffer limit configuration.";
  Config next = c;
  for (std::size_t j = 0; j < words.size(); j += 4) {
    const std::string name = to_lower(words[j]);
    if (name != "normal" && name != "slave" && name != "replica" && name != "pubsub") {
      return "Invalid client class specified in buffer limit configuration.";
    }
    std::uint64_t hard = 0, soft = 0;
    std::int64_t seconds = 0;
    if (!parse_memory(words[j + 1], hard) || !parse_memory(words[j + 2], soft) || !parse_int64(words[j + 3], seconds) ||
        seconds < 0) {
      return "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
    }
    if (name == "normal") {
      if (soft != 0) return "Runnel has no soft limit for the normal class (set it to 0 0; the hard limit applies)";
      next.client_output_buffer_limit = hard;
    } else if (name == "pubsub") {
      next.pubsub_output_buffer_limit = hard;
      next.pubsub_output_buffer_soft_limit = soft;
      next.pubsub_output_buffer_soft_seconds = static_cast<std::uint64_t>(seconds);
    } else {
      next.replica_output_buffer_limits[0] = hard;
      next.replica_output_buffer_limits[1] = soft;
      next.replica_output_buffer_limits[2] = static_cast<std::uint64_t>(seconds);
    }
  }
  c = next;
  return {};
}

const std::vector<ConfigParam>& config_params() {
  static const std::vector<ConfigParam> params = {
      {"bind", [](const Config& c) { return c.bind; }, nullptr},
      {"port", [](const Config& c) { return std::to_string(c.port); }, nullptr},
      {"dir", [](const Config& c) { return c.dir; }, nullptr},
      {"logfile", [](const Config& c) { return c.logfile; }, nullptr},
      {"threads", [](const Config& c) { return std::to_string(c.threads); }, nullptr},
      {"databases", [](const Config&) { return std::string("1"); }, nullptr},
      // Asked for by redis-benchmark (and monitoring tools): no RDB snapshots, and no AOF
      // file (INFO's aof_enabled:0); the streams persist in their own files, always.
      {"save", [](const Config&) { return std::string(); }, nullptr},
      {"appendonly", [](const Config&) { return std::string("no"); }, nullptr},
      {"fsync", [](const Config& c) { return c.fsync; }, nullptr},
      {"appendfsync", [](const Config& c) { return c.fsync; }, nullptr},
      {"segment-bytes", [](const Config& c) { return std::to_string(c.segment_bytes); }, nullptr},
      {"cache-bytes", [](const Config& c) { return std::to_string(c.cache_bytes); }, nullptr},
      {"stream-max-bytes", [](const Config& c) { return std::to_string(c.stream_max_bytes); }, nullptr},
      {"stream-max-age", [](const Config& c) { return std::to_string(c.stream_max_age); }, nullptr},
      {"wal-checkpoint-bytes", [](const Config& c) { return std::to_string(c.wal_checkpoint_bytes); }, nullptr},
      {"write-behind-bytes", [](const Config& c) { return std::to_string(c.write_behind_bytes); }, nullptr},
      {"max-open-files", [](const Config& c) { return std::to_string(c.max_open_files); }, nullptr},
      {"requirepass", [](const Config& c) { return c.requirepass; },
       [](Config& c, std::string_view v) {
         c.requirepass.assign(v);
         return std::string();
       }},
      {"stream-node-max-entries", [](const Config& c) { return std::to_string(c.stream_node_max_entries); },
       [](Config& c, std::string_view v) -> std::string {
         std::int64_t n = 0;
         if (!parse_int64(v, n)) return "argument couldn't be parsed into an integer";
         if (n < 0) return "argument must be between 0 and 9223372036854775807 inclusive";
         c.stream_node_max_entries = static_cast<std::uint64_t>(n);
         return {};
       }},
      {"stream-node-max-bytes", [](const Config& c) { return std::to_string(c.stream_node_max_bytes); },
       memory_setter(&Config::stream_node_max_bytes, 0)},
      {"maxclients", [](const Config& c) { return std::to_string(c.maxclients); },
       [](Config& c, std::string_view v) -> std::string {
         std::int64_t n = 0;
         if (!parse_int64(v, n)) return "argument couldn't be parsed into an integer";
         if (n < 1 || n > UINT32_MAX) {
           return "argument must be between 1 and 4294967295 inclusive";
         }
         c.maxclients = static_cast<std::uint32_t>(n);
         return {};
       }},
      {"loglevel", [](const Config& c) { return c.loglevel; },
       [](Config& c, std::string_view v) -> std::string {
         log::Level level;
         if (!log::parse_level(to_lower(v), level)) {
           return "argument(s) must be one of the following: debug, verbose, notice, warning";
         }
         c.loglevel = to_lower(v);
         log::set_level(level);
         return {};
       }},
      {"proto-max-bulk-len", [](const Config& c) { return std::to_string(c.proto_max_bulk_len); },
       memory_setter(&Config::proto_max_bulk_len, 1024 * 1024)},
      {"client-query-buffer-limit",
       [](const Config& c) { return std::to_string(c.client_query_buffer_limit); },
       memory_setter(&Config::client_query_buffer_limit, 1024 * 1024)},
      // Redis's form, "<class> <hard> <soft> <soft seconds>" for normal, replica (slave) and
      // pubsub; or one memory value, the normal class's hard limit (Runnel's shorthand).
      {"client-output-buffer-limit",
       [](const Config& c) {
         return "normal " + std::to_string(c.client_output_buffer_limit) + " 0 0 slave " +
                std::to_string(c.replica_output_buffer_limits[0]) + " " + std::to_string(c.replica_output_buffer_limits[1]) +
                " " + std::to_string(c.replica_output_buffer_limits[2]) + " pubsub " +
                std::to_string(c.pubsub_output_buffer_limit) + " " + std::to_string(c.pubsub_output_buffer_soft_limit) +
                " " + std::to_string(c.pubsub_output_buffer_soft_seconds);
       },
       set_output_buffer_limits},
      {"pubsub-output-buffer-limit",
       [](const Config& c) { return std::to_string(c.pubsub_output_buffer_limit); },
       memory_setter(&Config::pubsub_output_buffer_limit, 0)},
      {"pubsub-output-buffer-soft-limit",
       [](const Config& c) { return std::to_string(c.pubsub_output_buffer_soft_limit); },
       memory_setter(&Config::pubsub_output_buffer_soft_limit, 0)},
      {"pubsub-output-buffer-soft-seconds",
       [](const Config& c) { return std::to_string(c.pubsub_output_buffer_soft_seconds); },
       [](Config& c, std::string_view v) -> std::string {
         std::int64_t n = 0;
         if (!parse_int64(v, n) || n < 0) return "argument must be between 0 and 9223372036854775807 inclusive";
         c.pubsub_output_buffer_soft_seconds = static_cast<std::uint64_t>(n);
         return {};
       }},
      {"pubsub-backlog-bytes", [](const Config& c) { return std::to_string(c.pubsub_backlog_bytes); },
       memory_setter(&Config::pubsub_backlog_bytes, 0)},
      {"slowlog-log-slower-than", [](const Config& c) { return std::to_string(c.slowlog_log_slower_than); },
       [](Config& c, std::string_view v) -> std::string {
         std::int64_t n = 0;
         if (!parse_int64(v, n)) return "argument couldn't be parsed into an integer";
         if (n < -1) return "argument must be between -1 and 9223372036854775807 inclusive";
         c.slowlog_log_slower_than = n;
         return {};
       }},
      {"slowlog-max-len", [](const Config& c) { return std::to_string(c.slowlog_max_len); },
       [](Config& c, std::string_view v) -> std::string {
         std::int64_t n = 0;
         if (!parse_int64(v, n)) return "argument couldn't be parsed into an integer";
         if (n < 0 || n > 9223372036854775807LL) return "argument must be between 0 and 9223372036854775807 inclusive";
         c.slowlog_max_len = static_cast<std::uint64_t>(n);
         return {};
       }},
      {"maxmemory-strings", [](const Config& c) { return std::to_string(c.maxmemory_strings); },
       memory_setter(&Config::maxmemory_strings, 0)},
      {"reply-pause-bytes", [](const Config& c) { return std::to_string(c.reply_pause_bytes); },
       memory_setter(&Config::reply_pause_bytes, 1024)},
  };
  return params;
}

const ConfigParam* find_param(std::string_view name) {
  for (const ConfigParam& p : config_params()) {
    if (equals_ignore_case(p.name, name)) return &p;
  }
  return nullptr;
}

// --- INFO -------------------------------------------------------------------------------

struct InfoInputs {
  const ServerState& server;
  std::int64_t keys;
  std::uint64_t blocked_registrations;
  const StorageFigures& storage;
  std::string_view shard_lines;
  std::size_t pubsub[3] = {0, 0, 0};  // channels, patterns, shard channels with subscribers
  std::uint64_t expires = 0;          // keys with a TTL
  std::uint64_t expired_keys = 0;     // deleted for their TTL since the start
  std::vector<CommandCounters> commands = {};  // by CommandSpec::index, over the shards
};

void section_server(const InfoInputs& in, std::string& out) {
  const auto now = std::chrono::system_clock::now();
  const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::steady_clock::now() - in.server.started_steady)
                          .count();
  const auto usec =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  out += "# Server\r\n";
  out += "redis_version:" + std::string(kRedisCompatVersion) + "\r\n";
  out += "runnel_version:" + std::string(kRunnelVersion) + "\r\n";
  out += "redis_mode:standalone\r\n";
  out += "os:Linux\r\narch_bits:64\r\nmultiplexing_api:epoll\r\n";
  out += "process_id:" + std::to_string(getpid()) + "\r\n";
  out += "run_id:" + in.server.run_id + "\r\n";
  out += "tcp_port:" + std::to_string(in.server.port) + "\r\n";
  out += "server_time_usec:" + std::to_string(usec) + "\r\n";
  out += "uptime_in_seconds:" + std::to_string(uptime) + "\r\n";
  out += "uptime_in_days:" + std::to_string(uptime / 86400) + "\r\n";
  out += "executable:" + in.server.executable + "\r\n";
  out += "config_file:" + in.server.config_file + "\r\n";
  out += "shards:" + std::to_string(in.server.shard_count) + "\r\n";
}

void section_clients(const InfoInputs& in, std::string& out) {
  out += "# Clients\r\n";
  out += "connected_clients:" + std::to_string(in.server.clients.size()) + "\r\n";
  out += "maxclients:" + std::to_string(in.server.config.snapshot().maxclients) + "\r\n";
  out += "blocked_clients:" + std::to_string(in.server.blocked_clients.load()) + "\r\n";
  // Runnel's own: how many (stream, blocked reader) pairs the shards hold.
  out += "blocked_reader_registrations:" + std::to_string(in.blocked_registrations) + "\r\n";
}

void section_memory(const InfoInputs& in, std::string& out) {
  const std::uint64_t used = heap_bytes();
  const std::uint64_t rss = rss_bytes();
  out += "# Memory\r\n";
  out += "used_memory:" + std::to_string(used) + "\r\n";
  out += "used_memory_human:" + human_bytes(used) + "\r\n";
  out += "used_memory_rss:" + std::to_string(rss) + "\r\n";
  out += "used_memory_rss_human:" + human_bytes(rss) + "\r\n";
  out += "maxmemory:0\r\nmaxmemory_human:0B\r\nmaxmemory_policy:noeviction\r\n";
  // Runnel's own: string keys live in memory, bounded by --maxmemory-strings.
  const std::int64_t strings = in.server.string_bytes.load(std::memory_order_relaxed);
  out += "used_memory_strings:" + std::to_string(strings) + "\r\n";
  out += "maxmemory_strings:" + std::to_string(in.server.maxmemory_strings.load(std::memory_order_relaxed)) + "\r\n";
  out += "mem_allocator:libc\r\n";
}

void section_persistence(const InfoInputs& in, std::string& out) {
  const StorageFigures& f = in.storage;
  const Config config = in.server.config.snapshot();
  const bool ok = in.server.storage.ok();
  out += "# Persistence\r\n";
  out += std::string("loading:") + (in.server.loading.load(std::memory_order_acquire) ? "1" : "0") + "\r\n";
  out += "async_loading:0\r\nrdb_changes_since_last_save:0\r\n";
  out += "rdb_bgsave_in_progress:0\r\naof_enabled:0\r\naof_rewrite_in_progress:0\r\n";
  // Runnel's own: the segment files (docs/storage.md).
  out += "storage_fsync:" + config.fsync + "\r\n";
  out += "storage_io:" + f.io_backend + "\r\n";
  out += "storage_streams:" + std::to_string(f.streams) + "\r\n";
  out += "storage_bytes:" + std::to_string(f.bytes) + "\r\n";
  out += "storage_bytes_human:" + human_bytes(f.bytes) + "\r\n";
  out += "storage_segments:" + std::to_string(f.segments) + "\r\n";
  out += "storage_cache_bytes:" + std::to_string(f.cache_used) + "\r\n";
  out += "storage_cache_budget:" + std::to_string(f.cache_budget) + "\r\n";
  out += "storage_damaged_streams:" + std::to_string(f.damaged) + "\r\n";
  const storage::OpenFilesFigures files = storage::open_files_figures();
  out += "storage_open_files:" + std::to_string(files.open) + "\r\n";
  out += "storage_open_files_budget:" + std::to_string(storage::open_files_budget()) + "\r\n";
  out += "storage_files_reopened:" + std::to_string(files.reopened) + "\r\n";
  // Reads of entries that failed (an evicted node's segment: EIO, a checksum mismatch), each
  // answered with -IOERR or -DAMAGED.
  out += "storage_read_errors:" + std::to_string(storage_read_errors()) + "\r\n";
  out += "storage_flushes:" + std::to_string(f.flushes) + "\r\n";
  out += "storage_overlapped_flushes:" + std::to_string(f.overlapped) + "\r\n";
  out += "storage_last_fsync_usec:" + std::to_string(f.last_fsync_us) + "\r\n";
  out += std::string("storage_write_status:") + (ok ? "ok" : "err") + "\r\n";
  out += "storage_write_failures:" + std::to_string(in.server.storage.failures()) + "\r\n";
  out += "storage_last_write_error:" + (in.server.storage.failures() ? in.server.storage.client_cause() : std::string()) + "\r\n";
}

void section_stats(const InfoInputs& in, std::string& out) {
  const ServerStats& s = in.server.stats;
  out += "# Stats\r\n";
  out += "total_connections_received:" + std::to_string(s.connections_received.load()) + "\r\n";
  out += "total_commands_processed:" + std::to_string(s.commands_processed.load()) + "\r\n";
  out += "total_net_input_bytes:" + std::to_string(s.net_input_bytes.load()) + "\r\n";
  out += "total_net_output_bytes:" + std::to_string(s.net_output_bytes.load()) + "\r\n";
  out += "rejected_connections:" + std::to_string(s.rejected_connections.load()) + "\r\n";
  out += "pubsub_channels:" + std::to_string(in.pubsub[0]) + "\r\n";
  out += "pubsub_patterns:" + std::to_string(in.pubsub[1]) + "\r\n";
  out += "pubsubshard_channels:" + std::to_string(in.pubsub[2]) + "\r\n";
  out += "pubsub_publish_waits:" + std::to_string(s.publish_waits.load()) + "\r\n";
  out += "expired_keys:" + std::to_string(in.expired_keys) + "\r\n";
  out += "total_error_replies:" + std::to_string(s.error_replies.load()) + "\r\n";
  out += "unknown_commands:" + std::to_string(s.unknown_commands.load()) + "\r\n";
  out += "protocol_errors:" + std::to_string(s.protocol_errors.load()) + "\r\n";
}

void section_replication(const InfoInputs&, std::string& out) {
  out += "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n";
}

void section_cpu(const InfoInputs&, std::string& out) {
  struct rusage self {};
  getrusage(RUSAGE_SELF, &self);
  char buf[128];
  std::snprintf(buf, sizeof(buf), "used_cpu_sys:%ld.%06ld\r\nused_cpu_user:%ld.%06ld\r\n",
                self.ru_stime.tv_sec, static_cast<long>(self.ru_stime.tv_usec),
                self.ru_utime.tv_sec, static_cast<long>(self.ru_utime.tv_usec));
  out += "# CPU\r\n";
  out += buf;
}

void section_commandstats(const InfoInputs& in, std::string& out) {
  out += "# Commandstats\r\n";
  const auto& rows = command_table().by_index();
  for (std::size_t i = 0; i < in.commands.size() && i < rows.size(); ++i) {
    const CommandCounters& c = in.commands[i];
    if (c.calls == 0 && c.failed == 0 && c.rejected == 0) continue;
    char per_call[64];
    std::snprintf(per_call, sizeof(per_call), "%.2f",
                  c.calls == 0 ? 0.0 : static_cast<double>(c.usec) / static_cast<double>(c.calls));
    out += "cmdstat_" + std::string(rows[i]->name) + ":calls=" + std::to_string(c.calls) +
           ",usec=" + std::to_string(c.usec) + ",usec_per_call=" + per_call +
           ",rejected_calls=" + std::to_string(c.rejected) + ",failed_calls=" + std::to_string(c.failed) + "\r\n";
  }
}

void section_errorstats(const InfoInputs& in, std::string& out) {
  out += "# Errorstats\r\n";
  for (const auto& [kind, count] : in.server.stats.errors.snapshot()) {
    out += "errorstat_" + kind + ":count=" + std::to_string(count) + "\r\n";
  }
}

void section_keyspace(const InfoInputs& in, std::string& out) {
  out += "# Keyspace\r\n";
  if (in.keys > 0) out += "db0:keys=" + std::to_string(in.keys) + ",expires=" + std::to_string(in.expires) + ",avg_ttl=0\r\n";
}

// Runnel's own: each shard's keys, commands run, and hops from other threads waiting to run.
void section_shards(const InfoInputs& in, std::string& out) {
  out += "# Shards\r\n";
  out += in.shard_lines;
}

struct InfoSection {
  std::string_view name;
  void (*write)(const InfoInputs&, std::string&);
  bool in_default = true;  // in INFO with no section named
};

constexpr InfoSection kSections[] = {
    {"server", section_server},     {"clients", section_clients},
    {"memory", section_memory},     {"persistence", section_persistence},
    {"stats", section_stats},       {"replication", section_replication},
    {"cpu", section_cpu},           {"commandstats", section_commandstats, false},
    {"errorstats", section_errorstats},
    {"keyspace", section_keyspace},
    {"shards", section_shards},
};

}  // namespace

namespace cmd {

void command(CommandContext& ctx) {
  const auto& all = command_table().all();
  ctx.reply.array(all.size());
  for (const CommandSpec& spec : all) write_command_info(spec, ctx.reply);
}

void command_count(CommandContext& ctx) {
  ctx.reply.integer(static_cast<std::int64_t>(command_table().all().size()));
}

void command_info(CommandContext& ctx) {
  if (ctx.args.size() == 2) return command(ctx);
  ctx.reply.array(ctx.args.size() - 2);
  for (std::size_t i = 2; i < ctx.args.size(); ++i) {
    const CommandSpec* spec = command_table().find(ctx.args[i]);
    if (spec) {
      write_command_info(*spec, ctx.reply);
    } else {
      ctx.reply.null();
    }
  }
}

void command_docs(CommandContext& ctx) {
  std::vector<const CommandSpec*> specs;
  if (ctx.args.size() == 2) {
    for (const CommandSpec& spec : command_table().all()) specs.push_back(&spec);
  } else {
    for (std::size_t i = 2; i < ctx.args.size(); ++i) {
      if (const CommandSpec* spec = command_table().find(ctx.args[i])) specs.push_back(spec);
    }
  }
  ctx.reply.map(specs.size());
  for (const CommandSpec* spec : specs) {
    ctx.reply.bulk(spec->name);
    write_command_docs(*spec, ctx.reply);
  }
}

void command_list(CommandContext& ctx) {
  if (ctx.args.size() != 2) {
    // FILTERBY MODULE|ACLCAT|PATTERN: only PATTERN is meaningful here.
    if (ctx.args.size() != 5 || !equals_ignore_case(ctx.args[2], "FILTERBY")) {
      return ctx.reply.error("ERR syntax error");
    }
  }
  std::vector<std::string_view> names;
  for (const CommandSpec& spec : command_table().all()) {
    const bool pattern_filter = ctx.args.size() == 5 && equals_ignore_case(ctx.args[3], "PATTERN");
    const bool other_filter = ctx.args.size() == 5 && !pattern_filter;
    if (other_filter) {
      if (equals_ignore_case(ctx.args[3], "ACLCAT")) {
        const std::string cat = "@" + to_lower(ctx.args[4]);
        if (std::string_view(spec.acl_categories).find(cat) == std::string_view::npos) continue;
      } else if (equals_ignore_case(ctx.args[3], "MODULE")) {
        continue;
      } else {
        return ctx.reply.error("ERR syntax error");
      }
    }
    if (!pattern_filter || glob_match(ctx.args[4], spec.name, true)) names.push_back(spec.name);
    for (const CommandSpec& sub : spec.subcommands) {
      if (pattern_filter && !glob_match(ctx.args[4], sub.name, true)) continue;
      if (other_filter) continue;
      names.push_back(sub.name);
    }
  }
  ctx.reply.array(names.size());
  for (auto name : names) ctx.reply.bulk(name);
}

void command_help(CommandContext& ctx) {
  reply_help(ctx, {"(no subcommand)", "    Return details about all Redis commands.", "COUNT",
                   "    Return the total number of commands in this Redis server.", "LIST",
                   "    Return a list of all commands in this Redis server.",
                   "INFO [<command-name> ...]",
                   "    Return details about multiple Redis commands.",
                   "    If no command names are given, documentation details for all",
                   "    commands are returned.",
                   "DOCS [<command-name> ...]",
                   "    Return documentation details about multiple Redis commands.",
                   "    If no command names are given, documentation details for all",
                   "    commands are returned."});
}

void info(CommandContext& ctx) {
  std::vector<std::string> wanted;
  for (std::size_t i = 1; i < ctx.args.size(); ++i) wanted.push_back(to_lower(ctx.args[i]));
  const auto asked = [&](std::string_view name) {
    return std::find(wanted.begin(), wanted.end(), name) != wanted.end();
  };
  // The default sections, as Redis's: all but commandstats, which "all" and "everything" add.
  const bool defaults = wanted.empty() || asked("default") || asked("all") || asked("everything");
  const bool all = asked("all") || asked("everything");
  const StorageFigures none;
  InfoInputs inputs{ctx.server, ctx.gather ? ctx.gather->count : 0,
                    ctx.gather ? ctx.gather->blocked_registrations : 0,
                    ctx.gather ? ctx.gather->storage : none,
                    ctx.gather ? std::string_view(ctx.gather->shard_lines) : std::string_view()};
  if (ctx.gather != nullptr) {
    inputs.expires = ctx.gather->expires;
    inputs.expired_keys = ctx.gather->expired_keys;
    const std::uint64_t epoch = ctx.server.command_stats_epoch.load(std::memory_order_relaxed);
    for (const CommandStats& shard : ctx.gather->shard_command_stats) {
      if (shard.epoch != epoch) continue;  // from before the last CONFIG RESETSTAT
      if (inputs.commands.size() < shard.by_command.size()) inputs.commands.resize(shard.by_command.size());
      for (std::size_t i = 0; i < shard.by_command.size(); ++i) {
        inputs.commands[i].calls += shard.by_command[i].calls;
        inputs.commands[i].usec += shard.by_command[i].usec;
        inputs.commands[i].failed += shard.by_command[i].failed;
        inputs.commands[i].rejected += shard.by_command[i].rejected;
      }
    }
    for (int k = 0; k < 3; ++k) {  // a channel with subscribers on several shards counts once
      const auto& names = ctx.gather->pubsub_names[k];
      inputs.pubsub[k] = std::set<std::string_view>(names.begin(), names.end()).size();
    }
  }
  std::string text;
  for (const InfoSection& section : kSections) {
    const bool included = all || (defaults && section.in_default) || asked(section.name);
    if (!included) continue;
    if (!text.empty()) text += "\r\n";
    section.write(inputs, text);
  }
  ctx.reply.verbatim(text);
}

void config_get(CommandContext& ctx) {
  // Each parameter is listed once, under the name asked for when it was named exactly
  // (as Redis does), else under its own name.
  std::vector<std::pair<const ConfigParam*, std::string_view>> matched;
  auto add = [&](const ConfigParam* p, std::string_view shown) {
    for (const auto& m : matched) {
      if (m.first == p) return;
    }
    matched.emplace_back(p, shown);
  };
  for (std::size_t i = 2; i < ctx.args.size(); ++i) {
    const std::string_view pattern = ctx.args[i];
    if (pattern.find_first_of("*?[") == std::string_view::npos) {
      if (const ConfigParam* p = find_param(pattern)) add(p, pattern);
      continue;
    }
    for (const ConfigParam& p : config_params()) {
      if (glob_match(pattern, p.name, true)) add(&p, p.name);
    }
  }
  const Config config = ctx.server.config.snapshot();
  ctx.reply.map(matched.size());
  for (const auto& [param, shown] : matched) {
    ctx.reply.bulk(shown);
    ctx.reply.bulk(param->get(config));
  }
}

void config_set(CommandContext& ctx) {
  const auto& args = ctx.args;
  if ((args.size() - 2) % 2 != 0) return ctx.reply.error("ERR syntax error");
  std::vector<const ConfigParam*> params;
  for (std::size_t i = 2; i < args.size(); i += 2) {
    const ConfigParam* p = find_param(args[i]);
    if (p == nullptr) {
      return ctx.reply.error("ERR Unknown option or number of arguments for CONFIG SET - '" +
                             std::string(args[i]) + "'");
    }
    auto fail = [&](std::string_view why) {
      ctx.reply.error("ERR CONFIG SET failed (possibly related to argument '" +
                      std::string(args[i]) + "') - " + std::string(why));
    };
    if (!p->set) return fail("can't set immutable config");
    if (std::find(params.begin(), params.end(), p) != params.end()) {
      return fail("duplicate parameter");
    }
    params.push_back(p);
  }
  // All or nothing: validate on a copy, then publish.
  Config next = ctx.server.config.snapshot();
  for (std::size_t i = 2; i < args.size(); i += 2) {
    const std::string why = params[(i - 2) / 2]->set(next, args[i + 1]);
    if (!why.empty()) {
      return ctx.reply.error("ERR CONFIG SET failed (possibly related to argument '" +
                             std::string(args[i]) + "') - " + why);
    }
  }
  ctx.server.config.update([&](Config& c) { c = next; });
  ctx.server.node_limits.set(next.stream_node_max_entries, next.stream_node_max_bytes);
  ctx.server.maxmemory_strings.store(static_cast<std::int64_t>(next.maxmemory_strings), std::memory_order_relaxed);
  ctx.server.slowlog.configure(next.slowlog_log_slower_than, next.slowlog_max_len);
  ctx.reply.ok();
}

// --- SLOWLOG ---------------------------------------------------------------------------------

void slowlog_get(CommandContext& ctx) {
  if (ctx.args.size() > 3) return reply_subcommand_syntax_error(ctx);
  std::int64_t count = 10;
  if (ctx.args.size() == 3) {
    // getRangeLongFromObjectOrReply with its own message, for a non-number too.
    if (!parse_int64(ctx.args[2], count) || count < -1) {
      return ctx.reply.error("ERR count should be greater than or equal to -1");
    }
  }
  const std::vector<SlowLogEntry> entries = ctx.server.slowlog.newest(count);
  ctx.reply.array(entries.size());
  for (const SlowLogEntry& e : entries) {
    ctx.reply.array(6);
    ctx.reply.integer(static_cast<std::int64_t>(e.id));
    ctx.reply.integer(e.time);
    ctx.reply.integer(e.duration_us);
    ctx.reply.array(e.args.size());
    for (const std::string& arg : e.args) ctx.reply.bulk(arg);
    ctx.reply.bulk(e.client_addr);
    ctx.reply.bulk(e.client_name);
  }
}

void slowlog_len(CommandContext& ctx) { ctx.reply.integer(static_cast<std::int64_t>(ctx.server.slowlog.size())); }

void slowlog_reset(CommandContext& ctx) {
  ctx.server.slowlog.reset();
  ctx.reply.ok();
}

void slowlog_help(CommandContext& ctx) {
  reply_help(ctx, {"GET [<count>]",
                   "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
                   "    Entries are made of:",
                   "    id, timestamp, time in microseconds, arguments array, client IP and port,",
                   "    client name",
                   "LEN", "    Return the length of the slowlog.", "RESET", "    Reset the slowlog."});
}

void config_resetstat(CommandContext& ctx) {
  ctx.server.stats.reset();
  ctx.server.command_stats_epoch.fetch_add(1, std::memory_order_relaxed);
  ctx.reply.ok();
}

void config_help(CommandContext& ctx) {
  reply_help(ctx, {"GET <pattern>",
                   "    Return parameters matching the glob-like <pattern> and their values.",
                   "SET <directive> <value>", "    Set the configuration <directive> to <value>.",
                   "RESETSTAT", "    Reset statistics reported by the INFO command."});
}

// --- FUNCTION and SCRIPT: nothing is ever loaded, so a flush has nothing to do and a list is
// empty; the arguments are checked as Redis checks them.

void function_flush(CommandContext& ctx) {
  if (ctx.args.size() > 3) return reply_subcommand_syntax_error(ctx);
  if (ctx.args.size() == 3 && !equals_ignore_case(ctx.args[2], "ASYNC") && !equals_ignore_case(ctx.args[2], "SYNC")) {
    return ctx.reply.error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
  }
  ctx.reply.simple("OK");
}

void function_list(CommandContext& ctx) {
  bool with_code = false, pattern = false;
  for (std::size_t i = 2; i < ctx.args.size(); ++i) {
    if (!with_code && equals_ignore_case(ctx.args[i], "WITHCODE")) {
      with_code = true;
    } else if (!pattern && equals_ignore_case(ctx.args[i], "LIBRARYNAME")) {
      if (i + 1 >= ctx.args.size()) return ctx.reply.error("ERR library name argument was not given");
      pattern = true;
      ++i;
    } else {
      return ctx.reply.error("ERR Unknown argument " + std::string(ctx.args[i].substr(0, 128)));
    }
  }
  ctx.reply.array(0);
}

void function_help(CommandContext& ctx) {
  reply_help(ctx, {"LIST [LIBRARYNAME PATTERN] [WITHCODE]",
                   "    Return general information on all the libraries (Runnel has none).",
                   "FLUSH [ASYNC|SYNC]", "    Delete all the libraries (Runnel has none)."});
}

void script_flush(CommandContext& ctx) {
  if (ctx.args.size() > 3 ||
      (ctx.args.size() == 3 && !equals_ignore_case(ctx.args[2], "ASYNC") && !equals_ignore_case(ctx.args[2], "SYNC"))) {
    return ctx.reply.error("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
  }
  ctx.reply.simple("OK");
}

void script_help(CommandContext& ctx) {
  reply_help(ctx, {"FLUSH [ASYNC|SYNC]", "    Flush the Lua scripts cache (Runnel has none)."});
}

void time(CommandContext& ctx) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto usec = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
  ctx.reply.array(2);
  ctx.reply.bulk(std::to_string(usec / 1000000));
  ctx.reply.bulk(std::to_string(usec % 1000000));
}

void shutdown(CommandContext& ctx) {
  bool abort = false;
  for (std::size_t i = 1; i < ctx.args.size(); ++i) {
    const std::string_view a = ctx.args[i];
    if (equals_ignore_case(a, "ABORT")) {
      abort = true;
    } else if (!equals_ignore_case(a, "NOSAVE") && !equals_ignore_case(a, "SAVE") &&
               !equals_ignore_case(a, "NOW") && !equals_ignore_case(a, "FORCE")) {
      return ctx.reply.error("ERR syntax error");
    }
  }
  if (abort) {
    if (ctx.args.size() != 2) return ctx.reply.error("ERR syntax error");
    return ctx.reply.error("ERR No shutdown in progress.");
  }
  // Like Redis, a successful SHUTDOWN sends no reply: the connection just closes.
  log::warning("User requested shutdown...");
  ctx.session.shutdown_after_reply = true;
  ctx.session.close_after_reply = true;
}

}  // namespace cmd
}  // namespace runnel
