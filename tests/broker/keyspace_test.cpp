// The keyspace alone (broker/src/keyspace.hpp): strings beside streams, the string byte
// count --maxmemory-strings reads, deadlines and what lookups hide, and the records it reports
// to its sink for the keys journal. The replies are the differential tests' (tests/compat/).
#include <catch2/catch.hpp>

#include <atomic>
#include <string>
#include <vector>

#include "keyspace.hpp"

using runnel::KeyType;
using runnel::Keyspace;
using runnel::KeyValue;
using runnel::Stream;
using runnel::unix_now_ms;

namespace {

// Records what the keyspace reports about strings and TTLs (streams made in memory).
struct KeysSink : runnel::ChangeSink {
  std::vector<std::string> events;
  runnel::Result<std::unique_ptr<runnel::storage::EntryStore>> create_store(std::string_view) override {
    return std::unique_ptr<runnel::storage::EntryStore>();
  }
  void stream_created(std::string_view key, Stream&) override { events.push_back("created " + std::string(key)); }
  void stream_removed(std::string_view key, Stream&) override { events.push_back("removed " + std::string(key)); }
  void stream_changed(Stream&) override {}
  void group_changed(Stream&, std::string_view) override {}
  void group_destroyed(Stream&, std::string_view) override {}
  void consumer_changed(Stream&, std::string_view, std::string_view) override {}
  void consumer_seen(Stream&, std::string_view, std::string_view) override {}
  void idmp_configured(Stream&) override {}
  void idmp_recorded(Stream&, std::string_view, std::string_view, runnel::storage::StreamId) override {}
  void idmp_counted(Stream&) override {}
  void pending_changed(Stream&, std::string_view, runnel::storage::StreamId) override {}
  void string_written(std::string_view key, std::string_view value, std::int64_t at) override {
    events.push_back("string " + std::string(key) + "=" + std::string(value) + (at != 0 ? " ttl" : ""));
  }
  void ttl_written(std::string_view key, std::int64_t at) override {
    events.push_back("ttl " + std::string(key) + (at != 0 ? " set" : " none"));
  }
  void key_forgotten(std::string_view key) override { events.push_back("forget " + std::string(key)); }
};

// What one string costs against --maxmemory-strings.
std::int64_t cost(const std::string& key, const std::string& value) {
  return static_cast<std::int64_t>(key.size() + value.size() + 64);
}

}  // namespace

TEST_CASE("Strings and streams share the keyspace, each seen as its type", "[keyspace]") {
  Keyspace keyspace;
  keyspace.set_string("s", "v", 0);
  REQUIRE(keyspace.find_or_create("x"));
  CHECK(keyspace.type_of("s") == KeyType::kString);
  CHECK(keyspace.type_of("x") == KeyType::kStream);
  CHECK(keyspace.type_of("none") == KeyType::kNone);
  CHECK(keyspace.find("s") == nullptr);  // find is for streams
  CHECK(keyspace.find("x") != nullptr);
  CHECK(keyspace.lookup("s")->string == "v");
  CHECK(keyspace.size() == 2);
  CHECK(keyspace.has_strings());
  CHECK(keyspace.erase("s"));
  CHECK_FALSE(keyspace.has_strings());
  CHECK_FALSE(keyspace.erase("s"));
  CHECK(keyspace.size() == 1);
}

TEST_CASE("The string byte count follows every write, delete and clear", "[keyspace]") {
  std::atomic<std::int64_t> total{0};
  Keyspace keyspace;
  keyspace.count_strings_in(&total);
  keyspace.set_string("a", "12345", 0);
  keyspace.set_string("b", "x", 0);
  CHECK(keyspace.string_bytes() == cost("a", "12345") + cost("b", "x"));
  keyspace.set_string("a", "1", 0);  // shrinks
  CHECK(keyspace.string_bytes() == cost("a", "1") + cost("b", "x"));
  KeyValue* b = keyspace.lookup("b");
  const std::size_t before = b->string.size();
  b->string.append(100, 'y');
  keyspace.string_changed("b", *b, before);
  CHECK(keyspace.string_bytes() == cost("a", "1") + cost("b", "x" + std::string(100, 'y')));
  CHECK(total.load() == keyspace.string_bytes());
  keyspace.erase("a");
  CHECK(keyspace.string_bytes() == cost("b", "x" + std::string(100, 'y')));
  // A string set over a stream (past its time) replaces it; streams cost nothing here.
  REQUIRE(keyspace.find_or_create("st"));
  CHECK(keyspace.string_bytes() == cost("b", "x" + std::string(100, 'y')));
  keyspace.set_string("st", "v", 0);
  CHECK(keyspace.type_of("st") == KeyType::kString);
  keyspace.clear();
  CHECK(keyspace.string_bytes() == 0);
  CHECK(total.load() == 0);
  CHECK(keyspace.size() == 0);
}

TEST_CASE("A key past its time is hidden from lookups and walks, and is due for deletion", "[keyspace]") {
  Keyspace keyspace;
  const std::int64_t now = unix_now_ms();
  keyspace.set_string("past", "v", 1);                 // long gone
  keyspace.set_string("later", "v", now + 3600000);    // an hour on
  keyspace.set_string("plain", "v", 0);
  REQUIRE(keyspace.find_or_create("stream"));
  keyspace.set_expiry("stream", *keyspace.lookup("stream"), 2);  // gone too
  CHECK(keyspace.lookup("past") == nullptr);
  CHECK(keyspace.find("stream") == nullptr);
  CHECK(keyspace.lookup("later") != nullptr);
  CHECK(keyspace.size() == 4);  // not deleted yet
  CHECK(keyspace.expired_count(now) == 2);
  CHECK(keyspace.volatile_count() == 3);
  std::vector<std::string> live, stored;
  keyspace.for_each([&](const std::string& key, const KeyValue&) { live.push_back(key); });
  keyspace.for_each_stored([&](const std::string& key, const KeyValue&) { stored.push_back(key); });
  CHECK(live.size() == 2);
  CHECK(stored.size() == 4);
  // The earliest deadline first, then the next; a key with a later deadline is never due.
  CHECK(keyspace.first_due(now) == std::optional<std::string>("past"));
  keyspace.erase("past");
  CHECK(keyspace.first_due(now) == std::optional<std::string>("stream"));
  keyspace.erase("stream");
  CHECK_FALSE(keyspace.first_due(now));
  // A TTL changed or removed leaves no stale deadline behind.
  KeyValue* later = keyspace.lookup("later");
  keyspace.set_expiry("later", *later, 5);
  CHECK(keyspace.first_due(now) == std::optional<std::string>("later"));
  keyspace.set_expiry("later", *later, 0);
  CHECK_FALSE(keyspace.first_due(now));
  CHECK(keyspace.volatile_count() == 0);
  // SET without KEEPTTL drops the TTL; with it, keeps it.
  keyspace.set_string("k", "v", now + 1000);
  keyspace.set_string("k", "w", 0, true);
  CHECK(keyspace.lookup("k")->expires_at == now + 1000);
  keyspace.set_string("k", "x", 0);
  CHECK(keyspace.lookup("k")->expires_at == 0);
  CHECK(keyspace.volatile_count() == 0);
}

TEST_CASE("The keyspace reports whole states for the keys journal", "[keyspace]") {
  KeysSink sink;
  Keyspace keyspace;
  keyspace.attach(&sink);
  keyspace.set_string("a", "1", 0);
  keyspace.set_string("a", "2", unix_now_ms() + 100000);
  KeyValue* a = keyspace.lookup("a");
  keyspace.set_expiry("a", *a, 0);
  REQUIRE(keyspace.find_or_create("s"));
  keyspace.set_expiry("s", *keyspace.lookup("s"), unix_now_ms() + 100000);
  std::int64_t ttl = 0;
  auto moved = keyspace.extract("s", &ttl);  // RENAME takes the stream and its TTL
  CHECK(moved != nullptr);
  CHECK(ttl != 0);
  keyspace.erase("a");
  REQUIRE(keyspace.find_or_create("t"));
  keyspace.erase("t");  // a stream without a TTL: nothing for the keys journal
  CHECK(sink.events == std::vector<std::string>{"string a=1", "string a=2 ttl", "string a=2", "created s",
                                                "ttl s set", "forget s", "forget a", "created t", "removed t"});
}
