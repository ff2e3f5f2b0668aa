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

TEMPLATE_TEST_CASE("a CIC plan reads out and runs the adjoints bitwise as the CIC functions do",
                   "[particles][cic][plan][adjoint]", float, double) {
  // Per particle the plan runs the arithmetic of readout_cic (detail::interpolate) on the same
  // position, in bucket order instead of index order: each particle's result is the same bits,
  // and so is a painted mesh. Only the weight adjoint, a sum over particles, is summed in
  // another order (1e-5 relative in float, 1e-13 in double, for sums of ~n terms of both signs).
  using T = TestType;
  const Grid g = plan_box();
  const auto x = scattered<T>(7000, 21);
  std::mt19937_64 rng(9);
  std::normal_distribution<double> normal;
  RealField<T> m(g), m_bar(g);
  for (auto& v : m.data) v = T(normal(rng));
  for (auto& v : m_bar.data) v = T(normal(rng));
  std::vector<T> w(x.size()), v_bar(x.size());
  for (auto& v : w) v = T(normal(rng));
  for (auto& v : v_bar) v = T(normal(rng));
  auto same = [](const auto& a, const auto& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(a[0])) == 0;
  };
  const int threads = diffpm::max_threads();
  for (int t : {1, 2, 3}) {
    diffpm::set_threads(t);
    CicPlan<T> plan(g);
    plan.set_points(x);
    // Readout and its gradient.
    std::vector<T> read, read_ref;
    plan.readout(m, read);
    dp::readout_cic(m, x, read_ref);
    CHECK(same(read, read_ref));
    Positions<T> grad(x.size()), grad_ref;
    plan.readout_gradient(m, dp::view(grad));
    dp::readout_cic_gradient(m, x, grad_ref);
    CHECK(same(grad, grad_ref));
    // Adjoint of the uniform paint: accumulates into x_bar.
    Positions<T> xb(x.size(), {T(1), T(2), T(3)}), xb_ref = xb;
    T weight_bar_ref = 0;
    const double weight_bar = plan.paint_adjoint(m_bar, T(1.5), dp::view(xb));
    dp::paint_cic_adjoint(m_bar, x, T(1.5), xb_ref, weight_bar_ref);
    CHECK(same(xb, xb_ref));
    CHECK(weight_bar == Approx(double(weight_bar_ref)).epsilon(sizeof(T) == 4 ? 1e-5 : 1e-13));
    // Adjoint of the weighted paint.
    Positions<T> xw(x.size(), {T(0), T(0), T(0)}), xw_ref;
    std::vector<T> wb(x.size(), T(0.25)), wb_ref(x.size(), T(0.25));
    plan.paint_adjoint(m_bar, w.data(), sizeof(T), dp::view(xw), wb.data(), sizeof(T));
    dp::paint_cic_adjoint(m_bar, x, w, xw_ref, wb_ref);
    CHECK(same(xw, xw_ref));
    CHECK(same(wb, wb_ref));
    // Adjoint of the readout: a painted mesh adjoint and position adjoints.
    RealField<T> mb, mb_ref;
    Positions<T> xr(x.size(), {T(0), T(0), T(0)}), xr_ref;
    plan.readout_adjoint(m, v_bar.data(), sizeof(T), mb, dp::view(xr));
    dp::readout_cic_adjoint(m, x, v_bar, mb_ref, xr_ref);
    CHECK(same_bits(mb, mb_ref));
    CHECK(same(xr, xr_ref));
  }
  diffpm::set_threads(threads);
}

TEST_CASE("a CIC plan's readout adjoint passes the dot-product test", "[particles][cic][plan]") {
  // The linear map (m, dx) -> readout(m)(x) + grad readout(m)(x) . dx at fixed x and m0:
  // tangent v = readout(dm) + grad readout(m0) . dx; adjoint (mesh_bar, x_bar) of v_bar.
  // <v_bar, v> = <mesh_bar, dm> + <x_bar, dx> holds to rounding (1e-13 relative, double).
  const Grid g = plan_box();
  const auto x = scattered<double>(4000, 4);
  std::mt19937_64 rng(17);
  std::normal_distribution<double> normal;
  RealField<double> m0(g), dm(g);
  for (auto& v : m0.data) v = normal(rng);
  for (auto& v : dm.data) v = normal(rng);
  Positions<double> dx(x.size());
  std::vector<double> v_bar(x.size());
  for (auto& e : dx)
    for (auto& c : e) c = normal(rng);
  for (auto& v : v_bar) v = normal(rng);
  CicPlan<double> plan(g);
  plan.set_points(x);
  std::vector<double> r;
  Positions<double> grad(x.size());
  plan.readout(dm, r);
  plan.readout_gradient(m0, dp::view(grad));
  double lhs = 0.0, rhs = 0.0;
  for (std::size_t p = 0; p < x.size(); ++p)
    lhs +=
        v_bar[p] * (r[p] + grad[p][0] * dx[p][0] + grad[p][1] * dx[p][1] + grad[p][2] * dx[p][2]);
  RealField<double> mb;
  Positions<double> xb(x.size(), {0.0, 0.0, 0.0});
  plan.readout_adjoint(m0, v_bar.data(), sizeof(double), mb, dp::view(xb));
  for (std::size_t c = 0; c < mb.data.size(); ++c) rhs += mb.data[c] * dm.data[c];
  for (std::size_t p = 0; p < x.size(); ++p)
    for (int d = 0; d < 3; ++d) rhs += xb[p][d] * dx[p][d];
  CHECK(lhs == Approx(rhs).epsilon(1e-12));
}

TEMPLATE_TEST_CASE("a CIC plan's lattice offset acts as translated positions",
                   "[particles][cic][plan]", float, double) {
  // set_points(x, o) is set_points(x + o) with the sum rounded to T once, in every operation.
  using T = TestType;
  const Grid g = plan_box();
  const auto x = scattered<T>(3000, 6);
  const std::array<double, 3> o{5.0, 80.0 / 12.0, -2.5};
  Positions<T> shifted = x;
  for (auto& e : shifted)
    for (int d = 0; d < 3; ++d) e[d] += T(o[d]);
  RealField<T> m(g);
  std::mt19937_64 rng(2);
  std::normal_distribution<double> normal;
  for (auto& v : m.data) v = T(normal(rng));
  CicPlan<T> a(g), b(g);
  a.set_points(x, o);
  b.set_points(shifted);
  RealField<T> pa(g), pb(g);
  a.paint(pa);
  b.paint(pb);
  CHECK(same_bits(pa, pb));
  std::vector<T> ra, rb;
  a.readout(m, ra);
  b.readout(m, rb);
  CHECK(std::memcmp(ra.data(), rb.data(), ra.size() * sizeof(T)) == 0);
  CHECK_THROWS_WITH(a.set_points(x, {0.0, std::nan(""), 0.0}), Catch::Contains("lattice offset 1"));
  CHECK(a.size() == 0);
}

TEST_CASE("a CIC plan's readouts refuse bad input", "[particles][cic][plan][errors]") {
  const Grid g = plan_box();
  const auto x = scattered<double>(50, 3);
  CicPlan<double> plan(g);
  plan.set_points(x);
  RealField<double> m(g), other(Grid({9, 6, 10}, {90.0, 80.0, 51.0}));
  std::vector<double> out;
  CHECK_THROWS_WITH(plan.readout(other, out), Catch::Contains("mesh"));
  Positions<double> small(49);
  CHECK_THROWS_WITH(plan.readout_gradient(m, dp::view(small)),
                    Catch::Contains("49 entries for 50 points"));
  Positions<double> xb(50);
  CHECK_THROWS_AS(plan.readout(m, nullptr, 8), diffpm::InvalidArgument);
  CHECK_THROWS_AS(plan.readout_adjoint(m, nullptr, 8, m, dp::view(xb)), diffpm::InvalidArgument);
}
