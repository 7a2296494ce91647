// The group snapshot and journal, as drawn in group_journal.hpp.
#include <runnel/storage/group_journal.hpp>

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>

#include "batch.hpp"
#include "varint.hpp"

namespace runnel::storage {
namespace {

constexpr std::string_view kSnapshotMagic = "RUNNELGS";
constexpr std::string_view kJournalMagic = "RUNNELGJ";
constexpr std::uint32_t kVersion = 1;
constexpr std::size_t kHeaderBytes = 32;
constexpr std::size_t kSnapshotBatchBytes = 1024 * 1024;

std::string header(std::string_view magic, std::uint64_t generation) {
  std::string h(magic);
  put_u32(h, kVersion);
  put_u32(h, 0);
  put_u64(h, generation);
  put_u64(h, XXH3_64bits(h.data(), h.size()));
  return h;
}

// The generation in a good header, or false.
bool parse_header(std::string_view h, std::string_view magic, std::uint64_t& generation) {
  if (h.size() != kHeaderBytes || h.substr(0, 8) != magic) return false;
  if (get_u32(h.data() + 8) != kVersion) return false;
  if (XXH3_64bits(h.data(), 24) != get_u64(h.data() + 24)) return false;
  generation = get_u64(h.data() + 16);
  return true;
}


bool get_id(std::string_view& in, StreamId& id) { return get_varint(in, id.ms) && get_varint(in, id.seq); }

}  // namespace

void encode_group_record(const GroupRecord& r, std::string& out) {
  using Type = GroupRecord::Type;
  out.push_back(static_cast<char>(r.type));
  put_string(r.group, out);
  switch (r.type) {
    case Type::kGroupSet:
      put_varint(r.id.ms, out);
      put_varint(r.id.seq, out);
      put_varint(static_cast<std::uint64_t>(r.entries_read + 1), out);
      break;
    case Type::kGroupDelete:
      break;
    case Type::kConsumerSet:
      put_string(r.consumer, out);
      put_varint(static_cast<std::uint64_t>(r.time_ms), out);
      break;
    case Type::kConsumerDelete:
      put_string(r.consumer, out);
      break;
    case Type::kConsumerTimes:
      put_string(r.consumer, out);
      put_varint(static_cast<std::uint64_t>(r.time_ms), out);
      put_varint(static_cast<std::uint64_t>(r.active_time_ms + 1), out);
      break;
    case Type::kPendingSet:
      put_varint(r.id.ms, out);
      put_varint(r.id.seq, out);
      put_string(r.consumer, out);
      put_varint(static_cast<std::uint64_t>(r.time_ms), out);
      put_varint(r.count, out);
      break;
    case Type::kPendingDelete:
      put_varint(r.id.ms, out);
      put_varint(r.id.seq, out);
      break;
    case Type::kPendingNacked:
      put_varint(r.id.ms, out);
      put_varint(r.id.seq, out);
      put_varint(static_cast<std::uint64_t>(r.time_ms), out);
      put_varint(r.count, out);
      break;
    case Type::kIdmpConfig:
    case Type::kIdmpCounters:
      put_varint(static_cast<std::uint64_t>(r.time_ms), out);
      put_varint(r.count, out);
      break;
    case Type::kIdmpRecord:
      put_string(r.consumer, out);
      put_varint(r.id.ms, out);
      put_varint(r.id.seq, out);
      break;
    case Type::kKeyString:
      put_string(r.consumer, out);
      put_varint(static_cast<std::uint64_t>(r.time_ms), out);
      break;
    case Type::kKeyTtl:
      put_varint(static_cast<std::uint64_t>(r.time_ms), out);
      break;
    case Type::kKeyForget:
      break;
  }
}

bool parse_group_records(std::string_view body, const GroupRecordVisitor& visit) {
  using Type = GroupRecord::Type;
  while (!body.empty()) {
    GroupRecord r;
    const auto type = static_cast<unsigned char>(body.front());
    body.remove_prefix(1);
    if (type < 1 || type > 14 || !get_string(body, r.group)) return false;
    r.type = static_cast<Type>(type);
    std::uint64_t v = 0;
    switch (r.type) {
      case Type::kGroupSet:
        if (!get_id(body, r.id) || !get_varint(body, v)) return false;
        r.entries_read = static_cast<std::int64_t>(v) - 1;
        break;
      case Type::kGroupDelete:
        break;
      case Type::kConsumerSet:
        if (!get_string(body, r.consumer) || !get_varint(body, v)) return false;
        r.time_ms = static_cast<std::int64_t>(v);
        break;
      case Type::kConsumerDelete:
        if (!get_string(body, r.consumer)) return false;
        break;
      case Type::kConsumerTimes: {
        std::uint64_t active = 0;
        if (!get_string(body, r.consumer) || !get_varint(body, v) || !get_varint(body, active)) return false;
        r.time_ms = static_cast<std::int64_t>(v);
        r.active_time_ms = static_cast<std::int64_t>(active) - 1;
        break;
      }
      case Type::kPendingSet:
        if (!get_id(body, r.id) || !get_string(body, r.consumer) || !get_varint(body, v) ||
            !get_varint(body, r.count)) {
          return false;
        }
        r.time_ms = static_cast<std::int64_t>(v);
        break;
      case Type::kPendingDelete:
        if (!get_id(body, r.id)) return false;
        break;
      case Type::kPendingNacked:
        if (!get_id(body, r.id) || !get_varint(body, v) || !get_varint(body, r.count)) return false;
        r.time_ms = static_cast<std::int64_t>(v);
        break;
      case Type::kIdmpConfig:
      case Type::kIdmpCounters:
        if (!get_varint(body, v) || !get_varint(body, r.count)) return false;
        r.time_ms = static_cast<std::int64_t>(v);
        break;
      case Type::kIdmpRecord:
        if (!get_string(body, r.consumer) || !get_id(body, r.id)) return false;
        break;
      case Type::kKeyString:
        if (!get_string(body, r.consumer) || !get_varint(body, v)) return false;
        r.time_ms = static_cast<std::int64_t>(v);
        break;
      case Type::kKeyTtl:
        if (!get_varint(body, v)) return false;
        r.time_ms = static_cast<std::int64_t>(v);
        break;
      case Type::kKeyForget:
        break;
    }
    visit(r);
  }
  return true;
}

GroupJournal::GroupJournal(std::string dir, bool sync_metadata)
    : dir_(std::move(dir)), sync_metadata_(sync_metadata) {}

Error GroupJournal::replay(const std::string& path, std::string_view magic, bool tail,
                           const GroupRecordVisitor& apply, std::uint64_t& generation,
                           std::vector<std::string>& notes) {
  Error error;
  auto file = open_file(path, false, error);
  if (!file) return error;
  const File::Pin pin = file->pin();
  if (!pin) return system_error("cannot open", path, pin.error());
  const int fd = pin.fd();
  const auto size = static_cast<std::uint64_t>(file_size(fd));
  std::string h;
  if (const Error read = read_at(fd, 0, kHeaderBytes, h)) return system_error("cannot read", path, read.code);
  std::uint64_t found = 0;
  if (!parse_header(h, magic, found)) {
    if (!tail || whole_batch_after(fd, 0, size)) return damage_error(path + ": bad header", path);
    notes.push_back("replaced " + path + ", whose header was torn (" + std::to_string(size) + " bytes)");
    return create_journal(generation);
  }
  if (tail && found < generation) {
    // Folded into the snapshot already (a crash came between the two steps of a fold).
    notes.push_back("replaced " + path + ", which the snapshot already holds");
    return create_journal(generation);
  }
  generation = found;
  const BatchScan scan = scan_batches(fd, path, kHeaderBytes, size, [&](std::uint64_t, std::string_view body) {
    return parse_group_records(body, apply);
  });
  switch (scan.outcome) {
    case BatchScan::Outcome::kClean: break;
    case BatchScan::Outcome::kIoError: return scan.error;
    case BatchScan::Outcome::kMalformed:
      return damage_error(path + ": malformed record after offset " + std::to_string(scan.good_end), path);
    case BatchScan::Outcome::kDamaged:
      return damage_error(
          path + ": damaged batch at offset " + std::to_string(scan.good_end) + " with whole batches after it",
          path);
    case BatchScan::Outcome::kTorn:
      if (!tail) return damage_error(path + ": damaged batch at offset " + std::to_string(scan.good_end), path);
      if (Error failed = cut_torn_tail(fd, path, scan.good_end, size, notes)) return failed;
      break;
  }
  const std::uint64_t end = scan.outcome == BatchScan::Outcome::kTorn ? scan.good_end : size;
  if (tail) {
    journal_ = std::move(file);
    journal_->set_identity(h);
    journal_->note_written(0, end);
    journal_end_ = end;
    out_offset_ = end;
  } else {
    snapshot_bytes_ = size;
  }
  return {};
}

Error GroupJournal::open(const GroupRecordVisitor& apply, std::vector<std::string>& notes) {
  const std::string snapshot = dir_ + "/groups.snapshot";
  const std::string journal = dir_ + "/groups.journal";
  generation_ = 0;
  if (::access(snapshot.c_str(), F_OK) == 0) {
    if (Error failed = replay(snapshot, kSnapshotMagic, false, apply, generation_, notes)) return failed;
  }
  if (::access(journal.c_str(), F_OK) == 0) {
    return replay(journal, kJournalMagic, true, apply, generation_, notes);
  }
  return {};
}

// A new, empty journal file of `generation`, in place of any other (synchronous: rare).
Error GroupJournal::create_journal(std::uint64_t generation) {
  const std::string path = dir_ + "/groups.journal";
  const std::string h = header(kJournalMagic, generation);
  // The file it replaces stays open across the rename (another thread may be writing it),
  // and is marked removed after it: writes still queued for it never reach the new one.
  const std::shared_ptr<File> previous = journal_;  // outlives the pin
  const File::Pin old = previous ? previous->pin() : File::Pin();
  if (Error failed = replace_file(path, h, sync_metadata_)) return failed;
  if (journal_) journal_->set_removed();
  Error error;
  journal_ = open_file(path, false, error);
  if (!journal_) return error;
  journal_->set_identity(h);
  journal_->note_written(0, h.size());
  generation_ = generation;
  journal_end_ = h.size();
  out_offset_ = journal_end_;
  out_.clear();
  return {};
}

void GroupJournal::append(const GroupRecord& record) {
  encode_group_record(record, batch_);
  ++batch_records_;
}

Error GroupJournal::take_writes(std::vector<WriteOp>& ops) {
  if (!dirty()) return {};
  if (!journal_) {
    if (Error failed = create_journal(generation_)) return failed;
  }
  if (!batch_.empty()) {
    if (out_.empty()) out_offset_ = journal_end_;
    append_batch(out_, batch_, batch_records_);
    journal_end_ += kBatchHeaderBytes + batch_.size();
    batch_.clear();
    batch_records_ = 0;
  }
  ops.push_back(WriteOp{journal_, out_offset_, std::move(out_), 0});
  out_.clear();
  out_offset_ = journal_end_;
  return {};
}

bool GroupJournal::should_fold() const {
  const std::uint64_t journal = journal_end_ + batch_.size();
  return journal > kMinFoldBytes && journal > 2 * snapshot_bytes_;
}

Error GroupJournal::fold(const std::function<void(const GroupRecordVisitor&)>& emit) {
  std::string snapshot = header(kSnapshotMagic, generation_ + 1);
  std::string body;
  std::uint32_t records = 0;
  emit([&](const GroupRecord& r) {
    encode_group_record(r, body);
    ++records;
    if (body.size() >= kSnapshotBatchBytes) {
      append_batch(snapshot, body, records);
      body.clear();
      records = 0;
    }
  });
  if (!body.empty()) append_batch(snapshot, body, records);
  if (Error failed = replace_file(dir_ + "/groups.snapshot", snapshot, sync_metadata_)) return failed;
  snapshot_bytes_ = snapshot.size();
  batch_.clear();
  batch_records_ = 0;
  Error failed = create_journal(generation_ + 1);
  if (failed) {
    // The snapshot is generation G+1 now: a journal of G would be ignored at replay. None is
    // kept, so the next take_writes makes one of G+1 or fails (and its flush with it).
    if (journal_) journal_->set_removed();
    journal_.reset();
    ++generation_;
    out_.clear();
  }
  return failed;
}

}  // namespace runnel::storage
