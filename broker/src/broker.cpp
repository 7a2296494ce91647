#include <runnel/broker/broker.hpp>

#include "server.hpp"

namespace runnel {

Broker::Broker(Config config) : server_(std::make_unique<Server>(std::move(config))) {}
Broker::~Broker() = default;

void Broker::start() { server_->start(); }
std::uint16_t Broker::port() const { return server_->port(); }
void Broker::stop() { server_->stop(); }
void Broker::wait() { server_->wait(); }

}  // namespace runnel
