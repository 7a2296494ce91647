// A client connection: the socket, the request parser, the reply queue and back-pressure.
// It hands each parsed command to its Coordinator (coordinator.hpp), which runs it on the
// shards its route names, appends the reply in request order, and says how much of the reply
// queue may be sent (a write's reply waits until it is durable). Connections move to the
// shard their keys live on. Only server.cpp and connection.cpp include this header.
#pragma once

#include "server_core.hpp"

namespace runnel {

// A socket bound to its shard's io_context itself rather than to a type-erased executor:
// 48 bytes less per connection.
using Socket = asio::basic_stream_socket<tcp, asio::io_context::executor_type>;

// Serves an accepted socket on shard `home`'s thread (started there by a post).
void serve_connection(ServerCore& server, Socket socket, unsigned home);

}  // namespace runnel
