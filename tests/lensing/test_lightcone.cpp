// Lightcone kernels: shell painting against a serial brute-force deposit, determinism across
// thread counts, the adjoints of shell painting, plane sampling and the Born sum by dot-product
// tests against independent tangents, and the analytic checks of issue 4: a uniform particle
// distribution gives kappa = 0, a thin overdense sheet gives the thin-lens kappa.
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "diffpm/core/openmp.hpp"
#include "diffpm/cosmology/cosmology.hpp"
#include "diffpm/lensing/lightcone.hpp"

using diffpm::InvalidArgument;
using diffpm::lensing::Map;
using diffpm::lensing::MapGeometry;
using diffpm::lensing::Plane;
using diffpm::lensing::PlaneGrid;
using diffpm::lensing::Replicas;
using diffpm::particles::Positions;
namespace lensing = diffpm::lensing;

namespace {

using LD = long double;

// A non-cubic box; the plane has the box's transverse sides (y, z).
const std::array<double, 3> kBox{100.0, 80.0, 60.0};
PlaneGrid plane_grid() { return PlaneGrid({8, 6}, {kBox[1], kBox[2]}); }

template <class T>
Positions<T> random_positions(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-0.2, 1.2);  // also outside the box: not wrapped
  Positions<T> x(n);
  for (auto& p : x)
    for (int d = 0; d < 3; ++d) p[d] = T(u(rng) * kBox[d]);
  return x;
}

// Serial brute-force shell paint in long double, written from the definition in
// shell_painting.hpp (every replica m = 0..5 is tried, no range logic, no buckets). Returns the
// plane before the "- 1", as a function of the positions and the shell scalars.
std::vector<LD> brute_force_plane(const std::vector<std::array<LD, 3>>& x, const Replicas& rep,
                                  const PlaneGrid& g, LD chi, LD width, LD nbar) {
  std::vector<LD> plane(g.size(), 0.0L);
  const LD cell_u = LD(g.length[0]) / g.n[0], cell_v = LD(g.length[1]) / g.n[1];
  const LD w = 1.0L / (nbar * width * cell_u * cell_v);
  for (const auto& p : x) {
    for (int m = 0; m <= 5; ++m) {
      const auto r = rep.shift(m);
      LD c = p[0] + r[0] - rep.observer[0];
      c -= LD(kBox[0]) * std::floor(c / LD(kBox[0]));
      const LD s = m * LD(kBox[0]) + c;
      const LD hat = 1.0L - std::fabs(s - chi) / width;
      if (!(hat > 0.0L)) continue;
      const LD tu = (p[1] + r[1] - rep.observer[1]) / cell_u;
      const LD tv = (p[2] + r[2] - rep.observer[2]) / cell_v;
      const LD fu = tu - std::floor(tu), fv = tv - std::floor(tv);
      const long long iu = ((long long)std::floor(tu) % g.n[0] + g.n[0]) % g.n[0];
      const long long iv = ((long long)std::floor(tv) % g.n[1] + g.n[1]) % g.n[1];
      for (int a = 0; a < 2; ++a)
        for (int b = 0; b < 2; ++b) {
          const std::size_t idx = std::size_t((iu + a) % g.n[0]) * g.n[1] + (iv + b) % g.n[1];
          plane[idx] += w * hat * (a ? fu : 1.0L - fu) * (b ? fv : 1.0L - fv);
        }
    }
  }
  return plane;
}

template <class T>
std::vector<std::array<LD, 3>> to_ld(const Positions<T>& x) {
  std::vector<std::array<LD, 3>> y(x.size());
  for (std::size_t p = 0; p < x.size(); ++p)
    for (int d = 0; d < 3; ++d) y[p][d] = LD(x[p][d]);
  return y;
}

template <class T>
constexpr double eps() {
  return double(std::numeric_limits<T>::epsilon());
}

}  // namespace

TEMPLATE_TEST_CASE("paint_shell matches a brute-force deposit and is thread-count independent",
                   "[lensing][lightcone]", float, double) {
  using T = TestType;
  const auto x = random_positions<T>(2000, 1);
  for (bool shifts : {false, true}) {
    const auto rep = Replicas::centred(kBox, shifts, 7);
    const double chi = 130.0, width = 35.0;  // spans replicas 0 and 1
    Plane<T> plane(plane_grid());
    lensing::paint_shell(x, rep, chi, width, plane);
    const LD nbar = LD(x.size()) / (LD(kBox[0]) * kBox[1] * kBox[2]);
    const auto ref = brute_force_plane(to_ld(x), rep, plane.grid, chi, width, nbar);
    double worst = 0.0, scale = 0.0;
    for (std::size_t c = 0; c < ref.size(); ++c) {
      worst = std::max(worst, std::fabs(double(plane.data[c]) - double(ref[c] - 1.0L)));
      scale = std::max(scale, std::fabs(double(ref[c])));
    }
    // Accumulation is in double; the float plane is rounded once at the end (and the float
    // positions are the same numbers in both), so float is off by ~eps_float * |delta + 1|.
    CHECK(worst <= (std::is_same_v<T, float> ? 2.0 * eps<float>() : 1e-12) * scale);

    // Bitwise the same for 1 and 2 threads.
    const int saved = diffpm::max_threads();
    diffpm::set_threads(1);
    Plane<T> one(plane_grid());
    lensing::paint_shell(x, rep, chi, width, one);
    diffpm::set_threads(2);
    Plane<T> two(plane_grid());
    lensing::paint_shell(x, rep, chi, width, two);
    diffpm::set_threads(saved);
    CHECK(one.data == two.data);
    CHECK(one.data == plane.data);
  }
}

TEMPLATE_TEST_CASE("paint_shell_adjoint passes the dot-product test", "[lensing][adjoint]", float,
                   double) {
  using T = TestType;
  const auto x = random_positions<T>(400, 2);
  const auto rep = Replicas::centred(kBox, true, 3);
  const double chi = 130.0, width = 35.0;
  const PlaneGrid g = plane_grid();
  std::mt19937_64 rng(5);
  std::normal_distribution<double> n01;
  Plane<T> w(g);
  for (auto& v : w.data) v = T(n01(rng));
  std::vector<std::array<LD, 3>> v(x.size());
  for (auto& vp : v)
    for (auto& c : vp) c = LD(n01(rng));
  const LD v_chi = n01(rng), v_width = n01(rng);

  // <J v, w> by a central difference of the long-double brute force along (v, v_chi, v_width).
  // The deposit is a product of functions linear in s, u and v between kinks, so the central
  // difference is exact up to O(eps^2) terms (1e-12 relative); with 400 random particles no
  // kink lies within eps = 1e-6 of any of them (checked by the agreement itself: a crossing
  // would show as an O(1) error).
  const LD nbar = LD(x.size()) / (LD(kBox[0]) * kBox[1] * kBox[2]);
  const LD e = 1e-6L;
  auto xs = to_ld(x);
  auto shifted = [&](LD sign) {
    auto y = xs;
    for (std::size_t p = 0; p < y.size(); ++p)
      for (int d = 0; d < 3; ++d) y[p][d] += sign * e * v[p][d];
    return brute_force_plane(y, rep, g, chi + sign * e * v_chi, width + sign * e * v_width, nbar);
  };
  const auto up = shifted(1.0L), down = shifted(-1.0L);
  LD lhs = 0.0L;
  for (std::size_t c = 0; c < g.size(); ++c) lhs += (up[c] - down[c]) / (2.0L * e) * LD(w.data[c]);

  Positions<T> x_bar;
  const auto grad = lensing::paint_shell_adjoint(x, rep, chi, width, w, x_bar);
  LD rhs = LD(grad.chi) * v_chi + LD(grad.width) * v_width;
  for (std::size_t p = 0; p < x.size(); ++p)
    for (int d = 0; d < 3; ++d) rhs += LD(x_bar[p][d]) * v[p][d];
  // double: the adjoint sums in double (1e-14) and the difference is exact to 1e-12. float:
  // x_bar is rounded to float per particle and per term (~6e-8 each, random signs over 1200
  // terms) and the positions themselves are float: 1e-5 leaves a margin of ~10.
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-10;
  CHECK(double(std::fabs(lhs - rhs)) <= tol * double(std::fabs(lhs)));
  CHECK(std::fabs(double(lhs)) > 0.0);
}

TEMPLATE_TEST_CASE("interpolate_plane: exact on bilinear data, and its adjoint", "[lensing][adjoint]",
                   float, double) {
  using T = TestType;
  const PlaneGrid g = plane_grid();
  const MapGeometry geo(12, 5.0);
  const double chi = 700.0;  // the map spans chi * 5 deg = 61 Mpc/h: wraps the 60 Mpc/h side
  std::mt19937_64 rng(11);
  std::normal_distribution<double> n01;
  Plane<T> P(g);
  for (auto& v : P.data) v = T(n01(rng));
  Map<T> M(geo);
  for (auto& v : M.data) v = T(n01(rng));

  // Sampling at a plane's own mesh point returns the stored value: a map with pixels at
  // chi * theta = integer cells (pixel 0 of a 2-pixel map at the negative half angle).
  {
    Map<T> one(MapGeometry(2, 1.0));
    const double chi1 = -g.length[0] / g.n[0] / one.geometry.angle(0);  // u = -1 cell
    lensing::interpolate_plane(P, chi1, one);
    const double u = chi1 * one.geometry.angle(0), v = chi1 * one.geometry.angle(0);
    const int i = g.n[0] - 1;
    const double tv = v / (g.length[1] / g.n[1]) + g.n[1];
    const int j0 = int(std::floor(tv));
    const double fv = tv - j0;
    const double expect = double(P.data[g.index(i, j0 % g.n[1])]) * (1 - fv) +
                          double(P.data[g.index(i, (j0 + 1) % g.n[1])]) * fv;
    CHECK(u == Approx(-g.length[0] / g.n[0]).epsilon(1e-14));
    CHECK(double(one(0, 0)) == Approx(expect).epsilon(std::is_same_v<T, float> ? 1e-6 : 1e-13));
  }

  // Linear part: <S P, M> = <P, S^T M>.
  Map<T> SP(geo);
  lensing::interpolate_plane(P, chi, SP);
  Plane<T> StM;
  const double d_chi = lensing::interpolate_plane_adjoint(P, chi, M, StM);
  LD lhs = 0.0L, rhs = 0.0L;
  for (std::size_t i = 0; i < M.data.size(); ++i) lhs += LD(SP.data[i]) * LD(M.data[i]);
  for (std::size_t i = 0; i < P.data.size(); ++i) rhs += LD(P.data[i]) * LD(StM.data[i]);
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-13;
  CHECK(double(std::fabs(lhs - rhs)) <= tol * double(std::fabs(lhs)));

  // dL/dchi against a central difference in chi of <S(chi) P, M> (bilinear between cell
  // crossings: the difference is exact to O(e^2); e = 1e-6 chi crosses no cell edge here).
  if (std::is_same_v<T, double>) {
    const double e = 1e-6 * chi;
    Map<T> a(geo), b(geo);
    lensing::interpolate_plane(P, chi + e, a);
    lensing::interpolate_plane(P, chi - e, b);
    double fd = 0.0;
    for (std::size_t i = 0; i < M.data.size(); ++i)
      fd += (double(a.data[i]) - double(b.data[i])) / (2 * e) * double(M.data[i]);
    // The two sampled maps agree to ~1e-16 in 1e-6 of a cell: the difference carries ~1e-10.
    CHECK(d_chi == Approx(fd).epsilon(1e-7));
  }
}

TEMPLATE_TEST_CASE("born_accumulate and its adjoint", "[lensing][adjoint]", float, double) {
  using T = TestType;
  const MapGeometry geo(9, 2.0);
  std::mt19937_64 rng(13);
  std::normal_distribution<double> n01;
  Map<T> plane_map(geo), kappa(geo), kappa_bar(geo);
  for (auto& v : plane_map.data) v = T(n01(rng));
  for (auto& v : kappa_bar.data) v = T(n01(rng));
  const double c = 0.37;
  lensing::born_accumulate(plane_map, c, kappa);
  Map<T> pm_bar;
  const double dc = lensing::born_accumulate_adjoint(plane_map, c, kappa_bar, pm_bar);
  // J (v_map, v_c) = c v_map + v_c plane_map; dot with kappa_bar, against the adjoint.
  Map<T> v(geo);
  for (auto& e : v.data) e = T(n01(rng));
  const double v_c = n01(rng);
  LD lhs = 0.0L, rhs = LD(dc) * v_c;
  for (std::size_t i = 0; i < v.data.size(); ++i) {
    lhs += (LD(c) * LD(v.data[i]) + LD(v_c) * LD(plane_map.data[i])) * LD(kappa_bar.data[i]);
    rhs += LD(v.data[i]) * LD(pm_bar.data[i]);
    CHECK(double(kappa.data[i]) == Approx(c * double(plane_map.data[i])).epsilon(1e-6));
  }
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-13;
  CHECK(double(std::fabs(lhs - rhs)) <= tol * double(std::fabs(lhs)));
}

namespace {

// A particle lattice of n^3 in a cube of side L, at (i + 1/4, j + 1/4, k + 1/4) L/n.
template <class T>
Positions<T> lattice(int n, double L) {
  Positions<T> x;
  const double d = L / n;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      for (int k = 0; k < n; ++k)
        x.push_back({T((i + 0.25) * d), T((j + 0.25) * d), T((k + 0.25) * d)});
  return x;
}

// Runs a static lightcone: every plane painted from the same positions.
template <class T>
std::vector<Map<T>> static_lightcone(const diffpm::cosmology::Cosmology<double>& cosmo,
                                     const Positions<T>& x, std::array<double, 3> box,
                                     int plane_cells,
                                     const MapGeometry& geo, double chi_max, int planes,
                                     double chi_source, double nbar) {
  const auto shells = lensing::Shells<double>::make(cosmo.background(), chi_max, planes);
  const auto q = [&](double chi) { return chi < chi_source ? 1.0 - chi / chi_source : 0.0; };
  std::vector<std::vector<double>> w{
      lensing::born_weights(cosmo.parameters().Omega_m(), shells, q)};
  lensing::Lightcone<T> lc(shells, Replicas::centred(box),
                           PlaneGrid({plane_cells, plane_cells}, {box[1], box[2]}), geo, w, nbar);
  for (double a : lc.scale_factors()) lc.paint(a, x);
  return lc.convergence();
}

}  // namespace

TEMPLATE_TEST_CASE("A uniform particle distribution gives kappa = 0", "[lensing][lightcone]",
                   float, double) {
  using T = TestType;
  const diffpm::cosmology::Cosmology<double> cosmo(diffpm::cosmology::Parameters<double>{});
  // 16^3 particles in 200 Mpc/h: spacing d = 12.5. Planes with cells of d, so the 2D CIC of
  // the lattice is the same in every cell; shells of half-width Delta = 5 d, so the hat sampled
  // at spacing d sums to exactly Delta / d for any offset (a triangle of integer half-width k
  // is the convolution of two boxes of width k). Then every plane is exactly uniform: delta = 0
  // up to round-off, and so is kappa, also where the lightcone crosses replicas (chi_max =
  // 6 Delta = 375 Mpc/h, nearly 2 boxes) and the field (4 deg at 300 Mpc/h = 21 Mpc/h) is
  // resampled from several plane cells.
  const int n = 16;
  const double L = 200.0, d = L / n;
  const auto x = lattice<T>(n, L);
  const auto kappa = static_lightcone<T>(cosmo, x, {L, L, L}, n, MapGeometry(32, 4.0), 6 * 5 * d,
                                         5, 6 * 5 * d, 0.0);
  double worst = 0.0;
  for (const auto& v : kappa[0].data) worst = std::max(worst, std::fabs(double(v)));
  // kappa of one unit of delta over the whole range is ~3/2 Om (chi_max H0/c)^2 ~ 0.004; the
  // planes are 1 - sum of ~10 weights, off by ~10 eps.
  CHECK(worst <= 0.004 * 50 * eps<T>());
}

TEMPLATE_TEST_CASE("A thin overdense sheet gives the thin-lens kappa", "[lensing][lightcone]", float,
                   double) {
  using T = TestType;
  const diffpm::cosmology::Cosmology<double> cosmo(diffpm::cosmology::Parameters<double>{});
  const double Om = cosmo.parameters().Omega_m();
  const int n = 16;
  const double L = 200.0, d = L / n;
  const double chi_max = 1000.0, chi_source = 1000.0;
  const int planes = 9;  // Delta = 100 Mpc/h, nodes at 100, 200, ..., 900
  const double nbar = double(n) * n * n / (L * L * L);
  const double H = 1.0 / diffpm::constants::hubble_distance;
  // A box longer than the lightcone (1200 Mpc/h along the line of sight), so that the sheet is
  // not repeated by the replicas (in a 200 Mpc/h cube it would recur every 200 Mpc/h).
  const std::array<double, 3> box{1200.0, L, L};
  // The sheet: one particle per plane cell (d x d) at line-of-sight distance chi_l, i.e. a
  // surface overdensity Sigma = int delta dchi = 1 / (nbar d^2) Mpc/h. The thin-lens
  // convergence of a sheet is 3/2 Om (H0/c)^2 Sigma chi_l (chi_s - chi_l) / (chi_s a(chi_l))
  // (Bartelmann & Schneider 2001, eq. 6.16 with delta = Sigma delta_D(chi - chi_l)).
  auto sheet_kappa = [&](double chi_l) {
    Positions<T> x;
    for (int j = 0; j < n; ++j)
      for (int k = 0; k < n; ++k) {
        x.push_back({T(chi_l), T((j + 0.25) * d), T((k + 0.25) * d)});
      }
    return static_lightcone<T>(cosmo, x, box, n, MapGeometry(8, 3.0), chi_max, planes, chi_source,
                               nbar)[0];
  };
  auto g = [&](double chi) {
    return chi * (chi_source - chi) / (chi_source * cosmo.background().scale_factor_at_distance(chi));
  };
  const double Sigma = 1.0 / (nbar * d * d);
  // The uniform sheet gives delta = Sigma * hat / Delta - 1 on each plane with the mean
  // subtracted for the full particle density nbar; here the sheet is the only matter, so
  // subtract the "- 1" contribution, the convergence of an empty universe (the same for every
  // sheet position): kappa_empty = -sum_i c_i.
  auto empty = [&]() {
    const auto shells = lensing::Shells<double>::make(cosmo.background(), chi_max, planes);
    double s = 0.0;
    for (int i = 0; i < planes; ++i) s += 1.5 * Om * H * H * shells.width * g(shells.chi[i]);
    return -s;
  }();
  // On a node (chi_l = 400 Mpc/h): exact.
  {
    const auto k = sheet_kappa(400.0);
    const double expect = 1.5 * Om * H * H * Sigma * g(400.0) + empty;
    for (const auto& v : k.data) {
      CHECK(double(v) == Approx(expect).epsilon(std::is_same_v<T, float> ? 1e-5 : 1e-10));
    }
  }
  // Between nodes (chi_l = 430): the hats interpolate g linearly between the nodes 400 and
  // 500; the error is at most Delta^2 / 8 max|g''| (trapezoid/linear interpolation bound), with
  // g'' estimated by differences on [400, 500].
  {
    const double chi_l = 430.0;
    const auto k = sheet_kappa(chi_l);
    const double exact = 1.5 * Om * H * H * Sigma * g(chi_l) + empty;
    double g2 = 0.0;
    for (double c = 400.0; c <= 500.0; c += 10.0) {
      g2 = std::max(g2, std::fabs(g(c + 1.0) - 2.0 * g(c) + g(c - 1.0)));
    }
    const double bound = 1.5 * Om * H * H * Sigma * 100.0 * 100.0 / 8.0 * g2;
    for (const auto& v : k.data) {
      CHECK(std::fabs(double(v) - exact) <= bound * 1.01 + 1e-6 * std::fabs(exact));
    }
    // And the bound is not vacuous: it is below 2% of the sheet's convergence.
    CHECK(bound < 0.02 * (exact - empty));
  }
}

TEST_CASE("Lightcone kernels reject bad input", "[lensing][lightcone]") {
  const auto rep = Replicas::centred(kBox);
  Plane<double> plane(plane_grid());
  Positions<double> x{{1.0, 2.0, 3.0}, {std::nan(""), 1.0, 1.0}};
  CHECK_THROWS_AS(lensing::paint_shell(x, rep, 100.0, 10.0, plane), InvalidArgument);
  x.pop_back();
  CHECK_THROWS_AS(lensing::paint_shell(x, rep, -1.0, 10.0, plane), InvalidArgument);
  CHECK_THROWS_AS(lensing::paint_shell(x, rep, 100.0, 0.0, plane), InvalidArgument);
  Plane<double> wrong(PlaneGrid({8, 6}, {80.0, 80.0}));
  CHECK_THROWS_AS(lensing::paint_shell(x, rep, 100.0, 10.0, wrong), InvalidArgument);
  CHECK_THROWS_AS(PlaneGrid({1, 6}, {80.0, 60.0}), InvalidArgument);
  CHECK_THROWS_AS(MapGeometry(16, 95.0), InvalidArgument);
  CHECK_THROWS_AS(Replicas::centred({100.0, -1.0, 3.0}), InvalidArgument);
  const diffpm::cosmology::Cosmology<double> cosmo(diffpm::cosmology::Parameters<double>{});
  CHECK_THROWS_AS(lensing::Shells<double>::make(cosmo.background(), 1000.0, 0), InvalidArgument);
  CHECK_THROWS_AS(lensing::Shells<double>::make(cosmo.background(), -5.0, 4), InvalidArgument);
  auto shells = lensing::Shells<double>::make(cosmo.background(), 1000.0, 3);
  lensing::Lightcone<double> lc(shells, Replicas::centred({200.0, 200.0, 200.0}),
                                PlaneGrid({8, 8}, {200.0, 200.0}), MapGeometry(8, 2.0),
                                {{1.0, 1.0, 1.0}});
  CHECK_THROWS_AS(lc.convergence(), InvalidArgument);  // nothing painted yet
  CHECK_THROWS_AS(lc.paint(0.123, x), InvalidArgument);  // not a plane's scale factor
  CHECK_THROWS_AS(lensing::Lightcone<double>(shells, Replicas::centred({200.0, 200.0, 200.0}),
                                             PlaneGrid({8, 8}, {200.0, 200.0}), MapGeometry(8, 2.0),
                                             {{1.0, 1.0}}),
                  InvalidArgument);  // 2 weights for 3 planes
}
