// SyncClient: an async Client on an io_context of its own, run by one thread; each call
// waits on a promise that the reply's completion fulfils.
#include <runnel/client/sync_client.hpp>

#include <future>
#include <optional>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <runnel/client/client.hpp>

namespace runnel::client {

struct SyncClient::Impl {
  explicit Impl(ClientOptions options)
      : work(io.get_executor()), client(io.get_executor(), std::move(options)), thread([this] { io.run(); }) {}

  // The close fails what is left (its completions run on the thread, so no caller waits
  // forever); then nothing is pending and run() returns.
  ~Impl() {
    client.close();
    work.reset();
    thread.join();
  }

  boost::asio::io_context io{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work;
  Client client;
  std::thread thread;
};

SyncClient::SyncClient(ClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  std::promise<void> connected;
  auto done = connected.get_future();
  impl_->client.connect([&connected](std::exception_ptr error) {
    if (error) {
      connected.set_exception(error);
    } else {
      connected.set_value();
    }
  });
  done.get();
}

SyncClient::~SyncClient() = default;

int SyncClient::protocol() const { return impl_->client.protocol(); }

Reply SyncClient::call(Command command, std::size_t replies, std::int64_t block_ms, std::int64_t timeout_ms) {
  std::promise<Reply> promise;
  auto reply = promise.get_future();
  impl_->client.run(Request<Reply>{std::move(command), &identity_reply, replies, block_ms, timeout_ms},
                    [&promise](std::exception_ptr error, Reply value) {
                      if (error) {
                        promise.set_exception(error);
                      } else {
                        promise.set_value(std::move(value));
                      }
                    });
  return reply.get();
}

}  // namespace runnel::client
