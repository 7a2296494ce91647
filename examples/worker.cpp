// A consumer-group worker for the "orders" stream: it handles each order, retries a failed
// one with a backoff, and after 3 deliveries moves it to "orders:dlq". Ctrl-C stops it
// gracefully: handlers in flight finish and are acknowledged.
//   worker [PORT] [CONSUMER]
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <runnel/client/client.hpp>
#include <runnel/client/worker.hpp>

namespace asio = boost::asio;
using namespace runnel::client;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  ClientOptions options;
  options.port = static_cast<std::uint16_t>(argc > 1 ? std::atoi(argv[1]) : 6379);
  options.client_name = "orders-worker";

  WorkerOptions work;
  work.stream = "orders";
  work.group = "billing";
  if (argc > 2) work.consumer = argv[2];  // else host-pid
  work.concurrency = 16;
  work.max_deliveries = 3;
  work.retry_backoff = 200ms;
  work.claim_after = 30s;  // take over entries of workers that died
  work.lag_interval = 5s;

  WorkerHooks hooks;
  hooks.dead_lettered = [](const Entry& entry, std::uint64_t deliveries, const std::string& error) {
    std::fprintf(stderr, "dead letter %s after %llu deliveries: %s\n", entry.id.to_string().c_str(),
                 static_cast<unsigned long long>(deliveries), error.c_str());
  };
  hooks.lag = [](std::optional<std::uint64_t> lag, std::uint64_t pending) {
    std::printf("lag %s, pending %llu\n", lag ? std::to_string(*lag).c_str() : "unknown",
                static_cast<unsigned long long>(pending));
  };

  asio::io_context io;
  Client client(io.get_executor(), options);
  Worker worker(
      client, work,
      [](const Entry& entry) -> asio::awaitable<void> {
        const std::string* total = entry.field("total");
        if (total == nullptr) throw std::invalid_argument("an order without a total");
        // ... bill the order; a throw here means "retry later" ...
        co_return;
      },
      hooks);
  worker.start();

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code, int) {
    worker.stop(10s, [&](std::exception_ptr error) {
      if (error) std::fprintf(stderr, "worker: handlers still running at the deadline\n");
      client.close();
    });
  });
  io.run();
  const auto stats = worker.stats();
  std::printf("processed %llu, failed %llu, dead-lettered %llu\n", static_cast<unsigned long long>(stats.processed),
              static_cast<unsigned long long>(stats.failed), static_cast<unsigned long long>(stats.dead_lettered));
}
