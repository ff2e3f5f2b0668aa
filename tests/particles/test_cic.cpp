// CIC paint/readout: placement convention, conservation, exactness on (tri)linear fields,
// gradients against finite differences, adjoints by dot-product tests, window, determinism
// across thread counts, and rejection of bad input.
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <complex>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "diffpm/core/openmp.hpp"
#include "diffpm/particles/cic.hpp"
#include "support/mesh_fields.hpp"

using diffpm::InvalidArgument;
using diffpm::mesh::ComplexField;
using diffpm::mesh::Grid;
using diffpm::mesh::RealField;
using diffpm::particles::Positions;
namespace dp = diffpm::particles;

namespace {

template <class T>
constexpr double eps() {
  return double(std::numeric_limits<T>::epsilon());
}

// The non-cubic test box: 8 x 6 x 10 cells in 100 x 80 x 50 (Mpc/h)^3.
Grid box() { return Grid({8, 6, 10}, {100.0, 80.0, 50.0}); }

template <class T>
Positions<T> random_positions(std::size_t n, const Grid& g, std::uint64_t seed, double lo = 0.0,
                              double hi = 1.0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  Positions<T> x(n);
  for (auto& p : x) {
    for (int d = 0; d < 3; ++d) p[d] = T(u(rng) * g.length[d]);
  }
  return x;
}

// Positions whose fraction inside their cell lies in [margin, 1 - margin] on every axis, so
// that steps below margin * dx never cross a cell boundary.
template <class T>
Positions<T> interior_positions(std::size_t n, const Grid& g, std::uint64_t seed, double margin) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> f(margin, 1.0 - margin);
  Positions<T> x(n);
  for (auto& p : x) {
    for (int d = 0; d < 3; ++d) {
      const int cell = int(rng() % std::uint64_t(g.n[d]));
      p[d] = T((cell + f(rng)) * g.cell_size(d));
    }
  }
  return x;
}

template <class T>
RealField<T> random_field(const Grid& g, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> n(0.0, 1.0);
  RealField<T> f(g);
  for (auto& v : f.data) v = T(n(rng));
  return f;
}

template <class T>
Positions<T> random_vectors(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> d(0.0, 1.0);
  Positions<T> v(n);
  for (auto& x : v) {
    for (auto& c : x) c = T(d(rng));
  }
  return v;
}

// Inner products and norms accumulated in double.
template <class A>
double dot(const A& a, const A& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += double(a[i]) * double(b[i]);
  return s;
}
template <class T>
double dot(const Positions<T>& a, const Positions<T>& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    for (int d = 0; d < 3; ++d) s += double(a[i][d]) * double(b[i][d]);
  }
  return s;
}
template <class A>
double norm(const A& a) {
  return std::sqrt(dot(a, a));
}

// Brute-force CIC deposit straight from the convention, in double: the reference the bucketed,
// fixed-point paint is checked against.
template <class T>
std::vector<double> reference_paint(const Positions<T>& x, const Grid& g,
                                    const std::vector<T>& weights) {
  std::vector<double> mesh(g.size(), 0.0);
  for (std::size_t q = 0; q < x.size(); ++q) {
    const auto& p = x[q];
    const double weight = double(weights[q]);
    int lo[3];
    double f[3];
    for (int d = 0; d < 3; ++d) {
      const double u = double(p[d]) * (g.n[d] / g.length[d]);
      const double fl = std::floor(u);
      f[d] = u - fl;
      lo[d] = int(((long long)fl % g.n[d] + g.n[d]) % g.n[d]);
    }
    for (int c = 0; c < 8; ++c) {
      const int a = c >> 2 & 1, b = c >> 1 & 1, e = c & 1;
      const double w = (a ? f[0] : 1 - f[0]) * (b ? f[1] : 1 - f[1]) * (e ? f[2] : 1 - f[2]);
      mesh[g.index((lo[0] + a) % g.n[0], (lo[1] + b) % g.n[1], (lo[2] + e) % g.n[2])] += weight * w;
    }
  }
  return mesh;
}

// Restores the OpenMP thread count when a test that changes it ends.
struct ThreadGuard {
  int saved = diffpm::max_threads();
  ~ThreadGuard() { diffpm::set_threads(saved); }
};

}  // namespace

// ----------------------------------------------------------------------------------------------
// Placement convention
// ----------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("paint_cic: a particle on a mesh point, at a midpoint, across the edge",
                   "[particles][cic]", float, double) {
  using T = TestType;
  const Grid g = box();
  // x = i dx is rounded once in dx and once in n / L: its fraction is within a few ulp of 0.
  const double tol = 8 * eps<T>();
  RealField<T> mesh(g);

  SECTION("on a mesh point all the weight goes there") {
    const Positions<T> x = {{T(3 * g.cell_size(0)), T(2 * g.cell_size(1)), T(7 * g.cell_size(2))}};
    dp::paint_cic(x, mesh, T(2.5));
    CHECK(double(mesh(3, 2, 7)) == Approx(2.5).margin(2.5 * tol));
    double rest = 0.0;
    for (auto v : mesh.data) rest += std::fabs(double(v));
    CHECK(rest - std::fabs(double(mesh(3, 2, 7))) < 2.5 * 4 * tol);
  }
  SECTION("at the midpoint between two points along one axis, half each") {
    const Positions<T> x = {
        {T(3 * g.cell_size(0)), T(2.5 * g.cell_size(1)), T(7 * g.cell_size(2))}};
    dp::paint_cic(x, mesh);
    CHECK(double(mesh(3, 2, 7)) == Approx(0.5).margin(tol));
    CHECK(double(mesh(3, 3, 7)) == Approx(0.5).margin(tol));
  }
  SECTION("at the centre of a cell, 1/8 on each corner") {
    const Positions<T> x = {
        {T(1.5 * g.cell_size(0)), T(4.5 * g.cell_size(1)), T(0.5 * g.cell_size(2))}};
    dp::paint_cic(x, mesh);
    for (int c = 0; c < 8; ++c) {
      CHECK(double(mesh(1 + (c >> 2 & 1), 4 + (c >> 1 & 1), c & 1)) == Approx(0.125).margin(tol));
    }
  }
  SECTION("periodic wrap: between the last point and point 0") {
    const Positions<T> x = {{T(g.length[0] - 0.5 * g.cell_size(0)), T(0), T(0)},
                            {T(0), T(-0.25 * g.cell_size(1)), T(0)},
                            {T(0), T(0), T(g.length[2])}};
    dp::paint_cic(x, mesh);
    CHECK(double(mesh(7, 0, 0)) == Approx(0.5).margin(tol));
    // Particle 2: 0.25 dy below 0 is 3/4 of the way from point 5 to point 0 (= 6).
    CHECK(double(mesh(0, 5, 0)) == Approx(0.25).margin(tol));
    // Point (0, 0, 0) gets 0.5 + 0.75 + 1 (x = L_z wraps onto point 0).
    CHECK(double(mesh(0, 0, 0)) == Approx(2.25).margin(3 * tol));
  }
  SECTION("positions outside the box paint as their periodic images") {
    auto x = random_positions<T>(200, g, 11);
    auto shifted = x;
    for (auto& p : shifted) {
      p[0] += T(2 * g.length[0]);
      p[1] -= T(3 * g.length[1]);
      p[2] += T(5 * g.length[2]);
    }
    RealField<T> other(g);
    dp::paint_cic(x, mesh);
    dp::paint_cic(shifted, other);
    // Shifting by a few L rounds each coordinate (relative eps at |x| ~ 6 L) -> fractions move
    // by ~ 6 n eps; 64 n eps bounds the resulting change of any cell.
    for (std::size_t c = 0; c < mesh.size(); ++c) {
      CHECK(double(other.data[c]) == Approx(double(mesh.data[c])).margin(64 * 10 * eps<T>()));
    }
  }
}

TEMPLATE_TEST_CASE("paint_cic conserves mass and matches a brute-force deposit", "[particles][cic]",
                   float, double) {
  using T = TestType;
  const Grid g = box();
  // Positions in [-L, 2L): every particle wraps through the periodic images.
  const auto x = random_positions<T>(10000, g, 1, -1.0, 2.0);
  const T weight = T(0.7);
  RealField<T> mesh(g);
  dp::paint_cic(x, mesh, weight);
  double total = 0.0;
  for (auto v : mesh.data) total += double(v);
  // Each of the ~8 N / 480 ~ 170 additions into a cell rounds by at most eps relative, and
  // the weights sum to 1 within 3 eps: 256 eps bounds the relative error of the total.
  CHECK(total == Approx(10000 * double(weight)).epsilon(256 * eps<T>()));

  const auto ref = reference_paint(x, g, std::vector<T>(x.size(), weight));
  double max_err = 0.0, max_ref = 0.0;
  for (std::size_t c = 0; c < ref.size(); ++c) {
    max_err = std::max(max_err, std::fabs(double(mesh.data[c]) - ref[c]));
    max_ref = std::max(max_ref, std::fabs(ref[c]));
  }
  // Same bound per cell; the T positions are the same in both, only the arithmetic differs.
  CHECK(max_err <= 256 * eps<T>() * max_ref);

  SECTION("accumulate adds to the mesh, per-particle weights equal the scalar weight") {
    RealField<T> twice = mesh;
    dp::paint_cic(x, std::vector<T>(x.size(), weight), twice, true);
    for (std::size_t c = 0; c < mesh.size(); ++c) {
      CHECK(double(twice.data[c]) == Approx(2 * double(mesh.data[c])).margin(1e-6));
    }
  }
}

// ----------------------------------------------------------------------------------------------
// Readout
// ----------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("readout_cic reproduces mesh values, constants and trilinear fields",
                   "[particles][cic]", float, double) {
  using T = TestType;
  const Grid g = box();
  // One rounding of the fraction (~eps) times field values of order 10, plus 8 rounded
  // products: 64 eps relative to the field's scale.
  const double tol = 64 * eps<T>();

  SECTION("at mesh points readout returns the mesh values") {
    const auto mesh = random_field<T>(g, 3);
    Positions<T> x;
    for (int i = 0; i < g.n[0]; ++i)
      for (int j = 0; j < g.n[1]; ++j)
        for (int k = 0; k < g.n[2]; ++k)
          x.push_back({T(i * g.cell_size(0)), T(j * g.cell_size(1)), T(k * g.cell_size(2))});
    std::vector<T> v;
    dp::readout_cic(mesh, x, v);
    REQUIRE(v.size() == mesh.size());
    for (std::size_t c = 0; c < v.size(); ++c) {
      CHECK(double(v[c]) == Approx(double(mesh.data[c])).margin(8 * tol));
    }
  }
  SECTION("a constant mesh reads the constant everywhere, wrapped positions too") {
    RealField<T> mesh(g);
    std::fill(mesh.data.begin(), mesh.data.end(), T(3.25));
    const auto x = random_positions<T>(1000, g, 4, -3.0, 3.0);
    std::vector<T> v;
    dp::readout_cic(mesh, x, v);
    for (auto value : v) CHECK(double(value) == Approx(3.25).margin(3.25 * tol));
  }
  SECTION("inside a cell a trilinear field is interpolated exactly") {
    const auto f = [](double i, double j, double k) {
      return 1 + 2 * i - 3 * j + 0.5 * k + 0.25 * i * j * k - 0.125 * i * k;
    };
    RealField<T> mesh(g);
    for (int i = 0; i < g.n[0]; ++i)
      for (int j = 0; j < g.n[1]; ++j)
        for (int k = 0; k < g.n[2]; ++k) mesh(i, j, k) = T(f(i, j, k));
    // The field is not periodic: stay in cells whose upper neighbours do not wrap.
    std::mt19937_64 rng(5);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (int t = 0; t < 500; ++t) {
      double c[3];
      for (int d = 0; d < 3; ++d) c[d] = u(rng) * (g.n[d] - 1);
      const Positions<T> x = {
          {T(c[0] * g.cell_size(0)), T(c[1] * g.cell_size(1)), T(c[2] * g.cell_size(2))}};
      std::vector<T> v;
      dp::readout_cic(mesh, x, v);
      // The field reaches ~100 in the box: tolerance relative to that scale.
      CHECK(double(v[0]) == Approx(f(c[0], c[1], c[2])).margin(100 * tol));
    }
  }
}

TEMPLATE_TEST_CASE("readout_cic_gradient matches central differences of readout",
                   "[particles][cic]", float, double) {
  using T = TestType;
  const Grid g = box();
  const auto mesh = random_field<T>(g, 7);
  const auto x = interior_positions<T>(300, g, 8, 0.2);
  Positions<T> grad;
  dp::readout_cic_gradient(mesh, x, grad);
  std::vector<T> vp, vm;
  double max_err = 0.0, scale = 0.0;
  for (int d = 0; d < 3; ++d) {
    const double h = 0.1 * g.cell_size(d);  // < margin 0.2 dx: the steps stay in the cell
    auto xp = x, xm = x;
    for (std::size_t p = 0; p < x.size(); ++p) {
      xp[p][d] = T(x[p][d] + h);
      xm[p][d] = T(x[p][d] - h);
    }
    dp::readout_cic(mesh, xp, vp);
    dp::readout_cic(mesh, xm, vm);
    for (std::size_t p = 0; p < x.size(); ++p) {
      // Readout is linear along one axis inside a cell, so the difference quotient over the
      // step actually taken (xp - xm, exact in double) is the derivative up to rounding.
      const double fd = (double(vp[p]) - double(vm[p])) / (double(xp[p][d]) - double(xm[p][d]));
      max_err = std::max(max_err, std::fabs(fd - double(grad[p][d])));
      scale = std::max(scale, std::fabs(fd));
    }
  }
  // Readouts of O(1) values carry ~8 eps each; divided by the step 0.2 dx, the difference
  // quotient is good to ~100 eps of the gradient scale (~1/dx).
  CHECK(max_err <= 256 * eps<T>() * scale);
}

// ----------------------------------------------------------------------------------------------
// Adjoints: <J v, w> = <v, J^T w>
// ----------------------------------------------------------------------------------------------

// Relative to |J v| |w| (the Cauchy-Schwarz bound of both sides): double holds to ~1e-14, so
// 1e-10 leaves room; float products of ~1e3 terms each rounded by eps_f ~ 6e-8 give ~1e-6, so
// 1e-4 for float.
template <class T>
double dot_tolerance() {
  return std::is_same<T, double>::value ? 1e-10 : 1e-4;
}

TEMPLATE_TEST_CASE("paint_cic_adjoint passes dot-product tests", "[particles][cic][adjoint]", float,
                   double) {
  using T = TestType;
  const Grid g = box();
  const std::size_t n = 2000;
  const auto w = random_field<T>(g, 21);  // the cotangent mesh_bar

  SECTION("with respect to per-particle weights (paint is linear in them)") {
    const auto x = random_positions<T>(n, g, 22, -0.5, 1.5);
    const auto v = diffpm::test::random_vector<T>(n, 23);
    RealField<T> jv(g);
    dp::paint_cic(x, v, jv);
    Positions<T> x_bar;
    std::vector<T> v_bar;
    dp::paint_cic_adjoint(w, x, v, x_bar, v_bar);
    const double lhs = dot(jv.data, w.data), rhs = dot(v, v_bar);
    CHECK(std::fabs(lhs - rhs) <= dot_tolerance<T>() * norm(jv.data) * norm(w.data));
  }
  SECTION("with respect to a scalar weight") {
    const auto x = random_positions<T>(n, g, 24);
    RealField<T> unit(g);
    dp::paint_cic(x, unit, T(1));  // d paint / d weight
    Positions<T> x_bar;
    T weight_bar = T(0.5);  // accumulates
    dp::paint_cic_adjoint(w, x, T(1.75), x_bar, weight_bar);
    const double lhs = dot(unit.data, w.data);
    CHECK(std::fabs(lhs - (double(weight_bar) - 0.5)) <=
          dot_tolerance<T>() * norm(unit.data) * norm(w.data));
  }
  SECTION("with respect to positions (the linearisation, steps inside the cells)") {
    const auto x = interior_positions<T>(n, g, 25, 0.2);
    const auto weights = diffpm::test::random_vector<T>(n, 26);
    const auto dir = random_vectors<T>(n, 27);
    Positions<T> x_bar;
    std::vector<T> weights_bar;
    dp::paint_cic_adjoint(w, x, weights, x_bar, weights_bar);
    // J v as a sum over axes of exact one-axis differences: paint is linear along one axis
    // inside a cell, so (paint(x + s e_d) - paint(x - s e_d)) = J (xp - xm) exactly.
    double lhs = 0.0, rhs = 0.0, jv_norm2 = 0.0;
    RealField<T> mp(g), mm(g);
    for (int d = 0; d < 3; ++d) {
      auto xp = x, xm = x;
      for (std::size_t p = 0; p < n; ++p) {
        const double s = 0.05 * g.cell_size(d) * std::max(-1.0, std::min(1.0, double(dir[p][d])));
        xp[p][d] = T(x[p][d] + s);
        xm[p][d] = T(x[p][d] - s);
        rhs += (double(xp[p][d]) - double(xm[p][d])) * double(x_bar[p][d]);
      }
      dp::paint_cic(xp, weights, mp);
      dp::paint_cic(xm, weights, mm);
      for (std::size_t c = 0; c < mp.size(); ++c) {
        const double jv = double(mp.data[c]) - double(mm.data[c]);
        lhs += jv * double(w.data[c]);
        jv_norm2 += jv * jv;
      }
    }
    // The differences cancel O(1) cell values down to ~0.1: 10x the float tolerance.
    const double tol = std::is_same<T, double>::value ? 1e-10 : 1e-3;
    CHECK(std::fabs(lhs - rhs) <= tol * std::sqrt(jv_norm2) * norm(w.data));
  }
}

TEMPLATE_TEST_CASE("readout_cic_adjoint passes dot-product tests", "[particles][cic][adjoint]",
                   float, double) {
  using T = TestType;
  const Grid g = box();
  const std::size_t n = 2000;

  SECTION("with respect to the mesh (readout is linear in it)") {
    const auto x = random_positions<T>(n, g, 31, -0.5, 1.5);
    const auto v = random_field<T>(g, 32);
    const auto w = diffpm::test::random_vector<T>(n, 33);
    std::vector<T> jv;
    dp::readout_cic(v, x, jv);
    RealField<T> mesh_bar;  // no data: becomes zeros on v's grid
    Positions<T> x_bar;
    dp::readout_cic_adjoint(v, x, w, mesh_bar, x_bar);
    const double lhs = dot(jv, w), rhs = dot(v.data, mesh_bar.data);
    CHECK(std::fabs(lhs - rhs) <= dot_tolerance<T>() * norm(jv) * norm(w));
  }
  SECTION("with respect to positions") {
    const auto mesh = random_field<T>(g, 34);
    const auto x = interior_positions<T>(n, g, 35, 0.2);
    const auto dir = random_vectors<T>(n, 36);
    const auto w = diffpm::test::random_vector<T>(n, 37);
    RealField<T> mesh_bar(g);
    Positions<T> x_bar;
    dp::readout_cic_adjoint(mesh, x, w, mesh_bar, x_bar);
    double lhs = 0.0, rhs = 0.0, jv_norm2 = 0.0;
    std::vector<T> vp, vm;
    std::vector<double> jv(n, 0.0);
    for (int d = 0; d < 3; ++d) {
      auto xp = x, xm = x;
      for (std::size_t p = 0; p < n; ++p) {
        const double s = 0.05 * g.cell_size(d) * std::max(-1.0, std::min(1.0, double(dir[p][d])));
        xp[p][d] = T(x[p][d] + s);
        xm[p][d] = T(x[p][d] - s);
        rhs += (double(xp[p][d]) - double(xm[p][d])) * double(x_bar[p][d]);
      }
      dp::readout_cic(mesh, xp, vp);
      dp::readout_cic(mesh, xm, vm);
      for (std::size_t p = 0; p < n; ++p) jv[p] += double(vp[p]) - double(vm[p]);
    }
    for (std::size_t p = 0; p < n; ++p) {
      lhs += jv[p] * double(w[p]);
      jv_norm2 += jv[p] * jv[p];
    }
    // Differences of O(1) readouts down to ~0.1 lose a digit: 10x the float tolerance.
    const double tol = std::is_same<T, double>::value ? 1e-10 : 1e-3;
    CHECK(std::fabs(lhs - rhs) <= tol * std::sqrt(jv_norm2) * norm(w));
  }
  SECTION("vector readout, with respect to the three meshes and the positions") {
    const auto x = interior_positions<T>(n, g, 41, 0.2);
    const auto mx = random_field<T>(g, 42), my = random_field<T>(g, 43),
               mz = random_field<T>(g, 44);
    const auto w = random_vectors<T>(n, 45);
    RealField<T> bx, by, bz;
    Positions<T> x_bar;
    dp::readout_cic_adjoint(mx, my, mz, x, w, bx, by, bz, x_bar);
    // Meshes: <R(m), w> = sum_d <m_d, bar_d>.
    Positions<T> jv;
    dp::readout_cic(mx, my, mz, x, jv);
    const double lhs = dot(jv, w);
    const double rhs = dot(mx.data, bx.data) + dot(my.data, by.data) + dot(mz.data, bz.data);
    CHECK(std::fabs(lhs - rhs) <= dot_tolerance<T>() * norm(jv) * norm(w));
    // Positions: x_bar must equal sum_d w_d grad readout(m_d), checked against the scalar API.
    Positions<T> gx, gy, gz;
    dp::readout_cic_gradient(mx, x, gx);
    dp::readout_cic_gradient(my, x, gy);
    dp::readout_cic_gradient(mz, x, gz);
    double max_err = 0.0, scale = 0.0;
    for (std::size_t p = 0; p < n; ++p) {
      for (int d = 0; d < 3; ++d) {
        const double ref =
            double(w[p][0]) * gx[p][d] + double(w[p][1]) * gy[p][d] + double(w[p][2]) * gz[p][d];
        max_err = std::max(max_err, std::fabs(ref - double(x_bar[p][d])));
        scale = std::max(scale, std::fabs(ref));
      }
    }
    // Same products summed in another order: a few eps of the scale.
    CHECK(max_err <= 64 * eps<T>() * scale);
  }
}

// ----------------------------------------------------------------------------------------------
// Window and deconvolution
// ----------------------------------------------------------------------------------------------

TEST_CASE("cic_window: 1 at k = 0, sinc^2 per axis, (2/pi)^2 at an axis' Nyquist plane",
          "[particles][cic][window]") {
  const Grid g = box();
  const double pi = 3.14159265358979323846;
  CHECK(dp::cic_window(g, 0, 0, 0) == 1.0);
  // Nyquist along x (index n/2 = 4, mode -4): k dx / 2 = -pi/2.
  CHECK(dp::cic_window(g, 4, 0, 0) == Approx(4 / (pi * pi)).epsilon(1e-14));
  // Mode (1, -1, 2): product of the three sinc^2(pi m / n).
  const auto s2 = [&](double m, int n) {
    const double h = pi * m / n;
    return std::pow(std::sin(h) / h, 2);
  };
  CHECK(dp::cic_window(g, 1, 5, 2) == Approx(s2(1, 8) * s2(-1, 6) * s2(2, 10)).epsilon(1e-14));
}

TEMPLATE_TEST_CASE("deconvolve_cic divides by the window and is self-adjoint",
                   "[particles][cic][window][adjoint]", float, double) {
  using T = TestType;
  const Grid g = box();
  std::mt19937_64 rng(51);
  std::normal_distribution<double> nd(0.0, 1.0);
  ComplexField<T> a(g), b(g);
  for (auto& z : a.data) z = {T(nd(rng)), T(nd(rng))};
  for (auto& z : b.data) z = {T(nd(rng)), T(nd(rng))};
  ComplexField<T> da = a, db = b;
  dp::deconvolve_cic(da);
  dp::deconvolve_cic_adjoint(db);
  // One product by a factor rounded once to T.
  CHECK(std::abs(std::complex<double>(da(1, 5, 2)) -
                 std::complex<double>(a(1, 5, 2)) / dp::cic_window(g, 1, 5, 2)) <=
        4 * eps<T>() * std::abs(std::complex<double>(da(1, 5, 2))));
  double lhs = 0.0, rhs = 0.0, na = 0.0, nb = 0.0;
  for (std::size_t c = 0; c < a.size(); ++c) {
    lhs += (std::conj(std::complex<double>(da.data[c])) * std::complex<double>(b.data[c])).real();
    rhs += (std::conj(std::complex<double>(a.data[c])) * std::complex<double>(db.data[c])).real();
    na += std::norm(std::complex<double>(da.data[c]));
    nb += std::norm(std::complex<double>(b.data[c]));
  }
  CHECK(std::fabs(lhs - rhs) <= dot_tolerance<T>() * std::sqrt(na * nb));
}

// ----------------------------------------------------------------------------------------------
// Determinism and bad input
// ----------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("paint_cic is bitwise reproducible across runs and thread counts",
                   "[particles][cic][determinism]", float, double) {
  using T = TestType;
  ThreadGuard guard;
  // 32^3, 31 x 32 x 33 (odd n_x) and 3 x 4 x 5 (every bucket neighbours every other).
  for (const Grid& g : {Grid::cube(32, 100.0), Grid({31, 32, 33}, {90.0, 100.0, 110.0}),
                        Grid({3, 4, 5}, {10.0, 10.0, 10.0})}) {
    const auto x = random_positions<T>(100000, g, 61, -0.2, 1.2);
    const auto weights = diffpm::test::random_vector<T>(x.size(), 62);
    const auto paint = [&](int threads) {
      diffpm::set_threads(threads);
      RealField<T> mesh(g);
      dp::paint_cic(x, weights, mesh);
      return mesh;
    };
    const auto reference = paint(1);
    // The plane gather paints every particle: compare with the brute-force deposit (~100
    // terms per cell, each rounded by eps relative to the cell's scale, then to fixed point).
    const auto brute = reference_paint(x, g, weights);
    double max_err = 0.0, max_ref = 0.0;
    for (std::size_t c = 0; c < brute.size(); ++c) {
      max_err = std::max(max_err, std::fabs(double(reference.data[c]) - brute[c]));
      max_ref = std::max(max_ref, std::fabs(brute[c]));
    }
    CHECK(max_err <= 256 * eps<T>() * max_ref);
    const auto bitwise_equal = [&](const RealField<T>& m) {
      return std::memcmp(m.data.data(), reference.data.data(), m.size() * sizeof(T)) == 0;
    };
    CHECK(bitwise_equal(paint(1)));
#if defined(_OPENMP)
    CHECK(bitwise_equal(paint(2)));
    CHECK(bitwise_equal(paint(2)));
    CHECK(bitwise_equal(paint(3)));
#else
    WARN("SKIPPED: built without OpenMP, so thread-count independence is not tested");
#endif
  }
}

TEMPLATE_TEST_CASE("CIC functions reject non-finite positions and mismatched inputs",
                   "[particles][cic][errors]", float, double) {
  using T = TestType;
  const Grid g = box();
  auto x = random_positions<T>(10, g, 71);
  x[5][1] = std::numeric_limits<T>::quiet_NaN();
  RealField<T> mesh(g);
  std::fill(mesh.data.begin(), mesh.data.end(), T(1));
  const auto before = mesh.data;
  std::vector<T> v;
  Positions<T> grad, x_bar;
  std::vector<T> w(10, T(1)), w_bar;

  CHECK_THROWS_AS(dp::paint_cic(x, mesh), InvalidArgument);
  CHECK_THROWS_WITH(dp::paint_cic(x, mesh), Catch::Contains("particle 5") &&
                                                Catch::Contains("nan") &&
                                                Catch::Contains("paint_cic"));
  CHECK(mesh.data == before);  // nothing written
  CHECK_THROWS_AS(dp::paint_cic(x, w, mesh), InvalidArgument);
  CHECK_THROWS_AS(dp::readout_cic(mesh, x, v), InvalidArgument);
  CHECK_THROWS_AS(dp::readout_cic(mesh, mesh, mesh, x, grad), InvalidArgument);
  CHECK_THROWS_AS(dp::readout_cic_gradient(mesh, x, grad), InvalidArgument);
  CHECK_THROWS_AS(dp::paint_cic_adjoint(mesh, x, w, x_bar, w_bar), InvalidArgument);
  CHECK_THROWS_AS(dp::readout_cic_adjoint(mesh, x, w, mesh, x_bar), InvalidArgument);
  CHECK(mesh.data == before);
  x[5][1] = std::numeric_limits<T>::infinity();
  CHECK_THROWS_WITH(dp::paint_cic(x, mesh), Catch::Contains("inf"));

  x[5][1] = T(1);
  CHECK_THROWS_WITH(dp::paint_cic(x, std::vector<T>(9), mesh),
                    Catch::Contains("weights has 9 entries for 10 particles"));
  Positions<T> short_bar(3);
  CHECK_THROWS_WITH(dp::paint_cic_adjoint(mesh, x, w, short_bar, w_bar),
                    Catch::Contains("positions_bar has 3"));
  RealField<T> other(Grid::cube(8, 100.0));
  CHECK_THROWS_WITH(dp::readout_cic_adjoint(mesh, x, w, other, x_bar),
                    Catch::Contains("mesh_bar is on a mesh of 8x8x8"));
  CHECK_THROWS_WITH(dp::readout_cic(mesh, other, mesh, x, grad),
                    Catch::Contains("mesh_y is on a mesh of 8x8x8"));
  RealField<T> empty;
  CHECK_THROWS_AS(dp::paint_cic(x, empty), InvalidArgument);
}
