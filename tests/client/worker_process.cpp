// A Worker in a process of its own, for the at-least-once test: it handles each entry by
// appending "<id>\n" to a log file (entries with a "poison" field throw instead), and stops
// gracefully on SIGTERM. A SIGKILL leaves the log as the handlers wrote it.
//   runnel-test-worker PORT STREAM GROUP CONSUMER LOG CLAIM_AFTER_MS MAX_DELIVERIES
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <runnel/client/client.hpp>
#include <runnel/client/worker.hpp>

namespace asio = boost::asio;
using namespace runnel::client;

int main(int argc, char** argv) {
  if (argc != 8) {
    std::fprintf(stderr, "usage: %s PORT STREAM GROUP CONSUMER LOG CLAIM_AFTER_MS MAX_DELIVERIES\n", argv[0]);
    return 2;
  }
  const int log = ::open(argv[5], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) return 2;

  asio::io_context io{1};
  ClientOptions options;
  options.port = static_cast<std::uint16_t>(std::atoi(argv[1]));
  Client client(io.get_executor(), options);

  WorkerOptions w;
  w.stream = argv[2];
  w.group = argv[3];
  w.consumer = argv[4];
  w.concurrency = 8;
  w.max_fetched = 32;
  w.block = std::chrono::milliseconds(200);
  w.claim_after = std::chrono::milliseconds(std::atoi(argv[6]));
  w.max_deliveries = static_cast<std::uint64_t>(std::atoi(argv[7]));
  w.retry_backoff = std::chrono::milliseconds(20);
  w.retry_backoff_max = std::chrono::milliseconds(100);

  Worker worker(client, w, [&](const Entry& entry) -> asio::awaitable<void> {
    asio::steady_timer work(io, std::chrono::microseconds(500));  // some work, so a kill lands mid-batch
    co_await work.async_wait(asio::use_awaitable);
    if (entry.field("poison") != nullptr) throw std::runtime_error("poison entry " + entry.id.to_string());
    const std::string line = entry.id.to_string() + "\n";
    if (::write(log, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      throw std::runtime_error("cannot write the log");
    }
  });
  worker.start();

  asio::signal_set signals(io, SIGTERM, SIGINT);
  int status = 0;
  signals.async_wait([&](boost::system::error_code, int) {
    worker.stop(std::chrono::seconds(10), [&](std::exception_ptr error) {
      status = error ? 1 : 0;
      client.close();
      io.stop();
    });
  });
  io.run();
  const auto stats = worker.stats();
  std::printf("processed=%llu failed=%llu retried=%llu dead_lettered=%llu claimed=%llu\n",
              static_cast<unsigned long long>(stats.processed), static_cast<unsigned long long>(stats.failed),
              static_cast<unsigned long long>(stats.retried), static_cast<unsigned long long>(stats.dead_lettered),
              static_cast<unsigned long long>(stats.claimed));
  ::close(log);
  return status;
}
