// runnel-import: loads the streams of a Redis RDB file (SAVE, BGSAVE, redis-cli --rdb) into a
// running Runnel. Each stream goes over the wire as a RESTORE, so it lands on its shard and
// on disk as any write does (its reply waits for the --fsync policy). Other types are skipped
// and counted. Usage: runnel-import dump.rdb [-h host] [-p port] [-a password] [--replace]
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <map>
#include <string>

#include <CLI/CLI.hpp>

#include <runnel/client/connection.hpp>
#include <runnel/storage/rdb.hpp>

namespace rdb = runnel::storage::rdb;

namespace {

// The file, mapped read-only.
class Mapped {
 public:
  explicit Mapped(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw std::runtime_error("cannot open " + path);
    struct stat st {};
    if (::fstat(fd_, &st) != 0) throw std::runtime_error("cannot stat " + path);
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ == 0) return;
    data_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
    if (data_ == MAP_FAILED) throw std::runtime_error("cannot map " + path);
    ::madvise(data_, size_, MADV_SEQUENTIAL);
  }
  ~Mapped() {
    if (data_ != nullptr && data_ != MAP_FAILED) ::munmap(data_, size_);
    if (fd_ >= 0) ::close(fd_);
  }
  Mapped(const Mapped&) = delete;
  Mapped& operator=(const Mapped&) = delete;
  [[nodiscard]] std::string_view bytes() const { return {static_cast<const char*>(data_), size_}; }

 private:
  int fd_ = -1;
  void* data_ = nullptr;
  std::size_t size_ = 0;
};

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Loads the streams of a Redis RDB file into a running runnel-server, as RESTOREs"};
  std::string file, host = "127.0.0.1", password;
  std::uint16_t port = 6379;
  bool replace = false;
  std::size_t window = 16;
  std::uint64_t max_stream_bytes = rdb::kDefaultMaxEntryBytes;
  app.add_option("file", file, "The RDB file")->required();
  app.add_option("-H,--host", host, "Runnel's address");
  app.add_option("-p,--port", port, "Runnel's port");
  app.add_option("-a,--password", password, "AUTH password");
  app.add_flag("--replace", replace, "Overwrite streams Runnel already has (RESTORE ... REPLACE)");
  app.add_option("--window", window, "RESTOREs in flight")->check(CLI::Range(1, 1024));
  app.add_option("--max-stream-bytes", max_stream_bytes,
                 "Largest stream to load, in entry bytes (the server's proto-max-bulk-len); a larger one stops the import")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    const Mapped mapped(file);
    runnel::client::Connection runnel(host, port, std::chrono::minutes(5));
    if (!password.empty()) {
      const auto r = runnel.call({"AUTH", password});
      if (r.is_error()) throw std::runtime_error("AUTH: " + r.str);
    }
    std::uint64_t streams = 0, entries = 0, groups = 0, refused = 0, expired = 0, ttl_dropped = 0;
    std::deque<std::string> in_flight;  // keys whose RESTORE reply is awaited
    auto settle = [&](std::size_t keep) {
      while (in_flight.size() > keep) {
        const auto r = runnel.read_reply();
        if (r.is_error()) {
          ++refused;
          std::fprintf(stderr, "runnel-import: stream '%s' refused: %s\n", in_flight.front().substr(0, 200).c_str(),
                       r.str.c_str());
        }
        in_flight.pop_front();
      }
    };
    std::map<std::string, std::uint64_t> skipped;
    const auto started = std::chrono::steady_clock::now();
    const std::string error = rdb::read_rdb_file(
        mapped.bytes(),
        [&](rdb::FileStream&& s) {
          // Redis drops a key already expired when it loads a file; Runnel has no expiry
          // yet, so a live one comes in without its TTL (counted, and said).
          if (s.expire_ms >= 0 && s.expire_ms <= now_ms()) {
            ++expired;
            return;
          }
          if (s.expire_ms >= 0) ++ttl_dropped;
          ++streams;
          entries += s.stream.entries.size();
          groups += s.stream.groups.size();
          const std::string payload = rdb::dump_stream(s.stream);
          if (replace) {
            runnel.send({"RESTORE", s.key, "0", payload, "REPLACE"});
          } else {
            runnel.send({"RESTORE", s.key, "0", payload});
          }
          in_flight.push_back(std::move(s.key));
          settle(window - 1);
        },
        skipped, max_stream_bytes);
    settle(0);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::printf("runnel-import: %llu streams (%llu entries, %llu groups) in %.2f s: %.0f entries/s\n",
                static_cast<unsigned long long>(streams - refused), static_cast<unsigned long long>(entries),
                static_cast<unsigned long long>(groups), seconds, seconds > 0 ? static_cast<double>(entries) / seconds : 0.0);
    if (refused != 0) std::printf("  refused by the server: %llu streams\n", static_cast<unsigned long long>(refused));
    if (expired != 0) std::printf("  already expired, not loaded: %llu streams\n", static_cast<unsigned long long>(expired));
    if (ttl_dropped != 0) {
      std::printf("  loaded without their TTL (Runnel has no key expiry yet): %llu streams\n",
                  static_cast<unsigned long long>(ttl_dropped));
    }
    for (const auto& [type, count] : skipped) {
      std::printf("  skipped: %llu %s\n", static_cast<unsigned long long>(count), type.c_str());
    }
    if (!error.empty()) {
      std::fprintf(stderr, "runnel-import: stopped: %s\n", error.c_str());
      return 1;
    }
    return refused == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "runnel-import: %s\n", e.what());
    return 1;
  }
}
