// What the server's network side shares between the connections (server.cpp) and their
// Coordinators (coordinator.cpp): the shard runtimes, ServerCore, and the waits on a shard's
// durability. Asio is included here; only those two sources include this header.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <runnel/protocol/request_parser.hpp>

#include "flusher.hpp"
#include "memory.hpp"
#include "persistence.hpp"
#include "server_state.hpp"
#include "shard.hpp"

namespace runnel {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
inline constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

// Waits, on `shard`'s thread, until what the shard appended (including the command that just
// ran) is durable; false if writing it failed.
inline awaitable<bool> durable(Shard& shard, std::uint64_t ticket) {
  asio::use_awaitable_t<> token;
  const bool ok = co_await asio::async_initiate<asio::use_awaitable_t<>, void(bool)>(
      [&shard, ticket](auto handler) {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        shard.durability->when_durable(ticket, [h](bool ok) {
          auto executor = asio::get_associated_executor(*h);
          asio::post(executor, [h, ok]() mutable { std::move(*h)(ok); });
        });
      },
      token);
  co_return ok;
}

// The reply to a write the disk refused.
std::string misconf_text(const ServerState& state);

// What a connection checks on every read and reply, taken from the Config when it changes.
// One copy per shard, which its connections share, rather than one per connection.
struct ConnectionLimits {
  std::uint64_t query_buffer = 0;   // client-query-buffer-limit
  std::uint64_t output_buffer = 0;  // client-output-buffer-limit (0: none)
  std::uint64_t pubsub_output = 0;  // pubsub-output-buffer-limit (0: none)
  std::uint64_t pubsub_soft = 0;    // pubsub-output-buffer-soft-limit (0: none)
  std::int64_t pubsub_soft_ms = 0;  // how long a subscriber may stay above it
  std::uint64_t pubsub_backlog = 0;  // pubsub-backlog-bytes (0: none)
  std::uint64_t reply_pause = 0;    // reply-pause-bytes
};

// Declared so that the shard (whose streams use the storage's cache) goes before the
// storage, and the Flusher before the io_context it waits on.
struct ShardRuntime {
  asio::io_context io{1};
  std::unique_ptr<ShardStorage> storage;
  std::unique_ptr<Flusher> flusher;
  Shard shard;
  std::thread thread;
  ConnectionLimits limits;
  protocol::ParserLimits parser_limits;
  // Bytes of Pub/Sub messages posted to this shard by other shards' PUBLISHes and not yet
  // delivered: past pubsub-backlog-bytes, publishers wait for the shard (Coordinator).
  std::atomic<std::uint64_t> publish_backlog{0};
  std::uint64_t limits_version = std::numeric_limits<std::uint64_t>::max();  // of the config
};

// The running server's state that its connections and their Coordinators share. Server::Impl
// (server.cpp) adds the acceptor's and the data dir's work to it.
struct ServerCore {
  explicit ServerCore(Config config) : state(config), initial(std::move(config)) {}

  // SHUTDOWN: asks the server to stop (Server::request_stop).
  std::function<void()> request_stop;
  ServerState state;
  Config initial;
  int lock_fd = -1;
  std::atomic<unsigned> next_home{0};
  std::atomic<std::size_t> live_connections{0};
  std::atomic<bool> accepting{false};
  // Held by the one transaction at a time that runs across shards behind a barrier.
  std::mutex transactions;
  std::mutex drained_mutex;
  std::condition_variable drained_cv;
  // Declared last so they are destroyed first: destroying an io_context destroys the
  // connections it still holds, and they use the members above.
  std::vector<std::unique_ptr<ShardRuntime>> shards;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::unique_ptr<MemoryTrimmer> trimmer;  // gives freed heap back to the system
  // A descriptor held in reserve (/dev/null): when accept runs out of descriptors, it is
  // closed so that one pending connection can be taken, told -ERR max number of clients
  // reached, and closed, instead of waiting in the backlog.
  int spare_fd = -1;
  std::int64_t no_descriptors_logged_at = -1;

  void connection_closed() {
    if (live_connections.fetch_sub(1) == 1) {
      std::lock_guard lock(drained_mutex);
      drained_cv.notify_all();
    }
  }
};

}  // namespace runnel
