// Segment files, their indexes and the manifest, as drawn in segment_log.hpp.
#include <runnel/storage/segment_log.hpp>

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <utility>

#include "batch.hpp"
#include "varint.hpp"

namespace runnel::storage {
namespace {

constexpr std::string_view kSegmentMagic = "RUNNELSG";
constexpr std::string_view kIndexMagic = "RUNNELIX";
constexpr std::string_view kManifestMagic = "RUNNELMF";
constexpr std::uint32_t kFormatVersion = 1;
// The manifest's version: 2 adds the claim epoch (1, which has none, is still read).
constexpr std::uint32_t kManifestVersion = 2;

std::string errno_text(int error) { return std::strerror(error); }

void put_id(std::string& out, StreamId id) {
  put_varint(id.ms, out);
  put_varint(id.seq, out);
}

bool get_id(std::string_view& in, StreamId& id) { return get_varint(in, id.ms) && get_varint(in, id.seq); }

void put_fixed_meta(std::string& out, const StreamMeta& m) {
  for (std::uint64_t v : {m.last_id.ms, m.last_id.seq, m.entries_added, m.max_deleted_id.ms,
                          m.max_deleted_id.seq, m.trim_floor.ms, m.trim_floor.seq}) {
    put_u64(out, v);
  }
}

StreamMeta get_fixed_meta(const char* p) {
  StreamMeta m;
  m.last_id = {get_u64(p), get_u64(p + 8)};
  m.entries_added = get_u64(p + 16);
  m.max_deleted_id = {get_u64(p + 24), get_u64(p + 32)};
  m.trim_floor = {get_u64(p + 40), get_u64(p + 48)};
  return m;
}

std::string segment_header(StreamId base) {
  std::string h(kSegmentMagic);
  put_u32(h, kFormatVersion);
  put_u32(h, 0);
  put_u64(h, base.ms);
  put_u64(h, base.seq);
  put_u64(h, XXH3_64bits(h.data(), h.size()));
  return h;
}

bool segment_header_ok(std::string_view h, StreamId base) {
  return h.size() == SegmentLog::kSegmentHeaderBytes && h == segment_header(base);
}

}  // namespace

bool parse_records(std::string_view body, const std::function<void(const LogRecord&)>& visit) {
  while (!body.empty()) {
    LogRecord r;
    r.type = static_cast<LogRecord::Type>(static_cast<unsigned char>(body.front()));
    body.remove_prefix(1);
    switch (r.type) {
      case LogRecord::Type::kEntry: {
        std::uint64_t len = 0;
        if (!get_id(body, r.id) || !get_varint(body, len) || len > body.size()) return false;
        r.payload = body.substr(0, len);
        body.remove_prefix(len);
        break;
      }
      case LogRecord::Type::kTombstone:
        if (!get_id(body, r.id)) return false;
        break;
      case LogRecord::Type::kMeta:
        if (!get_id(body, r.meta.last_id) || !get_varint(body, r.meta.entries_added) ||
            !get_id(body, r.meta.max_deleted_id) || !get_id(body, r.meta.trim_floor)) {
          return false;
        }
        break;
      default:
        return false;
    }
    visit(r);
  }
  return true;
}

std::string encode_key(std::string_view key) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (std::size_t i = 0; i < key.size(); ++i) {
    const auto c = static_cast<unsigned char>(key[i]);
    const bool plain = std::isalnum(c) || c == '_' || c == '-' || (c == '.' && i > 0);
    if (plain) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
    if (out.size() > 200) break;
  }
  if (out.empty()) return "%";  // the empty key
  if (out.size() > 200) {
    char hash[17];
    std::snprintf(hash, sizeof hash, "%016llx",
                  static_cast<unsigned long long>(XXH3_64bits(key.data(), key.size())));
    out.resize(180);
    out += "~";
    out += hash;
  }
  return out;
}

SegmentLog::SegmentLog(std::string dir, std::string key, LogOptions options)
    : dir_(std::move(dir)), key_(std::move(key)), options_(options) {}

std::string SegmentLog::segment_path(StreamId base, std::string_view ext) const {
  return dir_ + "/" + base.to_string() + std::string(ext);
}

const SegmentLog::Segment* SegmentLog::segment(std::uint32_t number) const {
  if (number < first_number_ || number - first_number_ >= segments_.size()) return nullptr;
  return &segments_[number - first_number_];
}

Error SegmentLog::write_manifest() {
  std::string m(kManifestMagic);
  put_u32(m, kManifestVersion);
  put_u32(m, 0);
  put_u64(m, epoch_);
  put_u64(m, key_.size());
  m += key_;
  put_u32(m, static_cast<std::uint32_t>(segments_.size()));
  for (const Segment& s : segments_) {
    put_u64(m, s.base.ms);
    put_u64(m, s.base.seq);
  }
  put_u64(m, XXH3_64bits(m.data(), m.size()));
  return replace_file(dir_ + "/meta", m, options_.sync_metadata);
}

namespace {

// Parses a manifest; false if it is damaged.
bool parse_manifest(std::string_view m, std::string& key, std::vector<StreamId>& bases, std::uint64_t& epoch) {
  if (m.size() < 16 || m.substr(0, 8) != kManifestMagic) return false;
  const std::uint32_t version = get_u32(m.data() + 8);
  if (version != 1 && version != kManifestVersion) return false;
  // magic, version, reserved, [epoch (version 2)], key length
  const std::size_t fixed = version == 1 ? 8 + 4 + 4 + 8 : 8 + 4 + 4 + 8 + 8;
  if (m.size() < fixed + 4 + 8) return false;
  if (XXH3_64bits(m.data(), m.size() - 8) != get_u64(m.data() + m.size() - 8)) return false;
  epoch = version == 1 ? 0 : get_u64(m.data() + 16);
  const std::uint64_t key_len = get_u64(m.data() + fixed - 8);
  if (key_len > m.size() - fixed - 12) return false;
  key.assign(m.substr(fixed, key_len));
  const char* p = m.data() + fixed + key_len;
  const std::uint32_t count = get_u32(p);
  p += 4;
  if (fixed + key_len + 4 + std::uint64_t{count} * 16 + 8 != m.size()) return false;
  bases.clear();
  for (std::uint32_t i = 0; i < count; ++i, p += 16) bases.push_back({get_u64(p), get_u64(p + 8)});
  return true;
}

// The highest claim epoch seen or handed out in this process (see SegmentLog::next_epoch).
std::atomic<std::uint64_t> last_epoch{0};

}  // namespace

std::uint64_t SegmentLog::next_epoch() { return last_epoch.fetch_add(1, std::memory_order_relaxed) + 1; }

void SegmentLog::note_epoch(std::uint64_t epoch) {
  std::uint64_t seen = last_epoch.load(std::memory_order_relaxed);
  while (seen < epoch && !last_epoch.compare_exchange_weak(seen, epoch, std::memory_order_relaxed)) {
  }
}

bool SegmentLog::read_key(const std::string& dir, std::string& key, bool prefetch, Error* error,
                          std::uint64_t* epoch) {
  std::string m;
  std::vector<StreamId> bases;
  Error read = read_file(dir + "/meta", m);
  const bool failed = static_cast<bool>(read);
  if (error != nullptr) *error = std::move(read);
  std::uint64_t claimed = 0;
  if (failed || !parse_manifest(m, key, bases, claimed)) return false;
  note_epoch(claimed);
  if (epoch != nullptr) *epoch = claimed;
  if (prefetch && !bases.empty()) {
    // The last segment is the one open() scans: its reading starts now, in the kernel.
    const std::string path = dir + "/" + bases.back().to_string() + ".log";
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
      ::close(fd);
    }
  }
  return true;
}

Error SegmentLog::start_segment(StreamId base) {
  Error error;
  const std::string path = segment_path(base, ".log");
  auto file = open_file(path, true, error);
  if (!file) return system_error("cannot create", path, error.code);
  {
    const File::Pin pin = file->pin();
    if (!pin) return system_error("cannot open", path, pin.error());
    if (::ftruncate(pin.fd(), 0) != 0) {
      const int code = errno;
      return system_error("cannot truncate", path, code);
    }
  }
  file->set_identity(segment_header(base));
  Segment s;
  s.base = base;
  s.file = std::move(file);
  s.end = kSegmentHeaderBytes;
  segments_.push_back(std::move(s));
  if (Error failed = write_manifest()) {
    // A segment the manifest does not list would be lost at the next start: not used.
    segments_.pop_back();
    ::unlink(path.c_str());
    return failed;
  }
  out_ = segment_header(base);
  out_offset_ = 0;
  return {};
}

Error SegmentLog::create(StreamId first_base) {
  epoch_ = next_epoch();
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return Error{"cannot create " + dir_ + ": " + ec.message(), dir_, ec.value()};
  return start_segment(first_base);
}

Error SegmentLog::rekey(std::string key) {
  std::string old_key = std::exchange(key_, std::move(key));
  const std::uint64_t old_epoch = std::exchange(epoch_, next_epoch());
  if (Error failed = write_manifest()) {
    key_ = std::move(old_key);
    epoch_ = old_epoch;
    return failed;
  }
  return {};
}

bool SegmentLog::needs_roll() const {
  const Segment& s = segments_.back();
  return s.entries > 0 && s.end + batch_body_bytes() >= options_.segment_bytes;
}

Error SegmentLog::roll(StreamId base, std::string index_blob) {
  seal_batch();
  Segment& old = tail();
  if (!out_.empty()) {
    sealed_.push_back(WriteOp{old.file, out_offset_, std::move(out_), last_segment()});
    out_.clear();
  }
  old.meta_at_end = meta_;
  old.index_blob = std::move(index_blob);
  old.index_pending = true;
  index_pending_ = true;
  const std::size_t before = segments_.size();
  Error error = start_segment(base);  // may move the segments: `old` is found again
  if (segments_.size() == before) {
    // No new segment: the stream goes on in the old one, whose index (if written) no longer
    // matches its size and is rebuilt at the next start.
    Segment& still = tail();
    still.index_pending = false;
    still.index_blob.clear();
    out_offset_ = still.end;
  }
  put_meta_record(meta_);
  return error;
}

void SegmentLog::put_meta_record(const StreamMeta& m) {
  start_record();
  batch_.push_back(static_cast<char>(LogRecord::Type::kMeta));
  put_id(batch_, m.last_id);
  put_varint(m.entries_added, batch_);
  put_id(batch_, m.max_deleted_id);
  put_id(batch_, m.trim_floor);
  ++batch_records_;
}

LogPosition SegmentLog::append_entry(StreamId id, std::string_view payload) {
  const LogPosition pos{last_segment(), tail().end};
  start_record();
  if (payload.size() >= kMoveBytes && out_.size() < payload.size()) {
    // Room for the tail's sealed bytes too, which seal_batch then puts in front of this batch
    // in place: a big entry is not copied behind them into a third buffer. (Only while they
    // are the smaller: that way the copy is always of the smaller of the two.)
    batch_.reserve(out_.size() + batch_.size() + 1 + 2 * 10 + 10 + payload.size());
  }
  batch_.push_back(static_cast<char>(LogRecord::Type::kEntry));
  put_id(batch_, id);
  put_varint(payload.size(), batch_);
  batch_.append(payload);
  ++batch_records_;
  meta_.last_id = id;
  ++meta_.entries_added;
  ++tail().entries;
  if (batch_body_bytes() >= kBatchSealBytes) seal_batch();
  return pos;
}

void SegmentLog::append_tombstone(StreamId id) {
  start_record();
  batch_.push_back(static_cast<char>(LogRecord::Type::kTombstone));
  put_id(batch_, id);
  ++batch_records_;
  tail().tombstones.push_back(id);
}

void SegmentLog::set_meta(const StreamMeta& meta) {
  if (meta == meta_) return;
  meta_ = meta;
  put_meta_record(meta_);
}

void SegmentLog::seal_batch() {
  if (batch_records_ == 0) return;
  Segment& s = tail();
  frame_batch(batch_, batch_records_);
  s.end += batch_.size();
  batch_records_ = 0;
  if (out_.empty()) {
    out_offset_ = s.end - batch_.size();
    if (batch_.size() >= kMoveBytes) {
      out_ = std::move(batch_);
      batch_.clear();
      return;
    }
  }
  if (batch_.size() >= kMoveBytes && out_.size() < batch_.size() &&
      batch_.capacity() >= out_.size() + batch_.size()) {
    batch_.insert(0, out_);  // moves the batch up within its own buffer
    out_ = std::move(batch_);
    batch_.clear();
    return;
  }
  out_ += batch_;
  batch_.resize(kBatchHeaderBytes);
  if (batch_.capacity() > kBatchSealBytes) batch_.shrink_to_fit();  // one big entry's worth: given back
}

void SegmentLog::write_pending_indexes() {
  if (!index_pending_) return;
  index_pending_ = false;
  for (std::size_t i = 0; i + 1 < segments_.size(); ++i) {
    Segment& s = segments_[i];
    if (!s.index_pending) continue;
    if (s.file->written() < s.end) {
      index_pending_ = true;  // next time
      continue;
    }
    (void)write_index(s);  // a failure only costs a rebuild at the next start
    s.index_pending = false;
    s.index_blob.clear();
    s.index_blob.shrink_to_fit();
    s.tombstones.clear();
    s.tombstones.shrink_to_fit();
  }
}

void SegmentLog::take_writes(std::vector<WriteOp>& ops) {
  write_pending_indexes();
  seal_batch();
  for (WriteOp& op : sealed_) ops.push_back(std::move(op));
  sealed_.clear();
  if (!out_.empty()) {
    ops.push_back(WriteOp{tail().file, out_offset_, std::move(out_), last_segment()});
    out_.clear();
    out_offset_ = tail().end;
  }
}

bool SegmentLog::written(std::uint32_t number, std::uint64_t batch) const {
  const Segment* s = segment(number);
  return s != nullptr && s->file->written() > batch;
}

std::uint64_t SegmentLog::bytes() const {
  std::uint64_t total = batch_body_bytes();
  for (const Segment& s : segments_) total += s.end;
  return total;
}

std::vector<std::pair<StreamId, std::uint64_t>> SegmentLog::segments() const {
  std::vector<std::pair<StreamId, std::uint64_t>> out;
  for (const Segment& s : segments_) out.emplace_back(s.base, s.end);
  return out;
}

Error SegmentLog::write_index(const Segment& s) {
  std::string x(kIndexMagic);
  put_u32(x, kFormatVersion);
  put_u32(x, 0);
  put_u64(x, s.end);
  put_fixed_meta(x, s.meta_at_end);
  put_u32(x, static_cast<std::uint32_t>(s.tombstones.size()));
  for (StreamId id : s.tombstones) {
    put_u64(x, id.ms);
    put_u64(x, id.seq);
  }
  put_u32(x, static_cast<std::uint32_t>(s.index_blob.size()));
  x += s.index_blob;
  put_u64(x, XXH3_64bits(x.data(), x.size()));
  return replace_file(segment_path(s.base, ".idx"), x, options_.sync_metadata);
}

Error SegmentLog::load_index(Segment& s, RecoverySink& sink, std::uint32_t number) {
  std::string x;
  const std::string path = segment_path(s.base, ".idx");
  if (Error failed = read_file(path, x)) return failed;
  constexpr std::size_t kFixed = 8 + 4 + 4 + 8 + 56;
  if (x.size() < kFixed + 4 + 4 + 8 || x.substr(0, 8) != kIndexMagic) {
    return damage_error(path + " is damaged", path);
  }
  if (XXH3_64bits(x.data(), x.size() - 8) != get_u64(x.data() + x.size() - 8)) {
    return damage_error(path + " fails its checksum", path);
  }
  if (get_u32(x.data() + 8) != kFormatVersion) return damage_error(path + " has an unknown version", path);
  if (get_u64(x.data() + 16) != s.end) {
    return damage_error(path + " describes a segment of another size", path);
  }
  const StreamMeta meta = get_fixed_meta(x.data() + 24);
  const char* p = x.data() + kFixed;
  const std::uint32_t tombstones = get_u32(p);
  p += 4;
  if (kFixed + 4 + std::uint64_t{tombstones} * 16 + 4 + 8 > x.size()) {
    return damage_error(path + " is damaged", path);
  }
  std::vector<StreamId> found;
  for (std::uint32_t i = 0; i < tombstones; ++i, p += 16) found.push_back({get_u64(p), get_u64(p + 8)});
  const std::uint32_t blob_len = get_u32(p);
  p += 4;
  if (static_cast<std::size_t>(p - x.data()) + blob_len + 8 != x.size()) {
    return damage_error(path + " is damaged", path);
  }
  if (!sink.on_index(number, std::string_view(p, blob_len))) {
    return damage_error(path + " has a bad node table", path);
  }
  meta_ = meta;
  recovered_tombstones_.insert(recovered_tombstones_.end(), found.begin(), found.end());
  return {};
}

Error SegmentLog::scan(Segment& s, std::uint32_t number, bool last, RecoverySink& sink,
                       std::vector<std::string>& notes) {
  const std::string path = segment_path(s.base, ".log");
  const File::Pin pin = s.file->pin();
  if (!pin) return system_error("cannot open", path, pin.error());
  const int fd = pin.fd();
  std::uint64_t size = static_cast<std::uint64_t>(file_size(fd));
  std::string header;
  if (const Error read = read_at(fd, 0, kSegmentHeaderBytes, header)) {
    return system_error("cannot read", path, read.code);
  }
  std::uint64_t good_end = kSegmentHeaderBytes;
  bool torn = false;
  if (!segment_header_ok(header, s.base)) {
    // A header never completely written is a torn tail, if nothing follows it.
    if (!last || whole_batch_after(fd, 0, size)) return damage_error(path + ": bad segment header", path);
    good_end = 0;
    torn = true;
  }
  if (!torn) {
    const BatchScan result = scan_batches(fd, path, kSegmentHeaderBytes, size, [&](std::uint64_t at, std::string_view body) {
      const LogPosition pos{number, at};
      return parse_records(body, [&](const LogRecord& r) {
        switch (r.type) {
          case LogRecord::Type::kEntry:
            meta_.last_id = r.id;
            ++meta_.entries_added;
            ++s.entries;
            sink.on_entry(pos, r.id, r.payload);
            break;
          case LogRecord::Type::kTombstone:
            s.tombstones.push_back(r.id);
            recovered_tombstones_.push_back(r.id);
            break;
          case LogRecord::Type::kMeta:
            meta_ = r.meta;
            break;
        }
      });
    });
    switch (result.outcome) {
      case BatchScan::Outcome::kClean: break;
      case BatchScan::Outcome::kIoError: return result.error;
      case BatchScan::Outcome::kMalformed:
        return damage_error(
            path + ": malformed record in the batch at offset " + std::to_string(result.good_end), path);
      case BatchScan::Outcome::kDamaged:
        return damage_error(path + ": damaged batch at offset " + std::to_string(result.good_end) +
                                " with whole batches after it",
                            path);
      case BatchScan::Outcome::kTorn:
        if (!last) {
          return damage_error(path + ": damaged batch at offset " + std::to_string(result.good_end), path);
        }
        torn = true;
        break;
    }
    good_end = result.good_end;
  }
  if (torn) {
    if (good_end == 0) {
      const std::string h = segment_header(s.base);
      if (const Error wrote = write_at(fd, 0, h)) return system_error("cannot repair", path, wrote.code);
      good_end = h.size();
    }
    if (Error failed = cut_torn_tail(fd, path, good_end, size, notes)) return failed;
    size = good_end;
  }
  s.end = size;
  s.file->note_written(0, size);
  if (!last) sink.on_segment_end(number);
  return {};
}

Error SegmentLog::open(RecoverySink& sink, std::vector<std::string>& notes) {
  std::string m;
  std::vector<StreamId> bases;
  if (Error failed = read_file(dir_ + "/meta", m)) return failed;
  if (!parse_manifest(m, key_, bases, epoch_) || bases.empty()) {
    return damage_error(dir_ + "/meta is damaged", dir_ + "/meta");
  }
  for (StreamId base : bases) {
    Error error;
    const std::string path = segment_path(base, ".log");
    auto file = open_file(path, false, error);
    if (!file) {
      return Error{"cannot open " + path + " (listed in the manifest): " + errno_text(error.code), path, error.code};
    }
    Segment s;
    s.base = base;
    const File::Pin pin = file->pin();
    if (!pin) return system_error("cannot open", path, pin.error());
    s.end = static_cast<std::uint64_t>(file_size(pin.fd()));
    file->note_written(0, s.end);
    file->set_identity(segment_header(base));
    s.file = std::move(file);
    segments_.push_back(std::move(s));
  }
  for (std::size_t i = 0; i + 1 < segments_.size(); ++i) {
    Segment& s = segments_[i];
    const auto number = static_cast<std::uint32_t>(i);
    const Error why = load_index(s, sink, number);
    if (!why) continue;
    if (Error failed = scan(s, number, false, sink, notes)) return failed;
    s.meta_at_end = meta_;
    s.index_blob = sink.index_blob(number);
    if (Error failed = write_index(s)) return failed;
    s.index_blob.clear();
    s.tombstones.clear();
    notes.push_back("rebuilt the index of " + segment_path(s.base, ".log") + " (" + why.what + ")");
  }
  if (Error failed = scan(segments_.back(), last_segment(), true, sink, notes)) return failed;
  out_offset_ = tail().end;
  return {};
}

Error SegmentLog::drop_segments_before(std::uint32_t number) {
  std::size_t dropped = 0;
  while (first_number_ + dropped < number && segments_.size() - dropped > 1) ++dropped;
  if (dropped == 0) return {};
  std::vector<Segment> gone(std::make_move_iterator(segments_.begin()),
                            std::make_move_iterator(segments_.begin() + static_cast<std::ptrdiff_t>(dropped)));
  segments_.erase(segments_.begin(), segments_.begin() + static_cast<std::ptrdiff_t>(dropped));
  first_number_ += static_cast<std::uint32_t>(dropped);
  // The manifest that no longer lists them first: a crash between the two then leaves
  // unlisted files behind, never a manifest that names a file that is gone (a damaged
  // stream at the next start).
  Error error = write_manifest();
  for (Segment& s : gone) {
    if (error) {
      s.file->set_removed();  // the old manifest still lists them: they stay on disk
      continue;
    }
    // Closed off this thread: the kernel drops a big file's pages and blocks at the last
    // close, which took tens of milliseconds on a segment still being written back.
    discard_file(std::move(s.file), {segment_path(s.base, ".log"), segment_path(s.base, ".idx")});
  }
  return error;
}

Error SegmentLog::read_entries(std::uint32_t number, std::uint64_t first_batch, std::uint64_t last_batch,
                               const std::function<void(StreamId, std::string_view)>& visit) const {
  const Segment* s = segment(number);
  if (s == nullptr) {
    return damage_error("segment " + std::to_string(number) + " of " + dir_ + " is gone", dir_);
  }
  const std::string& path = s->file->path();
  const std::uint64_t written = s->file->written();
  if (last_batch >= written) {
    return damage_error(path + ": batch at " + std::to_string(last_batch) + " is not written yet", path);
  }
  const File::Pin pin = s->file->pin();
  if (!pin) return system_error("cannot open", path, pin.error());
  // The last batch's length is in its header: read through that header, then the rest.
  std::string header;
  if (const Error read = read_at(pin.fd(), last_batch, kBatchHeaderBytes, header)) {
    return system_error("cannot read", path, read.code);
  }
  if (header.size() != kBatchHeaderBytes) return damage_error(path + ": short batch header", path);
  const std::uint64_t end = last_batch + kBatchHeaderBytes + get_u32(header.data() + 4);
  BatchReader reader(pin.fd(), path, first_batch, std::min(end, written));
  while (true) {
    std::string_view body;
    const auto result = reader.next(body);
    if (result == BatchReader::Result::kEnd) return {};
    if (result != BatchReader::Result::kBatch) {
      if (reader.error()) return reader.error();
      return damage_error(path + ": damaged batch at offset " + std::to_string(reader.pos()), path);
    }
    const bool ok = parse_records(body, [&](const LogRecord& r) {
      if (r.type == LogRecord::Type::kEntry) visit(r.id, r.payload);
    });
    if (!ok) {
      return damage_error(path + ": malformed record at offset " + std::to_string(reader.batch_at()), path);
    }
  }
}

}  // namespace runnel::storage
static_assert(runnel::storage::SegmentLog::kBatchHeaderBytes == runnel::storage::kBatchHeaderBytes);
