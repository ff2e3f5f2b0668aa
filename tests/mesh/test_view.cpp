// Mesh views (mesh/view.hpp): every mesh kernel on a caller's memory -- FFTW's padded in-place
// buffer, a plain packed array, a mesh stored x fastest -- gives bitwise what it gives on
// diffpm's fields, and never touches the padding; the FFT in both layouts, with its layout,
// grid and alignment checks; the Fourier kernels and the power spectrum on views; dot-product
// tests of the strided (z stride != 1) paths; rejection of bad views.
#include <fftw3.h>

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <complex>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "diffpm/backend/cpu/fft.hpp"
#include "diffpm/measure/power_spectrum.hpp"
#include "diffpm/mesh/fourier_kernels.hpp"
#include "diffpm/mesh/view.hpp"
#include "diffpm/particles/cic.hpp"
#include "diffpm/particles/cic_plan.hpp"

using diffpm::FftLayout;
using diffpm::FftPlan;
using diffpm::InvalidArgument;
using diffpm::mesh::AlignedVector;
using diffpm::mesh::ComplexField;
using diffpm::mesh::ComplexView;
using diffpm::mesh::Grid;
using diffpm::mesh::RealField;
using diffpm::mesh::RealView;
using diffpm::particles::Positions;
namespace dm = diffpm::mesh;
namespace dp = diffpm::particles;

namespace {

// An even n_z (padding 2 T per row) with even n_x, and an odd n_z (padding 1) with odd n_x (the
// paint's third colour phase).
std::vector<Grid> grids() {
  return {Grid({8, 6, 10}, {100.0, 80.0, 50.0}), Grid({7, 6, 9}, {70.0, 60.0, 45.0})};
}

template <class T>
Positions<T> random_positions(std::size_t n, const Grid& g, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-0.2, 1.2);  // some outside the box: wrapped
  Positions<T> x(n);
  for (auto& p : x) {
    for (int d = 0; d < 3; ++d) p[d] = T(u(rng) * g.length[d]);
  }
  return x;
}

template <class T>
std::vector<T> random_values(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<T> v(n);
  for (auto& x : v) x = T(normal(rng));
  return v;
}

template <class T>
RealField<T> random_field(const Grid& g, std::uint64_t seed) {
  RealField<T> f(g);
  const auto v = random_values<T>(g.size(), seed);
  std::copy(v.begin(), v.end(), f.data.begin());
  return f;
}

template <class T>
bool same_bits(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

// What the padding of a caller's buffer holds; a kernel that wrote there would change it.
template <class T>
constexpr T sentinel() {
  return T(-777.25);
}

// A caller's mesh memory in one of three layouts, with its view. The memory around the mesh
// cells (FFTW's padding) holds sentinel().
enum class Layout { padded, packed_array, x_fastest };
const char* name(Layout l) {
  return l == Layout::padded ? "padded" : l == Layout::packed_array ? "packed array" : "x fastest";
}
const Layout all_layouts[] = {Layout::padded, Layout::packed_array, Layout::x_fastest};

template <class T>
struct UserMesh {
  std::vector<T> memory;  // a plain std::vector: no alignment promise, as a caller's array
  RealView<T> v;
  UserMesh(const Grid& g, Layout layout) {
    if (layout == Layout::padded) {
      memory.assign(dm::padded_in_place_size(g), sentinel<T>());
      v = dm::padded_in_place(memory.data(), g).real;
    } else if (layout == Layout::packed_array) {
      memory.assign(g.size(), sentinel<T>());
      v = dm::packed(memory.data(), g);
    } else {  // Fortran order: x fastest, then y, then z
      memory.assign(g.size(), sentinel<T>());
      v = RealView<T>(memory.data(), g, {1, g.n[0], std::ptrdiff_t(g.n[0]) * g.n[1]});
    }
  }
  UserMesh(const RealField<T>& f, Layout layout) : UserMesh(f.grid, layout) { set(f); }
  void set(const RealField<T>& f) {
    for (int i = 0; i < f.grid.n[0]; ++i)
      for (int j = 0; j < f.grid.n[1]; ++j)
        for (int k = 0; k < f.grid.n[2]; ++k) v(i, j, k) = f(i, j, k);
  }
  // Every mesh cell bitwise f's, and every other element of the memory still the sentinel.
  bool equals(const RealField<T>& f) const {
    std::vector<char> is_cell(memory.size(), 0);
    for (int i = 0; i < f.grid.n[0]; ++i) {
      for (int j = 0; j < f.grid.n[1]; ++j) {
        for (int k = 0; k < f.grid.n[2]; ++k) {
          if (!same_bits(v(i, j, k), f(i, j, k))) return false;
          is_cell[std::size_t(v.offset(i, j, k))] = 1;
        }
      }
    }
    for (std::size_t e = 0; e < memory.size(); ++e) {
      if (!is_cell[e] && !same_bits(memory[e], sentinel<T>())) return false;
    }
    return true;
  }
};

template <class T>
bool same_bits(const Positions<T>& a, const Positions<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(a[0])) == 0;
}
template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// CIC kernels
// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("paint into a caller's mesh view is bitwise paint into a RealField",
                   "[mesh][view][cic]", float, double) {
  using T = TestType;
  for (const Grid& g : grids()) {
    const auto x = random_positions<T>(3000, g, 1);
    const auto w = random_values<T>(x.size(), 2);
    const RealField<T> start = random_field<T>(g, 3);
    RealField<T> uniform(g), weighted(g), uniform_acc = start, weighted_acc = start;
    dp::paint_cic(x, uniform, T(1.5));
    dp::paint_cic(x, w, weighted);
    dp::paint_cic(x, uniform_acc, T(0.5), true);
    dp::paint_cic(x, w, weighted_acc, true);
    for (Layout layout : all_layouts) {
      INFO(name(layout) << " on " << g.to_string());
      UserMesh<T> a(g, layout), b(g, layout), c(start, layout), d(start, layout);
      dp::paint_cic(x, a.v, T(1.5));
      dp::paint_cic(x, w, b.v);
      dp::paint_cic(x, c.v, T(0.5), true);
      dp::paint_cic(x, w, d.v, true);
      CHECK(a.equals(uniform));  // also: the padding still holds the caller's sentinel
      CHECK(b.equals(weighted));
      CHECK(c.equals(uniform_acc));
      CHECK(d.equals(weighted_acc));
    }
  }
}

TEMPLATE_TEST_CASE("readout and its gradient from a mesh view are bitwise those from a field",
                   "[mesh][view][cic]", float, double) {
  using T = TestType;
  for (const Grid& g : grids()) {
    const auto x = random_positions<T>(2000, g, 4);
    const RealField<T> m = random_field<T>(g, 5), my = random_field<T>(g, 6),
                       mz = random_field<T>(g, 7);
    std::vector<T> values;
    Positions<T> gradient, vector_values;
    dp::readout_cic(m, x, values);
    dp::readout_cic_gradient(m, x, gradient);
    dp::readout_cic(m, my, mz, x, vector_values);
    for (Layout layout : all_layouts) {
      INFO(name(layout) << " on " << g.to_string());
      const UserMesh<T> a(m, layout), b(my, layout), c(mz, layout);
      std::vector<T> v;
      Positions<T> gr, vv;
      dp::readout_cic(a.v, x, v);  // a non-const view converts to the const one
      dp::readout_cic_gradient(RealView<const T>(a.v), x, gr);
      dp::readout_cic(a.v, b.v, c.v, x, vv);
      CHECK(same_bits(v, values));
      CHECK(same_bits(gr, gradient));
      CHECK(same_bits(vv, vector_values));
      CHECK(a.equals(m));  // read only
    }
  }
}

TEMPLATE_TEST_CASE("CIC adjoints on mesh views are bitwise those on fields", "[mesh][view][cic]",
                   float, double) {
  using T = TestType;
  for (const Grid& g : grids()) {
    const auto x = random_positions<T>(2000, g, 8);
    const auto w = random_values<T>(x.size(), 9);
    const auto vb = random_values<T>(x.size(), 10);
    Positions<T> vb3(x.size());
    for (std::size_t p = 0; p < x.size(); ++p) vb3[p] = {vb[p], T(0.5) * w[p], w[p] - vb[p]};
    const RealField<T> m = random_field<T>(g, 11), my = random_field<T>(g, 12),
                       mz = random_field<T>(g, 13), start = random_field<T>(g, 14);

    // References on fields (accumulating into non-zero starts).
    Positions<T> xb_uniform, xb_weighted, xb_readout, xb_vector;
    T wb_uniform = T(0.25);
    std::vector<T> wb_weighted;
    dp::paint_cic_adjoint(m, x, T(1.5), xb_uniform, wb_uniform);
    dp::paint_cic_adjoint(m, x, w, xb_weighted, wb_weighted);
    RealField<T> mb = start, mbx = start, mby = m, mbz = my;
    dp::readout_cic_adjoint(m, x, vb, mb, xb_readout);
    dp::readout_cic_adjoint(m, my, mz, x, vb3, mbx, mby, mbz, xb_vector);

    for (Layout layout : all_layouts) {
      INFO(name(layout) << " on " << g.to_string());
      const UserMesh<T> a(m, layout), b(my, layout), c(mz, layout);
      Positions<T> xu, xw, xr, xv;
      T wu = T(0.25);
      std::vector<T> ww;
      dp::paint_cic_adjoint(a.v, x, T(1.5), xu, wu);
      dp::paint_cic_adjoint(a.v, x, w, xw, ww);
      CHECK(same_bits(xu, xb_uniform));
      CHECK(same_bits(wu, wb_uniform));
      CHECK(same_bits(xw, xb_weighted));
      CHECK(same_bits(ww, wb_weighted));
      UserMesh<T> ub(start, layout), ubx(start, layout), uby(m, layout), ubz(my, layout);
      dp::readout_cic_adjoint(a.v, x, vb, ub.v, xr);
      dp::readout_cic_adjoint(a.v, b.v, c.v, x, vb3, ubx.v, uby.v, ubz.v, xv);
      CHECK(same_bits(xr, xb_readout));
      CHECK(ub.equals(mb));
      CHECK(same_bits(xv, xb_vector));
      CHECK(ubx.equals(mbx));
      CHECK(uby.equals(mby));
      CHECK(ubz.equals(mbz));
    }
    // The meshes and their adjoints may have different layouts.
    const UserMesh<T> a(m, Layout::x_fastest);
    UserMesh<T> ub(start, Layout::padded);
    Positions<T> xr;
    dp::readout_cic_adjoint(a.v, x, vb, ub.v, xr);
    CHECK(same_bits(xr, xb_readout));
    CHECK(ub.equals(mb));
  }
}

TEMPLATE_TEST_CASE("a CIC plan paints, reads out and runs its adjoints on mesh views bitwise",
                   "[mesh][view][cic][plan]", float, double) {
  using T = TestType;
  for (const Grid& g : grids()) {
    const auto x = random_positions<T>(2500, g, 15);
    const auto w = random_values<T>(x.size(), 16);
    const RealField<T> m = random_field<T>(g, 17), start = random_field<T>(g, 18);
    dp::CicPlan<T> plan(g);
    plan.set_points(x);
    const std::ptrdiff_t s = sizeof(T);
    RealField<T> painted(g), weighted = start, mb = start;
    plan.paint(painted, T(2));
    plan.paint(w, weighted, true);
    std::vector<T> values;
    plan.readout(m, values);
    Positions<T> gradient(x.size()), xb_paint(x.size()), xb_weighted(x.size()),
        xb_readout(x.size());
    std::vector<T> wb(x.size(), T(0));
    plan.readout_gradient(m, dp::view(gradient));
    const double weight_bar = plan.paint_adjoint(m, T(2), dp::view(xb_paint));
    plan.paint_adjoint(m, w.data(), s, dp::view(xb_weighted), wb.data(), s);
    plan.readout_adjoint(m, w.data(), s, mb, dp::view(xb_readout));

    for (Layout layout : all_layouts) {
      INFO(name(layout) << " on " << g.to_string());
      UserMesh<T> up(g, layout), uw(start, layout), umb(start, layout);
      const UserMesh<T> um(m, layout);
      plan.paint(up.v, T(2));
      plan.paint(w, uw.v, true);
      CHECK(up.equals(painted));
      CHECK(uw.equals(weighted));
      std::vector<T> v;
      plan.readout(um.v, v);
      CHECK(same_bits(v, values));
      Positions<T> gr(x.size()), xp(x.size()), xw(x.size()), xr(x.size());
      std::vector<T> wbv(x.size(), T(0));
      plan.readout_gradient(um.v, dp::view(gr));
      const double wbar = plan.paint_adjoint(um.v, T(2), dp::view(xp));
      plan.paint_adjoint(um.v, w.data(), s, dp::view(xw), wbv.data(), s);
      plan.readout_adjoint(um.v, w.data(), s, umb.v, dp::view(xr));
      CHECK(same_bits(gr, gradient));
      CHECK(same_bits(wbar, weight_bar));
      CHECK(same_bits(xp, xb_paint));
      CHECK(same_bits(xw, xb_weighted));
      CHECK(same_bits(wbv, wb));
      CHECK(same_bits(xr, xb_readout));
      CHECK(umb.equals(mb));
    }
  }
}

// The view kernels with z stride 1 are the field kernels with other x and y strides (tested
// bitwise above against the field overloads, whose adjoints tests/particles/test_cic.cpp checks);
// a z stride other than 1 runs their other instantiation (StridedCicGeometry), so that path
// gets its own dot-product tests, in double: <paint(w), m> = <w, readout(m)> and, for the
// position adjoints, <J^T y, v> against central differences of <y, f(x + h v)>.
TEST_CASE("the strided CIC kernels pass dot-product tests", "[mesh][view][cic][adjoint]") {
  using T = double;
  const Grid g({7, 6, 9}, {70.0, 60.0, 45.0});
  const auto x = random_positions<T>(500, g, 19);
  const auto w = random_values<T>(x.size(), 20);
  const RealField<T> mf = random_field<T>(g, 21);
  UserMesh<T> painted(g, Layout::x_fastest);
  const UserMesh<T> m(mf, Layout::x_fastest);
  REQUIRE(m.v.stride[2] != 1);

  // Paint and readout are transposes: sum over cells of paint(w) m = sum_p w_p readout(m)(x_p).
  dp::paint_cic(x, w, painted.v);
  double lhs = 0.0;
  for (int i = 0; i < g.n[0]; ++i)
    for (int j = 0; j < g.n[1]; ++j)
      for (int k = 0; k < g.n[2]; ++k) lhs += painted.v(i, j, k) * m.v(i, j, k);
  std::vector<T> r;
  dp::readout_cic(m.v, x, r);
  double rhs = 0.0;
  for (std::size_t p = 0; p < x.size(); ++p) rhs += w[p] * r[p];
  // Two orders of summation of ~500 x 8 products of O(1) terms: rounding ~1e-13 relative.
  CHECK(lhs == Approx(rhs).epsilon(1e-12));

  // The readout adjoint's mesh part is the weighted paint: <readout(m'), y> = <m', adj(y)>.
  UserMesh<T> mb(g, Layout::x_fastest);
  for (auto& e : mb.memory) e = 0.0;
  Positions<T> xb;
  dp::readout_cic_adjoint(m.v, x, w, mb.v, xb);
  double mesh_dot = 0.0;
  for (int i = 0; i < g.n[0]; ++i)
    for (int j = 0; j < g.n[1]; ++j)
      for (int k = 0; k < g.n[2]; ++k) mesh_dot += mb.v(i, j, k) * m.v(i, j, k);
  CHECK(mesh_dot == Approx(rhs).epsilon(1e-12));

  // Position part: <x_bar, v> = d/dh <w, readout(m)(x + h v)> at h = 0. A step of ~1e-6 Mpc/h
  // crosses a cell boundary only for a particle within 1e-6 Mpc/h of one (probability ~1e-7 per
  // particle and axis here); inside a cell the trilinear interpolant is a cubic in h along v, so
  // the central difference errs by h^2 f''' / 6 ~ 1e-12, and rounding of the O(10) sums adds
  // ~1e-15 / 1e-6 ~ 1e-9: tolerance 1e-6 relative.
  const auto v = random_positions<T>(x.size(), g, 22);
  auto shifted = [&](double h) {
    Positions<T> y = x;
    for (std::size_t p = 0; p < x.size(); ++p)
      for (int d = 0; d < 3; ++d) y[p][d] += h * v[p][d] / g.length[d];
    std::vector<T> out;
    dp::readout_cic(m.v, y, out);
    double s = 0.0;
    for (std::size_t p = 0; p < x.size(); ++p) s += w[p] * out[p];
    return s;
  };
  const double h = 1e-6;
  const double fd = (shifted(h) - shifted(-h)) / (2 * h);
  double ad = 0.0;
  for (std::size_t p = 0; p < x.size(); ++p)
    for (int d = 0; d < 3; ++d) ad += xb[p][d] * v[p][d] / g.length[d];
  CHECK(ad == Approx(fd).epsilon(1e-6));

  // The weighted paint adjoint: <paint(w'), m> has gradient readout(m) with respect to w'.
  Positions<T> xbp;
  std::vector<T> wb;
  dp::paint_cic_adjoint(m.v, x, w, xbp, wb);
  CHECK(same_bits(xbp, xb));  // the same position adjoint: w_p grad readout(m)(x_p)
  CHECK(same_bits(wb, r));
}

// ---------------------------------------------------------------------------------------------
// FFT
// ---------------------------------------------------------------------------------------------

namespace {
// A caller's fftw_malloc'd padded in-place buffer of padded_in_place_size T.
template <class T>
struct FftwBuffer {
  T* p;
  explicit FftwBuffer(std::size_t n) : p(static_cast<T*>(fftw_malloc(n * sizeof(T)))) {
    REQUIRE(p);
  }
  ~FftwBuffer() { fftw_free(p); }
  FftwBuffer(const FftwBuffer&) = delete;
  FftwBuffer& operator=(const FftwBuffer&) = delete;
};
}  // namespace

TEMPLATE_TEST_CASE("an in-place padded FFT plan agrees with the out-of-place packed plan",
                   "[mesh][view][fft]", float, double) {
  using T = TestType;
  for (const Grid& g : grids()) {
    INFO(g.to_string());
    const FftPlan<T> packed_plan(g, 2);
    const FftPlan<T> padded_plan(g, FftLayout::in_place_padded, 2);
    CHECK(padded_plan.layout() == FftLayout::in_place_padded);
    const RealField<T> x = random_field<T>(g, 23);
    ComplexField<T> k(g);
    packed_plan.forward(x, k);

    FftwBuffer<T> buffer(dm::padded_in_place_size(g));
    const auto views = dm::padded_in_place(buffer.p, g);
    for (int i = 0; i < g.n[0]; ++i)
      for (int j = 0; j < g.n[1]; ++j)
        for (int kk = 0; kk < g.n[2]; ++kk) views.real(i, j, kk) = x(i, j, kk);
    padded_plan.forward(views.real, views.complex);

    // Tolerance: FFTW does not promise that the two layouts run the same codelets (other
    // strides, in place), and other codelets sum in other orders: rounding of a few ulps per
    // stage over ~log2 N stages, relative to the largest mode. Observed with this machine's
    // FFTW 3.3.10 (FFTW_ESTIMATE): bitwise equal, here and on 32^3, 64^3, 128^3, 48x40x36 and
    // 30x27x25, at 1 and 2 threads; the bounds, 3e-6 (float) and 1e-14 (double), leave room for
    // an FFTW that plans the layouts differently.
    const double tol = sizeof(T) == 4 ? 3e-6 : 1e-14;
    double diff = 0.0, scale = 0.0;
    for (int i = 0; i < g.n[0]; ++i)
      for (int j = 0; j < g.n[1]; ++j)
        for (int kz = 0; kz < g.complex_nz(); ++kz) {
          const std::complex<double> a(k(i, j, kz)), b(views.complex(i, j, kz));
          diff = std::max(diff, std::abs(a - b));
          scale = std::max(scale, std::abs(a));
        }
    CHECK(diff / scale < tol);

    // Inverse in place: inverse(forward(x)) = N x, compared with the packed plan's inverse.
    RealField<T> y(g);
    packed_plan.inverse_destroying_input(k, y);
    padded_plan.inverse_destroying_input(views.complex, views.real);
    double round_trip = 0.0, cross = 0.0;
    for (int i = 0; i < g.n[0]; ++i)
      for (int j = 0; j < g.n[1]; ++j)
        for (int kk = 0; kk < g.n[2]; ++kk) {
          const double u = double(views.real(i, j, kk));
          round_trip = std::max(round_trip, std::abs(u / double(g.size()) - double(x(i, j, kk))));
          cross = std::max(cross, std::abs(u - double(y(i, j, kk))) / double(g.size()));
        }
    // As tests/backend/test_fft.cpp: a few ulps of |x| ~ 3 times ~9 stages.
    CHECK(round_trip < (sizeof(T) == 4 ? 2e-5 : 1e-13));
    CHECK(cross < (sizeof(T) == 4 ? 2e-5 : 1e-13));
  }
}

TEMPLATE_TEST_CASE("FFT plans refuse views that do not match their layout",
                   "[mesh][view][fft][errors]", float, double) {
  using T = TestType;
  const Grid g({8, 6, 10}, {100.0, 80.0, 50.0});
  const FftPlan<T> packed_plan(g, 1);
  const FftPlan<T> padded_plan(g, FftLayout::in_place_padded, 1);
  RealField<T> x(g);
  ComplexField<T> k(g);
  FftwBuffer<T> buffer(dm::padded_in_place_size(g)), other(dm::padded_in_place_size(g));
  const auto views = dm::padded_in_place(buffer.p, g);
  const auto other_views = dm::padded_in_place(other.p, g);

  // Layout: padded views on the packed plan, fields on the padded plan.
  CHECK_THROWS_WITH(
      packed_plan.forward(views.real, dm::view(k)),
      Catch::Contains("forward input has strides 72, 12, 1") && Catch::Contains("needs 60, 10, 1"));
  CHECK_THROWS_WITH(padded_plan.forward(x, k), Catch::Contains("in-place padded") &&
                                                   Catch::Contains("forward input has strides"));
  CHECK_THROWS_WITH(padded_plan.inverse_destroying_input(k, x),
                    Catch::Contains("inverse output has strides"));
  // In-place-ness: the padded plan on two buffers; the packed plan on overlapping arrays.
  CHECK_THROWS_WITH(padded_plan.forward(views.real, other_views.complex),
                    Catch::Contains("different buffers"));
  CHECK_THROWS_WITH(
      packed_plan.forward(dm::packed(buffer.p, g),
                          dm::packed(reinterpret_cast<std::complex<T>*>(buffer.p + 8), g)),
      Catch::Contains("overlap"));
  // Grid.
  const Grid g2({8, 6, 12}, {100.0, 80.0, 50.0});
  FftwBuffer<T> b2(dm::padded_in_place_size(g2));
  const auto v2 = dm::padded_in_place(b2.p, g2);
  CHECK_THROWS_WITH(padded_plan.forward(v2.real, v2.complex),
                    Catch::Contains("forward input is on another mesh"));
  ComplexField<T> k2(g2);
  CHECK_THROWS_WITH(packed_plan.forward(dm::view(x), dm::view(k2)),
                    Catch::Contains("forward output is on another mesh"));
  // Alignment: fftw_malloc'd memory shifted by one element is off FFTW's SIMD alignment.
  FftwBuffer<T> big(2 * g.size() + 8);
  const RealView<T> shifted = dm::packed(big.p + 1, g);
  CHECK_THROWS_WITH(packed_plan.forward(shifted, dm::view(k)),
                    Catch::Contains("forward input is " + std::to_string(sizeof(T)) +
                                    " bytes off the SIMD alignment"));
  // Null pointers.
  CHECK_THROWS_WITH(packed_plan.forward(RealView<T>(nullptr, g, {60, 10, 1}), dm::view(k)),
                    Catch::Contains("forward input is a view") && Catch::Contains("null pointer"));
  RealField<T> moved_from = std::move(x);
  CHECK_THROWS_AS(packed_plan.forward(x, k), InvalidArgument);  // holds no data now
  // A matching call still runs.
  CHECK_NOTHROW(padded_plan.forward(views.real, views.complex));
  CHECK_NOTHROW(packed_plan.forward(moved_from, k));
}

TEMPLATE_TEST_CASE("an FFT plan round-trips a caller's fftw_malloc'd padded buffer",
                   "[mesh][view][fft]", float, double) {
  using T = TestType;
  const Grid g({6, 8, 7}, {60.0, 80.0, 70.0});
  const auto plan = std::make_shared<const FftPlan<T>>(g, FftLayout::in_place_padded, 2);
  FftwBuffer<T> buffer(dm::padded_in_place_size(g));
  const auto views = dm::padded_in_place(buffer.p, g);
  const RealField<T> x = random_field<T>(g, 24);
  double sum = 0.0;
  for (int i = 0; i < g.n[0]; ++i)
    for (int j = 0; j < g.n[1]; ++j)
      for (int k = 0; k < g.n[2]; ++k) {
        views.real(i, j, k) = x(i, j, k);
        sum += double(x(i, j, k));
      }
  diffpm::require_plan(plan, "test").forward(views.real, views.complex);
  CHECK(double(views.complex(0, 0, 0).real()) == Approx(sum).margin(1e-4));
  plan->inverse_destroying_input(views.complex, views.real);
  double worst = 0.0;
  for (int i = 0; i < g.n[0]; ++i)
    for (int j = 0; j < g.n[1]; ++j)
      for (int k = 0; k < g.n[2]; ++k)
        worst = std::max(
            worst, std::abs(double(views.real(i, j, k)) / double(g.size()) - double(x(i, j, k))));
  // As tests/backend/test_fft.cpp: a few ulps of |x| ~ 3 times ~9 stages.
  CHECK(worst < (sizeof(T) == 4 ? 2e-5 : 1e-13));
}

// ---------------------------------------------------------------------------------------------
// Fourier kernels, deconvolution, power spectrum
// ---------------------------------------------------------------------------------------------

namespace {
template <class T>
ComplexField<T> random_spectrum(const Grid& g, std::uint64_t seed) {
  ComplexField<T> f(g);
  const auto v = random_values<T>(2 * f.size(), seed);
  for (std::size_t c = 0; c < f.size(); ++c) f.data[c] = {v[2 * c], v[2 * c + 1]};
  return f;
}

// A half spectrum in the complex view of a padded buffer, or stored x fastest (z stride != 1).
template <class T>
struct UserSpectrum {
  std::vector<std::complex<T>> memory;
  ComplexView<T> v;
  UserSpectrum(const ComplexField<T>& f, bool x_fastest) {
    const Grid& g = f.grid;
    memory.resize(g.complex_size());
    if (x_fastest) {
      v = ComplexView<T>(memory.data(), g, {1, g.n[0], std::ptrdiff_t(g.n[0]) * g.n[1]});
    } else {
      v = dm::padded_in_place(reinterpret_cast<T*>(memory.data()), g).complex;
    }
    for (int i = 0; i < g.n[0]; ++i)
      for (int j = 0; j < g.n[1]; ++j)
        for (int k = 0; k < g.complex_nz(); ++k) v(i, j, k) = f(i, j, k);
  }
  bool equals(const ComplexField<T>& f) const {
    for (int i = 0; i < f.grid.n[0]; ++i)
      for (int j = 0; j < f.grid.n[1]; ++j)
        for (int k = 0; k < f.grid.complex_nz(); ++k)
          if (!same_bits(v(i, j, k), f(i, j, k))) return false;
    return true;
  }
};
}  // namespace

TEMPLATE_TEST_CASE("Fourier kernels and the CIC deconvolution on half-spectrum views are bitwise",
                   "[mesh][view][fourier]", float, double) {
  using T = TestType;
  using dm::OutputMode;
  for (const Grid& g : grids()) {
    const ComplexField<T> in = random_spectrum<T>(g, 25), start = random_spectrum<T>(g, 26);
    dm::ForceKernelOptions opt;
    opt.smoothing_scale = 3.0;
    const double s = dm::inverse_fft_scale(g);
    // Each kernel on fields (overwrite and accumulate), then on views of the same values.
    using Apply = std::function<void(dm::ConstComplexView<T>, dm::ComplexView<T>, OutputMode)>;
    using ApplyField = std::function<void(const ComplexField<T>&, ComplexField<T>&, OutputMode)>;
    struct Kernel {
      const char* name;
      ApplyField on_fields;
      Apply on_views;
    };
    const std::vector<Kernel> kernels = {
        {"inverse Laplacian",
         [&](auto& a, auto& b, OutputMode m) {
           dm::apply_inverse_laplacian(a, dm::LaplacianKernel::finite_difference, s, b, m);
         },
         [&](auto a, auto b, OutputMode m) {
           dm::apply_inverse_laplacian(a, dm::LaplacianKernel::finite_difference, s, b, m);
         }},
        {"gradient",
         [&](auto& a, auto& b, OutputMode m) {
           dm::apply_gradient(a, 1, dm::GradientKernel::finite_difference_4, s, b, m);
         },
         [&](auto a, auto b, OutputMode m) {
           dm::apply_gradient(a, 1, dm::GradientKernel::finite_difference_4, s, b, m);
         }},
        {"gradient adjoint",
         [&](auto& a, auto& b, OutputMode m) {
           dm::apply_gradient_adjoint(a, 2, dm::GradientKernel::exact, s, b, m);
         },
         [&](auto a, auto b, OutputMode m) {
           dm::apply_gradient_adjoint(a, 2, dm::GradientKernel::exact, s, b, m);
         }},
        {"smoothing", [&](auto& a, auto& b, OutputMode m) { dm::apply_smoothing(a, 2.0, s, b, m); },
         [&](auto a, auto b, OutputMode m) { dm::apply_smoothing(a, 2.0, s, b, m); }},
        {"force kernel",
         [&](auto& a, auto& b, OutputMode m) { dm::apply_force_kernel(a, 0, opt, 0.3, s, b, m); },
         [&](auto a, auto b, OutputMode m) { dm::apply_force_kernel(a, 0, opt, 0.3, s, b, m); }},
        {"force kernel adjoint",
         [&](auto& a, auto& b, OutputMode m) {
           dm::apply_force_kernel_adjoint(a, 2, opt, 0.3, s, b, m);
         },
         [&](auto a, auto b, OutputMode m) {
           dm::apply_force_kernel_adjoint(a, 2, opt, 0.3, s, b, m);
         }},
        {"potential kernel",
         [&](auto& a, auto& b, OutputMode m) { dm::apply_potential_kernel(a, opt, 0.3, s, b, m); },
         [&](auto a, auto b, OutputMode m) { dm::apply_potential_kernel(a, opt, 0.3, s, b, m); }},
        {"Omega_m derivative",
         [&](auto& a, auto& b, OutputMode m) {
           dm::apply_force_kernel_omega_m_derivative(a, 1, opt, s, b, m);
         },
         [&](auto a, auto b, OutputMode m) {
           dm::apply_force_kernel_omega_m_derivative(a, 1, opt, s, b, m);
         }},
    };
    for (const Kernel& kernel : kernels) {
      for (bool x_fastest : {false, true}) {
        INFO(kernel.name << (x_fastest ? ", x fastest" : ", padded") << " on " << g.to_string());
        ComplexField<T> overwritten = start, accumulated = start, in_place = in;
        kernel.on_fields(in, overwritten, OutputMode::overwrite);
        kernel.on_fields(in, accumulated, OutputMode::accumulate);
        kernel.on_fields(in_place, in_place, OutputMode::overwrite);
        const UserSpectrum<T> a(in, x_fastest);
        UserSpectrum<T> b(start, x_fastest), c(start, x_fastest), d(in, x_fastest);
        kernel.on_views(a.v, b.v, OutputMode::overwrite);
        kernel.on_views(a.v, c.v, OutputMode::accumulate);
        kernel.on_views(d.v, d.v, OutputMode::overwrite);  // in place
        CHECK(b.equals(overwritten));
        CHECK(c.equals(accumulated));
        CHECK(d.equals(in_place));
        CHECK(a.equals(in));
      }
    }
    for (bool x_fastest : {false, true}) {
      ComplexField<T> deconvolved = in;
      dp::deconvolve_cic(deconvolved);
      UserSpectrum<T> u(in, x_fastest), ua(in, x_fastest);
      dp::deconvolve_cic(u.v);
      dp::deconvolve_cic_adjoint(ua.v);
      CHECK(u.equals(deconvolved));
      CHECK(ua.equals(deconvolved));
    }
  }
}

TEMPLATE_TEST_CASE("the power spectrum of a caller's mesh view", "[mesh][view][measure]", float,
                   double) {
  using T = TestType;
  const Grid g({8, 6, 10}, {100.0, 80.0, 50.0});
  const RealField<T> delta = random_field<T>(g, 27), other = random_field<T>(g, 28);
  const FftPlan<T> packed_plan(g, 1);
  const FftPlan<T> padded_plan(g, FftLayout::in_place_padded, 1);
  const auto reference = diffpm::measure::measure_power(delta, packed_plan);
  const auto cross_reference = diffpm::measure::measure_cross_power(delta, other, packed_plan);

  // A packed, aligned view goes straight to the plan: bitwise.
  const auto direct = diffpm::measure::measure_power(dm::view(delta), packed_plan);
  CHECK(direct.power == reference.power);
  CHECK(direct.n_modes == reference.n_modes);
  // Other layouts are copied into the plan's layout first: the same FFT on the same values.
  for (Layout layout : all_layouts) {
    INFO(name(layout));
    const UserMesh<T> u(delta, layout), v(other, layout);
    const auto ps = diffpm::measure::measure_power(u.v, packed_plan);
    CHECK(ps.power == reference.power);
    const auto cross = diffpm::measure::measure_cross_power(u.v, v.v, packed_plan);
    CHECK(cross.cross == cross_reference.cross);
    CHECK(u.equals(delta));  // the caller's mesh is only read
    // Through the in-place plan: another FFTW layout, equal to rounding (as the FFT test).
    const auto padded = diffpm::measure::measure_power(u.v, padded_plan);
    REQUIRE(padded.power.size() == reference.power.size());
    for (std::size_t b = 0; b < padded.power.size(); ++b) {
      CHECK(padded.power[b] == Approx(reference.power[b]).epsilon(sizeof(T) == 4 ? 1e-5 : 1e-13));
    }
    CHECK(u.equals(delta));
  }
  // The half spectrum as a view (here the complex view of a padded buffer).
  ComplexField<T> k(g);
  packed_plan.forward(delta, k);
  const UserSpectrum<T> uk(k, false);
  const auto from_view = diffpm::measure::measure_power(uk.v);
  CHECK(from_view.power == diffpm::measure::measure_power(k).power);
}

// ---------------------------------------------------------------------------------------------
// Bad views
// ---------------------------------------------------------------------------------------------

TEST_CASE("mesh kernels refuse bad views, naming the argument", "[mesh][view][errors]") {
  using T = double;
  const Grid g({8, 6, 10}, {100.0, 80.0, 50.0});
  const auto x = random_positions<T>(10, g, 29);
  std::vector<T> values;
  std::vector<T> memory(dm::padded_in_place_size(g), 0.0), memory2(memory);
  const RealView<T> good = dm::padded_in_place(memory.data(), g).real;

  // A null pointer on a valid grid.
  CHECK_THROWS_WITH(
      dp::paint_cic(x, RealView<T>(nullptr, g, {60, 10, 1})),
      Catch::Contains("paint_cic: mesh is a view") && Catch::Contains("null pointer"));
  // A default view has no valid grid.
  CHECK_THROWS_WITH(dp::readout_cic(RealView<const T>(), x, values),
                    Catch::Contains("readout_cic: mesh has an invalid grid"));
  // Overlapping rows: a y stride of 8 < n_z = 10.
  CHECK_THROWS_WITH(dp::readout_cic(RealView<T>(memory.data(), g, {48, 8, 1}), x, values),
                    Catch::Contains("readout_cic: mesh has overlapping elements") &&
                        Catch::Contains("stride 8 along y"));
  // Two axes with one stride.
  CHECK_THROWS_WITH(dp::paint_cic(x, RealView<T>(memory.data(), g, {60, 10, 10})),
                    Catch::Contains("overlapping elements"));
  // A stride <= 0.
  CHECK_THROWS_WITH(dp::paint_cic(x, RealView<T>(memory.data(), g, {60, -10, 1})),
                    Catch::Contains("paint_cic: mesh has stride -10 along y (must be > 0)"));
  // Views on different grids passed together.
  const Grid g2({8, 6, 12}, {100.0, 80.0, 50.0});
  std::vector<T> memory3(dm::padded_in_place_size(g2), 0.0);
  const RealView<T> on_g2 = dm::padded_in_place(memory3.data(), g2).real;
  Positions<T> xb;
  const std::vector<T> values_bar(x.size(), 1.0);
  CHECK_THROWS_WITH(dp::readout_cic_adjoint(good, x, values_bar, on_g2, xb),
                    Catch::Contains("readout_cic_adjoint: mesh_bar is on a mesh of 8x6x12"));
  Positions<T> v3;
  CHECK_THROWS_WITH(dp::readout_cic(good, on_g2, good, x, v3),
                    Catch::Contains("readout_cic: mesh_y is on a mesh of 8x6x12"));
  // The three meshes of a vector readout in different layouts.
  const RealView<T> packed_view = dm::packed(memory2.data(), g);
  CHECK_THROWS_WITH(dp::readout_cic(good, good, packed_view, x, v3),
                    Catch::Contains("readout_cic: mesh_z has strides 60, 10, 1, mesh_x 72, 12, 1"));
  // A CIC plan on another grid.
  dp::CicPlan<T> plan(g2);
  plan.set_points(x);
  CHECK_THROWS_WITH(plan.paint(good), Catch::Contains("CIC plan paint: mesh is on a mesh of"));
  // Fourier kernels: output on another grid; output overlapping the input in another layout.
  std::vector<std::complex<T>> spectrum(g.complex_size()), spectrum2(g2.complex_size());
  const ComplexView<T> k = dm::packed(spectrum.data(), g);
  CHECK_THROWS_WITH(dm::apply_smoothing(k, 1.0, 1.0, dm::packed(spectrum2.data(), g2)),
                    Catch::Contains("Gaussian smoothing: output mesh (8x6x12"));
  CHECK_THROWS_WITH(
      dm::apply_smoothing(k, 1.0, 1.0, ComplexView<T>(spectrum.data(), g, {1, 8, 48})),
      Catch::Contains("Gaussian smoothing: output overlaps the input with another layout"));
  CHECK_THROWS_WITH(
      dp::deconvolve_cic(ComplexView<T>(nullptr, g, {36, 6, 1})),
      Catch::Contains("deconvolve_cic: field is a view") && Catch::Contains("null pointer"));
}
