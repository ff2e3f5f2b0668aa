// The CIC plan (particles/cic_plan.hpp) and the non-owning particle views
// (particles/particles.hpp): a plan paints bitwise what paint_cic paints, from diffpm's containers,
// struct-of-arrays arrays and a user's particle struct alike, for any thread count; its paint is
// the transpose of readout; bad input is refused.
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "diffpm/core/openmp.hpp"
#include "diffpm/particles/cic.hpp"
#include "diffpm/particles/cic_plan.hpp"

using diffpm::mesh::Grid;
using diffpm::mesh::RealField;
using diffpm::particles::CicPlan;
using diffpm::particles::Positions;
namespace dp = diffpm::particles;

namespace {

// A non-cubic box with an odd x axis (three colour phases) and positions also outside [0, L).
Grid plan_box() { return Grid({9, 6, 10}, {90.0, 80.0, 50.0}); }

template <class T>
Positions<T> scattered(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-30.0, 130.0);
  Positions<T> x(n);
  for (auto& v : x)
    for (int d = 0; d < 3; ++d) v[d] = T(u(rng));
  return x;
}

template <class T>
bool same_bits(const RealField<T>& a, const RealField<T>& b) {
  return a.data.size() == b.data.size() &&
         std::memcmp(a.data.data(), b.data.data(), a.data.size() * sizeof(T)) == 0;
}

// A simulation code's own particle record: the coordinates sit between other members.
struct UserParticle {
  std::int64_t id;
  double pos[3];
  float mass;
  double vel[3];
};

}  // namespace

TEMPLATE_TEST_CASE("a CIC plan paints bitwise what paint_cic paints", "[particles][cic][plan]",
                   float, double) {
  using T = TestType;
  const Grid g = plan_box();
  const auto x = scattered<T>(20000, 3);
  std::vector<T> w(x.size());
  for (std::size_t p = 0; p < w.size(); ++p) w[p] = T(0.5 + std::sin(0.37 * double(p)));

  RealField<T> reference(g), reference_w(g);
  dp::paint_cic(x, reference, T(1.5));
  dp::paint_cic(x, w, reference_w);

  const int threads = diffpm::max_threads();
  for (int t : {1, 2, 3}) {
    diffpm::set_threads(t);
    CicPlan<T> plan(g);
    plan.set_points(x);
    REQUIRE(plan.size() == x.size());
    RealField<T> m(g), mw(g);
    plan.paint(m, T(1.5));
    plan.paint(w, mw);
    CHECK(same_bits(m, reference));
    CHECK(same_bits(mw, reference_w));
    // Accumulating adds onto what is there; painting again gives the same bits again.
    plan.paint(mw, T(1.5), true);
    RealField<T> twice = reference_w;
    dp::paint_cic(x, twice, T(1.5), true);
    CHECK(same_bits(mw, twice));
  }
  diffpm::set_threads(threads);

  // The same positions as struct-of-arrays arrays, and weights with a stride.
  std::vector<T> xs(x.size()), ys(x.size()), zs(x.size());
  std::vector<std::array<T, 2>> weight_pairs(x.size());
  for (std::size_t p = 0; p < x.size(); ++p) {
    xs[p] = x[p][0];
    ys[p] = x[p][1];
    zs[p] = x[p][2];
    weight_pairs[p] = {T(-7), w[p]};
  }
  CicPlan<T> soa(g);
  soa.set_points(dp::soa_view<const T>(xs.data(), ys.data(), zs.data(), x.size()));
  RealField<T> m(g);
  soa.paint(&weight_pairs[0][1], std::ptrdiff_t(sizeof(std::array<T, 2>)), m);
  CHECK(same_bits(m, reference_w));
}

TEST_CASE("a CIC plan reads a user's particle structs in place", "[particles][cic][plan]") {
  const Grid g = plan_box();
  const auto x = scattered<double>(5000, 8);
  std::vector<UserParticle> user(x.size());
  std::vector<double> mass(x.size());
  for (std::size_t p = 0; p < x.size(); ++p) {
    user[p] = UserParticle{
        std::int64_t(p), {x[p][0], x[p][1], x[p][2]}, float(1 + p % 3), {0.0, 0.0, 0.0}};
    mass[p] = double(user[p].mass);
  }
  const auto view = dp::aos_view<const double>(&user[0].pos[0], sizeof(UserParticle), user.size());
  CHECK(view(17, 2) == x[17][2]);
  CicPlan<double> plan(g);
  plan.set_points(view);
  RealField<double> m(g), reference(g);
  dp::paint_cic(x, mass, reference);
  // The weights are the float masses: paint them through a double copy to compare bits.
  plan.paint(mass, m);
  CHECK(same_bits(m, reference));
}

TEMPLATE_TEST_CASE("a CIC plan's paint is the transpose of readout", "[particles][cic][plan]",
                   float, double) {
  // <paint(w), m> = <w, readout(m)> for random w and m: both sums in double, so the two sides
  // differ by the rounding of the painted mesh and of the readout, a few ulps of T times the
  // sums' magnitude (~sqrt(n) for random signs): 1e-4 relative in float, 1e-12 in double.
  using T = TestType;
  const Grid g = plan_box();
  const auto x = scattered<T>(3000, 11);
  std::mt19937_64 rng(5);
  std::normal_distribution<double> normal;
  std::vector<T> w(x.size());
  for (auto& v : w) v = T(normal(rng));
  RealField<T> m(g);
  for (auto& v : m.data) v = T(normal(rng));
  CicPlan<T> plan(g);
  plan.set_points(x);
  RealField<T> painted(g);
  plan.paint(w, painted);
  std::vector<T> read;
  dp::readout_cic(m, x, read);
  double lhs = 0.0, rhs = 0.0, scale = 0.0;
  for (std::size_t c = 0; c < m.data.size(); ++c) {
    lhs += double(painted.data[c]) * double(m.data[c]);
    scale += std::fabs(double(painted.data[c]) * double(m.data[c]));
  }
  for (std::size_t p = 0; p < x.size(); ++p) rhs += double(w[p]) * double(read[p]);
  CHECK(std::fabs(lhs - rhs) <= (sizeof(T) == 4 ? 1e-5 : 1e-14) * scale);
}

TEST_CASE("a CIC plan refuses bad input", "[particles][cic][plan][errors]") {
  const Grid g = plan_box();
  auto x = scattered<double>(100, 2);
  CicPlan<double> plan(g);
  plan.set_points(x);
  x[42][1] = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH(plan.set_points(x), Catch::Contains("particle 42") && Catch::Contains("inf"));
  CHECK(plan.size() == 0);  // no half-made plan
  x[42][1] = 1.0;
  plan.set_points(x);
  RealField<double> other(Grid({9, 6, 10}, {90.0, 80.0, 51.0}));
  CHECK_THROWS_WITH(plan.paint(other), Catch::Contains("mesh"));
  RealField<double> m(g);
  CHECK_THROWS_WITH(plan.paint(std::vector<double>(99, 1.0), m), Catch::Contains("99"));
  CHECK_THROWS_AS(plan.paint(nullptr, 8, m), diffpm::InvalidArgument);
  CHECK_THROWS_AS(CicPlan<double>(Grid()), diffpm::InvalidArgument);
  std::vector<double> xs(10, 1.0);
  CHECK_THROWS_WITH(plan.set_points(dp::soa_view<const double>(xs.data(), nullptr, xs.data(), 10)),
                    Catch::Contains("null pointer for component 1"));
  CHECK(plan.size() == 0);
}
