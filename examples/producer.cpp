// Produces N order events through the SDK's Producer, which batches the XADDs of many
// callers into pipelined writes, and prints the first and last IDs.
//   producer [PORT] [N]
#include <cstdio>
#include <cstdlib>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <runnel/client/client.hpp>
#include <runnel/client/producer.hpp>

namespace asio = boost::asio;
using namespace runnel::client;

asio::awaitable<void> produce(Producer& producer, int first, int count, StreamId& last) {
  for (int i = first; i < first + count; ++i) {
    Fields fields;
    fields.emplace_back("order", std::to_string(i));
    fields.emplace_back("total", std::to_string(i % 100) + ".00");
    last = co_await producer.send("orders", fields, asio::use_awaitable);
  }
}

int main(int argc, char** argv) {
  ClientOptions options;
  options.port = static_cast<std::uint16_t>(argc > 1 ? std::atoi(argv[1]) : 6379);
  const int total = argc > 2 ? std::atoi(argv[2]) : 10000;
  constexpr int kCallers = 16;  // concurrent senders; the Producer batches them

  asio::io_context io;
  Client client(io.get_executor(), options);
  Producer producer(client);
  StreamId last[kCallers];
  int failed = 0, done = 0;
  for (int c = 0; c < kCallers; ++c) {
    const int share = total / kCallers + (c < total % kCallers ? 1 : 0);
    const int first = c * (total / kCallers) + std::min(c, total % kCallers);
    asio::co_spawn(io, produce(producer, first, share, last[c]), [&](std::exception_ptr error) {
      if (error) {
        ++failed;
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "producer: %s\n", e.what());
        }
      }
      if (++done == kCallers) client.close();  // the client's connection ends: io.run() returns
    });
  }
  io.run();
  const auto stats = producer.stats();
  std::printf("sent %llu entries in %llu batches; last id %s\n", static_cast<unsigned long long>(stats.entries),
              static_cast<unsigned long long>(stats.batches), last[0].to_string().c_str());
  return failed == 0 ? 0 : 1;
}
