// The coarse tape (autodiff/tape.hpp) replays reverse functions last-recorded first, once, and
// times them.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "diffpm/autodiff/tape.hpp"

TEST_CASE("the tape runs its reverse functions backwards, once", "[autodiff]") {
  diffpm::autodiff::Tape tape;
  std::vector<std::string> ran;
  for (const char* name : {"linear field", "LPT", "integration"})
    tape.record(name, [&ran, name] { ran.push_back(name); });
  CHECK(tape.size() == 3);
  CHECK(tape.names() == std::vector<std::string>{"linear field", "LPT", "integration"});
  tape.backward();
  CHECK(ran == std::vector<std::string>{"integration", "LPT", "linear field"});
  CHECK(tape.empty());
  REQUIRE(tape.timings().size() == 3);
  CHECK(tape.timings()[0].first == "linear field");
  CHECK(tape.timings()[2].second >= 0.0);
  tape.backward();  // nothing left to replay
  CHECK(ran.size() == 3);
}
