// State shared by every shard thread: the live configuration, the registry of connected
// clients, and server-wide counters. Nothing here is on the per-entry data path; the few
// fields a command touches per call are atomics.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <runnel/broker/config.hpp>
#include <runnel/storage/node_limits.hpp>

#include "pubsub.hpp"
#include "slowlog.hpp"

namespace runnel {

// The part of a connection that other threads may look at (CLIENT LIST, CLIENT KILL, INFO).
// Owned by its connection; registered in ClientRegistry for the connection's lifetime.
// Fields written by the connection thread and read by others are atomics or under `mutex`.
struct ClientInfo {
  std::uint64_t id = 0;
  std::string addr;   // peer "ip:port"
  std::string laddr;  // local "ip:port"
  int fd = -1;
  std::chrono::steady_clock::time_point created = std::chrono::steady_clock::now();

  std::atomic<std::int64_t> last_interaction_ms{0};  // steady clock, milliseconds
  std::atomic<const char*> last_command{"NULL"};      // a name from the command table
  std::atomic<int> resp{2};
  std::atomic<bool> authenticated{false};
  std::atomic<std::uint64_t> query_buffer_bytes{0};
  std::atomic<std::uint64_t> output_buffer_bytes{0};
  // CLIENT LIST's sub, psub and ssub, 21 bits each (shown as 2097151 past that): one word,
  // as an idle connection should stay small.
  std::atomic<std::uint64_t> subscriptions{0};
  void set_subscriptions(std::uint64_t channels, std::uint64_t patterns, std::uint64_t shard) {
    constexpr std::uint64_t kMax = (1u << 21) - 1;
    subscriptions.store(std::min(channels, kMax) | std::min(patterns, kMax) << 21 | std::min(shard, kMax) << 42,
                        std::memory_order_relaxed);
  }
  [[nodiscard]] std::int64_t subscriptions_of(int kind) const {
    return static_cast<std::int64_t>((subscriptions.load(std::memory_order_relaxed) >> (21 * kind)) & ((1u << 21) - 1));
  }

  // What CLIENT SETNAME and CLIENT SETINFO set. Most connections set none of it, so it is
  // allocated by the first of them: 88 bytes less per connection.
  struct Names {
    std::string name;
    std::string lib_name;
    std::string lib_ver;
  };

  mutable std::mutex mutex;  // guards the two below
  std::unique_ptr<Names> names;  // null: none set
  bool no_evict = false;

  // Under `mutex`.
  Names& names_to_set() {
    if (!names) names = std::make_unique<Names>();
    return *names;
  }

  ClientInfo() = default;
  ClientInfo(const ClientInfo&) = delete;
  ClientInfo& operator=(const ClientInfo&) = delete;
  virtual ~ClientInfo() = default;

  // Asks the connection to close after its in-flight command; safe from any thread.
  // The connection's own subclass knows where it lives; a bare ClientInfo has nothing to close.
  virtual void request_close() {}
};

class ClientRegistry {
 public:
  // Returns the new client's id.
  std::uint64_t add(const std::shared_ptr<ClientInfo>& client);
  void remove(std::uint64_t id);
  [[nodiscard]] std::size_t size() const;
  // Calls `visit` for each client in id order, under the registry lock: keep it short.
  void for_each(const std::function<void(const ClientInfo&)>& visit) const;
  // Closes the client with this id; false if there is none.
  bool kill(std::uint64_t id);
  void kill_all();

 private:
  mutable std::mutex mutex_;
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, std::shared_ptr<ClientInfo>> clients_;
};

// INFO errorstats: error replies by their first word ("ERR", "WRONGTYPE", "NOGROUP"...), as
// Redis counts them. At most kMaxKinds kinds, as Redis's limit: past it, new kinds count
// only in total_error_replies. Errors are rare, so one lock is enough.
class ErrorStats {
 public:
  static constexpr std::size_t kMaxKinds = 128;
  // `reply` is an error reply as sent ("-ERR ...\r\n") or its text without the '-'.
  void count(std::string_view reply);
  [[nodiscard]] std::vector<std::pair<std::string, std::uint64_t>> snapshot() const;
  void reset();

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::uint64_t, std::less<>> kinds_;
};

struct ServerStats {
  std::atomic<std::uint64_t> connections_received{0};
  std::atomic<std::uint64_t> rejected_connections{0};
  std::atomic<std::uint64_t> commands_processed{0};
  std::atomic<std::uint64_t> net_input_bytes{0};
  std::atomic<std::uint64_t> net_output_bytes{0};
  std::atomic<std::uint64_t> error_replies{0};
  std::atomic<std::uint64_t> unknown_commands{0};
  std::atomic<std::uint64_t> protocol_errors{0};
  std::atomic<std::uint64_t> publish_waits{0};  // PUBLISHes that waited for a shard's backlog
  ErrorStats errors;

  // One error reply sent: total_error_replies and its kind.
  void error_reply(std::string_view reply) {
    error_replies.fetch_add(1, std::memory_order_relaxed);
    errors.count(reply);
  }
  void reset();
};

// Settings that CONFIG SET may change while running; read by every thread.
class LiveConfig {
 public:
  explicit LiveConfig(Config initial) : config_(std::move(initial)) {}
  [[nodiscard]] Config snapshot() const {
    std::lock_guard lock(mutex_);
    return config_;
  }
  template <typename F>
  void update(F&& change) {
    std::lock_guard lock(mutex_);
    change(config_);
    version_.fetch_add(1, std::memory_order_release);
  }
  // Bumped by every update, so a connection can refresh its cached copy cheaply.
  [[nodiscard]] std::uint64_t version() const { return version_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mutex_;
  Config config_;
  std::atomic<std::uint64_t> version_{0};
};

// Whether the shards can write to the data dir, as their Flushers found. While a shard's
// writes fail, the server refuses write commands with -MISCONF naming the cause.
class StorageHealth {
 public:
  void failed(unsigned shard, const std::string& cause);
  void recovered(unsigned shard);
  [[nodiscard]] bool ok() const { return failing_.load(std::memory_order_acquire) == 0; }
  // The cause as the log has it: the operation, the file's full path and the error.
  [[nodiscard]] std::string cause() const;
  // The cause as clients see it (-MISCONF, INFO): the operation and the error, with no path
  // of the data dir in it; the log has the paths.
  [[nodiscard]] std::string client_cause() const;
  [[nodiscard]] std::uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int> failing_{0};
  std::atomic<std::uint64_t> failures_{0};
  mutable std::mutex mutex_;
  std::map<unsigned, std::string> causes_;  // by failing shard
  std::string last_cause_;
};

struct ServerState {
  explicit ServerState(const Config& config)
      : config(config), maxmemory_strings(static_cast<std::int64_t>(config.maxmemory_strings)) {
    slowlog.configure(config.slowlog_log_slower_than, config.slowlog_max_len);
  }

  PubSubDirectory pubsub;  // which shards have subscribers of what (pubsub.hpp)
  LiveConfig config;
  // Config's stream-node-max-entries and -bytes, as every stream's store reads them.
  storage::NodeLimits node_limits;
  ClientRegistry clients;
  ServerStats stats;
  std::string run_id;  // 40 hex characters, new at each start
  std::chrono::system_clock::time_point started_at = std::chrono::system_clock::now();
  std::chrono::steady_clock::time_point started_steady = std::chrono::steady_clock::now();
  std::uint16_t port = 0;
  unsigned shard_count = 1;
  std::atomic<std::int64_t> blocked_clients{0};  // connections waiting in XREAD BLOCK
  // While the data dir loads (the write-ahead log replayed, the streams opened), connections
  // are taken, and commands that touch no data are answered; the rest get -LOADING.
  std::atomic<bool> loading{false};
  StorageHealth storage;
  // String keys' bytes in every shard (keyspace.hpp), and their limit (0: none).
  std::atomic<std::int64_t> string_bytes{0};
  std::atomic<std::int64_t> maxmemory_strings{0};
  SlowLog slowlog;
  // INFO commandstats: CONFIG RESETSTAT moves it on, and each shard's table starts over.
  std::atomic<std::uint64_t> command_stats_epoch{0};
  std::string executable;
  std::string config_file;
  // Set by SHUTDOWN; the server stops once the reply is out.
  std::function<void()> request_shutdown;
};

std::int64_t steady_now_ms();
// Milliseconds since 1970: stream IDs, delivery and seen times.
std::int64_t wall_now_ms();

}  // namespace runnel
