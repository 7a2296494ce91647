// INFO commandstats: each command's calls, time, and failed and rejected calls, counted by
// the shard thread that ran it in its own table (plain memory, never shared: a shard's
// Shard::command_stats); INFO adds the shards' tables up. CONFIG RESETSTAT moves an epoch on,
// which each table notices before its next use (command.hpp: command_counters).
#pragma once

#include <cstdint>
#include <vector>

namespace runnel {

struct CommandCounters {
  std::uint64_t calls = 0;
  std::uint64_t usec = 0;
  std::uint64_t failed = 0;    // ran, and replied with an error
  std::uint64_t rejected = 0;  // refused before running (arity, authentication, -LOADING, -MISCONF)
};

struct CommandStats {
  std::uint64_t epoch = 0;
  std::vector<CommandCounters> by_command;  // by CommandSpec::index
};

}  // namespace runnel
