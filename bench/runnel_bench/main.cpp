// runnel-bench: load for any RESP server, so the same run drives Runnel and Redis.
//   runnel-bench produce|consume|latency|fanout|isolation [options]   (--help lists them)
#include <CLI/CLI.hpp>

#include <clocale>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "bench.hpp"

namespace {

using runnel::bench::Options;
using runnel::bench::Result;

std::string with_commas(double value) {
  const auto whole = static_cast<unsigned long long>(value + 0.5);
  std::string digits = std::to_string(whole);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

double rate_of(const Result& r) { return r.seconds > 0 ? static_cast<double>(r.ops) / r.seconds : 0; }
double mb_rate_of(const Result& r) { return r.seconds > 0 ? static_cast<double>(r.bytes) / r.seconds / 1e6 : 0; }
double us(std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

void print_table(const std::string& workload, const Options& o, const std::vector<Result>& results) {
  std::printf("runnel-bench %s against %s:%u: %u connection(s), pipeline %u, %u thread(s)\n", workload.c_str(),
              o.host.c_str(), o.port, o.connections, o.pipeline, o.threads);
  std::printf("%-15s %14s %9s %14s %9s %10s %10s %10s %10s %10s\n", "phase", "ops", "seconds", "ops/s", "MB/s",
              "p50 us", "p90 us", "p99 us", "p99.9 us", "max us");
  for (const Result& r : results) {
    std::printf("%-15s %14s %9.2f %14s %9.2f %10.1f %10.1f %10.1f %10.1f %10.1f\n", r.name.c_str(),
                with_commas(static_cast<double>(r.ops)).c_str(), r.seconds, with_commas(rate_of(r)).c_str(),
                mb_rate_of(r), us(r.latency.percentile(0.50)), us(r.latency.percentile(0.90)),
                us(r.latency.percentile(0.99)), us(r.latency.percentile(0.999)), us(r.latency.max()));
  }
}

void print_json(const std::string& workload, const Options& o, const std::vector<Result>& results) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(2);
  out << "{\"workload\":\"" << workload << "\",\"server\":\"" << o.host << ":" << o.port
      << "\",\"connections\":" << o.connections << ",\"pipeline\":" << o.pipeline << ",\"threads\":" << o.threads
      << ",\"phases\":[";
  for (std::size_t i = 0; i < results.size(); ++i) {
    const Result& r = results[i];
    if (i > 0) out << ",";
    out << "{\"name\":\"" << r.name << "\",\"ops\":" << r.ops << ",\"seconds\":" << r.seconds
        << ",\"ops_per_sec\":" << rate_of(r) << ",\"mb_per_sec\":" << mb_rate_of(r) << ",\"latency_us\":{"
        << "\"p50\":" << us(r.latency.percentile(0.50)) << ",\"p90\":" << us(r.latency.percentile(0.90))
        << ",\"p99\":" << us(r.latency.percentile(0.99)) << ",\"p99_9\":" << us(r.latency.percentile(0.999))
        << ",\"max\":" << us(r.latency.max()) << ",\"samples\":" << r.latency.count() << "}}";
  }
  out << "]}\n";
  std::fputs(out.str().c_str(), stdout);
}

// Options every workload takes.
void add_common(CLI::App& app, Options& o) {
  app.add_option("--host", o.host, "Server IP address")->capture_default_str();
  app.add_option("-p,--port", o.port, "Server port")->capture_default_str()->check(CLI::Range(1, 65535));
  app.add_option("-d,--duration", o.duration, "Seconds to run (per phase for isolation)")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 86400.0));
  app.add_option("-t,--threads", o.threads, "Client threads (io_contexts)")->capture_default_str()->check(CLI::Range(1, 256));
  app.add_option("--key", o.key, "Stream key (or prefix)")->capture_default_str();
  app.add_option("--value-size", o.value_size, "Bytes per field value")->capture_default_str()->check(CLI::Range(0, 64 * 1024 * 1024));
  app.add_option("--fields", o.fields, "Field/value pairs per entry")->capture_default_str()->check(CLI::Range(1, 1000));
  app.add_flag("--json", o.json, "Print the result as JSON");
  app.add_flag("-q,--quiet", o.quiet, "No progress line on stderr");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"runnel-bench: a load generator for Redis Streams servers (Runnel, Redis)"};
  app.require_subcommand(1);
  Options o;
  bool count_set = false;

  CLI::App* produce = app.add_subcommand("produce", "XADD from many connections, pipelined");
  add_common(*produce, o);
  produce->add_option("-c,--connections", o.connections, "Connections")->capture_default_str()->check(CLI::Range(1, 10000));
  produce->add_option("-P,--pipeline", o.pipeline, "Commands in flight per connection")->capture_default_str()->check(CLI::Range(1, 100000));
  produce->add_option("-n,--count", o.count, "Stop after this many XADDs (no time bound unless --duration is given)");
  produce->add_option("--streams", o.streams, "Streams the load spreads over (key:0, key:1, ...)")->capture_default_str()->check(CLI::Range(1, 1000000));
  produce->add_option("--maxlen", o.maxlen, "Trim with MAXLEN ~ N (0: no trimming)")->capture_default_str();
  produce->add_flag("--idmp", o.idmp, "XADD with IDMP <producer> <n> (Redis 8.6), a new idempotent ID each time");
  produce->add_option("--rate", o.rate, "Target XADDs per second over all connections (0: as fast as possible)")
      ->capture_default_str()->check(CLI::Range(0.0, 1e9));

  CLI::App* strings = app.add_subcommand("strings", "SET and GET in turn (half each) from many connections, pipelined, over --keys keys");
  add_common(*strings, o);
  strings->add_option("-c,--connections", o.connections, "Connections")->capture_default_str()->check(CLI::Range(1, 10000));
  strings->add_option("-P,--pipeline", o.pipeline, "Commands in flight per connection")->capture_default_str()->check(CLI::Range(1, 100000));
  strings->add_option("-n,--count", o.count, "Stop after this many commands (no time bound unless --duration is given)");
  strings->add_option("--keys", o.keys, "Keys the load spreads over (key:0, key:1, ...)")->capture_default_str()->check(CLI::Range(1, 100000000));

  CLI::App* consume = app.add_subcommand("consume", "XREADGROUP COUNT n + XACK by N consumers of one group, over a pre-filled stream");
  add_common(*consume, o);
  consume->add_option("--consumers", o.consumers, "Consumers (one connection each)")->capture_default_str()->check(CLI::Range(1, 10000));
  consume->add_option("--batch", o.batch, "XREADGROUP COUNT")->capture_default_str()->check(CLI::Range(1, 1000000));
  consume->add_option("--prefill", o.prefill, "Entries written first")->capture_default_str()->check(CLI::Range(1, 1000000000));
  auto* claim = consume->add_option("--claim", o.claim_ms, "Read with XREADGROUP ... CLAIM MS (Redis 8.4): idle pending entries first")
      ->check(CLI::Range(0, 1000000000));
  consume->add_option("--autoclaim", o.autoclaim_ms, "Send XAUTOCLAIM ... MS with each XREADGROUP (the way without CLAIM)")
      ->check(CLI::Range(0, 1000000000))->excludes(claim);

  CLI::App* latency = app.add_subcommand("latency", "Producers at a fixed rate, consumers blocked in XREADGROUP: time from XADD to receipt");
  add_common(*latency, o);
  latency->add_option("--producers", o.producers, "Producer connections")->capture_default_str()->check(CLI::Range(1, 10000));
  latency->add_option("--consumers", o.consumers, "Consumers (one connection each)")->capture_default_str()->check(CLI::Range(1, 10000));
  latency->add_option("--rate", o.rate, "XADDs per second over all producers")->capture_default_str()->check(CLI::Range(1.0, 1e7));
  latency->add_option("--batch", o.batch, "XREADGROUP COUNT")->capture_default_str()->check(CLI::Range(1, 1000000));

  CLI::App* fanout = app.add_subcommand("fanout", "G groups each read every entry of a pre-filled stream");
  add_common(*fanout, o);
  fanout->add_option("--groups", o.groups, "Consumer groups (one consumer each)")->capture_default_str()->check(CLI::Range(1, 10000));
  fanout->add_option("--batch", o.batch, "XREADGROUP COUNT")->capture_default_str()->check(CLI::Range(1, 1000000));
  fanout->add_option("--prefill", o.prefill, "Entries written first")->capture_default_str()->check(CLI::Range(1, 1000000000));

  CLI::App* isolation = app.add_subcommand(
      "isolation", "An online stream's end-to-end latency, first alone, then while another stream is flooded");
  add_common(*isolation, o);
  isolation->add_option("-c,--connections", o.connections, "Flood connections")->capture_default_str()->check(CLI::Range(1, 10000));
  isolation->add_option("-P,--pipeline", o.pipeline, "Flood pipeline depth")->capture_default_str()->check(CLI::Range(1, 100000));
  isolation->add_option("--rate", o.rate, "Online XADDs per second")->capture_default_str()->check(CLI::Range(1.0, 1e6));
  isolation->add_option("--maxlen", o.maxlen, "The flooded stream's MAXLEN ~")->capture_default_str();

  CLI::App* pubsub = app.add_subcommand("pubsub", "P publishers PUBLISH to one channel that S subscribers read (--value-size: message bytes)");
  add_common(*pubsub, o);
  pubsub->add_option("--publishers", o.producers, "Publisher connections")->capture_default_str()->check(CLI::Range(1, 10000));
  pubsub->add_option("--subscribers", o.subscribers, "Subscriber connections")->capture_default_str()->check(CLI::Range(1, 10000));
  pubsub->add_option("-P,--pipeline", o.pipeline, "PUBLISHes in flight per publisher")->capture_default_str()->check(CLI::Range(1, 100000));

  // Each workload's own defaults, before parsing.
  for (CLI::App* sub : {consume, fanout}) {
    sub->preparse_callback([&o](std::size_t) { o.batch = 100; });
  }
  latency->preparse_callback([&o](std::size_t) {
    o.rate = 10000;
    o.consumers = 2;
  });
  pubsub->preparse_callback([&o](std::size_t) {
    o.producers = 1;
    o.pipeline = 16;
    o.value_size = 64;
  });
  isolation->preparse_callback([&o](std::size_t) {
    o.connections = 8;
    o.pipeline = 64;
    o.rate = 1000;
    o.maxlen = 100000;
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  const std::string workload = app.get_subcommands().front()->get_name();
  for (CLI::App* counted : {produce, strings}) {
    if (workload != counted->get_name()) continue;
    count_set = counted->count("--count") > 0;
    if (count_set && counted->count("--duration") == 0) o.duration = 0;
  }
  try {
    const std::vector<Result> results = runnel::bench::run_workload(workload, o);
    if (o.json) {
      print_json(workload, o, results);
    } else {
      print_table(workload, o, results);
    }
  } catch (const runnel::bench::BenchError& e) {
    std::fprintf(stderr, "runnel-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
