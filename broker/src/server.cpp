// The network side of the broker: shard threads, the acceptor, and connections.
//
// Each shard is one thread running one io_context. A connection lives on one shard's thread
// (its "home"). It owns the socket, the request parser, the reply queue and back-pressure,
// and hands each parsed command to its Coordinator (coordinator.hpp), which runs it on the
// shards its route names and appends the reply in request order; the Coordinator also says
// how much of the reply queue may be sent (a write's reply waits until it is durable).
// Connections move to the shard their keys live on.
#include "server.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <filesystem>
#include <future>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include <runnel/storage/file.hpp>
#include <runnel/storage/io_queue.hpp>
#include <runnel/storage/write_ahead_log.hpp>

#include "command.hpp"
#include "connection.hpp"
#include "flusher.hpp"
#include "log.hpp"
#include "memory.hpp"
#include "persistence.hpp"
#include "version.hpp"

namespace runnel {
namespace {

// Freed heap above this (and above a quarter of the heap) is given back to the system. At
// 32 MiB a trim that ran while a burst was still being freed could leave 31 MiB resident for
// good (below the slack, nothing tried again): the stress test saw RSS stay 28 MB above its
// start under ctest -j2.
constexpr std::uint64_t kTrimSlackBytes = 8ull * 1024 * 1024;

std::string random_run_id() {
  std::random_device rd;
  std::mt19937_64 gen((static_cast<std::uint64_t>(rd()) << 32) ^ rd());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(40, '0');
  for (char& c : id) c = kHex[gen() % 16];
  return id;
}

}  // namespace

std::string misconf_text(const ServerState& state) {
  return "MISCONF Errors writing to the stream log: " + state.storage.client_cause() +
         ". Commands that may modify the data set are disabled; see the server log.";
}

// The running server: ServerCore (server_core.hpp) with the acceptor's and the data dir's work.
struct Server::Impl : ServerCore {
  Impl(Config config, Server& owner) : ServerCore(std::move(config)), owner(owner) {
    request_stop = [this] { this->owner.request_stop(); };
  }

  Server& owner;

  // Raises the soft limit on open files to the hard one (before listening), then, once the
  // data dir is loaded, lowers maxclients to what the limit leaves.
  void raise_open_files_limit();
  // Sets the budget of stream files kept open (--max-open-files, or a share of the limit).
  void size_file_cache();
  void fit_maxclients();
  // Accepts one connection with the reserve descriptor and refuses it; false if it could not
  // (the caller backs off).
  bool refuse_without_descriptor();

  void lock_data_dir();
  void open_storage();
  void finish_storage();
  awaitable<void> accept_loop();
};

void Server::Impl::lock_data_dir() {
  std::error_code ec;
  std::filesystem::create_directories(initial.dir, ec);
  if (ec) {
    throw std::runtime_error("cannot create data dir '" + initial.dir + "': " + ec.message());
  }
  const std::string path = (std::filesystem::path(initial.dir) / "LOCK").string();
  lock_fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  if (lock_fd < 0) {
    throw std::runtime_error("cannot open '" + path + "': " + std::strerror(errno));
  }
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(lock_fd);
    lock_fd = -1;
    if (err == EWOULDBLOCK) {
      throw std::runtime_error("data dir '" + initial.dir +
                               "' is in use by another runnel-server (" + path + " is locked)");
    }
    throw std::runtime_error("cannot lock '" + path + "': " + std::strerror(err));
  }
}

// Active expiry, as Redis's cycle (10 times a second): each shard deletes keys past their
// time, earliest first, for at most 1 ms a round (keys nobody touches free their memory and
// disk too). Runs until the shard's io_context stops.
namespace {
awaitable<void> expiry_loop(Shard& shard) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(std::chrono::milliseconds(100));
    auto [ec] = co_await timer.async_wait(kNoThrow);
    if (ec) co_return;
    shard.expire_some(1000);
  }
}
}  // namespace

// Gives every shard its storage and Flusher, and loads the streams in the data dir (the
// shards load their own folders in parallel) before any connection is taken.
void Server::Impl::open_storage() {
  StorageOptions options;
  options.dir = initial.dir;
  if (initial.fsync == "always") {
    options.fsync = FsyncPolicy::kAlways;
  } else if (initial.fsync == "everysec") {
    options.fsync = FsyncPolicy::kEverysec;
  } else if (initial.fsync == "no") {
    options.fsync = FsyncPolicy::kNo;
  } else {
    throw std::runtime_error("invalid --fsync '" + initial.fsync + "' (always, everysec, no)");
  }
  if (initial.segment_bytes < 4096) throw std::runtime_error("--segment-bytes must be at least 4096");
  options.segment_bytes = initial.segment_bytes;
  options.cache_bytes = initial.cache_bytes / shards.size();
  options.stream_max_bytes = initial.stream_max_bytes;
  options.stream_max_age_ms = initial.stream_max_age * 1000;
  state.node_limits.set(initial.stream_node_max_entries, initial.stream_node_max_bytes);
  options.node_limits = &state.node_limits;
  for (const auto& [name, value] : {std::pair{"--wal-checkpoint-bytes", initial.wal_checkpoint_bytes},
                                    std::pair{"--write-behind-bytes", initial.write_behind_bytes}}) {
    if (value < kMinDiskBound) throw std::runtime_error(std::string(name) + " must be at least 1048576");
  }
  options.wal_checkpoint_bytes = initial.wal_checkpoint_bytes;
  options.write_behind_bytes = initial.write_behind_bytes;
  const auto started = std::chrono::steady_clock::now();
  {
    // What the write-ahead logs (--fsync always) hold goes back into the files first.
    std::vector<std::string> notes;
    if (const storage::Error error = storage::WriteAheadLog::replay(initial.dir, notes)) {
      throw std::runtime_error("cannot replay the write-ahead log: " + error.what);
    }
    for (const std::string& note : notes) log::notice("Write-ahead log: " + note);
  }
  if (const char* delay = std::getenv("RUNNEL_TEST_LOAD_DELAY_MS")) {
    // Tests: a data dir that takes this long to load, to see what clients get meanwhile.
    std::this_thread::sleep_for(std::chrono::milliseconds(std::strtoul(delay, nullptr, 10)));
  }
  const auto folders = list_stream_folders(initial.dir, static_cast<unsigned>(shards.size()));
  KeyJournals key_journals = load_key_journals(initial.dir, static_cast<unsigned>(shards.size()), options.fsync);
  // Every shard's storage and Flusher first (either may throw), then the loaders, whose
  // failures come back here once all are joined.
  for (unsigned i = 0; i < shards.size(); ++i) {
    ShardRuntime& runtime = *shards[i];
    runtime.storage = std::make_unique<ShardStorage>(options, i);
    runtime.flusher = std::make_unique<Flusher>(runtime.io, *runtime.storage, state);
    runtime.shard.storage = runtime.storage.get();
    runtime.shard.durability = runtime.flusher.get();
    runtime.shard.blocked.attach(runtime.flusher.get());
  }
  std::vector<std::exception_ptr> failures(shards.size());
  {
    std::vector<std::jthread> loaders;
    for (unsigned i = 0; i < shards.size(); ++i) {
      loaders.emplace_back([&runtime = *shards[i], &list = folders[i], &failure = failures[i], &key_journals, i] {
        try {
          runtime.storage->load(runtime.shard.keyspace, list);
          runtime.shard.keyspace.attach(runtime.storage.get());
          runtime.storage->load_keys(runtime.shard.keyspace, std::move(key_journals.journals[i]),
                                     std::move(key_journals.states[i]), key_journals.rehome);
        } catch (...) {
          failure = std::current_exception();
        }
      });
    }
  }  // joined
  for (const auto& failure : failures) {
    if (failure) std::rethrow_exception(failure);
  }
  if (key_journals.rehome) {
    // --threads changed (or a crash cut the last change short): keys move between journals.
    std::vector<ShardStorage*> storages;
    for (auto& runtime : shards) storages.push_back(runtime->storage.get());
    rehome_key_journals(storages, key_journals.stale, initial.dir);
    log::notice("Keys journals folded for " + std::to_string(shards.size()) + " shard(s)");
  }
  std::size_t streams = 0;
  for (const auto& list : folders) streams += list.size();
  // The Flushers' watches and timers start on their shards' threads, which already run.
  std::vector<std::future<void>> started_flushers;
  for (auto& runtime : shards) {
    auto promise = std::make_shared<std::promise<void>>();
    started_flushers.push_back(promise->get_future());
    asio::post(runtime->io, [flusher = runtime->flusher.get(), promise] {
      flusher->start();
      promise->set_value();
    });
  }
  for (auto& f : started_flushers) f.wait();
  for (auto& runtime : shards) asio::co_spawn(runtime->io, expiry_loop(runtime->shard), asio::detached);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started).count();
  log::notice("Loaded " + std::to_string(streams) + " stream(s) from " + initial.dir + " in " +
              std::to_string(ms) + " ms; fsync " + initial.fsync + ", I/O " +
              shards[0]->flusher->backend_note());
}

// Writes and syncs what every shard still holds; the shards' threads must still run.
void Server::Impl::finish_storage() {
  std::vector<std::future<void>> done;
  for (auto& runtime : shards) {
    if (!runtime->flusher) continue;  // the data dir never loaded (a failed start)
    auto promise = std::make_shared<std::promise<void>>();
    done.push_back(promise->get_future());
    asio::post(runtime->io, [flusher = runtime->flusher.get(), promise] {
      flusher->finish([promise] { promise->set_value(); });
    });
  }
  for (auto& d : done) {
    if (d.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
      log::warning("A shard did not finish writing to the data dir in 30 s");
    }
  }
}

awaitable<void> Server::Impl::accept_loop() {
  asio::steady_timer backoff(acceptor->get_executor());
  while (accepting) {
    const unsigned home = next_home.fetch_add(1) % static_cast<unsigned>(shards.size());
    auto [ec, socket] = co_await acceptor->async_accept(shards[home]->io, kNoThrow);
    if (!accepting) break;
    if ((ec == asio::error::no_descriptors || ec.value() == ENFILE) && refuse_without_descriptor()) continue;
    if (ec) {
      // Anything else: back off instead of spinning.
      log::warning("Accepting a connection failed: " + ec.message());
      backoff.expires_after(std::chrono::milliseconds(100));
      co_await backoff.async_wait(kNoThrow);
      continue;
    }
    state.stats.connections_received.fetch_add(1, std::memory_order_relaxed);
    if (state.clients.size() >= state.config.snapshot().maxclients) {
      state.stats.rejected_connections.fetch_add(1, std::memory_order_relaxed);
      static constexpr std::string_view kFull = "-ERR max number of clients reached\r\n";
      boost::system::error_code ignored;
      asio::write(socket, asio::buffer(kFull), ignored);
      socket.close(ignored);
      continue;
    }
    live_connections.fetch_add(1);
    serve_connection(*this, std::move(socket), home);
  }
}

bool Server::Impl::refuse_without_descriptor() {
  static constexpr std::string_view kFull = "-ERR max number of clients reached\r\n";
  if (spare_fd < 0) return false;  // another thread took the reserve's number: back off
  ::close(spare_fd);
  spare_fd = -1;
  const int fd = ::accept4(acceptor->native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd >= 0) {
    [[maybe_unused]] const ssize_t n = ::send(fd, kFull.data(), kFull.size(), MSG_NOSIGNAL);
    ::close(fd);
    state.stats.connections_received.fetch_add(1, std::memory_order_relaxed);
    state.stats.rejected_connections.fetch_add(1, std::memory_order_relaxed);
  }
  spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const std::int64_t now = steady_now_ms() / 1000;
  if (no_descriptors_logged_at < 0 || now - no_descriptors_logged_at >= 10) {
    no_descriptors_logged_at = now;
    log::warning("Out of file descriptors: refusing connections with -ERR max number of clients reached "
                 "(raise 'ulimit -n', or lower maxclients)");
  }
  return fd >= 0;
}

// As Redis does at start (adjustOpenFilesLimit): the soft limit on open files is raised to
// the hard one, and maxclients is lowered to what the limit leaves once the descriptors in
// use (the data dir's files, the shards' own) and a reserve are counted.
void Server::Impl::raise_open_files_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    const rlim_t before = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) == 0) {
      log::notice("Raised the open files limit from " + std::to_string(before) + " to " +
                  std::to_string(limit.rlim_cur) + " (the hard limit)");
    }
  }
}

void Server::Impl::size_file_cache() {
  rlimit limit{};
  const std::uint64_t files = ::getrlimit(RLIMIT_NOFILE, &limit) == 0 ? limit.rlim_cur : 1024;
  std::uint64_t budget = initial.max_open_files;
  if (budget == 0) {
    budget = std::clamp<std::uint64_t>(files / 8, 16, 16384);
  } else if (budget > files / 2) {
    // The clients, and the files pinned past the budget, need the rest.
    log::warning("max-open-files " + std::to_string(budget) + " is more than half the open files limit (" +
                 std::to_string(files) + "): using " + std::to_string(std::max<std::uint64_t>(files / 2, 16)) +
                 " (raise 'ulimit -n' for more)");
    budget = std::max<std::uint64_t>(files / 2, 16);
  }
  storage::set_open_files_budget(static_cast<std::size_t>(budget));
  state.config.update([&](Config& c) { c.max_open_files = budget; });
}

void Server::Impl::fit_maxclients() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  std::uint64_t in_use = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec)) {
    ++in_use;
  }
  // Clients that connected while the data dir loaded are not the server's own; the stream
  // files the cache holds now count as its whole budget, and as the descriptors that work
  // in flight may pin past it: per shard, two batches' ring chunks, its background writer,
  // its I/O helper and a read; and the big trimmed segments waiting for their cut.
  const std::uint64_t clients = state.clients.size();
  const std::uint64_t cached = storage::open_files_figures().open;
  in_use = in_use > clients + cached ? in_use - clients - cached : 0;
  in_use += storage::open_files_budget() + (2 * storage::ring_chunk_ops() + 4) * shards.size() + storage::discard_pins_most();
  // Redis keeps 32 (CONFIG_MIN_RESERVED_FDS) for the server's own files, which are counted
  // above here; these are for what opens now and then (a manifest, an index, a log).
  const std::uint64_t kReserved = 8 + 4 * shards.size();
  const std::uint64_t maxclients = state.config.snapshot().maxclients;
  const std::uint64_t files = static_cast<std::uint64_t>(limit.rlim_cur);
  if (maxclients + in_use + kReserved <= files) return;
  const std::uint64_t fits = files > in_use + kReserved + 1 ? files - in_use - kReserved : 1;
  state.config.update([&](Config& c) { c.maxclients = static_cast<std::uint32_t>(fits); });
  log::warning("You requested maxclients of " + std::to_string(maxclients) + ", but the open files limit is " +
               std::to_string(files) + " with " + std::to_string(in_use) +
               " in use: maxclients has been reduced to " + std::to_string(fits) +
               " to compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'.");
}

Server::Server(Config config) : impl_(std::make_unique<Impl>(std::move(config), *this)) {}

Server::~Server() { stop(); }

void Server::start() {
  Impl& s = *impl_;
  log::Level level;
  if (!log::parse_level(s.initial.loglevel, level)) {
    throw std::runtime_error("invalid loglevel '" + s.initial.loglevel +
                             "' (debug, verbose, notice, warning)");
  }
  log::set_level(level);
  unsigned threads = s.initial.threads;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  if (threads > 255) throw std::runtime_error("--threads must be at most 255");
  s.lock_data_dir();
  (void)command_clock();  // calibrates the commands' clock (10 ms) before any command runs
  s.state.shard_count = threads;
  s.state.pubsub.set_shards(threads);
  s.state.run_id = random_run_id();
  for (unsigned i = 0; i < threads; ++i) {
    auto runtime = std::make_unique<ShardRuntime>();
    runtime->shard.index = i;
    runtime->shard.pubsub.attach(i, &s.state.pubsub);
    runtime->shard.keyspace.count_strings_in(&s.state.string_bytes);
    s.guards.push_back(asio::make_work_guard(runtime->io));
    s.shards.push_back(std::move(runtime));
  }
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(s.initial.bind, ec);
  if (ec) throw std::runtime_error("invalid bind address '" + s.initial.bind + "'");
  s.raise_open_files_limit();
  s.size_file_cache();
  s.acceptor = std::make_unique<tcp::acceptor>(s.shards[0]->io);
  const tcp::endpoint endpoint(address, s.initial.port);
  s.acceptor->open(endpoint.protocol(), ec);
  if (!ec) s.acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) s.acceptor->bind(endpoint, ec);
  if (!ec) s.acceptor->listen(tcp::socket::max_listen_connections, ec);
  if (ec) {
    throw std::runtime_error("cannot listen on " + s.initial.bind + ":" +
                             std::to_string(s.initial.port) + ": " + ec.message());
  }
  s.state.port = s.acceptor->local_endpoint().port();
  // Connections are taken while the data dir loads: they get -LOADING, as from Redis, so
  // clients wait and retry instead of failing to connect.
  s.state.loading.store(true, std::memory_order_release);
  s.spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  s.accepting = true;
  asio::co_spawn(s.shards[0]->io, s.accept_loop(), asio::detached);
  s.trimmer = std::make_unique<MemoryTrimmer>(kTrimSlackBytes);
  for (auto& runtime : s.shards) {
    runtime->thread = std::thread([io = &runtime->io, stats = &runtime->shard.command_stats] {
      set_thread_command_stats(stats);
      io->run();
    });
  }
  started_ = true;
  try {
    s.open_storage();
  } catch (...) {
    stop();
    throw;
  }
  s.fit_maxclients();
  s.state.loading.store(false, std::memory_order_release);
  log::notice("Runnel " + std::string(kRunnelVersion) + " (Redis " +
              std::string(kRedisCompatVersion) + " protocol) ready: " + s.initial.bind + ":" +
              std::to_string(s.state.port) + ", dir " + s.initial.dir + ", " +
              std::to_string(threads) + " thread(s), pid " + std::to_string(getpid()));
}

std::uint16_t Server::port() const { return impl_->state.port; }

void Server::request_stop() {
  std::lock_guard lock(request_mutex_);
  stop_requested_ = true;
  request_cv_.notify_all();
}

void Server::wait() {
  {
    std::unique_lock lock(request_mutex_);
    request_cv_.wait(lock, [&] { return stop_requested_ || stop_done_; });
  }
  stop();
}

void Server::stop() {
  std::unique_lock lock(stop_mutex_);
  if (stopped_ || !started_) {
    stopped_ = true;
    return;
  }
  Impl& s = *impl_;
  log::notice("Shutting down: no new connections, finishing in-flight commands");
  s.accepting = false;
  {
    // Close the listener on its own thread, and wait for it: after this, no new connection.
    std::promise<void> closed;
    asio::post(s.shards[0]->io, [&s, &closed] {
      boost::system::error_code ignored;
      s.acceptor->close(ignored);
      closed.set_value();
    });
    closed.get_future().wait_for(std::chrono::seconds(5));
  }
  s.state.clients.kill_all();
  {
    // Connections finish their in-flight command and send its reply before closing.
    std::unique_lock drained(s.drained_mutex);
    s.drained_cv.wait_for(drained, std::chrono::seconds(5),
                          [&] { return s.live_connections.load() == 0; });
  }
  s.finish_storage();
  s.trimmer.reset();
  s.guards.clear();
  for (auto& runtime : s.shards) runtime->io.stop();
  for (auto& runtime : s.shards) {
    if (runtime->thread.joinable()) runtime->thread.join();
  }
  boost::system::error_code ignored;
  s.acceptor->close(ignored);  // in case the posted close never ran
  if (s.lock_fd >= 0) {
    ::close(s.lock_fd);
    s.lock_fd = -1;
  }
  if (s.spare_fd >= 0) {
    ::close(s.spare_fd);
    s.spare_fd = -1;
  }
  stopped_ = true;
  {
    std::lock_guard done(request_mutex_);
    stop_done_ = true;
    request_cv_.notify_all();
  }
  log::notice("Runnel is now ready to exit, bye bye...");
}

}  // namespace runnel
