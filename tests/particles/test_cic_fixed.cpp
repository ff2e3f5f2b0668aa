// Fixed-point CIC scatter (core/fixed_point.hpp, docs/design.md "Deterministic scatter"): every
// scatter onto a mesh (paint_cic, the readout adjoints, CicPlan's paints) is bitwise the
// conversion of the word sums of detail::deposit_terms' integers (one word for float, two for
// double) taken in any order, so it does not depend on the particle order; it agrees with an
// exact sum of the same terms to the documented resolution; and a non-finite weight is refused.
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "diffpm/core/fixed_point.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/particles/cic.hpp"
#include "diffpm/particles/cic_plan.hpp"
#include "diffpm/particles/detail/cic_fixed.hpp"
#include "support/mesh_fields.hpp"

using diffpm::InvalidArgument;
using diffpm::mesh::Grid;
using diffpm::mesh::RealField;
using diffpm::mesh::RealView;
using diffpm::particles::Positions;
namespace dp = diffpm::particles;
namespace fp = diffpm::fixed_point;

namespace {

template <class T>
Positions<T> random_positions(std::size_t n, const Grid& g, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-0.2, 1.2);  // across the periodic edges too
  Positions<T> x(n);
  for (auto& p : x) {
    for (int d = 0; d < 3; ++d) p[d] = T(u(rng) * g.length[d]);
  }
  return x;
}

std::vector<std::size_t> random_permutation(std::size_t n, std::uint64_t seed) {
  std::vector<std::size_t> perm(n);
  std::iota(perm.begin(), perm.end(), std::size_t(0));
  std::mt19937_64 rng(seed);
  std::shuffle(perm.begin(), perm.end(), rng);
  return perm;
}

template <class V>
V permuted(const V& v, const std::vector<std::size_t>& perm) {
  V out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = v[perm[i]];
  return out;
}

template <class A, class B>
bool bitwise_equal(const A& a, const B& b) {
  static_assert(sizeof(a[0]) == sizeof(b[0]));
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(a[0])) == 0;
}

template <class A, class B>
void assign(A& to, const B& from) {
  to.assign(from.begin(), from.end());
}

template <class T>
double max_abs(const std::vector<T>& w) {
  double m = 0.0;
  for (const T v : w) m = std::max(m, std::fabs(double(v)));
  return m;
}

// The brute-force fixed-point paint: deposit_terms of every particle, each of the W =
// fp::words<T> words summed by a plain serial loop into its own full int64 mesh (packed), then
// converted as the contract says: T(value<W>(hi, lo)) or, with `initial`, initial +
// T(value<W>(hi, lo)) in T (lo ignored, and summed only to check it stays 0, for W = 1).
template <class T>
std::vector<T> fixed_reference(const Positions<T>& x, const std::vector<T>& weights, const Grid& g,
                               fp::Scale scale,
                               const std::vector<dp::detail::identity_t<T>>* initial) {
  constexpr int W = fp::words<T>;
  const auto geometry = dp::detail::cic_geometry<T>(g);
  std::vector<fp::Accumulator> hi(g.size(), 0), lo(g.size(), 0);
  for (std::size_t p = 0; p < x.size(); ++p) {
    std::size_t index[8];
    fp::Term term[8];
    dp::detail::deposit_terms(x[p].data(), geometry, weights[p], scale, index, term);
    for (int c = 0; c < 8; ++c) {
      hi[index[c]] += term[c].hi;
      lo[index[c]] += term[c].lo;
    }
  }
  if (W == 1) REQUIRE(std::all_of(lo.begin(), lo.end(), [](fp::Accumulator v) { return v == 0; }));
  std::vector<T> out(g.size());
  for (std::size_t c = 0; c < out.size(); ++c) {
    const T value = T(fp::value<W>(hi[c], lo[c], scale));
    out[c] = initial ? T((*initial)[c] + value) : value;
  }
  return out;
}

template <class T>
fp::Scale scale_of(const std::vector<T>& weights) {
  return fp::scale_for(weights.size(), max_abs(weights), "test");
}

// Restores the OpenMP thread count when a test that changes it ends.
struct ThreadGuard {
  int saved = diffpm::max_threads();
  ~ThreadGuard() { diffpm::set_threads(saved); }
};

}  // namespace

TEMPLATE_TEST_CASE("fixed-point paints do not depend on the particle order",
                   "[particles][cic][fixed][determinism]", float, double) {
  using T = TestType;
  ThreadGuard guard;
  // A clustered half (many terms per cell) and a uniform half, on a non-cubic mesh.
  const Grid g({12, 10, 14}, {60.0, 50.0, 70.0});
  auto x = random_positions<T>(40000, g, 11);
  for (std::size_t p = 0; p < x.size() / 2; ++p) {
    for (int d = 0; d < 3; ++d) x[p][d] = T(0.3 * g.length[d] + 0.05 * double(x[p][d]));
  }
  const auto w = diffpm::test::random_vector<T>(x.size(), 12);
  const auto perm = random_permutation(x.size(), 13);
  const auto xp = permuted(x, perm);
  const auto wp = permuted(w, perm);
  for (int threads : {1, 2, 3}) {
    diffpm::set_threads(threads);
    INFO("threads = " << threads);
    {  // uniform weight
      RealField<T> a(g), b(g);
      dp::paint_cic(x, a, T(0.37));
      dp::paint_cic(xp, b, T(0.37));
      CHECK(bitwise_equal(a.data, b.data));
    }
    {  // per-particle weights, and accumulating onto a mesh
      RealField<T> a(g), b(g);
      dp::paint_cic(x, w, a);
      dp::paint_cic(xp, wp, b);
      CHECK(bitwise_equal(a.data, b.data));
      dp::paint_cic(x, w, a, true);
      dp::paint_cic(xp, wp, b, true);
      CHECK(bitwise_equal(a.data, b.data));
    }
    {  // the scalar readout adjoint's mesh part
      const RealField<T> mesh(g);
      RealField<T> a(g), b(g);
      Positions<T> xa, xb;
      dp::readout_cic_adjoint(mesh, x, w, a, xa);
      dp::readout_cic_adjoint(mesh, xp, wp, b, xb);
      CHECK(bitwise_equal(a.data, b.data));
    }
    {  // the vector readout adjoint's mesh part
      const RealField<T> mesh(g);
      Positions<T> v(x.size());
      const auto v1 = diffpm::test::random_vector<T>(x.size(), 14),
                 v2 = diffpm::test::random_vector<T>(x.size(), 15);
      for (std::size_t p = 0; p < x.size(); ++p) v[p] = {w[p], T(10 * v1[p]), T(1e-3 * v2[p])};
      const auto vp = permuted(v, perm);
      RealField<T> ax(g), ay(g), az(g), bx(g), by(g), bz(g);
      Positions<T> xa, xb;
      dp::readout_cic_adjoint(mesh, mesh, mesh, x, v, ax, ay, az, xa);
      dp::readout_cic_adjoint(mesh, mesh, mesh, xp, vp, bx, by, bz, xb);
      CHECK(bitwise_equal(ax.data, bx.data));
      CHECK(bitwise_equal(ay.data, by.data));
      CHECK(bitwise_equal(az.data, bz.data));
    }
    {  // CicPlan, which is bitwise paint_cic
      dp::CicPlan<T> plan_a(g), plan_b(g);
      plan_a.set_points(x);
      plan_b.set_points(xp);
      RealField<T> a(g), b(g), c(g);
      plan_a.paint(w, a);
      plan_b.paint(wp, b);
      dp::paint_cic(x, w, c);
      CHECK(bitwise_equal(a.data, b.data));
      CHECK(bitwise_equal(a.data, c.data));
      plan_a.paint(a, T(2.5));
      plan_b.paint(b, T(2.5));
      CHECK(bitwise_equal(a.data, b.data));
    }
  }
}

TEMPLATE_TEST_CASE("fixed-point paints are bitwise a serial sum of deposit_terms",
                   "[particles][cic][fixed]", float, double) {
  using T = TestType;
  ThreadGuard guard;
  // n_x = 2 (each bucket is the other's previous one), 3, and a general mesh.
  for (const Grid& g : {Grid({2, 3, 4}, {10.0, 12.0, 14.0}), Grid({3, 4, 5}, {10.0, 10.0, 10.0}),
                        Grid({8, 6, 10}, {100.0, 80.0, 50.0})}) {
    INFO("mesh " << g.to_string());
    const auto x = random_positions<T>(5000, g, 21);
    const auto w = diffpm::test::random_vector<T>(x.size(), 22);
    const auto initial = diffpm::test::random_vector<T>(g.size(), 23);
    const std::vector<T> uniform(x.size(), T(-1.75));
    for (int threads : {1, 2}) {
      diffpm::set_threads(threads);
      RealField<T> mesh(g);
      dp::paint_cic(x, w, mesh);
      CHECK(bitwise_equal(mesh.data, fixed_reference(x, w, g, scale_of(w), nullptr)));
      dp::paint_cic(x, mesh, T(-1.75));
      CHECK(bitwise_equal(mesh.data, fixed_reference(x, uniform, g, scale_of(uniform), nullptr)));
      assign(mesh.data, initial);
      dp::paint_cic(x, w, mesh, true);
      CHECK(bitwise_equal(mesh.data, fixed_reference(x, w, g, scale_of(w), &initial)));

      // FFTW's padded in-place layout: the cells as the reference, the padding untouched.
      std::vector<T> buffer(diffpm::mesh::padded_in_place_size(g), T(12345));
      const RealView<T> padded = diffpm::mesh::padded_in_place(buffer.data(), g).real;
      dp::paint_cic(x, w, padded);
      const auto ref = fixed_reference(x, w, g, scale_of(w), nullptr);
      bool cells = true, padding = true;
      const int row = 2 * g.complex_nz();
      for (int i = 0; i < g.n[0]; ++i) {
        for (int j = 0; j < g.n[1]; ++j) {
          const T* r = buffer.data() + padded.offset(i, j, 0);
          cells = cells && std::memcmp(r, &ref[g.index(i, j, 0)], g.n[2] * sizeof(T)) == 0;
          for (int k = g.n[2]; k < row; ++k) padding = padding && r[k] == T(12345);
        }
      }
      CHECK(cells);
      CHECK(padding);

      // The readout adjoints accumulate their meshes' paints.
      const RealField<T> m(g);
      RealField<T> bar(g);
      assign(bar.data, initial);
      Positions<T> xb;
      dp::readout_cic_adjoint(m, x, w, bar, xb);
      CHECK(bitwise_equal(bar.data, fixed_reference(x, w, g, scale_of(w), &initial)));
      Positions<T> v(x.size());
      const auto v1 = diffpm::test::random_vector<T>(x.size(), 24),
                 v2 = diffpm::test::random_vector<T>(x.size(), 25);
      for (std::size_t p = 0; p < x.size(); ++p) v[p] = {w[p], T(1e3 * v1[p]), v2[p]};
      RealField<T> bx(g), by(g), bz(g);
      assign(by.data, initial);
      Positions<T> xv;
      dp::readout_cic_adjoint(m, m, m, x, v, bx, by, bz, xv);
      std::vector<T> comp[3];
      for (int d = 0; d < 3; ++d) {
        comp[d].resize(x.size());
        for (std::size_t p = 0; p < x.size(); ++p) comp[d][p] = v[p][d];
      }
      CHECK(bitwise_equal(bx.data, fixed_reference(x, comp[0], g, scale_of(comp[0]), nullptr)));
      CHECK(bitwise_equal(by.data, fixed_reference(x, comp[1], g, scale_of(comp[1]), &initial)));
      CHECK(bitwise_equal(bz.data, fixed_reference(x, comp[2], g, scale_of(comp[2]), nullptr)));

      // CicPlan's paints, uniform and strided weights.
      dp::CicPlan<T> plan(g);
      plan.set_points(x);
      RealField<T> pm(g);
      plan.paint(pm, T(-1.75));
      CHECK(bitwise_equal(pm.data, fixed_reference(x, uniform, g, scale_of(uniform), nullptr)));
      plan.paint(v[0].data() + 1, std::ptrdiff_t(sizeof(v[0])), pm);
      CHECK(bitwise_equal(pm.data, fixed_reference(x, comp[1], g, scale_of(comp[1]), nullptr)));
    }
  }
}

TEMPLATE_TEST_CASE("the plane gather handles a single x-plane (n_x = 1)", "[particles][cic][fixed]",
                   float, double) {
  using T = TestType;
  // mesh::Grid refuses n < 2, but the gather must not depend on it: with n_x = 1 both halves
  // of bucket 0 land on plane 0. Called through the detail functions, as paint_cic does.
  Grid g;  // set by hand: the constructor validates
  g.n = {1, 4, 5};
  g.length = {10.0, 12.0, 14.0};
  const auto x = random_positions<T>(3000, g, 31);
  const auto w = diffpm::test::random_vector<T>(x.size(), 32);
  const auto scale = scale_of(w);
  using Item = dp::detail::WeightedPoint<T, 1>;
  const auto buckets = dp::detail::bucket_by_plane<Item>(
      x, dp::detail::cic_geometry<T>(g), "test", [&](std::size_t p) {
        return Item{{x[p][0], x[p][1], x[p][2]}, {w[p]}};
      });
  std::vector<T> out(g.size(), T(7));
  dp::detail::gather_planes<1, T>(buckets, {diffpm::mesh::packed(out.data(), g)}, {scale}, false,
                                  [](const Item& item, std::size_t, int) { return item.w[0]; });
  CHECK(bitwise_equal(out, fixed_reference(x, w, g, scale, nullptr)));
}

TEMPLATE_TEST_CASE("fixed-point paints agree with an exact sum to the documented resolution",
                   "[particles][cic][fixed]", float, double) {
  using T = TestType;
  constexpr int W = fp::words<T>;
  // The bound, for a cell of m terms t_i = T(weight W_c) (exact doubles) with exact sum S, on a
  // scale s = 1 / inv (and, for W = 2, s_lo = 1 / inv_lo); u = 2^-53, u_T the unit roundoff of T:
  //  - each term is stored with an error of at most delta: W = 1, delta = inv / 2 <= 2^-62 B
  //    (B = n max|weight|); W = 2, hi = round(t s) leaves r = t s - hi (exact, |r| <= 1/2), lo
  //    = round(r s_lo), so delta = inv inv_lo / 2 <= 2^-62 B 2^-(62 - e_lo) with 4 n < 2^e_lo
  //    <= 8 n (docs/design.md, "Deterministic scatter");
  //  - the word sums H, L are exact integers, so A + Bv = H inv + L inv inv_lo is within
  //    m delta of S;
  //  - the conversion rounds H and L to double (relative u each: |A| + |Bv| <= |S| + m delta
  //    + 2 |Bv|, |Bv| <= m inv (1 + inv_lo) / 2 as |lo_i| <= (s_lo + 1) / 2) and, for W = 2,
  //    rounds their sum (u |cell| (1 + 2u)); then T(value) rounds to float (u_T |cell| (1 +
  //    2 u_T)); the products by powers of two are exact.
  // So |cell - S| <= m delta + u (|S| + m delta + m inv (1 + inv_lo) [W = 2]) + u |cell| (1 +
  // 2u) [W = 2] + u_T |cell| (1 + 2 u_T) [float]: for double, within 2 ulp of S (u |x| is at
  // most an ulp of x; the other terms, below 1e-21 here on cells of order 10, are negligible;
  // measured: half an ulp); for float, within an ulp of T plus m 2^-62 B. The reference S sums the
  // same T terms in long double with Sum2 (Ogita, Rump and Oishi, 2005: cascaded TwoSum), whose
  // error is at most u_ld |S| + gamma_{m-1}^2 sum |t_i| (u_ld the unit roundoff of long double,
  // gamma_k = k u_ld / (1 - k u_ld)), added to the bound.
  const Grid g({6, 5, 4}, {30.0, 25.0, 20.0});
  const std::size_t n = 200000;  // ~1700 terms per cell
  const auto x = random_positions<T>(n, g, 41);
  auto w = diffpm::test::random_vector<T>(n, 42);
  w[17] = T(40);  // a large weight sets the scale
  RealField<T> mesh(g);
  dp::paint_cic(x, w, mesh);

  const auto scale = scale_of(w);
  const double B = double(n) * max_abs(w);
  const double delta = W == 2 ? 0.5 * scale.inverse * scale.inverse_lo : 0.5 * scale.inverse;
  // The documented resolutions.
  CHECK(0.5 * scale.inverse <= std::ldexp(B, -62));
  CHECK(scale.inverse_lo <= std::ldexp(8.0 * double(n), -62));

  const auto geometry = dp::detail::cic_geometry<T>(g);
  using LD = long double;
  std::vector<LD> sum(g.size(), 0.0L), carry(g.size(), 0.0L);
  std::vector<double> terms(g.size(), 0.0), magnitude(g.size(), 0.0);
  for (std::size_t p = 0; p < n; ++p) {
    std::size_t index[8];
    T wc[8];
    dp::detail::cic_stencil(x[p].data(), geometry, index, wc);
    for (int c = 0; c < 8; ++c) {
      const LD t = LD(T(w[p] * wc[c]));
      const std::size_t i = index[c];
      // TwoSum: sum + t = s + e exactly.
      const LD s = sum[i] + t;
      const LD z = s - sum[i];
      const LD e = (sum[i] - (s - z)) + (t - z);
      sum[i] = s;
      carry[i] += e;
      terms[i] += 1.0;
      magnitude[i] += std::fabs(double(t));
    }
  }
  const double u = 0x1p-53;
  const double u_t = 0.5 * double(std::numeric_limits<T>::epsilon());
  const double u_ld = 0.5 * double(std::numeric_limits<LD>::epsilon());
  double worst = 0.0, largest_error = 0.0, worst_ulp = 0.0;
  for (std::size_t c = 0; c < g.size(); ++c) {
    const double m = terms[c];
    const LD exact = sum[c] + carry[c];
    const double s = std::fabs(double(exact)), cell = std::fabs(double(mesh.data[c]));
    const double gamma = (m - 1) * u_ld / (1 - (m - 1) * u_ld);
    const double reference = 2 * u_ld * s + gamma * gamma * magnitude[c];
    double bound = m * delta + u * (s + m * delta) + reference;
    if (W == 2) bound += u * m * scale.inverse * (1 + scale.inverse_lo) + u * cell * (1 + 2 * u);
    if (std::is_same_v<T, float>) bound += u_t * cell * (1 + 2 * u_t);
    bound *= 1 + 0x1p-40;  // the bound's own rounding
    const double error = double(std::fabs(LD(mesh.data[c]) - exact));
    largest_error = std::max(largest_error, error);
    worst = std::max(worst, error / bound);
    int e = 0;
    std::frexp(s, &e);  // ulp(S) = 2^(e - 1) ulp(1) for s in [2^(e - 1), 2^e)
    worst_ulp =
        std::max(worst_ulp, error / std::ldexp(double(std::numeric_limits<T>::epsilon()), e - 1));
  }
  INFO("largest error " << largest_error << ", per-term resolution " << delta
                        << ", worst error / bound " << worst << ", worst error in ulp of the sum "
                        << worst_ulp);
  CHECK(worst <= 1.0);
}

TEMPLATE_TEST_CASE("float paints keep one word: the bits of to_fixed terms and from_fixed",
                   "[particles][cic][fixed]", float) {
  using T = TestType;
  static_assert(fp::words<T> == 1);
  // The one-word contract as it stood before double took a second word: terms to_fixed(T(weight
  // W_c), scale), summed in int64, converted by T(from_fixed(sum, inverse)).
  const Grid g({8, 6, 10}, {100.0, 80.0, 50.0});
  const auto x = random_positions<T>(5000, g, 61);
  const auto w = diffpm::test::random_vector<T>(x.size(), 62);
  const auto scale = scale_of(w);
  const auto geometry = dp::detail::cic_geometry<T>(g);
  std::vector<fp::Accumulator> sum(g.size(), 0);
  bool terms_match = true;
  for (std::size_t p = 0; p < x.size(); ++p) {
    std::size_t index[8];
    T wc[8];
    dp::detail::cic_stencil(x[p].data(), geometry, index, wc);
    std::size_t index_terms[8];
    fp::Term term[8];
    dp::detail::deposit_terms(x[p].data(), geometry, w[p], scale, index_terms, term);
    for (int c = 0; c < 8; ++c) {
      const fp::Accumulator old = fp::to_fixed(double(T(w[p] * wc[c])), scale.scale);
      terms_match =
          terms_match && term[c].hi == old && term[c].lo == 0 && index_terms[c] == index[c];
      sum[index[c]] += old;
    }
  }
  CHECK(terms_match);
  std::vector<T> old(g.size());
  for (std::size_t c = 0; c < g.size(); ++c) old[c] = T(fp::from_fixed(sum[c], scale.inverse));
  RealField<T> mesh(g);
  dp::paint_cic(x, w, mesh);
  CHECK(bitwise_equal(mesh.data, old));
}

TEMPLATE_TEST_CASE("fixed-point paints refuse non-finite weights, leaving the mesh untouched",
                   "[particles][cic][fixed][errors]", float, double) {
  using T = TestType;
  const Grid g({4, 5, 6}, {10.0, 10.0, 10.0});
  const auto x = random_positions<T>(100, g, 51);
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const T inf = std::numeric_limits<T>::infinity();
  RealField<T> mesh(g);
  std::fill(mesh.data.begin(), mesh.data.end(), T(3));
  const auto before = mesh.data;
  for (const T bad : {nan, inf, -inf}) {
    INFO("weight " << bad);
    CHECK_THROWS_AS(dp::paint_cic(x, mesh, bad), InvalidArgument);
    CHECK_THROWS_WITH(dp::paint_cic(x, mesh, bad), Catch::Contains("paint_cic"));
    auto w = diffpm::test::random_vector<T>(x.size(), 52);
    w[57] = bad;
    CHECK_THROWS_AS(dp::paint_cic(x, w, mesh), InvalidArgument);
    CHECK_THROWS_WITH(dp::paint_cic(x, w, mesh),
                      Catch::Contains("paint_cic") && Catch::Contains("particle 57"));
    Positions<T> xb;
    CHECK_THROWS_WITH(dp::readout_cic_adjoint(mesh, x, w, mesh, xb),
                      Catch::Contains("readout_cic_adjoint") && Catch::Contains("particle 57"));
    Positions<T> v(x.size(), {T(1), T(2), T(3)});
    v[57][2] = bad;
    RealField<T> mx(g), my(g), mz(g);
    CHECK_THROWS_WITH(dp::readout_cic_adjoint(mesh, mesh, mesh, x, v, mx, my, mz, xb),
                      Catch::Contains("readout_cic_adjoint") && Catch::Contains("particle 57"));
    dp::CicPlan<T> plan(g);
    plan.set_points(x);
    CHECK_THROWS_WITH(plan.paint(w, mesh), Catch::Contains("CIC plan paint"));
    CHECK_THROWS_WITH(plan.paint(mesh, bad), Catch::Contains("CIC plan paint"));
    CHECK(bitwise_equal(mesh.data, before));
    for (const auto& m : {mx, my, mz}) {
      CHECK(std::all_of(m.data.begin(), m.data.end(), [](T c) { return c == T(0); }));
    }
  }
}
