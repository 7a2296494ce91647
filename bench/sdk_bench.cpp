// runnel-sdk-bench: XADD throughput through the C++ SDK, to compare with runnel-bench's own
// lean connection (produce) and with hiredis on the same server, same connections and same
// depth. Each mode runs C connections with P XADDs in flight on each, for D seconds:
//   sdk       the async Client: P coroutines per connection, each awaiting its XADD in turn
//             (the Client pipelines what they issue while a write is in flight)
//   producer  a Producer per connection, P coroutines each awaiting its send in turn
//   producer-window  a Producer per connection, fed by one loop that sends with callbacks
//             and keeps --window entries unanswered (how a high-throughput producer is used)
//   hiredis   hiredis 0.14 (C), one thread per connection: append P XADDs, read P replies
// Prints one line: mode, connections, depth, ops, seconds, ops/s.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <runnel/client/client.hpp>
#include <runnel/client/producer.hpp>

#ifdef RUNNEL_HAVE_HIREDIS
#include <hiredis/hiredis.h>
#endif

namespace asio = boost::asio;
using namespace runnel::client;
using Clock = std::chrono::steady_clock;

namespace {

struct Settings {
  std::string mode = "sdk";
  std::uint16_t port = 6379;
  unsigned connections = 50;
  unsigned depth = 16;
  double seconds = 4;
  unsigned value_size = 16;
  std::string key = "bench";
  std::size_t max_batch = 256;
  unsigned linger_us = 0;
  std::size_t window = 1024;
  unsigned consumers = 4;
  std::uint64_t batch = 100;
  std::uint64_t prefill = 200000;
};

struct Outcome {
  std::atomic<std::uint64_t> ops{0};
  std::atomic<bool> stop{false};
  std::string error;
};

// Runs the coroutines on one thread until `stop`, then closes the clients.
template <class Spawn>
void run_on_one_thread(const Settings& s, Outcome& out, Spawn&& spawn) {
  asio::io_context io{1};
  ClientOptions options;
  options.port = s.port;
  options.max_queued_requests = 1u << 20;
  std::vector<std::unique_ptr<Client>> clients;
  for (unsigned c = 0; c < s.connections; ++c) clients.push_back(std::make_unique<Client>(io.get_executor(), options));
  std::atomic<unsigned> running{0};
  spawn(io, clients, running);
  asio::steady_timer timer(io, std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s.seconds)));
  timer.async_wait([&](boost::system::error_code) { out.stop = true; });
  // The run ends once every coroutine has seen `stop` and finished its request.
  struct Report {
    std::vector<std::unique_ptr<Client>>& clients;
    ~Report() {
      std::uint64_t writes = 0, requests = 0;
      for (auto& c : clients) {
        writes += c->stats().writes;
        requests += c->stats().requests;
      }
      std::fprintf(stderr, "client writes %llu, requests %llu\n", static_cast<unsigned long long>(writes),
                   static_cast<unsigned long long>(requests));
    }
  } report{clients};
  asio::steady_timer reaper(io);
  std::function<void()> reap = [&] {
    reaper.expires_after(std::chrono::milliseconds(2));
    reaper.async_wait([&](boost::system::error_code) {
      if (running.load() == 0) {
        timer.cancel();
        for (auto& c : clients) c->close();
      } else {
        reap();
      }
    });
  };
  reap();
  io.run();
}

asio::awaitable<void> sdk_slot(Client& client, const Command& xadd, Outcome& out, std::atomic<unsigned>& running) {
  ++running;
  while (!out.stop.load(std::memory_order_relaxed)) {
    try {
      co_await client.execute(xadd, asio::use_awaitable);
      out.ops.fetch_add(1, std::memory_order_relaxed);
    } catch (const std::exception& e) {
      if (out.error.empty()) out.error = e.what();
      out.stop = true;
    }
  }
  --running;
}

asio::awaitable<void> producer_slot(Producer& producer, const Settings& s, const Fields& fields, Outcome& out,
                                    std::atomic<unsigned>& running) {
  ++running;
  while (!out.stop.load(std::memory_order_relaxed)) {
    try {
      co_await producer.send(s.key, fields, asio::use_awaitable);
      out.ops.fetch_add(1, std::memory_order_relaxed);
    } catch (const std::exception& e) {
      if (out.error.empty()) out.error = e.what();
      out.stop = true;
    }
  }
  --running;
}

// A producer as a high-throughput application writes one: sends with callbacks, keeping up
// to `window` entries unanswered, and waiting for room when it has that many.
asio::awaitable<void> producer_pump(Producer& producer, const Settings& s, const Fields& fields, Outcome& out,
                                    std::atomic<unsigned>& running) {
  ++running;
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer room(executor);
  std::size_t outstanding = 0;
  bool waiting = false;
  while (!out.stop.load(std::memory_order_relaxed)) {
    if (outstanding >= s.window) {
      waiting = true;
      room.expires_at(Clock::time_point::max());
      boost::system::error_code ignored;
      co_await room.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
      continue;
    }
    ++outstanding;
    producer.send(s.key, fields, [&](std::exception_ptr error, StreamId) {
      --outstanding;
      if (error) {
        if (out.error.empty()) {
          try {
            std::rethrow_exception(error);
          } catch (const std::exception& e) {
            out.error = e.what();
          }
        }
        out.stop = true;
      } else {
        out.ops.fetch_add(1, std::memory_order_relaxed);
      }
      if (waiting && outstanding <= s.window / 2) {
        waiting = false;
        room.cancel();
      }
    });
  }
  while (outstanding > 0) {  // let the last answers in (they reference this frame)
    room.expires_after(std::chrono::milliseconds(1));
    boost::system::error_code ignored;
    co_await room.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  --running;
}

// A group consumer as runnel-bench's consume runs one: XREADGROUP COUNT --batch with the
// XACK of the previous batch in the same round trip, through the typed calls, until the
// stream is drained or the time is up.
asio::awaitable<void> consume_slot(Client& client, const Settings& s, unsigned index, Outcome& out,
                                   std::atomic<unsigned>& running) {
  ++running;
  const std::string consumer = "c" + std::to_string(index);
  std::vector<StreamId> acks;
  XReadGroupOptions read;
  read.count = s.batch;
  const StreamCursors cursors{{s.key, ">"}};
  try {
    while (!out.stop.load(std::memory_order_relaxed)) {
      if (!acks.empty()) {
        client.run(cmd::xack(s.key, "g0", acks), [&out](std::exception_ptr error, std::uint64_t) {
          if (error) out.stop = true;
        });
      }
      auto request = cmd::xreadgroup("g0", consumer, cursors, read);
      const auto got = co_await client.run(std::move(request), asio::use_awaitable);
      acks.clear();
      if (got.empty() || got.front().entries.empty()) break;  // drained
      for (const Entry& e : got.front().entries) acks.push_back(e.id);
      out.ops.fetch_add(acks.size(), std::memory_order_relaxed);
    }
    if (!acks.empty()) co_await client.run(cmd::xack(s.key, "g0", acks), asio::use_awaitable);
  } catch (const std::exception& e) {
    if (out.error.empty()) out.error = e.what();
    out.stop = true;
  }
  --running;
}

// Writes --prefill entries and makes group g0 at 0 (not timed).
void prefill(const Settings& s) {
  asio::io_context io{1};
  ClientOptions options;
  options.port = s.port;
  Client client(io.get_executor(), options);
  std::string error;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await client.execute(Command("DEL", s.key), asio::use_awaitable);
        const Command xadd("XADD", s.key, "*", "f0", std::string(s.value_size, 'v'));
        std::uint64_t left = s.prefill;
        while (left > 0) {
          const std::uint64_t n = std::min<std::uint64_t>(left, 1000);
          std::atomic<std::uint64_t> answered{0};
          asio::steady_timer all(co_await asio::this_coro::executor, Clock::time_point::max());
          for (std::uint64_t i = 0; i < n; ++i) {
            client.execute(xadd, [&](std::exception_ptr e, Reply) {
              if (e) error = "prefill: an XADD failed";
              if (++answered == n) all.cancel();
            });
          }
          boost::system::error_code ignored;
          co_await all.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
          left -= n;
        }
        co_await client.execute(Command("XGROUP", "CREATE", s.key, "g0", "0"), asio::use_awaitable);
        client.close();
      },
      [&](std::exception_ptr e) {
        if (e) error = "prefill failed";
        client.close();
      });
  io.run();
  if (!error.empty()) throw std::runtime_error(error);
}

#ifdef RUNNEL_HAVE_HIREDIS
void hiredis_connection(const Settings& s, const std::string& value, Outcome& out) {
  redisContext* c = redisConnect("127.0.0.1", s.port);
  if (c == nullptr || c->err) {
    out.error = "hiredis cannot connect";
    out.stop = true;
    if (c) redisFree(c);
    return;
  }
  while (!out.stop.load(std::memory_order_relaxed)) {
    for (unsigned i = 0; i < s.depth; ++i) {
      redisAppendCommand(c, "XADD %b * f0 %b", s.key.data(), s.key.size(), value.data(), value.size());
    }
    for (unsigned i = 0; i < s.depth; ++i) {
      void* reply = nullptr;
      if (redisGetReply(c, &reply) != REDIS_OK || reply == nullptr ||
          static_cast<redisReply*>(reply)->type == REDIS_REPLY_ERROR) {
        out.error = "hiredis: a failed XADD";
        out.stop = true;
      }
      if (reply) freeReplyObject(reply);
    }
    out.ops.fetch_add(s.depth, std::memory_order_relaxed);
  }
  redisFree(c);
}
#endif

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  CLI::App app("XADD throughput through the C++ SDK, runnel-bench's connection or hiredis");
  app.add_option("mode", s.mode, "sdk, producer, producer-window or hiredis")
      ->check(CLI::IsMember({"sdk", "producer", "producer-window", "consume", "hiredis"}));
  app.add_option("-p,--port", s.port, "Server port");
  app.add_option("-c,--connections", s.connections, "Connections")->check(CLI::Range(1, 10000));
  app.add_option("-P,--depth", s.depth, "XADDs in flight per connection")->check(CLI::Range(1, 100000));
  app.add_option("-d,--duration", s.seconds, "Seconds")->check(CLI::Range(0.1, 3600.0));
  app.add_option("--value-size", s.value_size, "Bytes of the one field's value");
  app.add_option("--max-batch", s.max_batch, "producer: entries per batch");
  app.add_option("--linger-us", s.linger_us, "producer: linger in microseconds");
  app.add_option("--window", s.window, "producer-window: entries unanswered per connection");
  app.add_option("--consumers", s.consumers, "consume: consumers (one connection each)");
  app.add_option("--batch", s.batch, "consume: XREADGROUP COUNT");
  app.add_option("--prefill", s.prefill, "consume: entries written first");
  CLI11_PARSE(app, argc, argv);

  const std::string value(s.value_size, 'v');
  const Fields fields{{"f0", value}};
  const Command xadd("XADD", s.key, "*", "f0", value);
  Outcome out;
  const auto start = Clock::now();
  if (s.mode == "sdk") {
    run_on_one_thread(s, out, [&](asio::io_context& io, auto& clients, std::atomic<unsigned>& running) {
      for (auto& client : clients) {
        for (unsigned i = 0; i < s.depth; ++i) {
          asio::co_spawn(io, sdk_slot(*client, xadd, out, running), [](std::exception_ptr) {});
        }
      }
    });
  } else if (s.mode == "consume") {
    prefill(s);
    s.connections = s.consumers;
    const auto begin = Clock::now();
    run_on_one_thread(s, out, [&](asio::io_context& io, auto& clients, std::atomic<unsigned>& running) {
      for (unsigned i = 0; i < clients.size(); ++i) {
        asio::co_spawn(io, consume_slot(*clients[i], s, i, out, running), [](std::exception_ptr) {});
      }
    });
    const double seconds = std::chrono::duration<double>(Clock::now() - begin).count();
    std::printf("consume consumers=%u batch=%llu ops=%llu seconds=%.2f ops_per_sec=%.0f\n", s.consumers,
                static_cast<unsigned long long>(s.batch), static_cast<unsigned long long>(out.ops.load()), seconds,
                static_cast<double>(out.ops.load()) / seconds);
    return out.error.empty() ? 0 : 1;
  } else if (s.mode == "producer-window") {
    std::vector<std::unique_ptr<Producer>> producers;
    ProducerOptions po;
    po.max_batch = s.max_batch;
    po.linger = std::chrono::microseconds(s.linger_us);
    po.max_buffered = std::max<std::size_t>(po.max_buffered, s.window);
    run_on_one_thread(s, out, [&](asio::io_context& io, auto& clients, std::atomic<unsigned>& running) {
      for (auto& client : clients) {
        producers.push_back(std::make_unique<Producer>(*client, po));
        asio::co_spawn(io, producer_pump(*producers.back(), s, fields, out, running), [](std::exception_ptr) {});
      }
    });
  } else if (s.mode == "producer") {
    std::vector<std::unique_ptr<Producer>> producers;
    ProducerOptions po;
    po.max_batch = s.max_batch;
    po.linger = std::chrono::microseconds(s.linger_us);
    run_on_one_thread(s, out, [&](asio::io_context& io, auto& clients, std::atomic<unsigned>& running) {
      for (auto& client : clients) {
        producers.push_back(std::make_unique<Producer>(*client, po));
        for (unsigned i = 0; i < s.depth; ++i) {
          asio::co_spawn(io, producer_slot(*producers.back(), s, fields, out, running), [](std::exception_ptr) {});
        }
      }
    });
  } else {
#ifdef RUNNEL_HAVE_HIREDIS
    std::vector<std::thread> threads;
    std::thread timer([&] {
      std::this_thread::sleep_for(std::chrono::duration<double>(s.seconds));
      out.stop = true;
    });
    for (unsigned c = 0; c < s.connections; ++c) threads.emplace_back(hiredis_connection, std::cref(s), std::cref(value), std::ref(out));
    for (auto& t : threads) t.join();
    timer.join();
#else
    std::fprintf(stderr, "runnel-sdk-bench: built without hiredis (libhiredis-dev)\n");
    return 2;
#endif
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (!out.error.empty()) {
    std::fprintf(stderr, "runnel-sdk-bench: %s\n", out.error.c_str());
    return 1;
  }
  std::printf("%s c=%u P=%u ops=%llu seconds=%.2f ops_per_sec=%.0f\n", s.mode.c_str(), s.connections, s.depth,
              static_cast<unsigned long long>(out.ops.load()), seconds, static_cast<double>(out.ops.load()) / seconds);
  return 0;
}
