// Lightcone kernels: shell painting against a serial brute-force deposit, determinism across
// thread counts, the adjoints of shell painting, plane sampling and the Born sum by dot-product
// tests against independent tangents, and the analytic checks: a uniform particle
// distribution gives kappa = 0, a thin overdense sheet gives the thin-lens kappa.
#include <algorithm>
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

// A non-cubic box; the planes cover a 6 deg map at distances of a few hundred Mpc/h, wider than
// the box's 80 x 60 Mpc/h cross-section there, so particles appear through several periodic
// images across the line of sight.
const std::array<double, 3> kBox{100.0, 80.0, 60.0};
const MapGeometry kMap(8, 6.0);
PlaneGrid plane_grid(double chi) { return PlaneGrid::covering(kMap, 9.0, chi); }

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
// shell_painting.hpp: every replica m = 0..9 along the line of sight and every image
// -40..40 across it is tried (no range logic, no buckets), each image deposited with 2D CIC
// on the points of the plane that exist. Returns 1 + delta, as a function of the positions
// and the shell scalars.
std::vector<LD> brute_force_plane(const std::vector<std::array<LD, 3>>& x, const Replicas& rep,
                                  const PlaneGrid& g, LD chi, LD width, LD nbar) {
  std::vector<LD> plane(g.size(), 0.0L);
  const LD cell = g.cell;
  for (const auto& p : x) {
    for (int m = 0; m <= 9; ++m) {
      const auto r = rep.shift(m);
      const auto o = rep.orientation(m);
      std::array<LD, 3> q;  // the image in replica m, as replicas.hpp defines it
      for (int d = 0; d < 3; ++d) q[d] = LD(o.sign[d]) * p[o.axis[d]] + r[d];
      LD c = q[0] - rep.observer[0];
      c -= LD(rep.box[0]) * std::floor(c / LD(rep.box[0]));
      const LD s = m * LD(rep.box[0]) + c;
      const LD hat = 1.0L - std::fabs(s - chi) / width;
      if (!(hat > 0.0L) || !(s > 0.0L)) continue;
      for (int iy = -40; iy <= 40; ++iy)
        for (int iz = -40; iz <= 40; ++iz) {
          const LD tx =
              (q[1] - rep.observer[1] + iy * LD(rep.box[1])) / s / cell + 0.5L * (g.n - 1);
          const LD ty =
              (q[2] - rep.observer[2] + iz * LD(rep.box[2])) / s / cell + 0.5L * (g.n - 1);
          const long long i0 = (long long)std::floor(tx), j0 = (long long)std::floor(ty);
          const LD fx = tx - i0, fy = ty - j0;
          for (int a = 0; a < 2; ++a)
            for (int b = 0; b < 2; ++b) {
              const long long i = i0 + a, j = j0 + b;
              if (i < 0 || j < 0 || i >= g.n || j >= g.n) continue;
              plane[std::size_t(j) * g.n + std::size_t(i)] +=
                  hat / (nbar * width * cell * cell * s * s) * (a ? fx : 1.0L - fx) *
                  (b ? fy : 1.0L - fy);
            }
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
  // Plain, shifted, and shifted and reoriented replicas: reflections only in the non-cubic box,
  // all 48 symmetries in a cube (the same particles, seen in a cube of side 80).
  const std::vector<Replicas> variants = {Replicas::centred(kBox), Replicas::centred(kBox, true, 7),
                                          Replicas::centred(kBox, true, 7, true),
                                          Replicas::centred({80.0, 80.0, 80.0}, true, 7, true)};
  for (const auto& rep : variants) {
    const double chi = 230.0, width = 35.0;  // spans replicas 1 and 2 (2 and 3 in the cube)
    Plane<T> plane(plane_grid(chi));
    lensing::paint_shell(x, rep, chi, width, plane);
    const LD nbar = LD(x.size()) / (LD(rep.box[0]) * rep.box[1] * rep.box[2]);
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
    Plane<T> one(plane_grid(chi));
    lensing::paint_shell(x, rep, chi, width, one);
    diffpm::set_threads(2);
    Plane<T> two(plane_grid(chi));
    lensing::paint_shell(x, rep, chi, width, two);
    diffpm::set_threads(saved);
    CHECK(one.data == two.data);
    CHECK(one.data == plane.data);
  }
}

TEMPLATE_TEST_CASE("paint_shell does not depend on the particle order (fixed-point deposit)",
                   "[lensing][lightcone][determinism]", float, double) {
  using T = TestType;
  const auto x = random_positions<T>(3000, 3);
  Positions<T> reversed(x.rbegin(), x.rend());
  Positions<T> shuffled = x;
  std::mt19937_64 rng(4);
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  const Replicas rep = Replicas::centred(kBox, true, 7, true);
  const double chi = 230.0, width = 35.0;
  Plane<T> a(plane_grid(chi)), b(plane_grid(chi)), c(plane_grid(chi));
  lensing::paint_shell(x, rep, chi, width, a);
  lensing::paint_shell(reversed, rep, chi, width, b);
  lensing::paint_shell(shuffled, rep, chi, width, c);
  CHECK(a.data == b.data);
  CHECK(a.data == c.data);
}

TEMPLATE_TEST_CASE("paint_shell_adjoint passes the dot-product test", "[lensing][adjoint]", float,
                   double) {
  using T = TestType;
  const auto x = random_positions<T>(400, 2);
  // Shifted replicas of the non-cubic box, and shifted and reoriented replicas of a cube (the
  // orientation's permutation and signs route each gradient component to its own axis).
  for (const auto& rep :
       {Replicas::centred(kBox, true, 3), Replicas::centred({80.0, 80.0, 80.0}, true, 3, true)}) {
    const double chi = 230.0, width = 35.0;
    const PlaneGrid g = plane_grid(chi);
    std::mt19937_64 rng(5);
    std::normal_distribution<double> n01;
    Plane<T> w(g);
    for (auto& v : w.data) v = T(n01(rng));
    std::vector<std::array<LD, 3>> v(x.size());
    for (auto& vp : v)
      for (auto& c : vp) c = LD(n01(rng));
    const LD v_chi = n01(rng), v_width = n01(rng);

    // <J v, w> by a central difference of the long-double brute force along (v, v_chi, v_width).
    // Between kinks the deposit is smooth (products of linear functions of s and of the angles
    // X / s), so the central difference is exact up to O(eps^2) terms (1e-12 relative); with
    // 400 random particles no kink lies within eps = 1e-6 of any of them (a crossing would show
    // as an O(1e-3) error, far above the tolerance).
    const LD nbar = LD(x.size()) / (LD(rep.box[0]) * rep.box[1] * rep.box[2]);
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
    for (std::size_t c = 0; c < g.size(); ++c)
      lhs += (up[c] - down[c]) / (2.0L * e) * LD(w.data[c]);

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
}

TEMPLATE_TEST_CASE("interpolate_plane: exact on bilinear data, and its adjoint",
                   "[lensing][adjoint]", float, double) {
  using T = TestType;
  const MapGeometry geo(12, 5.0);
  const PlaneGrid g = PlaneGrid::covering(geo, 8.0, 700.0);
  REQUIRE(g.cell > geo.pixel_rad());  // a real interpolation, not a copy
  // A bilinear function of angle is reproduced exactly at every pixel centre.
  Plane<T> P(g);
  auto f = [](double tx, double ty) { return 0.3 + 20.0 * tx - 7.0 * ty + 900.0 * tx * ty; };
  for (int j = 0; j < g.n; ++j)
    for (int i = 0; i < g.n; ++i) P.data[g.index(i, j)] = T(f(g.angle(i), g.angle(j)));
  Map<T> M(geo);
  lensing::interpolate_plane(P, M);
  for (int iy = 0; iy < geo.pixels; ++iy)
    for (int ix = 0; ix < geo.pixels; ++ix) {
      CHECK(
          double(M(ix, iy)) ==
          Approx(f(geo.angle(ix), geo.angle(iy))).margin(std::is_same_v<T, float> ? 1e-5 : 1e-13));
    }

  // Linear: <S P, M> = <P, S^T M> for random P and M.
  std::mt19937_64 rng(11);
  std::normal_distribution<double> n01;
  for (auto& v : P.data) v = T(n01(rng));
  for (auto& v : M.data) v = T(n01(rng));
  Map<T> SP(geo);
  lensing::interpolate_plane(P, SP);
  Plane<T> StM(g);
  lensing::interpolate_plane_adjoint(M, StM);
  LD lhs = 0.0L, rhs = 0.0L;
  for (std::size_t i = 0; i < M.data.size(); ++i) lhs += LD(SP.data[i]) * LD(M.data[i]);
  for (std::size_t i = 0; i < P.data.size(); ++i) rhs += LD(P.data[i]) * LD(StM.data[i]);
  // Both sides sum the same ~600 products; float rounds each stored sample (6e-8).
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-13;
  CHECK(double(std::fabs(lhs - rhs)) <= tol * double(std::fabs(lhs)));
  // A plane that does not reach one cell beyond the map is refused.
  CHECK_THROWS_AS(lensing::interpolate_plane(Plane<T>(PlaneGrid(5, geo.pixel_rad())), M),
                  InvalidArgument);
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

// A static lightcone: every plane painted from the same positions.
template <class T>
std::vector<Map<T>> static_lightcone(const diffpm::cosmology::Cosmology<double>& cosmo,
                                     const Positions<T>& x, std::array<double, 3> box,
                                     const std::vector<PlaneGrid>& grids, const MapGeometry& geo,
                                     const lensing::Shells<double>& shells, double chi_source,
                                     double nbar) {
  const auto q = [&](double chi) { return chi < chi_source ? 1.0 - chi / chi_source : 0.0; };
  std::vector<std::vector<double>> w{
      lensing::born_weights(cosmo.parameters().Omega_m(), shells, q)};
  lensing::Lightcone<T> lc(shells, Replicas::centred(box), grids, geo, w, nbar);
  for (double a : lc.scale_factors()) lc.paint(a, x);
  return lc.convergence();
}

}  // namespace

TEMPLATE_TEST_CASE("A uniform particle distribution gives kappa = 0", "[lensing][lightcone]", float,
                   double) {
  using T = TestType;
  const diffpm::cosmology::Cosmology<double> cosmo(diffpm::cosmology::Parameters<double>{});
  const int n = 24;
  const double L = 150.0, d = L / n;
  const auto x = lattice<T>(n, L);
  const MapGeometry geo(16, 4.0);
  const double chi_max = 1000.0;
  const auto shells = lensing::Shells<double>::make(cosmo.background(), chi_max, 7);  // Delta = 125
  std::vector<PlaneGrid> grids;
  for (double chi : shells.chi) grids.push_back(PlaneGrid::covering(geo, 4.0 * d, chi));
  const auto kappa = static_lightcone<T>(cosmo, x, {L, L, L}, grids, geo, shells, chi_max, 0.0);
  double worst = 0.0, mean = 0.0;
  for (const auto& v : kappa[0].data) {
    worst = std::max(worst, std::fabs(double(v)));
    mean += double(v) / double(kappa[0].data.size());
  }
  // kappa is not exactly 0: each lattice layer at distance s is a square lattice of angular
  // spacing beta = d / s, and its 2D CIC on cells alpha is uniform only on average. By Poisson
  // summation the sum of a unit hat of half-width alpha sampled at spacing beta is
  // (alpha / beta) (1 + e), |e| <= sum_{k != 0} (beta / (pi k alpha))^2 = (beta / alpha)^2 / 3;
  // for sparse layers (beta > alpha) a cell sees 0 or 1 image, |e| <= beta / alpha. Per layer and
  // two axes: (1 + e)^2 - 1. A layer carries the weight Lambda_i(s) d / Delta of plane i (the
  // hat sampled at spacing d sums to Delta / d exactly, Delta being a multiple of d, and the
  // 1 / s^2 cancels the layer's s^2 / d^2 images per steradian), so
  //   |delta_i| <= sum_n Lambda_i(s_n) (d / Delta) e2(s_n),  |kappa| <= sum_i |c_i| |delta_i|.
  const double Om = cosmo.parameters().Omega_m();
  const double H2 = 1.0 / (diffpm::constants::hubble_distance * diffpm::constants::hubble_distance);
  REQUIRE(std::fabs(shells.width / d - std::round(shells.width / d)) < 1e-12);
  double scale = 0.0, bound = 0.0;  // scale: the convergence of delta = 1 everywhere
  for (int i = 0; i < shells.count(); ++i) {
    const double c = 1.5 * Om * H2 * shells.width * shells.chi[i] *
                     (1.0 - shells.chi[i] / chi_max) / shells.a[i];
    double delta = 0.0;
    for (int layer = 0; (layer + 0.25) * d < shells.chi[i] + shells.width; ++layer) {
      const double sn = (layer + 0.25) * d;
      const double hat = lensing::line_of_sight_hat(sn, shells.chi[i], shells.width).value;
      const double r = (d / sn) / grids[i].cell;
      const double e = std::min(r * r / 3.0, r);
      delta += hat * d / shells.width * ((1 + e) * (1 + e) - 1);
    }
    scale += c;
    bound += c * delta;
  }
  INFO("worst |kappa| " << worst << ", mean " << mean << ", bound " << bound
                        << ", kappa of delta = 1: " << scale);
  // Round-off on top: float planes hold 1 + delta ~ 1 to 6e-8.
  CHECK(worst <= bound + scale * 10 * eps<T>());
  // The bound is loose where the lattice is sparse in angle (layers within a few spacings of
  // the observer; worst |kappa| is 0.3% of scale here, the bound 8%), but it still catches what
  // matters: a wrong normalisation or a lost replica gives O(scale).
  CHECK(bound < 0.1 * scale);
}

TEMPLATE_TEST_CASE("A thin overdense sheet gives the thin-lens kappa", "[lensing][lightcone]",
                   float, double) {
  using T = TestType;
  const diffpm::cosmology::Cosmology<double> cosmo(diffpm::cosmology::Parameters<double>{});
  const double Om = cosmo.parameters().Omega_m();
  const int n = 16;
  const double L = 200.0, d = L / n;
  const double chi_max = 1000.0, chi_source = 1000.0;
  const auto shells = lensing::Shells<double>::make(cosmo.background(), chi_max, 9);
  // Delta = 100 Mpc/h, nodes at 100, 200, ..., 900.
  const double nbar = 1e-3;  // any value: the sheet's overdensity is measured against it
  const double H = 1.0 / diffpm::constants::hubble_distance;
  // A box longer than the lightcone (1200 Mpc/h along the line of sight), so that the sheet is
  // not repeated by the replicas.
  const std::array<double, 3> box{1200.0, L, L};
  const MapGeometry geo(8, 3.0);
  // The sheet: a square lattice of spacing d in the plane x = chi_l (transverse images make it
  // infinite), i.e. a surface overdensity Sigma = int delta dchi = 1 / (nbar d^2) Mpc/h. Its
  // thin-lens convergence is 3/2 Om (H0/c)^2 Sigma chi_l (chi_s - chi_l) / (chi_s a(chi_l))
  // (Bartelmann & Schneider 2001, eq. 6.16 with delta = Sigma delta_D(chi - chi_l)). The planes
  // get cells of exactly 3 lattice spacings as seen from chi_l, so that the 2D CIC of the
  // sheet's lattice is exactly uniform (each point receives 9 particles' worth).
  auto sheet_kappa = [&](double chi_l) {
    Positions<T> x;
    for (int j = 0; j < n; ++j)
      for (int k = 0; k < n; ++k) x.push_back({T(chi_l), T((j + 0.25) * d), T((k + 0.25) * d)});
    const PlaneGrid g = PlaneGrid::covering(geo, 3.0 * d, chi_l);
    REQUIRE(g.cell == Approx(3.0 * d / chi_l).epsilon(1e-15));
    const std::vector<PlaneGrid> grids(shells.chi.size(), g);
    return static_lightcone<T>(cosmo, x, box, grids, geo, shells, chi_source, nbar)[0];
  };
  auto g = [&](double chi) {
    return chi * (chi_source - chi) /
           (chi_source * cosmo.background().scale_factor_at_distance(chi));
  };
  const double Sigma = 1.0 / (nbar * d * d);
  // The planes subtract the mean density nbar, which this lone sheet lacks: the convergence of
  // the empty universe, -sum_i c_i, is the same for every sheet position.
  double empty = 0.0;
  for (int i = 0; i < shells.count(); ++i)
    empty -= 1.5 * Om * H * H * shells.width * g(shells.chi[i]);
  // On a node (chi_l = 400 Mpc/h): exact.
  {
    const auto k = sheet_kappa(400.0);
    const double expect = 1.5 * Om * H * H * Sigma * g(400.0) + empty;
    for (const auto& v : k.data) {
      CHECK(double(v) == Approx(expect).epsilon(std::is_same_v<T, float> ? 1e-5 : 1e-10));
    }
  }
  // Between nodes (chi_l = 430): the hats interpolate g linearly between the nodes 400 and
  // 500; the error is at most Delta^2 / 8 max|g''| (linear interpolation), with g'' estimated
  // by differences on [400, 500].
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
  Plane<double> plane(plane_grid(200.0));
  Positions<double> x{{1.0, 2.0, 3.0}, {std::nan(""), 1.0, 1.0}};
  CHECK_THROWS_AS(lensing::paint_shell(x, rep, 100.0, 10.0, plane), InvalidArgument);
  x.pop_back();
  CHECK_THROWS_AS(lensing::paint_shell(x, rep, -1.0, 10.0, plane), InvalidArgument);
  CHECK_THROWS_AS(lensing::paint_shell(x, rep, 100.0, 0.0, plane), InvalidArgument);
  CHECK_THROWS_AS(lensing::paint_shell(x, rep, 100.0, 10.0, plane, -2.0), InvalidArgument);
  CHECK_THROWS_AS(PlaneGrid(1, 0.01), InvalidArgument);
  CHECK_THROWS_AS(PlaneGrid(100, 0.1), InvalidArgument);  // spans 10 rad
  CHECK_THROWS_AS(PlaneGrid::covering(kMap, -1.0, 100.0), InvalidArgument);
  CHECK_THROWS_AS(MapGeometry(16, 95.0), InvalidArgument);
  CHECK_THROWS_AS(Replicas::centred({100.0, -1.0, 3.0}), InvalidArgument);
  const diffpm::cosmology::Cosmology<double> cosmo(diffpm::cosmology::Parameters<double>{});
  CHECK_THROWS_AS(lensing::Shells<double>::make(cosmo.background(), 1000.0, 0), InvalidArgument);
  CHECK_THROWS_AS(lensing::Shells<double>::make(cosmo.background(), -5.0, 4), InvalidArgument);
  const auto shells = lensing::Shells<double>::make(cosmo.background(), 1000.0, 3);
  const MapGeometry geo(8, 2.0);
  std::vector<PlaneGrid> grids;
  for (double chi : shells.chi) grids.push_back(PlaneGrid::covering(geo, 2.0, chi));
  const auto box = Replicas::centred({200.0, 200.0, 200.0});
  lensing::Lightcone<double> lc(shells, box, grids, geo, {{1.0, 1.0, 1.0}});
  CHECK_THROWS_AS(lc.convergence(), InvalidArgument);    // nothing painted yet
  CHECK_THROWS_AS(lc.paint(0.123, x), InvalidArgument);  // not a plane's scale factor
  CHECK_THROWS_AS(lensing::Lightcone<double>(shells, box, grids, geo, {{1.0, 1.0}}),
                  InvalidArgument);  // 2 weights for 3 planes
  CHECK_THROWS_AS(lensing::Lightcone<double>(shells, box, {grids[0]}, geo, {{1.0, 1.0, 1.0}}),
                  InvalidArgument);  // 1 grid for 3 planes
  CHECK_THROWS_AS(
      lensing::Lightcone<double>(shells, box, grids, MapGeometry(8, 20.0), {{1.0, 1.0, 1.0}}),
      InvalidArgument);  // planes narrower than the map
}

TEST_CASE("random replica orientations are symmetries of the box, drawn uniformly",
          "[lensing][lightcone]") {
  // In a cube all 48 symmetries occur; in the non-cubic box only the 8 reflections (an axis can
  // only go onto one of the same length). Without the option every replica is unrotated.
  const auto count = [](const Replicas& rep) {
    std::vector<int> seen(48, 0);
    for (int m = 0; m < 4800; ++m) {
      const auto o = rep.orientation(m);
      const int perm = o.axis[0] * 2 + (o.axis[1] > o.axis[2] ? 1 : 0);  // 6 permutations
      const int signs = (o.sign[0] < 0) + 2 * (o.sign[1] < 0) + 4 * (o.sign[2] < 0);
      ++seen[perm * 8 + signs];
    }
    return seen;
  };
  const auto cube = count(Replicas::centred({50.0, 50.0, 50.0}, false, 11, true));
  // 100 expected per symmetry: a binomial count within 5 sigma (~50) of it.
  for (int c : cube) CHECK(std::abs(c - 100) < 50);
  const auto slab = count(Replicas::centred(kBox, false, 11, true));
  int used = 0;
  for (int k = 0; k < 48; ++k) used += slab[k] > 0;
  CHECK(used == 8);
  for (int k = 8; k < 48; ++k) CHECK(slab[k] == 0);  // perm index 0: the identity permutation
  const auto plain = count(Replicas::centred({50.0, 50.0, 50.0}));
  CHECK(plain[0] == 4800);

  // A symmetry maps the periodic lattice onto itself: x and x + L e_d have the same image
  // modulo L in every replica.
  const auto rep = Replicas::centred({50.0, 50.0, 50.0}, true, 5, true);
  for (int m = 0; m < 20; ++m) {
    const std::array<double, 3> x{3.0, 17.0, 41.0};
    const auto a = rep.image(m, x);
    for (int d = 0; d < 3; ++d) {
      auto y = x;
      y[d] += 50.0;
      const auto b = rep.image(m, y);
      for (int e = 0; e < 3; ++e)
        CHECK(lensing::wrap_periodic(a[e], 50.0) ==
              Approx(lensing::wrap_periodic(b[e], 50.0)).margin(1e-9));
    }
  }
}

TEST_CASE("Lightcone::paint_adjoint passes the dot-product test", "[lensing][adjoint]") {
  // The whole chain per plane (shell paint, plane sampling, Born sums of two sources) against
  // central differences of the maps along a random direction in the positions, the planes'
  // distances, the shells' width and the Born weights; every plane painted from the same
  // positions (a static lightcone), with shifted replicas of the non-cubic box.
  const auto x = random_positions<double>(300, 7);
  std::mt19937_64 rng(8);
  std::normal_distribution<double> n01;
  const std::vector<double> chi0 = {150.0, 230.0, 310.0};
  const double width0 = 80.0;
  std::vector<PlaneGrid> grids;
  for (double c : chi0) grids.push_back(plane_grid(c));
  const std::vector<std::vector<double>> w0 = {{0.3, 0.7, 0.2}, {0.1, 0.4, 0.9}};
  const Replicas rep = Replicas::centred(kBox, true, 3);
  auto maps = [&](const Positions<double>& y, const std::vector<double>& chi, double width,
                  const std::vector<std::vector<double>>& w) {
    lensing::Shells<double> shells;
    shells.width = width;
    shells.chi = chi;
    shells.a = {0.9, 0.8, 0.7};  // keys of the planes; the painting does not use them
    lensing::Lightcone<double> lc(shells, rep, grids, kMap, w);
    for (double a : lc.scale_factors()) lc.paint(a, y);
    return lc.convergence();
  };
  Positions<double> v(x.size());
  for (auto& vp : v)
    for (auto& c : vp) c = n01(rng);
  std::vector<double> v_chi(3);
  for (auto& c : v_chi) c = n01(rng);
  const double v_width = n01(rng);
  std::vector<std::vector<double>> v_w = w0;
  for (auto& row : v_w)
    for (auto& c : row) c = n01(rng);
  std::vector<Map<double>> kbar(2, Map<double>(kMap));
  for (auto& m : kbar)
    for (auto& c : m.data) c = n01(rng);

  // <J v, kbar>: the maps are smooth between kinks (CIC, hats); with 300 particles none lies
  // within e = 1e-6 of one, so the central difference is exact to O(e^2) plus double round-off
  // of the maps (1e-16 / 1e-6 relative): 1e-8 leaves a margin.
  const double e = 1e-6;
  auto moved = [&](double sign) {
    Positions<double> y = x;
    for (std::size_t p = 0; p < y.size(); ++p)
      for (int d = 0; d < 3; ++d) y[p][d] += sign * e * v[p][d];
    std::vector<double> chi = chi0;
    for (int i = 0; i < 3; ++i) chi[i] += sign * e * v_chi[i];
    auto w = w0;
    for (int s = 0; s < 2; ++s)
      for (int i = 0; i < 3; ++i) w[s][i] += sign * e * v_w[s][i];
    return maps(y, chi, width0 + sign * e * v_width, w);
  };
  const auto up = moved(1.0), down = moved(-1.0);
  double lhs = 0.0;
  for (int s = 0; s < 2; ++s)
    for (std::size_t c = 0; c < kbar[s].data.size(); ++c)
      lhs += (up[s].data[c] - down[s].data[c]) / (2 * e) * kbar[s].data[c];

  lensing::Shells<double> shells;
  shells.width = width0;
  shells.chi = chi0;
  shells.a = {0.9, 0.8, 0.7};
  lensing::Lightcone<double> lc(shells, rep, grids, kMap, w0);
  Positions<double> x_bar;
  lensing::LightconeGradient g;
  for (double a : lc.scale_factors()) lc.paint_adjoint(a, x, kbar, x_bar, g);
  double rhs = g.width * v_width;
  for (int i = 0; i < 3; ++i) rhs += g.chi[i] * v_chi[i];
  for (int s = 0; s < 2; ++s)
    for (int i = 0; i < 3; ++i) rhs += g.weights[s][i] * v_w[s][i];
  for (std::size_t p = 0; p < x.size(); ++p)
    for (int d = 0; d < 3; ++d) rhs += x_bar[p][d] * v[p][d];
  INFO("<J v, kbar> = " << lhs << ", <v, J^T kbar> = " << rhs);
  CHECK(rhs == Approx(lhs).epsilon(1e-8));
  CHECK(std::fabs(lhs) > 0.0);
  // Map adjoints for another number of sources, or an a that is no plane's, are refused.
  std::vector<Map<double>> one(1, Map<double>(kMap));
  CHECK_THROWS_AS(lc.paint_adjoint(0.9, x, one, x_bar, g), InvalidArgument);
  CHECK_THROWS_AS(lc.paint_adjoint(0.5, x, kbar, x_bar, g), InvalidArgument);
}
