// runnel-bench: a load generator for any RESP server (Runnel or Redis), on Boost.Asio.
// Workloads are coroutines over RespConnection; Run holds what they share.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <optional>
#include <string>
#include <vector>

#include "histogram.hpp"

namespace runnel::bench {

using Clock = std::chrono::steady_clock;

// What the command line sets (main.cpp documents each).
struct Options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  unsigned connections = 50;
  unsigned pipeline = 1;
  unsigned threads = 1;
  double duration = 10;  // seconds
  std::uint64_t count = 0;  // 0: bounded by duration only
  bool json = false;
  bool quiet = false;  // no progress line
  std::string key = "bench";
  // produce
  unsigned streams = 1;
  unsigned fields = 1;
  unsigned value_size = 16;
  std::uint64_t maxlen = 0;  // 0: no trimming
  bool idmp = false;         // XADD IDMP <connection> <sequence> (Redis 8.6): every XADD unique
  double rate = 0;           // ops/s over all connections; 0: as fast as it goes
  // consume, fanout, latency
  unsigned consumers = 4;
  unsigned batch = 100;  // XREADGROUP COUNT
  std::uint64_t prefill = 200000;
  unsigned groups = 4;
  // consume: each read also takes over pending entries idle this long, by XREADGROUP's CLAIM
  // (Redis 8.4), or by an XAUTOCLAIM sent with each XREADGROUP (what one does without CLAIM)
  std::optional<unsigned> claim_ms;
  std::optional<unsigned> autoclaim_ms;
  // latency, isolation; pubsub (publishers)
  unsigned producers = 4;
  // pubsub
  unsigned subscribers = 1;
  // strings
  unsigned keys = 10000;
};

// An error the run cannot go on from: an unreachable server, an error reply, a bad reply.
struct BenchError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One measured phase: operations, bytes of payload, latencies (ns).
struct Result {
  std::string name;
  std::uint64_t ops = 0;
  std::uint64_t bytes = 0;
  double seconds = 0;
  Histogram latency;
};

// Runs a workload; returns its phases (one, or two for isolation).
std::vector<Result> run_workload(const std::string& workload, const Options& options);

}  // namespace runnel::bench
