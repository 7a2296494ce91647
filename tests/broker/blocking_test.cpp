// BlockedReaders: waiters on a stream are answered in the order they blocked, each once.
#include <catch2/catch.hpp>

#include <runnel/storage/log_entry_store.hpp>

#include "command.hpp"

using namespace runnel;

namespace {
std::shared_ptr<StreamWaiter> waiter(std::vector<std::string>& log, const std::string& name,
                                     StreamId after) {
  auto w = std::make_shared<StreamWaiter>();
  w->keys = {"s"};
  w->after = {after};
  w->count = 10;
  w->deliver = [&log, name](WaiterAnswer) { log.push_back(name); };
  return w;
}
}  // namespace

TEST_CASE("Blocked readers are served in the order they blocked, and only once", "[blocking]") {
  std::vector<std::string> served;
  Stream stream;
  BlockedReaders readers;
  auto first = waiter(served, "first", StreamId::min());
  auto second = waiter(served, "second", StreamId::min());
  auto later = waiter(served, "later", StreamId{5, 0});  // wants entries above 5-0
  auto third = waiter(served, "third", StreamId::min());
  for (const auto& w : {first, second, later, third}) readers.add("s", 0, w);
  REQUIRE(readers.registrations() == 4);

  std::vector<std::string_view> fields{"f", "v"};
  stream.append(StreamId{1, 0}, fields);
  readers.serve("s", stream);
  CHECK(served == std::vector<std::string>{"first", "second", "third"});
  CHECK(readers.registrations() == 1);

  stream.append(StreamId{6, 0}, fields);
  readers.serve("s", stream);
  CHECK(served.back() == "later");
  CHECK(readers.registrations() == 0);
  readers.serve("s", stream);  // nobody is answered twice
  CHECK(served.size() == 4);
}

TEST_CASE("A waiter claimed elsewhere is dropped, and remove() forgets it", "[blocking]") {
  std::vector<std::string> served;
  Stream stream;
  BlockedReaders readers;
  auto gone = waiter(served, "gone", StreamId::min());
  auto timed_out = waiter(served, "timed out", StreamId::min());
  readers.add("s", 0, gone);
  readers.add("s", 0, timed_out);
  REQUIRE(timed_out->try_claim());  // as the timeout does
  readers.remove(gone.get());
  CHECK(readers.registrations() == 1);
  std::vector<std::string_view> fields{"f", "v"};
  stream.append(StreamId{1, 0}, fields);
  readers.serve("s", stream);
  CHECK(served.empty());
  CHECK(readers.registrations() == 0);
}
