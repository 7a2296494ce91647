// The DUMP/RESTORE codec on its own: round trips of random streams, and payloads damaged in
// every way one byte or a cut can damage them (the checksum recomputed, so the decoder itself
// is what meets the damage). The server-level tests against redis-server are in
// tests/integration/dump_restore_test.cpp.
#include <catch2/catch.hpp>

#include <random>
#include <variant>

#include <runnel/storage/rdb.hpp>

namespace rdb = runnel::storage::rdb;
using runnel::storage::StreamId;

namespace {

// A payload with its checksum made right again after a change.
std::string reseal(std::string payload) {
  payload.resize(payload.size() - 8);
  const std::uint64_t crc = rdb::crc64(0, payload);
  for (int i = 0; i < 8; ++i) payload.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  return payload;
}

// `long_values`: some values of up to 5000 bytes (strings of every listpack size class).
rdb::Stream random_stream(std::mt19937_64& rng, bool long_values = true) {
  rdb::Stream s;
  const int entries = static_cast<int>(rng() % 400);
  StreamId id{1 + rng() % 1000, rng() % 3};
  const char* values[] = {"", "0", "-1", "127", "128", "-4096", "4096", "32768", "-8388609", "2147483648",
                          "9223372036854775807", "-9223372036854775808", "007", "+1", "x"};
  for (int i = 0; i < entries; ++i) {
    id = rng() % 4 == 0 ? StreamId{id.ms, id.seq + 1 + rng() % 1000} : StreamId{id.ms + 1 + rng() % 100000, rng() % 5};
    rdb::Entry e{id, {}};
    const int fields = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < fields; ++f) {
      std::string value = rng() % 3 == 0 ? std::string(rng() % (long_values ? 5000 : 80), 'L')
                                         : values[rng() % std::size(values)];
      e.fields.emplace_back(rng() % 5 == 0 ? "other" + std::to_string(f) : "f" + std::to_string(f), std::move(value));
    }
    s.entries.push_back(std::move(e));
  }
  s.last_id = s.entries.empty() ? StreamId{5, 5} : s.entries.back().id;
  s.first_id = s.entries.empty() ? StreamId::min() : s.entries.front().id;
  s.max_deleted_id = StreamId{2, 0};
  s.entries_added = s.entries.size() + rng() % 10;
  for (int g = 0; g < static_cast<int>(rng() % 3); ++g) {
    rdb::Group group{"g" + std::to_string(g), s.last_id, static_cast<std::int64_t>(rng() % 3) - 1, {}, {}};
    rdb::Consumer a{"a", 1796000000000, -1, {}}, b{"b", 1796000000001, -1, {}};
    for (std::size_t i = 0; i < s.entries.size(); i += 1 + rng() % 20) {
      group.pel.push_back(rdb::PendingEntry{s.entries[i].id, 1796000000000 + static_cast<std::int64_t>(i), 1 + rng() % 4});
      (rng() % 2 ? a : b).pending.push_back(s.entries[i].id);
    }
    group.consumers = {a, b};
    s.groups.push_back(std::move(group));
  }
  return s;
}

void require_equal(const rdb::Stream& a, const rdb::Stream& b) {
  REQUIRE(a.entries.size() == b.entries.size());
  for (std::size_t i = 0; i < a.entries.size(); ++i) {
    REQUIRE(a.entries[i].id == b.entries[i].id);
    REQUIRE(a.entries[i].fields == b.entries[i].fields);
  }
  REQUIRE(a.last_id == b.last_id);
  REQUIRE(a.first_id == b.first_id);
  REQUIRE(a.max_deleted_id == b.max_deleted_id);
  REQUIRE(a.entries_added == b.entries_added);
  REQUIRE(a.groups.size() == b.groups.size());
  for (std::size_t g = 0; g < a.groups.size(); ++g) {
    REQUIRE(a.groups[g].name == b.groups[g].name);
    REQUIRE(a.groups[g].last_delivered == b.groups[g].last_delivered);
    REQUIRE(a.groups[g].entries_read == b.groups[g].entries_read);
    REQUIRE(a.groups[g].pel.size() == b.groups[g].pel.size());
    for (std::size_t p = 0; p < a.groups[g].pel.size(); ++p) {
      REQUIRE(a.groups[g].pel[p].id == b.groups[g].pel[p].id);
      REQUIRE(a.groups[g].pel[p].delivery_time_ms == b.groups[g].pel[p].delivery_time_ms);
      REQUIRE(a.groups[g].pel[p].delivery_count == b.groups[g].pel[p].delivery_count);
    }
    REQUIRE(a.groups[g].consumers.size() == b.groups[g].consumers.size());
    for (std::size_t c = 0; c < a.groups[g].consumers.size(); ++c) {
      REQUIRE(a.groups[g].consumers[c].name == b.groups[g].consumers[c].name);
      REQUIRE(a.groups[g].consumers[c].seen_time_ms == b.groups[g].consumers[c].seen_time_ms);
      REQUIRE(a.groups[g].consumers[c].pending == b.groups[g].consumers[c].pending);
    }
  }
}

}  // namespace

TEST_CASE("Redis's CRC64 gives its documented check value", "[rdb]") {
  CHECK(rdb::crc64(0, "123456789") == 0xe9c6d914c4b8d9caULL);
}

TEST_CASE("A stream DUMPed and RESTOREd by the codec comes back the same, every integer form included", "[rdb]") {
  std::mt19937_64 rng(20261210);
  for (int run = 0; run < 60; ++run) {
    INFO("run " << run);
    const rdb::Stream s = random_stream(rng);
    const std::string payload = rdb::dump_stream(s);
    CHECK(static_cast<std::uint8_t>(payload[0]) == rdb::kTypeStreamListpacks2);
    auto back = rdb::restore_stream(payload);
    REQUIRE(std::holds_alternative<rdb::Stream>(back));
    require_equal(s, std::get<rdb::Stream>(back));
  }
}

TEST_CASE("A damaged payload is refused or read, never read past: every cut and every flipped byte", "[rdb]") {
  std::mt19937_64 rng(20261211);
  rdb::Stream s = random_stream(rng, false);
  while (s.entries.size() < 150 || s.groups.empty()) s = random_stream(rng, false);
  s.entries.resize(150);
  s.last_id = s.entries.back().id;
  for (auto& g : s.groups) {
    std::erase_if(g.pel, [&](const rdb::PendingEntry& p) { return p.id > s.last_id; });
    for (auto& c : g.consumers) std::erase_if(c.pending, [&](StreamId id) { return id > s.last_id; });
    g.last_delivered = s.last_id;
  }
  const std::string payload = rdb::dump_stream(s);
  REQUIRE(std::holds_alternative<rdb::Stream>(rdb::restore_stream(payload)));
  // Cut anywhere: the checksum no longer matches, or with it recomputed, the data is short.
  int refused = 0;
  for (std::size_t cut = 0; cut + 10 < payload.size(); cut += 7) {
    std::string shorter = payload.substr(0, cut) + payload.substr(payload.size() - 10);
    refused += std::holds_alternative<rdb::RestoreError>(rdb::restore_stream(reseal(shorter)));
  }
  CHECK(refused > 0);
  // Each byte of the value changed three ways, under a good checksum: the decoder must stay
  // in bounds (this suite runs under ASan and UBSan in ./dev test --sanitize).
  int changed_read = 0, changed_refused = 0;
  for (std::size_t i = 0; i + 10 < payload.size(); ++i) {
    for (const std::uint8_t mask : {0x01, 0x80, 0xff}) {
      std::string bad = payload;
      bad[i] = static_cast<char>(static_cast<std::uint8_t>(bad[i]) ^ mask);
      const auto got = rdb::restore_stream(reseal(bad));
      (std::holds_alternative<rdb::Stream>(got) ? changed_read : changed_refused)++;
    }
  }
  INFO("read " << changed_read << ", refused " << changed_refused);
  CHECK(changed_refused > changed_read / 4);
  // An unresealed flip is a checksum error, in Redis's words.
  std::string flipped = payload;
  flipped[3] = static_cast<char>(flipped[3] ^ 1);
  const auto got = rdb::restore_stream(flipped);
  REQUIRE(std::holds_alternative<rdb::RestoreError>(got));
  CHECK(std::get<rdb::RestoreError>(got).kind == rdb::RestoreError::Kind::kChecksum);
}

TEST_CASE("Counts a payload cannot hold are refused before anything is allocated for them", "[rdb]") {
  // A stream value claiming 2^32 nodes in a few bytes.
  std::string value;
  value.push_back(static_cast<char>(rdb::kTypeStreamListpacks2));
  value += std::string("\x80\xff\xff\xff\xff", 5);
  value += std::string(10, '\0');  // version 0, checksum 0 ("not computed")
  const auto got = rdb::restore_stream(value);
  REQUIRE(std::holds_alternative<rdb::RestoreError>(got));
  CHECK(std::get<rdb::RestoreError>(got).kind == rdb::RestoreError::Kind::kBadFormat);
}

TEST_CASE("A payload that decodes to more than the limit is refused as too large, shared field names counted",
          "[rdb]") {
  // 100 entries sharing one 1,000-byte field name: the payload holds the name once (the node's
  // master entry), the decoded entries 100 times.
  rdb::Stream s;
  for (std::uint64_t i = 1; i <= 100; ++i) {
    s.entries.push_back(rdb::Entry{StreamId{i, 0}, {{std::string(1000, 'F'), "v"}}});
  }
  s.last_id = s.entries.back().id;
  s.first_id = s.entries.front().id;
  s.entries_added = 100;
  const std::string payload = rdb::dump_stream(s);
  REQUIRE(payload.size() < 20000);
  const auto small = rdb::restore_stream(payload, 50000);
  REQUIRE(std::holds_alternative<rdb::RestoreError>(small));
  CHECK(std::get<rdb::RestoreError>(small).kind == rdb::RestoreError::Kind::kTooLarge);
  CHECK(std::holds_alternative<rdb::Stream>(rdb::restore_stream(payload, 200000)));
}
