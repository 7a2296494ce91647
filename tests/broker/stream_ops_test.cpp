// The stream model's ops (broker/src/streams/), with no server: XADD's ID rules, trimming,
// ranges, deletes, delivery, acknowledgement, claims, the PEL's bookkeeping, the lag, and the
// changes the model reports to its sink. Then a randomized run against a small reference
// model. The byte-exact replies are the differential tests' (tests/compat/).
#include <catch2/catch.hpp>

#include <algorithm>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "stream_args.hpp"
#include "streams/errors.hpp"
#include "streams/stream.hpp"

using runnel::AutoClaimSpec;
using runnel::ClaimSpec;
using runnel::ConsumerGroup;
using runnel::Consumer;
using runnel::Entries;
using runnel::Errc;
using runnel::NewId;
using runnel::Stream;
using runnel::DeleteCode;
using runnel::RefPolicy;
using runnel::storage::StreamId;
using runnel::storage::TrimSpec;

namespace {

constexpr std::int64_t kNow = 1'700'000'000'000;

StreamId id(std::uint64_t ms, std::uint64_t seq = 0) { return StreamId{ms, seq}; }

StreamId add(Stream& s, StreamId at, std::string_view value = "v") {
  const NewId given{at, true};
  const std::string_view fields[] = {"f", value};
  auto r = s.add(&given, fields, std::nullopt, kNow);
  REQUIRE(r.ok());
  return *r;
}

std::vector<StreamId> ids_of(const Entries& e) {
  std::vector<StreamId> out;
  for (const auto& item : e.items()) out.push_back(item.id);
  return out;
}

std::vector<StreamId> range_ids(const Stream& s, StreamId from = StreamId::min(), StreamId to = StreamId::max(),
                                bool reverse = false, std::size_t count = 0) {
  auto r = s.range(from, to, reverse, count);
  REQUIRE(r.ok());
  return ids_of(*r);
}

// Every pending entry is in its owner's set (or, unowned, in the NACKed zone), every owned ID
// is pending with that owner, and the claim order holds every pending entry once.
void check_pel(const ConsumerGroup& g) {
  std::size_t owned = 0;
  std::size_t nacked = 0;
  for (const auto& [pid, p] : g.pel()) {
    if (p.owner == nullptr) {
      CHECK(p.nack_order >= 0);
      ++nacked;
    }
  }
  CHECK(nacked == g.nacked());
  CHECK(g.claim_order().size() == g.pel().size());
  for (const auto& [name, c] : g.consumers()) {
    owned += c.pending.size();
    for (const StreamId pid : c.pending) {
      auto it = g.pel().find(pid);
      REQUIRE(it != g.pel().end());
      CHECK(it->second.owner == &c);
    }
  }
  CHECK(owned + nacked == g.pel().size());
}

// A ChangeSink that writes down what it is told.
struct RecordingSink : runnel::ChangeSink {
  std::vector<std::string> events;
  runnel::Result<std::unique_ptr<runnel::storage::EntryStore>> create_store(std::string_view) override {
    return std::unique_ptr<runnel::storage::EntryStore>{};
  }
  void stream_created(std::string_view key, Stream&) override { events.push_back("created " + std::string(key)); }
  void stream_removed(std::string_view key, Stream&) override { events.push_back("removed " + std::string(key)); }
  void stream_changed(Stream&) override { events.push_back("stream"); }
  void group_changed(Stream&, std::string_view g) override { events.push_back("group " + std::string(g)); }
  void group_destroyed(Stream&, std::string_view g) override { events.push_back("destroyed " + std::string(g)); }
  void consumer_changed(Stream&, std::string_view g, std::string_view c) override {
    events.push_back("consumer " + std::string(g) + " " + std::string(c));
  }
  void consumer_seen(Stream&, std::string_view g, std::string_view c) override {
    events.push_back("seen " + std::string(g) + " " + std::string(c));
  }
  void idmp_configured(Stream&) override { events.push_back("idmp config"); }
  void idmp_recorded(Stream&, std::string_view pid, std::string_view iid, StreamId) override {
    events.push_back("idmp " + std::string(pid) + " " + std::string(iid));
  }
  void idmp_counted(Stream&) override { events.push_back("idmp duplicate"); }
  void pending_changed(Stream&, std::string_view g, StreamId p) override {
    char buf[48];
    events.push_back("pending " + std::string(g) + " " + std::string(buf, p.format(buf)));
  }
  void string_written(std::string_view key, std::string_view, std::int64_t) override {
    events.push_back("string " + std::string(key));
  }
  void ttl_written(std::string_view key, std::int64_t) override { events.push_back("ttl " + std::string(key)); }
  void key_forgotten(std::string_view key) override { events.push_back("forget " + std::string(key)); }
};

}  // namespace

TEST_CASE("XADD's IDs: the clock never goes back, <ms>-* takes the next sequence, smaller IDs are refused",
          "[streams][ops]") {
  // '*' takes the clock when it is ahead of the top, else the top's ms with the next sequence.
  CHECK(*Stream::next_id(id(5, 3), nullptr, 10) == id(10, 0));
  CHECK(*Stream::next_id(id(50, 3), nullptr, 10) == id(50, 4));
  CHECK(*Stream::next_id(id(50, UINT64_MAX), nullptr, 10) == id(51, 0));
  // <ms>-*: the next sequence in that ms, or 0 in a new ms.
  const NewId star5{id(5), false};
  CHECK(*Stream::next_id(id(5, 3), &star5, 0) == id(5, 4));
  const NewId star7{id(7), false};
  CHECK(*Stream::next_id(id(5, 3), &star7, 0) == id(7, 0));
  // Equal or smaller: refused with Redis's text.
  const NewId same{id(5, 3), true};
  auto refused = Stream::next_id(id(5, 3), &same, 0);
  REQUIRE(!refused.ok());
  CHECK(refused.error().text == "ERR The ID specified in XADD is equal or smaller than the target stream top item");
  const NewId star_back{id(4), false};
  CHECK(!Stream::next_id(id(5, 3), &star_back, 0).ok());
  // The sequence of ms is exhausted, and so is the whole ID space.
  const NewId star_full{id(5), false};
  auto overflow = Stream::next_id(id(5, UINT64_MAX), &star_full, 0);
  REQUIRE(!overflow.ok());
  // Redis 7.2's text (7.0's depended on a stale errno).
  CHECK(overflow.error().text == "ERR The ID specified in XADD is equal or smaller than the target stream top item");
  auto exhausted = Stream::next_id(StreamId::max(), nullptr, 0);
  REQUIRE(!exhausted.ok());
  CHECK(exhausted.error().text.find("exhausted the last possible ID") != std::string::npos);

  Stream s;
  add(s, id(1, 1));
  const NewId small{id(1, 0), true};
  const std::string_view fields[] = {"f", "v"};
  CHECK(!s.add(&small, fields, std::nullopt, kNow).ok());
  CHECK(s.length() == 1);  // a refused XADD adds nothing
  CHECK(s.entries_added() == 1);
  CHECK(s.last_id() == id(1, 1));
  CHECK(s.first_id() == id(1, 1));
}

TEST_CASE("Trimming by MAXLEN and MINID removes the oldest entries and moves the first ID", "[streams][ops]") {
  Stream s;
  for (std::uint64_t i = 1; i <= 10; ++i) add(s, id(i));
  TrimSpec maxlen;
  maxlen.max_len = 7;
  CHECK(*s.trim(maxlen) == 3);
  CHECK(s.length() == 7);
  CHECK(s.first_id() == id(4));
  TrimSpec minid;
  minid.strategy = TrimSpec::Strategy::kMinId;
  minid.min_id = id(6);
  CHECK(*s.trim(minid) == 2);
  CHECK(range_ids(s).front() == id(6));
  CHECK(s.entries_added() == 10);  // trimming never changes what was added
  CHECK(s.last_id() == id(10));
  CHECK(*s.trim(minid) == 0);
  // XADD with a trim: the new entry is in, the oldest out.
  const NewId next{id(11), true};
  const std::string_view fields[] = {"f", "v"};
  TrimSpec keep3;
  keep3.max_len = 3;
  REQUIRE(s.add(&next, fields, keep3, kNow).ok());
  CHECK(range_ids(s) == std::vector<StreamId>{id(9), id(10), id(11)});
}

TEST_CASE("Ranges go either way, with a count, and exclusive bounds step past their ID", "[streams][ops]") {
  Stream s;
  for (std::uint64_t i = 1; i <= 5; ++i) add(s, id(i));
  CHECK(range_ids(s, id(2), id(4)) == std::vector<StreamId>{id(2), id(3), id(4)});
  CHECK(range_ids(s, id(2), id(4), true) == std::vector<StreamId>{id(4), id(3), id(2)});
  CHECK(range_ids(s, StreamId::min(), StreamId::max(), false, 2) == std::vector<StreamId>{id(1), id(2)});
  CHECK(range_ids(s, StreamId::min(), StreamId::max(), true, 2) == std::vector<StreamId>{id(5), id(4)});
  CHECK(range_ids(s, id(4), id(2)).empty());
  // The argument forms: "(" excludes, a bare ms is the whole ms.
  CHECK(*runnel::parse_range_start("(2-0") == id(2, 1));
  CHECK(*runnel::parse_range_end("(2-0") == id(1, UINT64_MAX));
  CHECK(*runnel::parse_range_end("3") == id(3, UINT64_MAX));
  CHECK(*runnel::parse_range_start("-") == StreamId::min());
  CHECK(runnel::parse_range_start("(18446744073709551615-18446744073709551615").error().text ==
        "ERR invalid start ID for the interval");
  CHECK(runnel::parse_range_end("(0-0").error().text == "ERR invalid end ID for the interval");
  CHECK(runnel::parse_range_start("x").error().text == runnel::errors::kInvalidStreamId);
  CHECK(s.read_after(id(3), 0).ok());
  CHECK(ids_of(*s.read_after(id(3), 0)) == std::vector<StreamId>{id(4), id(5)});
  CHECK(s.read_after(StreamId::max(), 0)->empty());
}

TEST_CASE("XDEL deletes listed entries, counts them, and records the largest deleted ID", "[streams][ops]") {
  Stream s;
  for (std::uint64_t i = 1; i <= 5; ++i) add(s, id(i));
  const std::vector<StreamId> del{id(1), id(3), id(9)};
  CHECK(s.erase(del) == 2);
  CHECK(s.max_deleted_id() == id(3));
  CHECK(s.first_id() == id(2));
  CHECK(range_ids(s) == std::vector<StreamId>{id(2), id(4), id(5)});
  CHECK(s.erase(del) == 0);
  // XSETID's rules.
  CHECK(s.set_id(id(4), -1, std::nullopt).error().text ==
        "ERR The ID specified in XSETID is smaller than the target stream top item");
  CHECK(s.set_id(id(9), 2, std::nullopt).error().text ==
        "ERR The entries_added specified in XSETID is smaller than the target stream length");
  REQUIRE(s.set_id(id(9), 50, id(8)).ok());
  CHECK(s.last_id() == id(9));
  CHECK(s.entries_added() == 50);
  CHECK(s.max_deleted_id() == id(8));
}

TEST_CASE("Delivering new entries moves the group, counts entries read, and fills the consumer's PEL",
          "[streams][ops]") {
  Stream s;
  for (std::uint64_t i = 1; i <= 5; ++i) add(s, id(i));
  ConsumerGroup& g = **s.create_group("g", StreamId::min(), 0);
  CHECK(s.create_group("g", StreamId::min(), 0).error().code == Errc::kGroupExists);
  CHECK(*s.lag(g) == 5);
  auto& alice = g.consumer("alice", kNow);
  auto first = s.deliver_new(g, alice, 2, false, kNow);
  REQUIRE(first.ok());
  CHECK(ids_of(*first) == std::vector<StreamId>{id(1), id(2)});
  CHECK(g.last_delivered() == id(2));
  CHECK(g.entries_read() == 2);
  CHECK(*s.lag(g) == 3);
  CHECK(g.pel().size() == 2);
  CHECK(alice.pending == std::set<StreamId>{id(1), id(2)});
  // NOACK moves the group without a pending entry.
  auto& bob = g.consumer("bob", kNow);
  CHECK(ids_of(*s.deliver_new(g, bob, 1, true, kNow)) == std::vector<StreamId>{id(3)});
  CHECK(bob.pending.empty());
  CHECK(g.last_delivered() == id(3));
  // The rest, then nothing.
  CHECK(ids_of(*s.deliver_new(g, bob, 0, false, kNow)) == std::vector<StreamId>{id(4), id(5)});
  CHECK(!s.has_new_for(g));
  CHECK(s.deliver_new(g, bob, 0, false, kNow)->empty());
  CHECK(*s.lag(g) == 0);
  check_pel(g);
  // Acknowledged once; a second XACK and an unknown ID count nothing.
  const std::vector<StreamId> acks{id(1), id(1), id(3), id(9)};
  CHECK(s.ack(g, acks) == 1);
  CHECK(alice.pending == std::set<StreamId>{id(2)});
  check_pel(g);
}

TEST_CASE("A consumer's history is delivered again with its count, deleted entries marked", "[streams][ops]") {
  Stream s;
  for (std::uint64_t i = 1; i <= 4; ++i) add(s, id(i));
  ConsumerGroup& g = **s.create_group("g", StreamId::min(), 0);
  auto& c = g.consumer("c", kNow);
  REQUIRE(s.deliver_new(g, c, 0, false, kNow).ok());
  const std::vector<StreamId> del{id(2)};
  REQUIRE(s.erase(del) == 1);
  auto history = s.deliver_history(g, c, StreamId::min(), 0, kNow + 50);
  REQUIRE(history.ok());
  REQUIRE(history->size() == 4);
  CHECK(history->items()[1].deleted);
  CHECK(history->items()[1].id == id(2));
  CHECK(!history->items()[0].deleted);
  CHECK(g.pel().at(id(1)).delivery_count == 2);
  CHECK(g.pel().at(id(1)).delivery_time_ms == kNow + 50);
  CHECK(g.pel().at(id(2)).delivery_count == 1);  // a deleted entry is not delivered again
  // After an ID, with a count.
  CHECK(ids_of(*s.deliver_history(g, c, id(2), 1, kNow)) == std::vector<StreamId>{id(3)});
}

TEST_CASE("XCLAIM takes idle entries, FORCE adds missing ones, and entries gone from the stream leave the PEL",
          "[streams][ops]") {
  Stream s;
  for (std::uint64_t i = 1; i <= 4; ++i) add(s, id(i));
  ConsumerGroup& g = **s.create_group("g", StreamId::min(), 0);
  auto& a = g.consumer("a", kNow);
  REQUIRE(s.deliver_new(g, a, 3, false, kNow).ok());  // 1, 2, 3 pending with a
  // Not idle long enough: nothing moves.
  ClaimSpec busy;
  busy.consumer = "b";
  busy.min_idle_ms = 1000;
  busy.ids = {id(1)};
  CHECK(s.claim(g, busy, kNow + 10)->entries.empty());
  REQUIRE(g.find_consumer("b") != nullptr);  // Redis 7.2: made by the attempt
  CHECK(g.find_consumer("b")->pending.empty());
  // Idle enough: moved to b, one more delivery.
  ClaimSpec idle = busy;
  idle.ids = {id(1), id(2)};
  auto claimed = s.claim(g, idle, kNow + 2000);
  REQUIRE(claimed.ok());
  CHECK(ids_of(claimed->entries) == std::vector<StreamId>{id(1), id(2)});
  CHECK(g.pel().at(id(1)).owner == g.find_consumer("b"));
  CHECK(g.pel().at(id(1)).delivery_count == 2);
  // JUSTID does not count a delivery; RETRYCOUNT sets it.
  ClaimSpec justid;
  justid.consumer = "c";
  justid.ids = {id(3)};
  justid.justid = true;
  CHECK(s.claim(g, justid, kNow)->ids == std::vector<StreamId>{id(3)});
  CHECK(g.pel().at(id(3)).delivery_count == 1);
  ClaimSpec retry = justid;
  retry.retry_count = 7;
  REQUIRE(s.claim(g, retry, kNow).ok());
  CHECK(g.pel().at(id(3)).delivery_count == 7);
  // FORCE: an entry never delivered becomes pending; LASTID moves the group up.
  ClaimSpec force;
  force.consumer = "d";
  force.ids = {id(4)};
  force.force = true;
  force.last_id = id(4);
  CHECK(ids_of(s.claim(g, force, kNow)->entries) == std::vector<StreamId>{id(4)});
  CHECK(g.pel().at(id(4)).owner == g.find_consumer("d"));
  CHECK(g.last_delivered() == id(4));
  // An entry deleted from the stream leaves the PEL when claimed.
  const std::vector<StreamId> del{id(2)};
  REQUIRE(s.erase(del) == 1);
  ClaimSpec gone;
  gone.consumer = "a";
  gone.ids = {id(2)};
  CHECK(s.claim(g, gone, kNow)->entries.empty());
  CHECK(g.pel().count(id(2)) == 0);
  check_pel(g);
}

TEST_CASE("XAUTOCLAIM walks the PEL from a cursor, claims idle entries, and reports deleted ones",
          "[streams][ops]") {
  Stream s;
  for (std::uint64_t i = 1; i <= 6; ++i) add(s, id(i));
  ConsumerGroup& g = **s.create_group("g", StreamId::min(), 0);
  auto& a = g.consumer("a", kNow);
  REQUIRE(s.deliver_new(g, a, 0, false, kNow).ok());
  const std::vector<StreamId> del{id(2)};
  REQUIRE(s.erase(del) == 1);
  AutoClaimSpec spec;
  spec.consumer = "b";
  spec.min_idle_ms = 100;
  spec.count = 3;
  auto first = s.autoclaim(g, spec, kNow + 1000);
  REQUIRE(first.ok());
  // 1 claimed, 2 deleted (counted against COUNT, as Redis 7.0.15 does), 3 claimed.
  CHECK(ids_of(first->entries) == std::vector<StreamId>{id(1), id(3)});
  CHECK(first->deleted == std::vector<StreamId>{id(2)});
  CHECK(first->next == id(4));
  spec.start = first->next;
  spec.count = 10;
  spec.justid = true;
  auto rest = s.autoclaim(g, spec, kNow + 1000);
  CHECK(rest->ids == std::vector<StreamId>{id(4), id(5), id(6)});
  CHECK(rest->next == StreamId::min());  // the end of the PEL
  CHECK(g.find_consumer("b")->pending.size() == 5);
  // Nothing idle long enough: nothing claimed, the cursor still moves to the end.
  spec.start = StreamId::min();
  spec.min_idle_ms = 1'000'000;
  auto none = s.autoclaim(g, spec, kNow + 1000);
  CHECK(none->ids.empty());
  check_pel(g);
}

TEST_CASE("XPENDING's forms: the summary, a range, one consumer, and a minimum idle time", "[streams][ops]") {
  Stream s;
  for (std::uint64_t i = 1; i <= 4; ++i) add(s, id(i));
  ConsumerGroup& g = **s.create_group("g", StreamId::min(), 0);
  REQUIRE(s.deliver_new(g, g.consumer("b", kNow), 2, false, kNow).ok());
  REQUIRE(s.deliver_new(g, g.consumer("a", kNow), 2, false, kNow + 500).ok());
  g.consumer("idle", kNow);  // a consumer with nothing pending is not in the summary
  const auto summary = g.pending_summary();
  CHECK(summary.count == 4);
  CHECK(summary.smallest == id(1));
  CHECK(summary.largest == id(4));
  CHECK(summary.consumers == std::vector<std::pair<std::string, std::uint64_t>>{{"a", 2}, {"b", 2}});
  runnel::PendingQuery q;
  q.count = 3;
  auto items = g.pending(q, kNow + 1000);
  REQUIRE(items.size() == 3);
  CHECK(items[0].owner == "b");
  CHECK(items[0].idle_ms == 1000);
  q.consumer = "a";
  CHECK(g.pending(q, kNow + 1000).size() == 2);
  q.consumer = "nobody";
  CHECK(g.pending(q, kNow + 1000).empty());
  q.consumer.reset();
  q.min_idle_ms = 800;
  CHECK(g.pending(q, kNow + 1000).size() == 2);  // only b's
  CHECK(runnel::ConsumerGroup().pending_summary().count == 0);
}

TEST_CASE("Lag follows Redis 7.0: exact without deletions, unknown after one in the unread part", "[streams][ops]") {
  Stream s;
  for (std::uint64_t i = 1; i <= 5; ++i) add(s, id(i));
  ConsumerGroup& g = **s.create_group("g", StreamId::min(), 0);
  auto& c = g.consumer("c", kNow);
  REQUIRE(s.deliver_new(g, c, 2, false, kNow).ok());
  CHECK(*s.lag(g) == 3);
  // A deletion after the group's position makes the count unknowable.
  const std::vector<StreamId> del{id(4)};
  REQUIRE(s.erase(del) == 1);
  CHECK(!s.lag(g).has_value());
  // Once the group has read past it, the lag is known again.
  REQUIRE(s.deliver_new(g, c, 0, false, kNow).ok());
  CHECK(g.last_delivered() == id(5));
  CHECK(*s.lag(g) == 0);
  // A group created with an unknown read counter at the top: estimated from the stream.
  ConsumerGroup& top = **s.create_group("top", id(5), runnel::kEntriesReadUnknown);
  CHECK(*s.lag(top) == 0);
  // An empty stream that never had entries: 0.
  Stream empty;
  ConsumerGroup& e = **empty.create_group("e", StreamId::min(), runnel::kEntriesReadUnknown);
  CHECK(*empty.lag(e) == 0);
}

TEST_CASE("The model reports each change to its sink, and nothing once unbound", "[streams][ops]") {
  RecordingSink sink;
  Stream s;
  s.bind(&sink);
  add(s, id(1));
  CHECK(sink.events == std::vector<std::string>{"stream"});
  sink.events.clear();
  ConsumerGroup& g = **s.create_group("g", StreamId::min(), 0);
  CHECK(sink.events == std::vector<std::string>{"group g"});
  sink.events.clear();
  auto& c = g.consumer("c", kNow);
  REQUIRE(s.deliver_new(g, c, 0, false, kNow).ok());
  // Made, then given an entry (the group moves, the entry is pending, the consumer active).
  CHECK(sink.events == std::vector<std::string>{"consumer g c", "group g", "pending g 1-0", "consumer g c"});
  sink.events.clear();
  // Seen again: only a seen time, which nothing waits for.
  (void)g.consumer("c", kNow + 1);
  CHECK(sink.events == std::vector<std::string>{"seen g c"});
  sink.events.clear();
  const std::vector<StreamId> acks{id(1)};
  CHECK(s.ack(g, acks) == 1);
  CHECK(sink.events == std::vector<std::string>{"pending g 1-0"});
  sink.events.clear();
  CHECK(s.destroy_group("g"));
  CHECK(sink.events == std::vector<std::string>{"destroyed g"});
  // Reads and refused ops report nothing.
  sink.events.clear();
  (void)s.range(StreamId::min(), StreamId::max(), false, 0);
  CHECK(!s.set_id(StreamId::min(), -1, std::nullopt).ok());
  CHECK(s.erase(std::vector<StreamId>{id(7)}) == 0);
  CHECK(sink.events.empty());
  s.bind(nullptr);
  add(s, id(2));
  CHECK(sink.events.empty());
}

namespace {

// The reference: a stream as a sorted map, a group as a map of pending IDs to owners.
struct Reference {
  std::map<StreamId, std::string> entries;
  StreamId last;
  StreamId last_delivered;
  std::map<StreamId, std::string> pel;  // id -> owner
};

}  // namespace

TEST_CASE("Random ops on the model agree with a small reference model", "[streams][ops][random]") {
  std::mt19937_64 rng(20261207);
  for (int run = 0; run < 20; ++run) {
    Stream s;
    ConsumerGroup& g = **s.create_group("g", StreamId::min(), 0);
    Reference ref;
    const char* names[] = {"a", "b", "c"};
    for (int step = 0; step < 400; ++step) {
      const int op = static_cast<int>(rng() % 9);
      const std::string consumer = names[rng() % 3];
      if (op <= 2) {  // XADD, sometimes with a smaller (refused) ID
        const StreamId want = rng() % 8 == 0 ? id(ref.last.ms / 2) : id(ref.last.ms + 1 + rng() % 3, rng() % 2);
        const std::string value = std::to_string(rng() % 1000);
        const NewId given{want, true};
        const std::string_view fields[] = {"f", value};
        const auto r = s.add(&given, fields, std::nullopt, kNow);
        const bool accepted = want > ref.last;
        REQUIRE(r.ok() == accepted);
        if (accepted) {
          ref.entries[want] = value;
          ref.last = want;
        }
      } else if (op == 3) {  // XDEL of a random ID near the top
        const StreamId victim = id(rng() % (ref.last.ms + 2), rng() % 2);
        const std::vector<StreamId> one{victim};
        CHECK(s.erase(one) == ref.entries.erase(victim));
      } else if (op == 4) {  // XTRIM MAXLEN = n
        TrimSpec spec;
        spec.max_len = rng() % 20;
        std::uint64_t removed = 0;
        while (ref.entries.size() > spec.max_len) {
          ref.entries.erase(ref.entries.begin());
          ++removed;
        }
        CHECK(*s.trim(spec) == removed);
      } else if (op == 5) {  // XREADGROUP >
        const std::size_t count = rng() % 4;
        auto got = s.deliver_new(g, g.consumer(consumer, kNow), count, false, kNow);
        REQUIRE(got.ok());
        std::vector<StreamId> want;
        for (auto it = ref.entries.upper_bound(ref.last_delivered);
             it != ref.entries.end() && (count == 0 || want.size() < count); ++it) {
          want.push_back(it->first);
          ref.pel[it->first] = consumer;
        }
        if (!want.empty()) ref.last_delivered = want.back();
        CHECK(ids_of(*got) == want);
        for (std::size_t i = 0; i < got->size(); ++i) {
          CHECK(std::string(got->payload(got->items()[i])).find(ref.entries[want[i]]) != std::string::npos);
        }
      } else if (op == 6 && !ref.pel.empty()) {  // XACK of a pending ID and an unknown one
        auto it = ref.pel.begin();
        std::advance(it, static_cast<long>(rng() % ref.pel.size()));
        const std::vector<StreamId> acks{it->first, id(ref.last.ms + 10)};
        ref.pel.erase(it);
        CHECK(s.ack(g, acks) == 1);
      } else if (op == 7 && !ref.pel.empty()) {  // XCLAIM one, idle 0
        auto it = ref.pel.begin();
        std::advance(it, static_cast<long>(rng() % ref.pel.size()));
        ClaimSpec spec;
        spec.consumer = consumer;
        spec.ids = {it->first};
        auto claimed = s.claim(g, spec, kNow);
        REQUIRE(claimed.ok());
        if (ref.entries.count(it->first)) {
          CHECK(claimed->entries.size() == 1);
          it->second = consumer;
        } else {
          CHECK(claimed->entries.empty());
          ref.pel.erase(it);
        }
      } else if (op == 8) {  // XAUTOCLAIM from the start
        AutoClaimSpec spec;
        spec.consumer = consumer;
        spec.count = 1 + static_cast<std::int64_t>(rng() % 5);
        auto claimed = s.autoclaim(g, spec, kNow);
        REQUIRE(claimed.ok());
        std::int64_t budget = spec.count;
        std::vector<StreamId> want_claimed, want_deleted;
        auto it = ref.pel.begin();
        while (budget > 0 && it != ref.pel.end()) {
          if (ref.entries.count(it->first)) {
            want_claimed.push_back(it->first);
            it->second = consumer;
            ++it;
          } else {
            want_deleted.push_back(it->first);
            it = ref.pel.erase(it);
          }
          --budget;
        }
        CHECK(ids_of(claimed->entries) == want_claimed);
        CHECK(claimed->deleted == want_deleted);
        CHECK(claimed->next == (it == ref.pel.end() ? StreamId::min() : it->first));
      }
      // The whole state, after every step.
      REQUIRE(s.length() == ref.entries.size());
      CHECK(s.last_id() == ref.last);
      CHECK(g.last_delivered() == ref.last_delivered);
      REQUIRE(g.pel().size() == ref.pel.size());
      for (const auto& [pid, owner] : ref.pel) {
        auto it = g.pel().find(pid);
        REQUIRE(it != g.pel().end());
        CHECK(it->second.owner->name == owner);
      }
      check_pel(g);
    }
    std::vector<StreamId> want;
    for (const auto& [eid, v] : ref.entries) want.push_back(eid);
    CHECK(range_ids(s) == want);
  }
}

TEST_CASE("A consumer's seen time is its last attempt, its active time its last delivery or claim (Redis 7.2)",
          "[streams][ops]") {
  Stream s;
  add(s, id(1));
  add(s, id(2));
  ConsumerGroup& g = **s.create_group("g", StreamId::min(), 0);
  Consumer& a = g.consumer("a", kNow);
  CHECK(a.seen_time_ms == kNow);
  CHECK(a.active_time_ms == -1);
  // NOACK delivers but does not make the consumer active.
  REQUIRE(s.deliver_new(g, a, 1, true, kNow + 1).ok());
  CHECK(a.active_time_ms == -1);
  // A delivery does.
  REQUIRE(s.deliver_new(g, a, 1, false, kNow + 2).ok());
  CHECK(a.active_time_ms == kNow + 2);
  // Nothing new: an attempt (seen), not a success.
  Consumer& again = g.consumer("a", kNow + 3);
  REQUIRE(s.deliver_new(g, again, 1, false, kNow + 3)->empty());
  CHECK(a.seen_time_ms == kNow + 3);
  CHECK(a.active_time_ms == kNow + 2);
  // XCLAIM that claims nothing still makes its consumer; one that claims makes it active.
  ClaimSpec nothing;
  nothing.consumer = "b";
  nothing.min_idle_ms = 3600000;
  nothing.ids = {id(2)};
  REQUIRE(s.claim(g, nothing, kNow + 4)->entries.empty());
  const Consumer* b = g.find_consumer("b");
  REQUIRE(b != nullptr);
  CHECK(b->seen_time_ms == kNow + 4);
  CHECK(b->active_time_ms == -1);
  ClaimSpec some = nothing;
  some.min_idle_ms = 0;
  REQUIRE(s.claim(g, some, kNow + 5)->entries.size() == 1);
  CHECK(b->active_time_ms == kNow + 5);
  // XAUTOCLAIM likewise.
  AutoClaimSpec none;
  none.consumer = "c";
  none.min_idle_ms = 3600000;
  REQUIRE(s.autoclaim(g, none, kNow + 6)->entries.empty());
  REQUIRE(g.find_consumer("c") != nullptr);
  CHECK(g.find_consumer("c")->active_time_ms == -1);
  AutoClaimSpec all = none;
  all.min_idle_ms = 0;
  REQUIRE(s.autoclaim(g, all, kNow + 7)->entries.size() == 1);
  CHECK(g.find_consumer("c")->active_time_ms == kNow + 7);
}

namespace {

// Redis 8.2's reference rules, as plainly as they can be said, for the randomized test below.
struct RefModel {
  std::set<StreamId> entries;
  struct Group {
    StreamId last;
    std::set<StreamId> pel;
  };
  std::map<std::string, Group> groups;

  [[nodiscard]] bool referenced(StreamId id) const {
    for (const auto& [name, g] : groups) {
      if (id > g.last || g.pel.count(id) != 0) return true;
    }
    return false;
  }
  void drop_refs(StreamId id) {
    for (auto& [name, g] : groups) g.pel.erase(id);
  }
  DeleteCode erase(StreamId id, RefPolicy policy) {
    if (policy == RefPolicy::kAcked && referenced(id)) return DeleteCode::kReferenced;
    if (policy == RefPolicy::kDelete) drop_refs(id);
    return entries.erase(id) != 0 ? DeleteCode::kDeleted : DeleteCode::kNotFound;
  }
  DeleteCode ack_and_erase(const std::string& group, StreamId id, RefPolicy policy) {
    if (groups.at(group).pel.erase(id) == 0) return DeleteCode::kNotFound;
    if (policy == RefPolicy::kAcked && referenced(id)) return DeleteCode::kReferenced;
    if (policy == RefPolicy::kDelete) drop_refs(id);
    entries.erase(id);
    return DeleteCode::kDeleted;
  }
  // Oldest first: each entry goes unless ACKED finds it referenced, until the request is met.
  std::uint64_t trim(bool maxlen, std::uint64_t n, StreamId min_id, RefPolicy policy) {
    std::uint64_t removed = 0;
    for (auto it = entries.begin(); it != entries.end();) {
      if (maxlen ? entries.size() <= n : *it >= min_id) break;
      if (policy == RefPolicy::kAcked && referenced(*it)) {
        ++it;
        continue;
      }
      it = entries.erase(it);
      ++removed;
    }
    if (policy == RefPolicy::kDelete && removed > 0) {
      // Runnel's DELREF drops every pending ID below what is left (docs/compatibility.md).
      const StreamId bound = entries.empty() ? StreamId::max() : *entries.begin();
      for (auto& [name, g] : groups) {
        for (auto it = g.pel.begin(); it != g.pel.end();) it = (*it < bound || entries.empty()) ? g.pel.erase(it) : std::next(it);
      }
    }
    return removed;
  }
};

}  // namespace

TEST_CASE("XDELEX, XACKDEL and KEEPREF/DELREF/ACKED trims agree with a reference model of Redis 8.2's rules",
          "[streams][ops][random]") {
  std::mt19937_64 rng(20261208);
  const RefPolicy policies[] = {RefPolicy::kKeep, RefPolicy::kDelete, RefPolicy::kAcked};
  const char* group_names[] = {"g1", "g2", "g3"};
  std::uint64_t codes_seen[3] = {0, 0, 0};  // -1, 1, 2: the test reaches every outcome
  for (int run = 0; run < 30; ++run) {
    Stream s;
    RefModel ref;
    std::uint64_t top = 0;
    const int groups = 1 + static_cast<int>(rng() % 3);
    for (int g = 0; g < groups; ++g) {
      REQUIRE(s.create_group(group_names[g], StreamId::min(), 0).ok());
      ref.groups[group_names[g]] = RefModel::Group{};
    }
    for (int step = 0; step < 300; ++step) {
      const std::string group = group_names[rng() % groups];
      ConsumerGroup& cg = *s.group(group);
      const RefPolicy policy = policies[rng() % 3];
      auto random_id = [&] { return id(1 + rng() % (top + 2)); };
      switch (rng() % 7) {
        case 0:
        case 1: {  // XADD
          add(s, id(++top));
          ref.entries.insert(id(top));
          break;
        }
        case 2: {  // XREADGROUP '>'
          const std::size_t count = 1 + rng() % 4;
          auto got = s.deliver_new(cg, cg.consumer("c", kNow), count, false, kNow);
          REQUIRE(got.ok());
          for (const StreamId d : ids_of(*got)) {
            ref.groups[group].pel.insert(d);
            ref.groups[group].last = d;
          }
          break;
        }
        case 3: {  // XACK
          const std::vector<StreamId> ids{random_id()};
          CHECK(s.ack(cg, ids) == ref.groups[group].pel.erase(ids[0]));
          break;
        }
        case 4: {  // XDELEX
          const std::vector<StreamId> ids{random_id(), random_id()};
          const auto codes = s.erase(ids, policy);
          for (std::size_t i = 0; i < ids.size(); ++i) {
            const DeleteCode want = ref.erase(ids[i], policy);
            CHECK(codes[i] == want);
            ++codes_seen[want == DeleteCode::kNotFound ? 0 : want == DeleteCode::kDeleted ? 1 : 2];
          }
          break;
        }
        case 5: {  // XACKDEL
          const std::vector<StreamId> ids{random_id()};
          const auto codes = s.ack_and_erase(cg, ids, policy);
          CHECK(codes[0] == ref.ack_and_erase(group, ids[0], policy));
          break;
        }
        default: {  // XTRIM MAXLEN or MINID, exact (DELREF and ACKED take '~' as exact too)
          const bool maxlen = rng() % 2 == 0;
          TrimSpec spec;
          spec.strategy = maxlen ? TrimSpec::Strategy::kMaxLen : TrimSpec::Strategy::kMinId;
          spec.max_len = rng() % 8;
          spec.min_id = random_id();
          spec.approx = policy != RefPolicy::kKeep && rng() % 2 == 0;
          auto removed = s.trim(spec, policy);
          REQUIRE(removed.ok());
          CHECK(*removed == ref.trim(maxlen, spec.max_len, spec.min_id, policy));
          break;
        }
      }
      const std::vector<StreamId> want(ref.entries.begin(), ref.entries.end());
      REQUIRE(range_ids(s) == want);
      for (const auto& [name, g] : ref.groups) {
        std::vector<StreamId> pel;
        for (const auto& p : s.group(name)->pel()) pel.push_back(p.first);
        REQUIRE(pel == std::vector<StreamId>(g.pel.begin(), g.pel.end()));
        check_pel(*s.group(name));
      }
    }
  }
  CHECK(codes_seen[0] > 50);
  CHECK(codes_seen[1] > 50);
  CHECK(codes_seen[2] > 50);
}

TEST_CASE("XNACK unowns entries into a FIFO zone that CLAIM serves first, counts set by mode (Redis 8.8)",
          "[streams][ops]") {
  Stream s;
  for (std::uint64_t i = 1; i <= 5; ++i) add(s, id(i));
  ConsumerGroup& g = **s.create_group("g", StreamId::min(), 0);
  Consumer& a = g.consumer("a", kNow);
  REQUIRE(s.deliver_new(g, a, 4, false, kNow).ok());  // 1..4 pending with a, once each
  using Mode = Stream::NackMode;
  const std::vector<StreamId> three{id(3)}, one_and_nine{id(1), id(9)}, two{id(2)}, five{id(5)};
  CHECK(*s.nack(g, three, Mode::kFatal, std::nullopt, false) == 1);
  CHECK(*s.nack(g, one_and_nine, Mode::kSilent, std::nullopt, false) == 1);  // 9 is not pending
  CHECK(*s.nack(g, two, Mode::kFail, 5, false) == 1);                       // RETRYCOUNT wins
  CHECK(*s.nack(g, five, Mode::kFail, std::nullopt, false) == 0);
  CHECK(*s.nack(g, five, Mode::kFail, std::nullopt, true) == 1);            // FORCE: from 0
  CHECK(g.nacked() == 4);
  CHECK(g.pel().at(id(3)).delivery_count == static_cast<std::uint64_t>(INT64_MAX));
  CHECK(g.pel().at(id(1)).delivery_count == 0);
  CHECK(g.pel().at(id(2)).delivery_count == 5);
  CHECK(g.pel().at(id(5)).delivery_count == 0);
  CHECK(a.pending == std::set<StreamId>{id(4)});
  check_pel(g);
  // CLAIM: the zone in NACK order (3, 1, 2, 5), then 4 once idle enough.
  Consumer& b = g.consumer("b", kNow);
  auto got = s.claim_idle(g, b, 1000, 0, kNow + 10);
  REQUIRE(got.ok());
  CHECK(ids_of(*got) == std::vector<StreamId>{id(3), id(1), id(2), id(5)});
  CHECK(got->items()[0].deliveries == static_cast<std::uint64_t>(INT64_MAX));
  CHECK(g.pel().at(id(3)).delivery_count == static_cast<std::uint64_t>(INT64_MAX));  // it stays there
  CHECK(g.nacked() == 0);
  got = s.claim_idle(g, b, 1000, 0, kNow + 1000);
  CHECK(ids_of(*got) == std::vector<StreamId>{id(4)});
  check_pel(g);
}

TEST_CASE("Idempotent producers: a window by time and by count per producer, and IDMPAUTO's order-free ID",
          "[streams][ops]") {
  runnel::Idempotency idmp;
  const std::int64_t now = kNow;
  const StreamId at(static_cast<std::uint64_t>(now), 0);
  idmp.record("p", "a", at);
  idmp.record("q", "a", id(static_cast<std::uint64_t>(now), 1));
  CHECK(idmp.find("p", "a", now) == at);
  CHECK(idmp.find("q", "a", now) == id(static_cast<std::uint64_t>(now), 1));  // per producer
  CHECK(!idmp.find("p", "b", now));
  // By time: the entry ID's ms against the window (100 s by default).
  CHECK(idmp.find("p", "a", now + 99'999) == at);
  CHECK(!idmp.find("p", "a", now + 100'000));
  // By count: the oldest goes first.
  REQUIRE(idmp.configure(std::nullopt, 2));
  CHECK(idmp.producers() == 0);  // a new window forgets the IDs
  for (std::uint64_t i = 1; i <= 3; ++i) idmp.record("p", std::to_string(i), id(static_cast<std::uint64_t>(now), i));
  CHECK(!idmp.find("p", "1", now));
  CHECK(idmp.find("p", "3", now) == id(static_cast<std::uint64_t>(now), 3));
  CHECK(!idmp.configure(100, 2));  // the same values change nothing
  CHECK(idmp.ids() == 2);
  CHECK(idmp.added() == 5);
  // A producer that never comes back is dropped once out of the window, by the sweep live
  // records make (two producers looked at per record).
  runnel::Idempotency swept;
  for (int i = 0; i < 10; ++i) swept.record("gone" + std::to_string(i), "x", id(static_cast<std::uint64_t>(now)), now);
  CHECK(swept.producers() == 10);
  for (std::uint64_t i = 0; i < 10; ++i) {
    swept.record("live", std::to_string(i), id(static_cast<std::uint64_t>(now) + 200'000, i), now + 200'000);
  }
  CHECK(swept.producers() == 1);
  CHECK(swept.ids() == 10);
  // IDMPAUTO: the pairs' order does not matter; their contents do, field lengths included.
  const std::string_view ab[] = {"a", "1", "b", "2"}, ba[] = {"b", "2", "a", "1"}, abc[] = {"a", "bc"},
                         ab_c[] = {"ab", "c"};
  CHECK(runnel::Idempotency::auto_id(ab) == runnel::Idempotency::auto_id(ba));
  CHECK(runnel::Idempotency::auto_id(ab).size() == 16);
  CHECK(runnel::Idempotency::auto_id(abc) != runnel::Idempotency::auto_id(ab_c));
}

TEST_CASE("Idempotent producers agree with a plain list per producer over random records, expiries and lookups",
          "[streams][ops][random]") {
  // The index is open addressing with backward-shift deletion: small windows and a few
  // thousand steps make its tables grow, wrap and shift many times.
  std::mt19937_64 rng(20261209);
  for (int run = 0; run < 20; ++run) {
    const std::int64_t max_size = std::uniform_int_distribution<std::int64_t>(1, 40)(rng);
    runnel::Idempotency idmp;
    REQUIRE(idmp.configure(10, max_size) == (max_size != runnel::Idempotency::kDefaultMaxSize));
    std::map<std::string, std::deque<std::pair<std::string, StreamId>>> model;
    std::int64_t now = kNow;
    std::uint64_t seq = 0;
    for (int step = 0; step < 3000; ++step) {
      INFO("run " << run << ", max_size " << max_size << ", step " << step);
      const std::string pid = "p" + std::to_string(rng() % 3);
      const std::string iid = std::to_string(rng() % 60);
      now += static_cast<std::int64_t>(rng() % 300);  // the 10 s window turns over now and then
      auto& ids = model[pid];
      while (!ids.empty() && static_cast<std::int64_t>(ids.front().second.ms) <= now - 10'000) ids.pop_front();
      const auto known = std::find_if(ids.begin(), ids.end(), [&](const auto& e) { return e.first == iid; });
      const auto found = idmp.find(pid, iid, now);
      REQUIRE(found.has_value() == (known != ids.end()));
      if (found) {
        REQUIRE(*found == known->second);
        continue;
      }
      const StreamId added(static_cast<std::uint64_t>(now), ++seq);
      idmp.record(pid, iid, added);
      ids.emplace_back(iid, added);
      if (static_cast<std::int64_t>(ids.size()) > max_size) ids.pop_front();
      std::size_t total = 0;
      for (const auto& [p, list] : model) total += list.size();
      REQUIRE(idmp.ids() <= total);  // other producers' expired IDs go when they are next looked at
    }
    // Everything the model still holds is found, and nothing else of what it dropped.
    for (auto& [pid, ids] : model) {
      while (!ids.empty() && static_cast<std::int64_t>(ids.front().second.ms) <= now - 10'000) ids.pop_front();
      for (int k = 0; k < 60; ++k) {
        const std::string iid = std::to_string(k);
        const auto known = std::find_if(ids.begin(), ids.end(), [&](const auto& e) { return e.first == iid; });
        const auto found = idmp.find(pid, iid, now);
        REQUIRE(found.has_value() == (known != ids.end()));
        if (found) REQUIRE(*found == known->second);
      }
    }
  }
}
