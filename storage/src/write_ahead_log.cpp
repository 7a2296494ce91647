#include <runnel/storage/write_ahead_log.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <deque>
#include <map>
#include <mutex>
#include <unordered_map>
#include <xxhash.h>

#include <runnel/storage/io_queue.hpp>

#include "batch.hpp"
#include "varint.hpp"

namespace runnel::storage {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kMagic = "RUNNELWL";
// Version 2 salts each batch's checksum with the generation (a recycled file's old batches
// then no longer check); version 1 logs (unsalted) are still replayed.
constexpr std::uint32_t kVersion = 2;
constexpr std::string_view kSpareSuffix = ".spare";
enum RecordType : std::uint8_t { kWrite = 1, kForget = 2, kOrder = 3, kForgetAt = 4 };

// Each batch's place in the order of every shard's batches (its kOrder record): a forget
// then covers the writes logged before it in any shard's log, as a stream RENAMEd to
// another shard has writes in both logs.
std::atomic<std::uint64_t> batch_order{0};

// Where a record lies: its batch's order (0 in logs without kOrder records), then its
// position across all logs (which orders the records of one batch, and all of older logs).
using Place = std::pair<std::uint64_t, std::uint64_t>;

std::string errno_text(int e) { return std::strerror(e); }

std::string header(unsigned shard, std::uint64_t generation, std::uint32_t version = kVersion) {
  std::string h(kMagic);
  put_u32(h, version);
  put_u32(h, shard);
  put_u64(h, generation);
  put_u64(h, XXH3_64bits(h.data(), h.size()));
  return h;
}

std::string relative_to(const std::string& data_dir, const std::string& path) {
  const std::string prefix = data_dir + "/";
  return path.compare(0, prefix.size(), prefix) == 0 ? path.substr(prefix.size()) : path;
}

std::string parent_of(std::string_view path) {
  const auto slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string() : std::string(path.substr(0, slash));
}

// A log file found at start-up.
struct Found {
  unsigned shard;
  std::uint64_t generation;
  std::string path;
};

// Visits every record of every log in order, with its position (a count across all logs).
// Returns the error, or none.
template <typename Visit>
Error each_record(const std::vector<Found>& logs, std::vector<std::string>& notes, Visit&& visit) {
  std::uint64_t position = 0;
  for (const Found& log : logs) {
    const int fd = ::open(log.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return system_error("cannot open", log.path, errno);
    const std::int64_t size = file_size(fd);
    std::string h;
    const Error read = read_at(fd, 0, WriteAheadLog::kHeaderBytes, h);
    if (read || size < 0) {
      ::close(fd);
      return Error{"cannot read " + log.path, log.path, read ? read.code : EIO};
    }
    std::uint64_t salt = log.generation;
    if (h == header(log.shard, log.generation, 1)) {
      salt = 0;
    } else if (h != header(log.shard, log.generation)) {
      // A log whose header never reached the disk holds nothing acknowledged (nor does a
      // recycled file whose new header did not: its old batches do not check with this
      // generation's salt). Only this generation's salt is looked for: the records carry
      // the streams' own batches (unsalted) inside them, which must not count.
      const bool anything_after = whole_batch_after(fd, 0, static_cast<std::uint64_t>(size), log.generation);
      ::close(fd);
      if (anything_after) return damage_error(log.path + ": bad header", log.path);
      notes.push_back("ignored " + log.path + ", whose header was torn");
      continue;
    }
    bool malformed = false;
    const BatchScan scan = scan_batches(fd, log.path, WriteAheadLog::kHeaderBytes, static_cast<std::uint64_t>(size),
                                        [&](std::uint64_t, std::string_view body) {
                                          while (!body.empty()) {
                                            const auto type = static_cast<std::uint8_t>(body.front());
                                            body.remove_prefix(1);
                                            if (!visit(type, body, position++)) {
                                              malformed = true;
                                              return false;
                                            }
                                          }
                                          return true;
                                        },
                                        salt);
    ::close(fd);
    if (malformed || scan.outcome == BatchScan::Outcome::kMalformed) {
      return damage_error(log.path + ": a record does not parse", log.path);
    }
    if (scan.outcome == BatchScan::Outcome::kDamaged) return damage_error(log.path + ": damaged before its end", log.path);
    if (scan.outcome == BatchScan::Outcome::kIoError) return scan.error;
    if (scan.outcome == BatchScan::Outcome::kTorn) {
      notes.push_back("ignored the torn tail of " + log.path + " (a flush never acknowledged)");
    }
  }
  return {};
}

// Whether a file's first bytes, `head`, are a header that never reached the disk: short, or
// all zeros (a page the kernel had not yet written back reads as zeros after a power cut,
// while later pages of the same file may be on disk).
bool header_unwritten(std::string_view head, std::size_t header_bytes) {
  return head.size() < header_bytes ||
         std::all_of(head.begin(), head.begin() + static_cast<std::ptrdiff_t>(header_bytes), [](char c) { return c == 0; });
}

// A file being replayed into: its descriptor and the header it has now.
struct Target {
  int fd = -1;           // open now (at most kReplayOpenFiles are)
  bool missing = false;  // no such file: a trimmed segment or a deleted stream
  std::string head;      // up to the identity's length, as on disk
  bool written = false;  // written since it was last synced
};

// Files the replay keeps open at once: a log may name more files than the process may
// open (a million streams under `ulimit -n 1024`). The oldest opened is synced and closed
// to make room, and opened again if a later write needs it.
constexpr std::size_t kReplayOpenFiles = 64;

}  // namespace

std::string WriteAheadLog::path_of(const std::string& data_dir, unsigned shard, std::uint64_t generation) {
  return data_dir + "/wal/" + std::to_string(shard) + "-" + std::to_string(generation) + ".wal";
}

std::unique_ptr<WriteAheadLog> WriteAheadLog::create(const std::string& data_dir, unsigned shard,
                                                     std::uint64_t generation, Error& error,
                                                     std::uint64_t zeroed) {
  std::error_code ec;
  fs::create_directories(data_dir + "/wal", ec);
  if (ec) {
    error = Error{"cannot create " + data_dir + "/wal: " + ec.message(), data_dir + "/wal", ec.value()};
    return nullptr;
  }
  const std::string path = path_of(data_dir, shard, generation);
  if (Error failed = replace_file(path, header(shard, generation))) {
    error = std::move(failed);
    return nullptr;
  }
  auto file = open_file(path, false, error, File::Mode::kAlwaysOpen);
  if (!file) return nullptr;
  int rc = 0;
  if (zeroed > 0) {
    const std::string zeros(1024 * 1024, '\0');
    for (std::uint64_t at = kHeaderBytes; rc == 0 && at < kHeaderBytes + zeroed; at += zeros.size()) {
      rc = write_at(file->fd(), at, zeros).code;
    }
    if (rc == 0 && ::fdatasync(file->fd()) != 0) rc = errno;
  }
  return opened(data_dir, path, std::move(file), generation, rc, error);
}

std::unique_ptr<WriteAheadLog> WriteAheadLog::opened(const std::string& data_dir, const std::string& path,
                                                     std::shared_ptr<File> file, std::uint64_t generation, int rc,
                                                     Error& error) {
  if (rc != 0) {
    error = system_error("cannot write", path, rc);
    ::unlink(path.c_str());
    return nullptr;
  }
  file->note_written(0, kHeaderBytes);
  return std::unique_ptr<WriteAheadLog>(new WriteAheadLog(data_dir, std::move(file), generation));
}

std::unique_ptr<WriteAheadLog> WriteAheadLog::recycle(const std::string& spare, const std::string& data_dir,
                                                      unsigned shard, std::uint64_t generation, Error& error) {
  // Renamed first, then the new header: a crash in between leaves a file under the new name
  // whose header does not match it and whose old batches do not check with its salt, which
  // replay ignores. The directory sync makes the name durable before a batch is acknowledged
  // from this file.
  const std::string path = path_of(data_dir, shard, generation);
  if (::rename(spare.c_str(), path.c_str()) != 0) {
    error = Error{"cannot rename " + spare + " to " + path + ": " + errno_text(errno), path, errno};
    ::unlink(spare.c_str());
    return nullptr;
  }
  auto file = open_file(path, false, error, File::Mode::kAlwaysOpen);
  if (!file) {
    ::unlink(path.c_str());
    return nullptr;
  }
  int rc = write_at(file->fd(), 0, header(shard, generation)).code;
  if (rc == 0 && ::fdatasync(file->fd()) != 0) rc = errno;
  if (rc == 0) rc = sync_directory(data_dir + "/wal").code;
  return opened(data_dir, path, std::move(file), generation, rc, error);
}

std::string WriteAheadLog::retire(const std::string& path, bool keep) {
  struct stat st {};
  if (keep && ::stat(path.c_str(), &st) == 0 && static_cast<std::uint64_t>(st.st_size) <= kMaxSpareBytes) {
    std::string spare = path + std::string(kSpareSuffix);
    if (::rename(path.c_str(), spare.c_str()) == 0) return spare;
  }
  ::unlink(path.c_str());
  return {};
}

namespace {
std::mutex forgetting_mutex;
std::unordered_map<std::string, int> forgetting_folders;  // under forgetting_mutex
}  // namespace

void WriteAheadLog::forgetting(const std::string& folder) {
  std::lock_guard lock(forgetting_mutex);
  ++forgetting_folders[folder];
}

void WriteAheadLog::forgets_durable(const std::vector<Forgotten>& forgotten) {
  if (forgotten.empty()) return;
  std::lock_guard lock(forgetting_mutex);
  for (const Forgotten& f : forgotten) {
    auto it = forgetting_folders.find(f.folder);
    if (it != forgetting_folders.end() && --it->second == 0) forgetting_folders.erase(it);
  }
}

bool WriteAheadLog::is_forgetting(const std::string& folder) {
  std::lock_guard lock(forgetting_mutex);
  return forgetting_folders.contains(folder);
}

std::uint64_t WriteAheadLog::next_order() { return batch_order.fetch_add(1, std::memory_order_seq_cst) + 1; }

WriteOp WriteAheadLog::append(const std::vector<WriteOp>& writes, const std::vector<Forgotten>& forgotten) {
  // The records are put straight after the header's room in the write itself, which is then
  // framed in place: one copy of the writes, not two (a 500 MB entry peaked at 4x its size
  // when the body was built apart and then copied behind its header). Sized first, so that
  // a big write is not copied again as the string grows.
  constexpr std::size_t kRecordSlack = 1 + 3 * 10;  // type, and three length or offset varints
  std::size_t size = kBatchHeaderBytes;
  for (const Forgotten& f : forgotten) size += kRecordSlack + f.folder.size();
  for (const WriteOp& op : writes) {
    size += kRecordSlack + op.file->path().size() + op.file->identity().size() + op.bytes.size();
  }
  WriteOp op;
  op.file = file_;
  op.offset = end_;
  std::string& out = op.bytes;
  out.reserve(size);
  out.resize(kBatchHeaderBytes);
  std::uint32_t records = 1;
  out.push_back(static_cast<char>(kOrder));
  put_varint(next_order(), out);
  for (const Forgotten& f : forgotten) {
    out.push_back(static_cast<char>(kForgetAt));
    put_string(relative_to(data_dir_, f.folder), out);
    put_varint(f.order, out);
    ++records;
  }
  for (const WriteOp& write : writes) {
    out.push_back(static_cast<char>(kWrite));
    put_string(relative_to(data_dir_, write.file->path()), out);
    put_string(write.file->identity(), out);
    put_varint(write.offset, out);
    put_string(write.bytes, out);
    ++records;
  }
  frame_batch(out, records, generation_);
  end_ += out.size();
  return op;
}

Error WriteAheadLog::replay(const std::string& data_dir, std::vector<std::string>& notes) {
  const std::string wal_dir = data_dir + "/wal";
  std::error_code ec;
  if (!fs::is_directory(wal_dir, ec)) return {};
  std::vector<Found> logs;
  for (const auto& entry : fs::directory_iterator(wal_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > kSpareSuffix.size() && name.ends_with(kSpareSuffix)) {
      // A spare kept for recycling: its writes are all in their files.
      ::unlink(entry.path().c_str());
      continue;
    }
    unsigned shard = 0;
    unsigned long long generation = 0;
    char tail[8] = {};
    if (std::sscanf(name.c_str(), "%u-%llu.%7s", &shard, &generation, tail) == 3 && std::string_view(tail) == "wal") {
      logs.push_back(Found{shard, generation, entry.path().string()});
    }
  }
  if (ec) return Error{"cannot list " + wal_dir + ": " + ec.message(), wal_dir, ec.value()};
  if (logs.empty()) return {};
  std::sort(logs.begin(), logs.end(), [](const Found& a, const Found& b) {
    return a.shard != b.shard ? a.shard < b.shard : a.generation < b.generation;
  });

  // First pass: where each folder was last forgotten.
  std::map<std::string, Place, std::less<>> forgotten;
  std::uint64_t order = 0;  // the batch's, from its kOrder record
  Error error = each_record(logs, notes, [&](std::uint8_t type, std::string_view& in, std::uint64_t position) {
    std::string_view path, identity, data;
    std::uint64_t offset = 0;
    if (type == kOrder) return get_varint(in, order);
    if (type == kForget || type == kForgetAt) {
      std::uint64_t at_order = order;
      if (!get_string(in, path) || (type == kForgetAt && !get_varint(in, at_order))) return false;
      Place& at = forgotten[std::string(path)];
      at = std::max(at, Place{at_order, position});
      return true;
    }
    return type == kWrite && get_string(in, path) && get_string(in, identity) && get_varint(in, offset) &&
           get_string(in, data);
  });
  if (error) return error;

  // Second pass: the writes, into the files they were meant for.
  std::map<std::string, Target, std::less<>> targets;
  std::deque<std::map<std::string, Target, std::less<>>::iterator> open_targets;  // oldest first
  Error sync_error;
  auto close_target = [&](const std::string& path, Target& t) {
    if (t.written && ::fdatasync(t.fd) != 0 && !sync_error) {
      sync_error = system_error("cannot sync", path, errno);
    }
    ::close(t.fd);
    t.fd = -1;
    t.written = false;
  };
  Error open_error;  // a file that is there could not be opened: never taken as gone
  std::uint64_t replayed = 0, skipped = 0;
  std::vector<std::string> notes_again;  // the first pass noted the same things
  Error write_error;  // a write into a file failed (not a record that does not parse)
  const InjectedFault fault = injected_fault();  // tests: a full disk at start-up
  order = 0;
  // Writes to a file whose header is not there yet, until the write that brings it.
  struct Waiting {
    std::string identity;
    std::uint64_t offset;
    std::string data;
  };
  std::map<std::string, std::vector<Waiting>, std::less<>> waiting;
  auto replay_write = [&](Target& t, std::string_view path, std::uint64_t offset, std::string_view data,
                          std::size_t identity_size) {
    if (const int rc = fault.error != 0 && !fault.in_sync ? fault.error : write_at(t.fd, offset, data).code;
        rc != 0) {
      write_error = Error{"cannot replay into " + std::string(path) + ": " + errno_text(rc) +
                              " (the write-ahead log is intact and kept: free space, or fix the cause, and start again)",
                          std::string(path), rc};
      return false;
    }
    if (offset == 0) t.head = std::string(data.substr(0, identity_size));
    t.written = true;
    ++replayed;
    return true;
  };
  error = each_record(logs, notes_again, [&](std::uint8_t type, std::string_view& in, std::uint64_t position) {
    std::string_view path, identity, data;
    std::uint64_t offset = 0;
    if (type == kOrder) return get_varint(in, order);
    if (type == kForget) return get_string(in, path);
    if (type == kForgetAt) return get_string(in, path) && get_varint(in, offset);
    if (!get_string(in, path) || !get_string(in, identity) || !get_varint(in, offset) || !get_string(in, data)) {
      return false;
    }
    if (const auto f = forgotten.find(parent_of(path)); f != forgotten.end() && f->second > Place{order, position}) {
      ++skipped;
      return true;
    }
    auto it = targets.find(path);
    const bool first = it == targets.end();
    if (first) it = targets.emplace(std::string(path), Target{}).first;
    Target& t = it->second;
    if (t.fd < 0 && !t.missing) {
      if (open_targets.size() >= kReplayOpenFiles) {
        close_target(open_targets.front()->first, open_targets.front()->second);
        open_targets.pop_front();
      }
      const std::string full = data_dir + "/" + std::string(path);
      t.fd = ::open(full.c_str(), O_RDWR | O_CLOEXEC);
      if (t.fd < 0 && errno != ENOENT) {
        open_error = Error{"cannot open " + std::string(path) + " to replay into it: " + errno_text(errno) +
                               " (the write-ahead log is intact and kept)",
                           std::string(path), errno};
        return false;
      }
      t.missing = t.fd < 0;
      if (t.fd >= 0) open_targets.push_back(it);
      if (first && t.fd >= 0 && read_at(t.fd, 0, identity.size(), t.head)) t.head.clear();
    }
    bool ours = false;
    if (t.missing) {
      ours = false;  // gone: a trimmed segment or a deleted stream
    } else if (header_unwritten(t.head, identity.size())) {
      // A file made since the last checkpoint whose header never reached the disk: shorter
      // than its header, or (a later page written back before the first) zeros where it
      // should be. Only the write that brings the header may start it. Another write waits
      // for it: a stream RENAMEd to another shard has its header in one shard's log and
      // later writes in the other's, which may be replayed first.
      ours = offset == 0 && data.substr(0, identity.size()) == identity;
      if (!ours) {
        waiting[std::string(path)].push_back(Waiting{std::string(identity), offset, std::string(data)});
        return true;
      }
    } else {
      ours = std::string_view(t.head).substr(0, identity.size()) == identity;
    }
    if (!ours) {
      ++skipped;
      return true;
    }
    if (!replay_write(t, path, offset, data, identity.size())) return false;
    if (offset != 0) return true;
    // The header is there now: the writes that waited for it, if they are this file's.
    auto w = waiting.find(path);
    if (w == waiting.end()) return true;
    for (const Waiting& later : w->second) {
      if (std::string_view(t.head).substr(0, later.identity.size()) != later.identity) {
        ++skipped;
      } else if (!replay_write(t, path, later.offset, later.data, later.identity.size())) {
        return false;
      }
    }
    waiting.erase(w);
    return true;
  });
  for (const auto& [path, writes] : waiting) skipped += writes.size();
  for (auto& it : open_targets) close_target(it->first, it->second);
  if (open_error) return open_error;
  if (write_error) return write_error;
  if (error) return error;
  if (sync_error) return sync_error;
  for (const Found& log : logs) ::unlink(log.path.c_str());
  // Not reported: the logs are deleted already; a failed sync only leaves in doubt whether
  // the deletions survive a crash.
  (void)sync_directory(wal_dir);
  notes.push_back("replayed " + std::to_string(replayed) + " write(s) from " + std::to_string(logs.size()) +
                  " write-ahead log file(s)" +
                  (skipped ? " (" + std::to_string(skipped) + " for files since removed or replaced)" : ""));
  return {};
}

}  // namespace runnel::storage
