// Version strings: Runnel's own, and the Redis version whose behaviour it implements.
#pragma once

#include <string_view>

namespace runnel {

inline constexpr std::string_view kRunnelVersion = "0.1.0";
// Reported where clients look for a Redis version (HELLO, INFO redis_version): the Redis
// release whose replies Runnel reproduces.
inline constexpr std::string_view kRedisCompatVersion = "7.0.15";
inline constexpr std::string_view kServerName = "runnel";

}  // namespace runnel
