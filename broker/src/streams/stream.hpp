// Stream: one stream's entries, Redis's stream metadata and its consumer groups, with the ops
// the commands run on them. Ops return values or a typed error (result.hpp); they never
// parse arguments or write replies, so they are tested without a server
// (tests/broker/stream_ops_test.cpp). Every change is reported to the shard's ChangeSink.
// Runs on the owning shard only; never shared between threads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <runnel/storage/entry_store.hpp>
#include <runnel/storage/stream_id.hpp>

#include "streams/change_sink.hpp"
#include "streams/entries.hpp"
#include "streams/group.hpp"
#include "streams/idempotency.hpp"
#include "streams/result.hpp"

namespace runnel {

// XADD's ID argument: "<ms>-<seq>", or "<ms>-*" (seq_given false). None at all is '*'.
struct NewId {
  StreamId id;
  bool seq_given = true;
};

// XCLAIM's request (Redis 7.0 t_stream.c xclaimCommand).
struct ClaimSpec {
  std::string_view consumer;
  std::int64_t min_idle_ms = 0;
  std::vector<StreamId> ids;
  std::int64_t delivery_time_ms = -1;  // IDLE or TIME; -1: now
  std::int64_t retry_count = -1;       // -1: one more delivery (none with JUSTID)
  bool force = false;
  bool justid = false;
  StreamId last_id;
};

// XCLAIM's result: the entries claimed, or only their IDs with JUSTID.
struct Claimed {
  Entries entries;
  std::vector<StreamId> ids;
};

// XAUTOCLAIM's request.
struct AutoClaimSpec {
  std::string_view consumer;
  std::int64_t min_idle_ms = 0;
  StreamId start;
  std::int64_t count = 100;
  bool justid = false;
};

struct AutoClaimed {
  StreamId next;  // where the next call resumes (0-0: the PEL was scanned to its end)
  Entries entries;
  std::vector<StreamId> ids;      // JUSTID
  std::vector<StreamId> deleted;  // pending entries gone from the stream, dropped from the PEL
};

class Stream {
 public:
  using Groups = std::map<std::string, ConsumerGroup, std::less<>>;

  // In memory only, or over `store`.
  explicit Stream(std::unique_ptr<storage::EntryStore> store = nullptr);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Where changes are reported (null: nowhere), for the stream and its groups.
  void bind(ChangeSink* sink);

  // --- the stream's state ---
  [[nodiscard]] std::uint64_t length() const { return entries_->size(); }
  [[nodiscard]] const storage::EntryStore& entries() const { return *entries_; }
  // Redis's stream metadata: the top ID ever generated, how many entries were ever added,
  // the largest ID XDEL removed, and the first entry's ID as last recorded (0-0 if empty).
  [[nodiscard]] StreamId last_id() const { return last_id_; }
  [[nodiscard]] std::uint64_t entries_added() const { return entries_added_; }
  [[nodiscard]] StreamId max_deleted_id() const { return max_deleted_id_; }
  [[nodiscard]] StreamId first_id() const { return first_id_; }
  // Whether an entry above `after` is stored.
  [[nodiscard]] bool has_after(StreamId after) const;

  // --- entries ---
  // The ID XADD gives a new entry after `last`: none given (`*`) takes the clock, never
  // going back (with the clock behind, it keeps the top's ms and bumps the sequence);
  // "<ms>-*" takes the next sequence in ms. Errors are Redis 7.0's.
  [[nodiscard]] static Result<StreamId> next_id(StreamId last, const NewId* given, std::int64_t now_ms);
  // Appends an entry whose ID next_id() gave.
  void append(StreamId id, std::span<const std::string_view> fields);
  // XADD: next_id, append, then trim when asked. Returns the new entry's ID. The entry is
  // added even if the trim fails to read entries back (ACKED): that error goes to
  // `trim_error` when given.
  Result<StreamId> add(const NewId* given, std::span<const std::string_view> fields,
                       const std::optional<storage::TrimSpec>& trim, std::int64_t now_ms,
                       RefPolicy policy = RefPolicy::kKeep, OpError* trim_error = nullptr);
  // Removes entries as `spec` says; returns how many. DELREF and ACKED trim exactly ('~' is
  // taken as '=', LIMIT still caps it), as Redis does since its fix of 8.4's approximate
  // trims that removed nothing. ACKED skips the entries some group still references and
  // goes on past them; it reads entries back to find the ones between, which may fail.
  Result<std::uint64_t> trim(const storage::TrimSpec& spec, RefPolicy policy = RefPolicy::kKeep);
  // XDEL: deletes the entries listed; returns how many there were.
  std::uint64_t erase(std::span<const StreamId> ids);
  // XDELEX: a code per ID.
  std::vector<DeleteCode> erase(std::span<const StreamId> ids, RefPolicy policy);
  // XACKDEL: acknowledges each ID in `group`, then deletes it as `policy` says; a code per ID
  // (kNotFound: it was not pending in `group`).
  std::vector<DeleteCode> ack_and_erase(ConsumerGroup& group, std::span<const StreamId> ids, RefPolicy policy);
  // XSETID: `entries_added` -1 and no `max_deleted` keep those.
  Result<void> set_id(StreamId id, std::int64_t entries_added, std::optional<StreamId> max_deleted);
  // The metadata as loaded from disk.
  void restore_meta(StreamId last_id, std::uint64_t entries_added, StreamId max_deleted_id);
  // The store dropped entries by itself (retention): the first ID is read again.
  void store_trimmed();

  // Entries with start <= id <= end, at most `count` (0: all), descending when `reverse`.
  // A failed read is an error, never a short result.
  [[nodiscard]] Result<Entries> range(StreamId start, StreamId end, bool reverse, std::size_t count) const;
  // Entries above `after`, at most `count` (0: all): XREAD.
  [[nodiscard]] Result<Entries> read_after(StreamId after, std::size_t count) const;

  // --- idempotent producers (Redis 8.6) ---
  // Null until the stream first uses them.
  [[nodiscard]] const Idempotency* idempotency() const { return idmp_.get(); }
  // XADD IDMP/IDMPAUTO: the entry `iid` of `pid` added while still in the window (and the
  // duplicate counted), or nothing.
  std::optional<StreamId> idmp_duplicate(std::string_view pid, std::string_view iid, std::int64_t now_ms);
  // XADD IDMP/IDMPAUTO added `id`.
  void idmp_record(std::string_view pid, std::string_view iid, StreamId id, std::int64_t now_ms);
  // XCFGSET.
  void idmp_configure(std::optional<std::int64_t> duration_s, std::optional<std::int64_t> max_size);
  // The journal's replay.
  Idempotency& restore_idempotency();

  // --- groups ---
  [[nodiscard]] const Groups& groups() const { return groups_; }
  [[nodiscard]] ConsumerGroup* group(std::string_view name);
  [[nodiscard]] const ConsumerGroup* group(std::string_view name) const;
  // XGROUP CREATE: BUSYGROUP when `name` exists.
  Result<ConsumerGroup*> create_group(std::string_view name, StreamId last_delivered, std::int64_t entries_read);
  // XGROUP DESTROY: false when there was no such group.
  bool destroy_group(std::string_view name);

  // Whether `group` has entries not delivered yet.
  [[nodiscard]] bool has_new_for(const ConsumerGroup& group) const { return has_after(group.last_delivered()); }
  // XREADGROUP '>': entries after the group's last-delivered ID, at most `count` (0: all),
  // added to `consumer`'s pending entries unless `noack`. A read that fails delivers
  // nothing and changes nothing: the group never moves past entries it could not read.
  Result<Entries> deliver_new(ConsumerGroup& group, Consumer& consumer, std::size_t count, bool noack,
                              std::int64_t now_ms);
  // XREADGROUP CLAIM min-idle (Redis 8.4), its first part: pending entries idle at least
  // `min_idle_ms` (NACKed ones always), the NACKed zone first, then the most idle, at most
  // `count` (0: all), claimed by `consumer` as XCLAIM would (one more delivery). Each entry
  // carries its idle time and deliveries from before the claim. Entries gone from the stream
  // are skipped and stay pending.
  Result<Entries> claim_idle(ConsumerGroup& group, Consumer& consumer, std::int64_t min_idle_ms,
                             std::size_t count, std::int64_t now_ms);
  // After a claim_idle() that found nothing: when the next pending entry of `group` becomes
  // claimable at `min_idle_ms`, after `now_ms` (those claimable already were gone from the
  // stream); nullopt if none will.
  [[nodiscard]] std::optional<std::int64_t> next_claimable(const ConsumerGroup& group, std::int64_t min_idle_ms,
                                                           std::int64_t now_ms) const;
  // Whether claim_idle() would find an entry now (one in the stream, idle enough or NACKed).
  [[nodiscard]] bool claimable_now(const ConsumerGroup& group, std::int64_t min_idle_ms, std::int64_t now_ms) const;
  // XREADGROUP '>' with CLAIM: claim_idle(), then new entries up to `count` in all.
  Result<Entries> deliver_claiming(ConsumerGroup& group, Consumer& consumer, std::int64_t min_idle_ms,
                                   std::size_t count, bool noack, std::int64_t now_ms);
  // XREADGROUP with an ID: the consumer's pending entries above `after`, delivered again
  // (deleted ones marked so).
  Result<Entries> deliver_history(ConsumerGroup& group, Consumer& consumer, StreamId after,
                                  std::size_t count, std::int64_t now_ms);
  // XACK: how many of `ids` were pending.
  std::uint64_t ack(ConsumerGroup& group, std::span<const StreamId> ids);
  // XNACK (Redis 8.8): each ID pending in `group` loses its owner and goes to the end of the
  // NACKed zone, with its deliveries as `mode` says (SILENT one fewer, down to 0; FAIL the
  // same; FATAL the largest) or `retry_count` when given. With `force`, an ID not pending
  // but in the stream becomes a NACKed one (from 0 deliveries). Returns how many were NACKed
  // (an ID listed twice counts twice).
  enum class NackMode { kSilent, kFail, kFatal };
  Result<std::uint64_t> nack(ConsumerGroup& group, std::span<const StreamId> ids, NackMode mode,
                             std::optional<std::uint64_t> retry_count, bool force);
  // XCLAIM. A failed read returns the error (entries claimed before it stay claimed).
  Result<Claimed> claim(ConsumerGroup& group, const ClaimSpec& spec, std::int64_t now_ms);
  // XAUTOCLAIM.
  Result<AutoClaimed> autoclaim(ConsumerGroup& group, const AutoClaimSpec& spec, std::int64_t now_ms);

  // Redis 7.0's counters (t_stream.c): the logical number of the entry `id` ("how many
  // entries were added up to it"), or kEntriesReadUnknown when fragmentation makes it
  // unknowable; whether an XDEL tombstone lies in [start, end]; a group's lag (nullopt:
  // unknown).
  [[nodiscard]] std::int64_t estimate_entries_read(StreamId id) const;
  [[nodiscard]] bool range_has_tombstones(StreamId start, StreamId end) const;
  [[nodiscard]] std::optional<std::int64_t> lag(const ConsumerGroup& group) const;

 private:
  void changed() {
    if (sink_) sink_->stream_changed(*this);
  }
  void refresh_first_id();
  // Moves the group's last-delivered ID up to `id` (delivering it), keeping entries_read.
  void advance(ConsumerGroup& group, StreamId id);
  // The smallest last-delivered ID over the groups (max() when there are none): every entry
  // above it is unread by some group.
  [[nodiscard]] StreamId min_last_delivered() const;
  // Drops `id` from every group's PEL (DELREF).
  void drop_references(StreamId id);
  // Starts keeping refs_ (the first DELREF or ACKED on this stream).
  void keep_references();
  // Whether some group still references `id`: holds it pending, or has not read up to it
  // (`min_last`: min_last_delivered()).
  [[nodiscard]] bool referenced(StreamId id, StreamId min_last) const {
    return id > min_last || refs_.contains(id);
  }
  Result<std::uint64_t> trim_acked(const storage::TrimSpec& spec);
  [[nodiscard]] bool trim_done(const storage::TrimSpec& spec) const;
  // Whether the entry `id` is stored, or the read's error.
  [[nodiscard]] Result<bool> contains(StreamId id) const;
  // The entry `id` into `out` (false if it is not stored), or the read's error.
  [[nodiscard]] Result<bool> read_one(StreamId id, Entries& out) const;

  std::unique_ptr<storage::EntryStore> entries_;
  StreamId last_id_;
  std::uint64_t entries_added_ = 0;
  StreamId max_deleted_id_;
  StreamId first_id_;
  Groups groups_;
  PelRefs refs_;  // every group's pending IDs, counted
  std::unique_ptr<Idempotency> idmp_;
  ChangeSink* sink_ = nullptr;
};

}  // namespace runnel
