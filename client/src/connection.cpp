#include <runnel/client/connection.hpp>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace runnel::client {

void encode_command(std::span<const std::string_view> args, std::string& out) {
  out += '*';
  out += std::to_string(args.size());
  out += "\r\n";
  for (std::string_view arg : args) {
    out += '$';
    out += std::to_string(arg.size());
    out += "\r\n";
    out.append(arg);
    out += "\r\n";
  }
}

std::string encode_command(std::initializer_list<std::string_view> args) {
  std::string out;
  encode_command(std::span<const std::string_view>(args.begin(), args.size()), out);
  return out;
}

Connection::Connection(const std::string& host, std::uint16_t port,
                       std::chrono::milliseconds timeout)
    : timeout_(timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  const std::string service = std::to_string(port);
  if (getaddrinfo(host.c_str(), service.c_str(), &hints, &result) != 0 || result == nullptr) {
    throw ConnectionError("cannot resolve " + host);
  }
  for (addrinfo* ai = result; ai != nullptr; ai = ai->ai_next) {
    fd_ = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd_ < 0) continue;
    if (::connect(fd_, ai->ai_addr, ai->ai_addrlen) == 0) break;
    ::close(fd_);
    fd_ = -1;
  }
  freeaddrinfo(result);
  if (fd_ < 0) throw ConnectionError("cannot connect to " + host + ":" + service);
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

Connection::~Connection() {
  if (fd_ >= 0) ::close(fd_);
}

void Connection::send_raw(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw ConnectionError(std::string("send failed: ") + std::strerror(errno));
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

void Connection::send(std::span<const std::string_view> args) {
  std::string frame;
  encode_command(args, frame);
  send_raw(frame);
}

bool Connection::fill(std::chrono::milliseconds timeout) {
  pollfd pfd{fd_, POLLIN, 0};
  const int ready = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
  if (ready == 0) throw ConnectionError("timed out waiting for the server");
  if (ready < 0 && errno != EINTR) throw ConnectionError("poll failed");
  char chunk[64 * 1024];
  const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
  if (n == 0) return false;
  if (n < 0) {
    if (errno == EINTR || errno == EAGAIN) return true;
    if (errno == ECONNRESET) return false;
    throw ConnectionError(std::string("recv failed: ") + std::strerror(errno));
  }
  buffer_.append(chunk, static_cast<std::size_t>(n));
  return true;
}

protocol::Reply Connection::read_reply(std::string* raw) {
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  while (true) {
    protocol::Reply reply;
    const auto result = protocol::parse_reply(buffer_, reply);
    if (result.status == protocol::ReplyStatus::kDone) {
      if (raw) raw->assign(buffer_, 0, result.consumed);
      buffer_.erase(0, result.consumed);
      return reply;
    }
    if (result.status == protocol::ReplyStatus::kError) {
      throw ConnectionError("malformed reply from server");
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) throw ConnectionError("timed out waiting for a reply");
    if (!fill(left)) throw ConnectionError("connection closed by server");
  }
}

protocol::Reply Connection::call(std::initializer_list<std::string_view> args, std::string* raw) {
  send(args);
  return read_reply(raw);
}

protocol::Reply Connection::call(std::span<const std::string_view> args, std::string* raw) {
  send(args);
  return read_reply(raw);
}

std::string Connection::read_until_close(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  try {
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !fill(left)) break;
    }
  } catch (const ConnectionError&) {
  }
  std::string out;
  out.swap(buffer_);
  return out;
}

bool Connection::peer_closed(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  try {
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      if (!fill(left)) return true;
    }
  } catch (const ConnectionError&) {
    return false;
  }
}

}  // namespace runnel::client
