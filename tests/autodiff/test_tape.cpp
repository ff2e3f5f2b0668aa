// The coarse tape (autodiff/tape.hpp) replays its operations' vjps last-recorded first, once,
// releases each operation as soon as its vjp has run, times them, and moves with its owner.
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "diffpm/autodiff/tape.hpp"

namespace {

struct Log {
  std::vector<std::string> ran;
};

/// Records its name when its vjp runs, and (through `alive`) whether it still exists.
class Named final : public diffpm::autodiff::Operation<Log> {
 public:
  Named(const char* name, std::shared_ptr<int> alive) : name_(name), alive_(std::move(alive)) {}
  const char* name() const override { return name_; }
  void vjp(Log& log) override { log.ran.push_back(name_); }

 private:
  const char* name_;
  std::shared_ptr<int> alive_;
};

}  // namespace

TEST_CASE("the tape runs its vjps backwards, once", "[autodiff]") {
  diffpm::autodiff::Tape<Log> tape;
  auto alive = std::make_shared<int>(0);
  for (const char* name : {"linear field", "LPT", "integration"})
    tape.record(std::make_unique<Named>(name, alive));
  CHECK(tape.size() == 3);
  CHECK(tape.names() == std::vector<std::string>{"linear field", "LPT", "integration"});
  CHECK(alive.use_count() == 4);

  // A moved tape keeps its operations: they refer to nothing of the object that recorded them.
  diffpm::autodiff::Tape<Log> moved = std::move(tape);
  CHECK(moved.size() == 3);
  Log log;
  moved.backward(log);
  CHECK(log.ran == std::vector<std::string>{"integration", "LPT", "linear field"});
  CHECK(moved.empty());
  CHECK(alive.use_count() == 1);  // every operation released
  REQUIRE(moved.timings().size() == 3);
  CHECK(moved.timings()[0].first == "linear field");
  CHECK(moved.timings()[2].first == "integration");
  CHECK(moved.timings()[2].second >= 0.0);
  moved.backward(log);  // nothing left to replay
  CHECK(log.ran.size() == 3);
}
