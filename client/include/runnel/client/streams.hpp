// The typed stream API: the values of stream commands (StreamId, Entry, PendingEntry,
// GroupInfo, ...), a builder per command that pairs its arguments with its reply's parser
// (namespace cmd), MULTI/EXEC as one request (Transaction), and StreamCommands, the mixin
// that gives the async Client and the SyncClient the same member functions. No Asio here.
//
// Every parser reads RESP2 and RESP3 replies alike (maps or flat key/value arrays, the two
// nulls) and finds XINFO fields by name, so servers that add or lack fields still parse. A
// reply of another shape throws UnexpectedReply naming the command and what it found.
#pragma once

#include <chrono>
#include <compare>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <runnel/client/command.hpp>
#include <runnel/client/error.hpp>
#include <runnel/client/request.hpp>

namespace runnel::client {

// ---------------------------------------------------------------------------------------------
// Values. Every member has an initializer, even `{}`, so that designated initializers may
// leave members out under -Wextra (GCC warns of missing initializers otherwise):
//   client.xreadgroup("g", "c", {{"orders", ">"}}, {.count = 10});

// An entry ID: milliseconds, then a sequence number within them. Ordered as the server
// orders them.
struct StreamId {
  std::uint64_t ms = 0;
  std::uint64_t seq = 0;

  // "ms-seq", or "ms" (which is ms-0). Decimal digits only: no sign, space, "*", "-" or "+".
  [[nodiscard]] static std::optional<StreamId> parse(std::string_view text);
  [[nodiscard]] std::string to_string() const;

  // The IDs just after and just before this one; seq carries into ms. They saturate:
  // max().next() is max() and min().prev() is min(), as no ID lies beyond them (a caller
  // paging with next() stops once it has seen max()).
  [[nodiscard]] constexpr StreamId next() const {
    if (seq != kTop) return {ms, seq + 1};
    if (ms != kTop) return {ms + 1, 0};
    return *this;
  }
  [[nodiscard]] constexpr StreamId prev() const {
    if (seq != 0) return {ms, seq - 1};
    if (ms != 0) return {ms - 1, kTop};
    return *this;
  }
  [[nodiscard]] static constexpr StreamId min() { return {0, 0}; }
  [[nodiscard]] static constexpr StreamId max() { return {kTop, kTop}; }

  friend constexpr auto operator<=>(const StreamId&, const StreamId&) = default;

 private:
  static constexpr std::uint64_t kTop = std::numeric_limits<std::uint64_t>::max();
};

// An entry's field/value pairs in the order they were added (names may repeat).
using Fields = std::vector<std::pair<std::string, std::string>>;

struct Entry {
  StreamId id{};
  Fields fields{};
  // The entry was deleted (XDEL, trimming) while pending: XREADGROUP reading a consumer's
  // history answers [id, nil] for it. `fields` is empty then.
  bool deleted = false;
  // XREADGROUP with `claim_min_idle_ms` (Redis 8.4): how long the entry had been idle and how
  // often it had been delivered before this read (0 and 0 for a new entry).
  struct Delivery {
    std::uint64_t idle_ms = 0;
    std::uint64_t deliveries = 0;
  };
  std::optional<Delivery> delivery{};

  // The value of the first field called `name`, or nullptr.
  [[nodiscard]] const std::string* field(std::string_view name) const;
};

// One stream's part of an XREAD or XREADGROUP reply.
struct StreamEntries {
  std::string stream{};
  std::vector<Entry> entries{};
};

// What deleting or trimming entries does about consumer groups that still reference them
// (Redis 8.2's KEEPREF, DELREF, ACKED).
enum class References : std::uint8_t {
  keep,    // KEEPREF: pending entries stay, pointing at nothing (the default)
  remove,  // DELREF: the entries also leave every group's pending list
  acked,   // ACKED: only entries every group has read and acknowledged go
};

// MAXLEN or MINID, for XADD and XTRIM.
struct TrimOptions {
  enum class Strategy : std::uint8_t { maxlen, minid };
  Strategy strategy = Strategy::maxlen;
  // "~": the server may keep more entries, trimming whole nodes only (much cheaper).
  bool approximate = false;
  std::uint64_t maxlen = 0;  // with Strategy::maxlen
  StreamId minid{};          // with Strategy::minid
  // LIMIT: most entries one trim removes. The server accepts it only with `approximate`.
  std::optional<std::uint64_t> limit{};
  // KEEPREF, DELREF or ACKED (Redis 8.2); not sent when empty.
  std::optional<References> references{};

  [[nodiscard]] static TrimOptions max_len(std::uint64_t n, bool approximate = false) {
    TrimOptions trim;
    trim.strategy = Strategy::maxlen;
    trim.maxlen = n;
    trim.approximate = approximate;
    return trim;
  }
  [[nodiscard]] static TrimOptions min_id(StreamId id, bool approximate = false) {
    TrimOptions trim;
    trim.strategy = Strategy::minid;
    trim.minid = id;
    trim.approximate = approximate;
    return trim;
  }
};

// XADD's options. NOMKSTREAM is its own call (cmd::xadd_nomkstream), because only it can
// answer nil, and every other XADD then returns a plain StreamId.
struct XAddOptions {
  // The new entry's ID; without one the server picks it ("*").
  std::optional<StreamId> id{};
  // An ID as text, used when not empty, for what StreamId cannot say: "5-*" (the server picks
  // the sequence number).
  std::string id_text{};
  std::optional<TrimOptions> trim{};
  // Idempotent producers (Redis 8.6; the server picks the ID): IDMP producer idempotent-id,
  // or with no idempotent ID, IDMPAUTO producer (the server hashes the fields). A retry of
  // the same XADD within the stream's window answers the first one's ID and adds nothing.
  std::optional<std::string> idmp_producer{};
  std::optional<std::string> idmp_id{};
};

// One end of an XRANGE/XREVRANGE/XPENDING interval: "-", "+", an ID (inclusive), "(" and an
// ID (exclusive), or an incomplete ID ("1526985054069", which the server completes to -0 at
// a start and -max at an end). Built from a StreamId (inclusive) or a string literal, so
// calls read as the commands do: xrange("orders", "-", "+").
struct RangeBound {
  std::string text;

  RangeBound(StreamId id) : text(id.to_string()) {}  // NOLINT: implicit on purpose
  RangeBound(const char* bound) : text(bound) {}     // NOLINT: implicit on purpose
  explicit RangeBound(std::string bound) : text(std::move(bound)) {}

  [[nodiscard]] static RangeBound min() { return RangeBound("-"); }
  [[nodiscard]] static RangeBound max() { return RangeBound("+"); }
  [[nodiscard]] static RangeBound inclusive(StreamId id) { return RangeBound(id); }
  [[nodiscard]] static RangeBound exclusive(StreamId id) {
    return RangeBound("(" + id.to_string());
  }

  friend bool operator==(const RangeBound&, const RangeBound&) = default;
};

// The streams an XREAD/XREADGROUP reads, each with the ID to read after: an ID's text, "$"
// (XREAD: only entries added from now on), ">" (XREADGROUP: entries never delivered to the
// group) or "0" (XREADGROUP: the consumer's pending history).
using StreamCursors = std::vector<std::pair<std::string, std::string>>;

struct XReadOptions {
  std::optional<std::uint64_t> count{};
  // Wait this long for entries when there are none (0: no end). A blocking read runs on a
  // connection of its own (see Request::block_ms).
  std::optional<std::chrono::milliseconds> block{};
};

struct XReadGroupOptions {
  std::optional<std::uint64_t> count{};
  std::optional<std::chrono::milliseconds> block{};
  // Deliver without adding to the pending entries list (no XACK needed, no redelivery).
  bool noack = false;
  // CLAIM (Redis 8.4): with ">", pending entries idle at least this long come first, taken
  // over by this consumer; every entry then has its `delivery`.
  std::optional<std::uint64_t> claim_min_idle_ms{};
};

// XDELEX's and XACKDEL's answer per ID (Redis 8.2).
enum class DeleteResult : std::int8_t {
  not_found = -1,   // not in the stream (XACKDEL: not pending in the group)
  deleted = 1,      // deleted (XACKDEL: acknowledged, and deleted or gone already)
  referenced = 2,   // kept: a group still references it (ACKED)
};

// XNACK's mode (Redis 8.8): what becomes of the entries' delivery counts.
enum class NackMode : std::uint8_t {
  silent,  // one fewer delivery (not below 0): as if never delivered
  fail,    // the same: a failed attempt
  fatal,   // the largest count: never to be retried by count-based policies
};

struct XNackOptions {
  std::optional<std::uint64_t> retry_count{};  // RETRYCOUNT: the count, whatever the mode
  bool force = false;  // FORCE: IDs not pending but in the stream become NACKed ones too
};

// XPENDING's summary form. smallest/largest are empty when nothing is pending.
struct PendingSummary {
  std::uint64_t count = 0;
  std::optional<StreamId> smallest{};
  std::optional<StreamId> largest{};
  // Each consumer with pending entries, and how many.
  std::vector<std::pair<std::string, std::uint64_t>> consumers{};
};

// One entry of a group's pending entries list (XPENDING's extended form).
struct PendingEntry {
  StreamId id{};
  std::string consumer{};
  std::uint64_t idle_ms = 0;     // since it was last delivered
  std::uint64_t deliveries = 0;  // times it was delivered
};

struct XPendingOptions {
  // Only entries idle at least this long (IDLE; servers since Redis 6.2).
  std::optional<std::uint64_t> idle_ms{};
  RangeBound start = RangeBound::min();
  RangeBound end = RangeBound::max();
  // Most entries returned (the command requires a count; 100 is this SDK's choice).
  std::uint64_t count = 100;
  std::optional<std::string> consumer{};
};

// XCLAIM's options (JUSTID is cmd::xclaim_justid, as it changes the reply).
struct XClaimOptions {
  std::optional<std::uint64_t> idle_ms{};      // IDLE: set the entries' idle time
  std::optional<std::uint64_t> time_ms{};      // TIME: set it as a Unix time in ms
  std::optional<std::uint64_t> retry_count{};  // RETRYCOUNT: set the delivery count
  bool force = false;  // FORCE: claim IDs that are not pending, if they are in the stream
  std::optional<StreamId> last_id{};  // LASTID: move the group's last-delivered ID up to this
};

struct AutoClaimResult {
  // Where the next XAUTOCLAIM call starts; 0-0 once the scan has covered the whole list.
  StreamId next{};
  std::vector<Entry> entries{};
  // IDs that were pending but no longer in the stream; the server dropped them from the
  // pending list (Redis 7 and later; empty from older servers).
  std::vector<StreamId> deleted{};
};

struct AutoClaimIdsResult {
  StreamId next{};
  std::vector<StreamId> ids{};
  std::vector<StreamId> deleted{};
};

// XINFO STREAM (not FULL). Fields a server does not send (Redis before 7.0 lacks the last
// three counters) stay zero.
struct StreamInfo {
  std::uint64_t length = 0;
  std::uint64_t radix_tree_keys = 0;
  std::uint64_t radix_tree_nodes = 0;
  StreamId last_generated_id{};
  StreamId max_deleted_entry_id{};
  std::uint64_t entries_added = 0;
  StreamId recorded_first_entry_id{};
  std::uint64_t groups = 0;
  std::optional<Entry> first_entry{};  // empty for an empty stream
  std::optional<Entry> last_entry{};
};

// One element of XINFO GROUPS.
struct GroupInfo {
  std::string name{};
  std::uint64_t consumers = 0;
  std::uint64_t pending = 0;
  StreamId last_delivered_id{};
  // Entries the group has read (nil when the server cannot tell, e.g. a group created at
  // "$" that has read nothing since).
  std::optional<std::uint64_t> entries_read{};
  // Entries not yet delivered to the group (nil when the server cannot tell, e.g. after
  // deletions past the group's last-delivered ID).
  std::optional<std::uint64_t> lag{};
};

// One element of XINFO CONSUMERS.
struct ConsumerInfo {
  std::string name{};
  std::uint64_t pending = 0;
  std::uint64_t idle_ms = 0;  // since the consumer last tried to interact
  // Since its last successful interaction (reading or claiming some entries). Empty when
  // the server does not send it (before Redis 7.2) or the consumer never had one (-1).
  std::optional<std::uint64_t> inactive_ms{};
};

// The answer of a command that answers only OK. (A Request's result must be a value.)
struct Ok {
  friend bool operator==(Ok, Ok) = default;
};

// What EXEC answered for a Transaction.
struct TransactionResult {
  // EXEC's elements, one per queued command, in order. A command that failed while EXEC
  // ran has an error reply here; the others still ran (MULTI does not roll back).
  std::vector<Reply> replies{};
  // EXEC answered nil: a key under WATCH changed, so nothing ran and `replies` is empty.
  bool aborted = false;

  // The i-th command's reply, parsed as `request` (the request that was queued) parses it.
  // Throws ServerError if that command failed, std::out_of_range for an index past the end
  // (every index, when aborted).
  template <class T>
  [[nodiscard]] T get(std::size_t i, const Request<T>& request) const {
    return get(i, request.parse);
  }
  template <class T>
  [[nodiscard]] T get(std::size_t i, T (*parse)(Reply&&)) const {
    if (i >= replies.size()) {
      throw std::out_of_range(aborted ? "transaction aborted: a watched key changed"
                                      : "transaction has no reply " + std::to_string(i));
    }
    if (replies[i].is_error()) throw ServerError(replies[i].str);
    return parse(Reply(replies[i]));
  }
};

// MULTI, the queued commands and EXEC, written as one request so no other request of the
// client can come between them on the connection. Queueing only encodes: nothing is sent
// until a client runs its request() (the mixin's exec()). A plain value: exec() does not
// consume it, so one Transaction can run again; no locking (one thread builds it).
//
// Blocking commands queued here do not block (the server runs them at once inside EXEC),
// so the transaction's request is never a blocking one.
class Transaction {
 public:
  // Queues `request`'s command. Read its reply back with TransactionResult::get(i, request),
  // i being its position (size() before this call). A request of several replies, or an
  // empty command, is refused (std::invalid_argument).
  template <class T>
  Transaction& add(const Request<T>& request) {
    if (request.replies != 1) {
      throw std::invalid_argument("a transaction cannot queue a multi-reply request");
    }
    return add(request.command);
  }
  Transaction& add(const Command& command);

  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }

  // MULTI, the commands and EXEC as one request of size() + 2 replies. Its parser throws
  // ServerError when EXEC fails (EXECABORT: a command was refused while queueing; the text
  // then ends with the first refusal, "[command i: ...]"), and sets `aborted` when EXEC
  // answers nil.
  [[nodiscard]] Request<TransactionResult> request() const;

 private:
  std::string frames_;  // the queued commands' encoded frames, back to back
  std::size_t size_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Builders: one per command, its arguments and its parser.

namespace cmd {

// XADD. The new entry's ID.
[[nodiscard]] Request<StreamId> xadd(std::string_view key, const Fields& fields,
                                     const XAddOptions& options = {});
// XADD NOMKSTREAM: nothing when the stream does not exist (it is not created).
[[nodiscard]] Request<std::optional<StreamId>> xadd_nomkstream(std::string_view key,
                                                               const Fields& fields,
                                                               const XAddOptions& options = {});

[[nodiscard]] Request<std::vector<Entry>> xrange(std::string_view key,
                                                 const RangeBound& start = RangeBound::min(),
                                                 const RangeBound& end = RangeBound::max(),
                                                 std::optional<std::uint64_t> count = {});
// Newest first; note the bounds come end first, as in the command.
[[nodiscard]] Request<std::vector<Entry>> xrevrange(std::string_view key,
                                                    const RangeBound& end = RangeBound::max(),
                                                    const RangeBound& start = RangeBound::min(),
                                                    std::optional<std::uint64_t> count = {});

// XREAD / XREADGROUP. Only streams with entries appear; no entries at all (or a BLOCK that
// ran out) is an empty vector. With `block` set, the request is a blocking one.
[[nodiscard]] Request<std::vector<StreamEntries>> xread(const StreamCursors& streams,
                                                        const XReadOptions& options = {});
[[nodiscard]] Request<std::vector<StreamEntries>> xreadgroup(std::string_view group,
                                                             std::string_view consumer,
                                                             const StreamCursors& streams,
                                                             const XReadGroupOptions& options = {});

// How many of `ids` were pending and are now acknowledged.
[[nodiscard]] Request<std::uint64_t> xack(std::string_view key, std::string_view group,
                                          const std::vector<StreamId>& ids);

// XGROUP CREATE. `id` is where the group starts: "$" (the stream's end), "0", or an ID's
// text. MKSTREAM creates an empty stream when there is none.
[[nodiscard]] Request<Ok> xgroup_create(std::string_view key, std::string_view group,
                                        std::string_view id, bool mkstream = false,
                                        std::optional<std::uint64_t> entries_read = {});
[[nodiscard]] Request<Ok> xgroup_setid(std::string_view key, std::string_view group,
                                       std::string_view id,
                                       std::optional<std::uint64_t> entries_read = {});
// True if the group existed.
[[nodiscard]] Request<bool> xgroup_destroy(std::string_view key, std::string_view group);
// True if the consumer was created (false: it existed).
[[nodiscard]] Request<bool> xgroup_createconsumer(std::string_view key, std::string_view group,
                                                  std::string_view consumer);
// The number of pending entries the consumer had (they are dropped with it).
[[nodiscard]] Request<std::uint64_t> xgroup_delconsumer(std::string_view key,
                                                        std::string_view group,
                                                        std::string_view consumer);

[[nodiscard]] Request<PendingSummary> xpending(std::string_view key, std::string_view group);
[[nodiscard]] Request<std::vector<PendingEntry>> xpending(std::string_view key,
                                                          std::string_view group,
                                                          const XPendingOptions& options);

// XCLAIM. The claimed entries; IDs no longer in the stream are dropped from the pending
// list by the server and left out (Redis 6 answers nil for them, which is skipped).
[[nodiscard]] Request<std::vector<Entry>> xclaim(std::string_view key, std::string_view group,
                                                 std::string_view consumer,
                                                 std::uint64_t min_idle_ms,
                                                 const std::vector<StreamId>& ids,
                                                 const XClaimOptions& options = {});
[[nodiscard]] Request<std::vector<StreamId>> xclaim_justid(
    std::string_view key, std::string_view group, std::string_view consumer,
    std::uint64_t min_idle_ms, const std::vector<StreamId>& ids, const XClaimOptions& options = {});

[[nodiscard]] Request<AutoClaimResult> xautoclaim(std::string_view key, std::string_view group,
                                                  std::string_view consumer,
                                                  std::uint64_t min_idle_ms, StreamId start,
                                                  std::optional<std::uint64_t> count = {});
[[nodiscard]] Request<AutoClaimIdsResult> xautoclaim_justid(
    std::string_view key, std::string_view group, std::string_view consumer,
    std::uint64_t min_idle_ms, StreamId start, std::optional<std::uint64_t> count = {});

[[nodiscard]] Request<StreamInfo> xinfo_stream(std::string_view key);
[[nodiscard]] Request<std::vector<GroupInfo>> xinfo_groups(std::string_view key);
[[nodiscard]] Request<std::vector<ConsumerInfo>> xinfo_consumers(std::string_view key,
                                                                 std::string_view group);

[[nodiscard]] Request<std::uint64_t> xlen(std::string_view key);
// How many of `ids` were in the stream and are now deleted.
[[nodiscard]] Request<std::uint64_t> xdel(std::string_view key, const std::vector<StreamId>& ids);
// XDELEX (Redis 8.2): an answer per ID.
[[nodiscard]] Request<std::vector<DeleteResult>> xdelex(std::string_view key, const std::vector<StreamId>& ids,
                                                        References references = References::keep);
// XACKDEL (Redis 8.2): acknowledges each ID in `group`, then deletes it; an answer per ID.
[[nodiscard]] Request<std::vector<DeleteResult>> xackdel(std::string_view key, std::string_view group,
                                                         const std::vector<StreamId>& ids,
                                                         References references = References::keep);
// XNACK (Redis 8.8): hands pending entries back at once, to be read again before anything
// else by XREADGROUP's CLAIM. How many it handed back.
[[nodiscard]] Request<std::uint64_t> xnack(std::string_view key, std::string_view group, NackMode mode,
                                           const std::vector<StreamId>& ids, const XNackOptions& options = {});
// How many entries were trimmed.
[[nodiscard]] Request<std::uint64_t> xtrim(std::string_view key, const TrimOptions& trim);
// XCFGSET (Redis 8.6): the stream's idempotent-producer window.
[[nodiscard]] Request<Ok> xcfgset(std::string_view key, std::optional<std::uint64_t> idmp_duration_s,
                                  std::optional<std::uint64_t> idmp_maxsize);
[[nodiscard]] Request<Ok> xsetid(std::string_view key, StreamId last_id,
                                 std::optional<std::uint64_t> entries_added = {},
                                 std::optional<StreamId> max_deleted_id = {});
// How many of `keys` existed and are now deleted.
[[nodiscard]] Request<std::uint64_t> del(const std::vector<std::string>& keys);
// The server's answer ("PONG").
[[nodiscard]] Request<std::string> ping();

}  // namespace cmd

// ---------------------------------------------------------------------------------------------
// StreamCommands: the typed calls as member functions of a client.
//
// `Self` provides run(Request<T>, Token&&...). Each call builds its request and hands it
// over with whatever follows the arguments: nothing for the SyncClient (the call returns
// the T), an Asio completion token for the async Client. Options with defaults come before
// the token, so an async call that keeps the defaults passes `{}` for them:
//   client.xrange("orders", "-", "+", {}, asio::use_awaitable);
namespace detail {
template <class T>
concept NotPendingOptions = !std::is_same_v<std::remove_cvref_t<T>, XPendingOptions>;
}  // namespace detail

template <class Self>
class StreamCommands {
 public:
  template <class... Token>
  decltype(auto) xadd(std::string_view key, const Fields& fields, const XAddOptions& options = {},
                      Token&&... token) {
    return self().run(cmd::xadd(key, fields, options), std::forward<Token>(token)...);
  }
  template <class... Token>
  decltype(auto) xadd_nomkstream(std::string_view key, const Fields& fields,
                                 const XAddOptions& options = {}, Token&&... token) {
    return self().run(cmd::xadd_nomkstream(key, fields, options), std::forward<Token>(token)...);
  }

  template <class... Token>
  decltype(auto) xrange(std::string_view key, const RangeBound& start = RangeBound::min(),
                        const RangeBound& end = RangeBound::max(),
                        std::optional<std::uint64_t> count = {}, Token&&... token) {
    return self().run(cmd::xrange(key, start, end, count), std::forward<Token>(token)...);
  }
  template <class... Token>
  decltype(auto) xrevrange(std::string_view key, const RangeBound& end = RangeBound::max(),
                           const RangeBound& start = RangeBound::min(),
                           std::optional<std::uint64_t> count = {}, Token&&... token) {
    return self().run(cmd::xrevrange(key, end, start, count), std::forward<Token>(token)...);
  }

  template <class... Token>
  decltype(auto) xread(const StreamCursors& streams, const XReadOptions& options = {},
                       Token&&... token) {
    return self().run(cmd::xread(streams, options), std::forward<Token>(token)...);
  }
  template <class... Token>
  decltype(auto) xreadgroup(std::string_view group, std::string_view consumer,
                            const StreamCursors& streams, const XReadGroupOptions& options = {},
                            Token&&... token) {
    return self().run(cmd::xreadgroup(group, consumer, streams, options),
                      std::forward<Token>(token)...);
  }

  template <class... Token>
  decltype(auto) xack(std::string_view key, std::string_view group,
                      const std::vector<StreamId>& ids, Token&&... token) {
    return self().run(cmd::xack(key, group, ids), std::forward<Token>(token)...);
  }

  // `Bool` is bool alone: a completion handler that is a captureless lambda converts to bool
  // (through a function pointer) and would otherwise be taken for `mkstream`.
  template <std::same_as<bool> Bool = bool, class... Token>
  decltype(auto) xgroup_create(std::string_view key, std::string_view group, std::string_view id,
                               Bool mkstream = false,
                               std::optional<std::uint64_t> entries_read = {}, Token&&... token) {
    return self().run(cmd::xgroup_create(key, group, id, mkstream, entries_read),
                      std::forward<Token>(token)...);
  }
  template <class... Token>
  decltype(auto) xgroup_setid(std::string_view key, std::string_view group, std::string_view id,
                              std::optional<std::uint64_t> entries_read = {}, Token&&... token) {
    return self().run(cmd::xgroup_setid(key, group, id, entries_read),
                      std::forward<Token>(token)...);
  }
  template <class... Token>
  decltype(auto) xgroup_destroy(std::string_view key, std::string_view group, Token&&... token) {
    return self().run(cmd::xgroup_destroy(key, group), std::forward<Token>(token)...);
  }
  template <class... Token>
  decltype(auto) xgroup_createconsumer(std::string_view key, std::string_view group,
                                       std::string_view consumer, Token&&... token) {
    return self().run(cmd::xgroup_createconsumer(key, group, consumer),
                      std::forward<Token>(token)...);
  }
  template <class... Token>
  decltype(auto) xgroup_delconsumer(std::string_view key, std::string_view group,
                                    std::string_view consumer, Token&&... token) {
    return self().run(cmd::xgroup_delconsumer(key, group, consumer), std::forward<Token>(token)...);
  }

  // The summary form. (Its tokens are never XPendingOptions, so that xpending(key, group,
  // options) with an lvalue picks the extended form below, not this with options as a token.)
  template <detail::NotPendingOptions... Token>
  decltype(auto) xpending(std::string_view key, std::string_view group, Token&&... token) {
    return self().run(cmd::xpending(key, group), std::forward<Token>(token)...);
  }
  template <class... Token>
  decltype(auto) xpending(std::string_view key, std::string_view group,
                          const XPendingOptions& options, Token&&... token) {
    return self().run(cmd::xpending(key, group, options), std::forward<Token>(token)...);
  }

  template <class... Token>
  decltype(auto) xclaim(std::string_view key, std::string_view group, std::string_view consumer,
                        std::uint64_t min_idle_ms, const std::vector<StreamId>& ids,
                        const XClaimOptions& options = {}, Token&&... token) {
    return self().run(cmd::xclaim(key, group, consumer, min_idle_ms, ids, options),
                      std::forward<Token>(token)...);
  }
  template <class... Token>
  decltype(auto) xclaim_justid(std::string_view key, std::string_view group,
                               std::string_view consumer, std::uint64_t min_idle_ms,
                               const std::vector<StreamId>& ids, const XClaimOptions& options = {},
                               Token&&... token) {
    return self().run(cmd::xclaim_justid(key, group, consumer, min_idle_ms, ids, options),
                      std::forward<Token>(token)...);
  }

  template <class... Token>
  decltype(auto) xautoclaim(std::string_view key, std::string_view group, std::string_view consumer,
                            std::uint64_t min_idle_ms, StreamId start,
                            std::optional<std::uint64_t> count = {}, Token&&... token) {
    return self().run(cmd::xautoclaim(key, group, consumer, min_idle_ms, start, count),
                      std::forward<Token>(token)...);
  }
  template <class... Token>
  decltype(auto) xautoclaim_justid(std::string_view key, std::string_view group,
                                   std::string_view consumer, std::uint64_t min_idle_ms,
                                   StreamId start, std::optional<std::uint64_t> count = {},
                                   Token&&... token) {
    return self().run(cmd::xautoclaim_justid(key, group, consumer, min_idle_ms, start, count),
                      std::forward<Token>(token)...);
  }

  template <class... Token>
  decltype(auto) xinfo_stream(std::string_view key, Token&&... token) {
    return self().run(cmd::xinfo_stream(key), std::forward<Token>(token)...);
  }
  template <class... Token>
  decltype(auto) xinfo_groups(std::string_view key, Token&&... token) {
    return self().run(cmd::xinfo_groups(key), std::forward<Token>(token)...);
  }
  template <class... Token>
  decltype(auto) xinfo_consumers(std::string_view key, std::string_view group, Token&&... token) {
    return self().run(cmd::xinfo_consumers(key, group), std::forward<Token>(token)...);
  }

  template <class... Token>
  decltype(auto) xlen(std::string_view key, Token&&... token) {
    return self().run(cmd::xlen(key), std::forward<Token>(token)...);
  }
  template <class... Token>
  decltype(auto) xdel(std::string_view key, const std::vector<StreamId>& ids, Token&&... token) {
    return self().run(cmd::xdel(key, ids), std::forward<Token>(token)...);
  }
  template <class... Token>
  decltype(auto) xdelex(std::string_view key, const std::vector<StreamId>& ids,
                        References references = References::keep, Token&&... token) {
    return self().run(cmd::xdelex(key, ids, references), std::forward<Token>(token)...);
  }
  template <class... Token>
  decltype(auto) xackdel(std::string_view key, std::string_view group, const std::vector<StreamId>& ids,
                         References references = References::keep, Token&&... token) {
    return self().run(cmd::xackdel(key, group, ids, references), std::forward<Token>(token)...);
  }
  template <class... Token>
  decltype(auto) xnack(std::string_view key, std::string_view group, NackMode mode, const std::vector<StreamId>& ids,
                       const XNackOptions& options = {}, Token&&... token) {
    return self().run(cmd::xnack(key, group, mode, ids, options), std::forward<Token>(token)...);
  }
  template <class... Token>
  decltype(auto) xtrim(std::string_view key, const TrimOptions& trim, Token&&... token) {
    return self().run(cmd::xtrim(key, trim), std::forward<Token>(token)...);
  }
  template <class... Token>
  decltype(auto) xsetid(std::string_view key, StreamId last_id,
                        std::optional<std::uint64_t> entries_added = {},
                        std::optional<StreamId> max_deleted_id = {}, Token&&... token) {
    return self().run(cmd::xsetid(key, last_id, entries_added, max_deleted_id),
                      std::forward<Token>(token)...);
  }
  template <class... Token>
  decltype(auto) del(const std::vector<std::string>& keys, Token&&... token) {
    return self().run(cmd::del(keys), std::forward<Token>(token)...);
  }
  template <class... Token>
  decltype(auto) ping(Token&&... token) {
    return self().run(cmd::ping(), std::forward<Token>(token)...);
  }

  // Runs MULTI, the transaction's commands and EXEC as one request (see Transaction).
  template <class... Token>
  decltype(auto) exec(const Transaction& transaction, Token&&... token) {
    return self().run(transaction.request(), std::forward<Token>(token)...);
  }

 protected:
  StreamCommands() = default;
  ~StreamCommands() = default;

 private:
  Self& self() { return static_cast<Self&>(*this); }
};

}  // namespace runnel::client
