// The entry payload encoding and the in-memory EntryStore.
#include <catch2/catch.hpp>

#include <runnel/storage/log_entry_store.hpp>

using namespace runnel::storage;

namespace {
std::vector<std::string> decode(std::string_view payload) {
  std::vector<std::string> out;
  FieldCursor cursor(payload);
  std::string_view s;
  while (cursor.next(s)) out.emplace_back(s);
  return out;
}
}  // namespace

TEST_CASE("Fields round-trip through the payload encoding, binary-safe", "[storage]") {
  const std::string big(300, 'x');
  std::vector<std::string_view> fields{"f", std::string_view("\0v", 2), "", big};
  std::string payload;
  encode_fields(fields, payload);
  const auto back = decode(payload);
  REQUIRE(back.size() == 4);
  CHECK(back[1] == std::string("\0v", 2));
  CHECK(back[2].empty());
  CHECK(back[3] == big);
}

TEST_CASE("A truncated payload ends the iteration instead of reading past it", "[storage]") {
  std::vector<std::string_view> fields{"field", "value"};
  std::string payload;
  encode_fields(fields, payload);
  for (std::size_t cut = 0; cut < payload.size(); ++cut) {
    const auto back = decode(std::string_view(payload).substr(0, cut));
    CHECK(back.size() < 2);
  }
}

TEST_CASE("Scans visit the inclusive range in either direction and stop on request", "[storage]") {
  LogEntryStore store;
  std::vector<std::string_view> fields{"f", "v"};
  for (std::uint64_t i = 1; i <= 10; ++i) store.append(StreamId{i, 0}, fields);
  std::vector<std::uint64_t> seen;
  CHECK(store.scan({3, 0}, {6, 0}, false, [&](const EntryView& e) {
               seen.push_back(e.id.ms);
               return true;
             }).what.empty());
  CHECK(seen == std::vector<std::uint64_t>{3, 4, 5, 6});
  seen.clear();
  CHECK(store.scan(StreamId::min(), StreamId::max(), true, [&](const EntryView& e) {
               seen.push_back(e.id.ms);
               return seen.size() < 3;
             }).what.empty());
  CHECK(seen == std::vector<std::uint64_t>{10, 9, 8});
  CHECK(store.first_id() == StreamId{1, 0});
  CHECK(store.last_id() == StreamId{10, 0});
}

TEST_CASE("StreamId orders by ms then seq and steps across the seq boundary", "[storage]") {
  CHECK(StreamId{1, UINT64_MAX}.next() == StreamId{2, 0});
  CHECK(StreamId{2, 0}.prev() == StreamId{1, UINT64_MAX});
  CHECK_FALSE(StreamId::max().next().has_value());
  CHECK_FALSE(StreamId::min().prev().has_value());
  CHECK(StreamId{1, 5}.to_string() == "1-5");
  CHECK(parse_stream_id("7") == StreamId{7, 0});
  CHECK_FALSE(parse_stream_id("7-x").has_value());
}
