#include "server_state.hpp"

namespace runnel {

std::int64_t steady_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::int64_t wall_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::uint64_t ClientRegistry::add(const std::shared_ptr<ClientInfo>& client) {
  std::lock_guard lock(mutex_);
  client->id = next_id_++;
  clients_.emplace(client->id, client);
  return client->id;
}

void ClientRegistry::remove(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  clients_.erase(id);
}

std::size_t ClientRegistry::size() const {
  std::lock_guard lock(mutex_);
  return clients_.size();
}

void ClientRegistry::for_each(const std::function<void(const ClientInfo&)>& visit) const {
  std::lock_guard lock(mutex_);
  for (const auto& [id, client] : clients_) visit(*client);
}

bool ClientRegistry::kill(std::uint64_t id) {
  std::shared_ptr<ClientInfo> client;
  {
    std::lock_guard lock(mutex_);
    auto it = clients_.find(id);
    if (it == clients_.end()) return false;
    client = it->second;
  }
  client->request_close();
  return true;
}

void ClientRegistry::kill_all() {
  std::map<std::uint64_t, std::shared_ptr<ClientInfo>> all;
  {
    std::lock_guard lock(mutex_);
    all = clients_;
  }
  for (auto& [id, client] : all) {
    client->request_close();
  }
}

void ErrorStats::count(std::string_view reply) {
  if (!reply.empty() && reply.front() == '-') reply.remove_prefix(1);
  const std::string_view kind = reply.substr(0, reply.find_first_of(" \r\n"));
  std::lock_guard lock(mutex_);
  auto it = kinds_.find(kind);
  if (it != kinds_.end()) {
    ++it->second;
  } else if (kinds_.size() < kMaxKinds) {
    kinds_.emplace(std::string(kind), 1);
  }
}

std::vector<std::pair<std::string, std::uint64_t>> ErrorStats::snapshot() const {
  std::lock_guard lock(mutex_);
  return {kinds_.begin(), kinds_.end()};
}

void ErrorStats::reset() {
  std::lock_guard lock(mutex_);
  kinds_.clear();
}

void ServerStats::reset() {
  errors.reset();
  connections_received = 0;
  rejected_connections = 0;
  commands_processed = 0;
  net_input_bytes = 0;
  net_output_bytes = 0;
  error_replies = 0;
  unknown_commands = 0;
  protocol_errors = 0;
  publish_waits = 0;
}

void StorageHealth::failed(unsigned shard, const std::string& cause) {
  std::lock_guard lock(mutex_);
  if (causes_.insert_or_assign(shard, cause).second) failing_.fetch_add(1, std::memory_order_release);
  last_cause_ = cause;
  failures_.fetch_add(1, std::memory_order_relaxed);
}

void StorageHealth::recovered(unsigned shard) {
  std::lock_guard lock(mutex_);
  if (causes_.erase(shard) != 0) failing_.fetch_sub(1, std::memory_order_release);
}

std::string StorageHealth::cause() const {
  std::lock_guard lock(mutex_);
  return causes_.empty() ? last_cause_ : causes_.begin()->second;
}

std::string StorageHealth::client_cause() const {
  // Drops every word that starts with '/' (a path, up to the ':' or space that ends it).
  const std::string full = cause();
  std::string out;
  for (std::size_t i = 0; i < full.size();) {
    if (full[i] == '/' && (i == 0 || full[i - 1] == ' ')) {
      while (i < full.size() && full[i] != ':' && full[i] != ' ') ++i;
      if (!out.empty() && out.back() == ' ') out.pop_back();
      continue;
    }
    out.push_back(full[i++]);
  }
  return out;
}

}  // namespace runnel
