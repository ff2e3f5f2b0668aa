#include <catch2/catch.hpp>
#include <diffpm/diffpm.hpp>
#include <stdexcept>
#include <string>

TEST_CASE("InvalidArgument message starts with the diffpm prefix", "[core][error]") {
  const diffpm::InvalidArgument e("h must be positive, got -0.7");
  const std::string what = e.what();
  REQUIRE(what.rfind("diffpm: ", 0) == 0);
  CHECK(what == "diffpm: h must be positive, got -0.7");
}

TEST_CASE("InvalidArgument is catchable as std::invalid_argument", "[core][error]") {
  CHECK_THROWS_AS(throw diffpm::InvalidArgument("bad"), std::invalid_argument);
  CHECK_THROWS_WITH(throw diffpm::InvalidArgument("bad"), "diffpm: bad");
}
