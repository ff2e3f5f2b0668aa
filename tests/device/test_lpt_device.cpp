// The linear field and LPT on the device code path (ic/linear_field_device.hpp, Lpt<T, Cuda>)
// against the CPU. Both backends run the same per-mode and per-particle functions, and the
// device sums group their terms as the CPU's deterministic sums do, so in the host emulation
// (FFTW standing in for cuFFT, the same compiler) every field, particle and gradient is the
// CPU's bit for bit. On a GPU they agree to the tolerances stated below: cuFFT and FFTW round
// differently, and nvcc may contract a * b + c into FMAs in the per-element arithmetic.
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <complex>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "diffpm/backend/cpu/fft.hpp"
#include "diffpm/backend/device/fft.hpp"
#include "diffpm/ic/linear_field.hpp"
#include "diffpm/ic/linear_field_device.hpp"
#include "diffpm/ic/white_noise.hpp"
#include "diffpm/nbody/simulation.hpp"
#include "diffpm/particles/lpt.hpp"
#include "diffpm/particles/lpt_device.hpp"
#include "support/device.hpp"

using namespace diffpm;
using particles::LptFactors;

namespace {

template <class T>
using Vecs = std::vector<std::array<T, 3>>;

/// A mesh and a particle lattice on it: cubic, odd and non-cubic, and coarser than the mesh.
struct Case {
  mesh::Grid grid;
  std::array<int, 3> lattice;
};
const Case cases[] = {
    {mesh::Grid({8, 8, 8}, {40.0, 40.0, 40.0}), {0, 0, 0}},
    {mesh::Grid({9, 6, 10}, {45.0, 30.0, 60.0}), {0, 0, 0}},
    {mesh::Grid({12, 8, 6}, {60.0, 40.0, 30.0}), {6, 4, 3}},
    {mesh::Grid({10, 6, 9}, {50.0, 36.0, 45.0}), {5, 3, 3}},
};

/// A red power law, so that the displacements are O(1) Mpc/h.
double power(double k) { return 200.0 / k; }

/// Whether two containers hold the same bytes.
template <class V>
bool same_bits(const V& a, const V& b) {
  return a.size() == b.size() &&
         (a.size() == 0 || std::memcmp(a.data(), b.data(), a.size() * sizeof(a[0])) == 0);
}

/// max |a - b| / max |b| over the values of two containers of T, std::complex<T> or 3-vectors
/// (viewed as arrays of reals).
template <class R, class V>
double relative_difference(const V& a, const V& b) {
  const std::size_t n = b.size() * sizeof(b[0]) / sizeof(R);
  const R* x = reinterpret_cast<const R*>(a.data());
  const R* y = reinterpret_cast<const R*>(b.data());
  double err = 0.0, scale = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    err = std::max(err, std::abs(double(x[i]) - double(y[i])));
    scale = std::max(scale, std::abs(double(y[i])));
  }
  return scale > 0 ? err / scale : err;
}

/// The tolerance of a GPU result against the CPU's, relative to the largest value: FFTs are
/// accurate to O(eps log N) of the largest mode (Frigo & Johnson 2005) and LPT chains up to three
/// of them with products of fields (the 2LPT source) in between; 200 eps covers that with room,
/// as for the PM force.
template <class T>
double gpu_tolerance() {
  return 200.0 * double(std::numeric_limits<T>::epsilon());
}

/// Checks device against CPU values: bit for bit in the emulation, else to the GPU tolerance.
template <class T, class V>
void check_same(const V& dev, const V& cpu, const char* what) {
  INFO(what);
  REQUIRE(dev.size() == cpu.size());
  if (test::emulated_device) {
    CHECK(same_bits(dev, cpu));
  } else {
    CHECK(relative_difference<T>(dev, cpu) <= gpu_tolerance<T>());
  }
}

/// Positions, compared modulo the box: bit for bit in the emulation; on a GPU to the tolerance
/// relative to the largest displacement, plus a rounding of the wrapped position to T.
template <class T>
void check_positions(const Vecs<T>& dev, const Vecs<T>& cpu, const Vecs<T>& s,
                     const mesh::Grid& g) {
  REQUIRE(dev.size() == cpu.size());
  if (test::emulated_device) {
    CHECK(same_bits(dev, cpu));
    return;
  }
  double worst = 0.0, s_max = 0.0, L = 0.0;
  for (std::size_t i = 0; i < cpu.size(); ++i)
    for (int d = 0; d < 3; ++d) {
      double dx = double(dev[i][d]) - double(cpu[i][d]);
      dx -= g.length[d] * std::round(dx / g.length[d]);
      worst = std::max(worst, std::abs(dx));
      s_max = std::max(s_max, std::abs(double(s[i][d])));
      L = std::max(L, g.length[d]);
    }
  CHECK(worst <= gpu_tolerance<T>() * (s_max + L));
}

template <class T>
Vecs<T> random_vectors(std::size_t n, std::uint64_t seed) {
  Vecs<T> v(n);
  for (std::size_t p = 0; p < n; ++p)
    for (int d = 0; d < 3; ++d) v[p][d] = T(ic::white_noise_value(seed, 3 * p + d));
  return v;
}

template <class T>
mesh::ComplexField<T> random_spectrum(const mesh::Grid& g, std::uint64_t seed) {
  mesh::ComplexField<T> f(g);
  for (std::size_t n = 0; n < f.data.size(); ++n) {
    f.data[n] = std::complex<T>(T(ic::white_noise_value(seed, 2 * n)),
                                T(ic::white_noise_value(seed, 2 * n + 1)));
  }
  return f;
}

/// The CPU's delta_L of white noise `seed` on g (free amplitudes).
template <class T>
mesh::ComplexField<T> cpu_delta(const FftPlan<T>& plan, std::uint64_t seed) {
  const mesh::Grid& g = plan.grid();
  mesh::ComplexField<T> delta;
  ic::linear_field(plan, ic::white_noise<T>(g, seed), ic::mode_amplitudes(g, power), delta);
  return delta;
}

/// Download of a device view of vectors stored as packed triples.
template <class T>
Vecs<T> host(const test::DevicePositions<T>& v) {
  return v.to_host();
}

double spectrum_dot(const mesh::ComplexField<double>& a, const mesh::ComplexField<double>& b) {
  return ic::spectrum_dot(a, b);
}

double dot(const Vecs<double>& a, const Vecs<double>& b) {
  double s = 0.0;
  for (std::size_t p = 0; p < a.size(); ++p)
    for (int d = 0; d < 3; ++d) s += a[p][d] * b[p][d];
  return s;
}

/// Whether f() throws diffpm::InvalidArgument with `text` in its message.
template <class F>
bool throws_invalid(const F& f, const std::string& text) {
  try {
    f();
  } catch (const InvalidArgument& e) {
    const std::string m = e.what();
    INFO("message: " << m);
    CHECK(m.find(text) != std::string::npos);
    return m.find(text) != std::string::npos;
  } catch (...) {
    return false;
  }
  return false;
}

}  // namespace

TEMPLATE_TEST_CASE("device linear field and its adjoint are the CPU's", "[device][lpt][linear]",
                   float, double) {
  using T = TestType;
  for (const Case& c : cases) {
    const mesh::Grid& g = c.grid;
    INFO("grid " << g.to_string());
    const auto amp = ic::mode_amplitudes(g, power);
    const device::Buffer<double> amp_d(amp);
    FftPlan<T> cpu_plan(g);
    FftPlan<T, Cuda> plan(g);
    const auto noise = ic::white_noise<T>(g, 17);
    test::DeviceMesh<T> noise_d(g);
    ic::white_noise(Cuda{}, 17, noise_d.view());
    auto delta_bar = random_spectrum<T>(g, 5);
    auto delta_bar_d = test::to_device(delta_bar);
    for (const bool fixed : {false, true}) {
      INFO("fixed amplitude " << fixed);
      ic::LinearFieldOptions lo;
      lo.fixed_amplitude = fixed;
      mesh::ComplexField<T> delta;
      ic::linear_field(cpu_plan, noise, amp, delta, lo);
      test::DeviceSpectrum<T> delta_d(g);
      ic::linear_field(Cuda{}, plan, noise_d.view(), amp_d, delta_d.view(), lo);
      const auto dev = delta_d.to_host();
      if (test::emulated_device || !fixed) {
        check_same<T>(dev.data, delta.data, "delta_L");
      } else {
        // On a GPU w/|w| carries the FFT's absolute error eps max|w| divided by |w|: the
        // tolerance scales with the spread max|w| / min|w| of the modes.
        mesh::ComplexField<T> w;
        cpu_plan.forward(noise, w);
        double w_max = 0.0, w_min = std::numeric_limits<double>::max();
        for (std::size_t n = 1; n < w.data.size(); ++n) {
          w_max = std::max(w_max, double(std::abs(w.data[n])));
          w_min = std::min(w_min, double(std::abs(w.data[n])));
        }
        CHECK(relative_difference<T>(dev.data, delta.data) <= gpu_tolerance<T>() * w_max / w_min);
      }

      mesh::RealField<T> noise_bar;
      std::vector<double> amp_bar;
      ic::linear_field_adjoint(cpu_plan, noise, amp, delta_bar, noise_bar, &amp_bar, lo);
      test::DeviceMesh<T> noise_bar_d(g);
      device::Buffer<double> amp_bar_d;
      ic::linear_field_adjoint(Cuda{}, plan, noise_d.view(), amp_d, delta_bar_d.view(),
                               noise_bar_d.view(), &amp_bar_d, lo);
      if (test::emulated_device || !fixed) {
        check_same<T>(noise_bar_d.to_host().data, noise_bar.data, "noise_bar");
        check_same<double>(amp_bar_d.to_host(), amp_bar, "amplitude_bar");
      }
    }
  }
}

TEMPLATE_TEST_CASE("device LPT fields, positions and momenta are the CPU's", "[device][lpt]", float,
                   double) {
  using T = TestType;
  const LptFactors<double> f{0.8, -0.25, 1.1, -0.6};
  const std::array<double, 3> offset{0.5, 0.25, 1.5};
  for (const Case& c : cases) {
    INFO("grid " << c.grid.to_string() << ", lattice " << c.lattice[0] << "x" << c.lattice[1] << "x"
                 << c.lattice[2]);
    particles::Lpt<T> cpu(c.grid, c.lattice);
    particles::Lpt<T, Cuda> dev(c.grid, c.lattice);
    REQUIRE(dev.num_particles() == cpu.num_particles());
    CHECK(dev.lattice() == cpu.lattice());
    CHECK(dev.lattice_position(dev.num_particles() - 1) ==
          cpu.lattice_position(cpu.num_particles() - 1));
    const auto delta = cpu_delta(cpu.plan(), 9);
    auto delta_d = test::to_device(delta);
    const std::size_t np = cpu.num_particles();
    for (const int order : {1, 2}) {
      INFO("order " << order);
      cpu.compute(delta, order);
      dev.compute(delta_d.view(), order);
      CHECK(dev.order() == order);
      auto download = [&](mesh::RealView<const T> v) {
        std::vector<T> h(c.grid.size());
        device::copy(h.data(), v.data, h.size() * sizeof(T));
        return h;
      };
      for (int d = 0; d < 3; ++d) {
        check_same<T>(download(dev.psi1(d)),
                      std::vector<T>(cpu.psi1(d).data.begin(), cpu.psi1(d).data.end()), "Psi1");
        if (order == 2) {
          check_same<T>(download(dev.psi2(d)),
                        std::vector<T>(cpu.psi2(d).data.begin(), cpu.psi2(d).data.end()), "Psi2");
        }
      }
      if (order == 2) {
        check_same<T>(download(dev.source()),
                      std::vector<T>(cpu.source().data.begin(), cpu.source().data.end()),
                      "2LPT source");
      }

      Vecs<T> x, p, s, q;
      cpu.particles(f, x, p, offset);
      cpu.displacements(f, s, q);
      test::DevicePositions<T> xd(np), pd(np), sd(np), qd(np);
      dev.particles(f, xd.view(), pd.view(), offset);
      dev.displacements(f, sd.view(), qd.view());
      check_positions(host(xd), x, s, c.grid);
      check_same<T>(host(pd), p, "momenta");
      check_same<T>(host(sd), s, "displacements");
      check_same<T>(host(qd), q, "momenta of displacements()");
    }
  }
}

TEMPLATE_TEST_CASE("device LPT adjoint is the CPU's", "[device][lpt][adjoint]", float, double) {
  using T = TestType;
  const LptFactors<double> f1{0.8, -0.25, 1.1, -0.6}, f2{0.3, -0.04, 0.2, -0.03};
  for (const Case& c : cases) {
    INFO("grid " << c.grid.to_string() << ", lattice " << c.lattice[0]);
    particles::Lpt<T> cpu(c.grid, c.lattice);
    particles::Lpt<T, Cuda> dev(c.grid, c.lattice);
    const auto delta = cpu_delta(cpu.plan(), 9);
    auto delta_d = test::to_device(delta);
    const std::size_t np = cpu.num_particles();
    const auto x1 = random_vectors<T>(np, 3), p1 = random_vectors<T>(np, 4);
    const auto x2 = random_vectors<T>(np, 5), p2 = random_vectors<T>(np, 6);
    test::DevicePositions<T> x1d(x1), p1d(p1), x2d(x2), p2d(p2);
    for (const int order : {1, 2}) {
      INFO("order " << order);
      cpu.compute(delta, order);
      dev.compute(delta_d.view(), order);

      mesh::ComplexField<T> bar;
      LptFactors<double> g;
      cpu.adjoint(delta, x1, p1, bar, g, f1);
      test::DeviceSpectrum<T> bar_d(c.grid);
      LptFactors<double> gd;
      dev.adjoint(delta_d.view(), x1d.view(), p1d.view(), bar_d.view(), gd, f1);
      check_same<T>(bar_d.to_host().data, bar.data, "delta_bar");
      const std::vector<double> gc{g.D1, g.D2, g.p1, g.p2}, gdv{gd.D1, gd.D2, gd.p1, gd.p2};
      if (test::emulated_device) {
        CHECK(same_bits(gdv, gc));
      } else {
        // Sums over particles of xbar Psi: the fields' FFT error, eps max|Psi| per term, summed
        // over sum |xbar| (the sums themselves may cancel).
        double psi_max = 0.0, xbar_sum = 0.0;
        for (int d = 0; d < 3; ++d)
          for (const T v : cpu.psi1(d).data) psi_max = std::max(psi_max, std::abs(double(v)));
        for (std::size_t i = 0; i < np; ++i)
          for (int d = 0; d < 3; ++d) xbar_sum += std::abs(double(x1[i][d])) + std::abs(p1[i][d]);
        for (int k = 0; k < 4; ++k)
          CHECK(std::abs(gdv[k] - gc[k]) <= 10 * gpu_tolerance<T>() * psi_max * xbar_sum);
      }

      // Two evaluations in one pass.
      cpu.adjoint_begin();
      const auto h1 = cpu.adjoint_accumulate(x1, p1, f1);
      const auto h2 = cpu.adjoint_accumulate(x2, p2, f2);
      cpu.adjoint_end(delta, bar);
      dev.adjoint_begin();
      const auto k1 = dev.adjoint_accumulate(x1d.view(), p1d.view(), f1);
      const auto k2 = dev.adjoint_accumulate(x2d.view(), p2d.view(), f2);
      dev.adjoint_end(delta_d.view(), bar_d.view());
      check_same<T>(bar_d.to_host().data, bar.data, "delta_bar of two evaluations");
      if (test::emulated_device) {
        CHECK(k1.D1 == h1.D1);
        CHECK(k1.p2 == h1.p2);
        CHECK(k2.D2 == h2.D2);
        CHECK(k2.p1 == h2.p1);
      }
      if (order == 1) {
        CHECK(k1.D2 == 0.0);
        CHECK(k1.p2 == 0.0);
      }
    }
  }
}

TEST_CASE("device LPT adjoint is its transpose (dot-product test, double)",
          "[device][lpt][adjoint]") {
  // <J v, w> = <v, J^T w> for the Jacobian J of delta_L -> (s, p) at delta, and for the factors.
  // The map is a polynomial of degree <= 2 in delta, so the central difference with h = 1 is
  // exact: J v = (F(delta + v) - F(delta - v)) / 2; round-off of sums over ~1e3 terms after a few
  // FFTs is ~1e-14 relative: 1e-12.
  const LptFactors<double> f{0.8, -0.25, 1.1, -0.6}, df{0.3, -0.7, 0.5, 0.9};
  for (const Case& c : cases) {
    INFO("grid " << c.grid.to_string() << ", lattice " << c.lattice[0]);
    particles::Lpt<double, Cuda> lpt(c.grid, c.lattice);
    FftPlan<double> cpu_plan(c.grid);
    const auto delta = cpu_delta(cpu_plan, 11), v = cpu_delta(cpu_plan, 12);
    mesh::ComplexField<double> dp = delta, dm = delta;
    for (std::size_t n = 0; n < dp.data.size(); ++n) {
      dp.data[n] += v.data[n];
      dm.data[n] -= v.data[n];
    }
    const std::size_t np = lpt.num_particles();
    const auto xbar = random_vectors<double>(np, 13), pbar = random_vectors<double>(np, 14);
    test::DevicePositions<double> xbar_d(xbar), pbar_d(pbar), s_d(np), p_d(np);
    for (const int order : {1, 2}) {
      INFO("order " << order);
      auto displaced = [&](const mesh::ComplexField<double>& d, Vecs<double>& s, Vecs<double>& p) {
        auto dd = test::to_device(d);
        lpt.compute(dd.view(), order);
        lpt.displacements(f, s_d.view(), p_d.view());
        s = s_d.to_host();
        p = p_d.to_host();
      };
      Vecs<double> sp, pp, sm, pm;
      displaced(dp, sp, pp);
      displaced(dm, sm, pm);
      double lhs = 0.0;
      for (std::size_t i = 0; i < np; ++i)
        for (int d = 0; d < 3; ++d)
          lhs +=
              xbar[i][d] * 0.5 * (sp[i][d] - sm[i][d]) + pbar[i][d] * 0.5 * (pp[i][d] - pm[i][d]);

      auto delta_d = test::to_device(delta);
      lpt.compute(delta_d.view(), order);
      test::DeviceSpectrum<double> bar_d(c.grid);
      LptFactors<double> fbar;
      lpt.adjoint(delta_d.view(), xbar_d.view(), pbar_d.view(), bar_d.view(), fbar, f);
      CHECK(lhs == Approx(spectrum_dot(bar_d.to_host(), v)).epsilon(1e-12));

      // (s, p) are linear in the factors.
      lpt.displacements(df, s_d.view(), p_d.view());
      const double rhs = fbar.D1 * df.D1 + fbar.D2 * df.D2 + fbar.p1 * df.p1 + fbar.p2 * df.p2;
      CHECK(dot(xbar, s_d.to_host()) + dot(pbar, p_d.to_host()) == Approx(rhs).epsilon(1e-12));
    }
  }
}

TEST_CASE("device noise -> delta_L -> 2LPT: chained adjoints (double)", "[device][lpt][adjoint]") {
  // The device linear field's adjoint takes the device LPT's delta_bar as it comes, in the
  // spectrum-gradient convention of ic/linear_field.hpp; the map noise -> (s, p) is quadratic,
  // so the central difference with h = 1 is exact, as above.
  const mesh::Grid g({10, 12, 8}, {50.0, 60.0, 40.0});
  const device::Buffer<double> amp(ic::mode_amplitudes(g, power));
  auto plan = std::make_shared<const FftPlan<double, Cuda>>(g);
  particles::Lpt<double, Cuda> lpt(plan);
  const LptFactors<double> f{0.9, -0.3, 1.0, -0.5};
  const auto w = ic::white_noise<double>(g, 5), v = ic::white_noise<double>(g, 6);
  const std::size_t np = lpt.num_particles();
  test::DeviceSpectrum<double> delta(g);
  test::DevicePositions<double> s_d(np), p_d(np);
  auto run = [&](const mesh::RealField<double>& noise, Vecs<double>& s, Vecs<double>& p) {
    test::DeviceMesh<double> n(noise);
    ic::linear_field(Cuda{}, *plan, n.view(), amp, delta.view());
    lpt.compute(delta.view(), 2);
    lpt.displacements(f, s_d.view(), p_d.view());
    s = s_d.to_host();
    p = p_d.to_host();
  };
  mesh::RealField<double> wp = w, wm = w;
  for (std::size_t n = 0; n < w.data.size(); ++n) {
    wp.data[n] += v.data[n];
    wm.data[n] -= v.data[n];
  }
  Vecs<double> sp, pp, sm, pm, s, p;
  run(wp, sp, pp);
  run(wm, sm, pm);
  const auto xbar = random_vectors<double>(np, 7), pbar = random_vectors<double>(np, 8);
  double lhs = 0.0;
  for (std::size_t i = 0; i < np; ++i)
    for (int d = 0; d < 3; ++d)
      lhs += xbar[i][d] * 0.5 * (sp[i][d] - sm[i][d]) + pbar[i][d] * 0.5 * (pp[i][d] - pm[i][d]);
  run(w, s, p);
  test::DevicePositions<double> xbar_d(xbar), pbar_d(pbar);
  test::DeviceSpectrum<double> bar(g);
  LptFactors<double> fbar;
  lpt.adjoint(delta.view(), xbar_d.view(), pbar_d.view(), bar.view(), fbar, f);
  test::DeviceMesh<double> w_d(w), w_bar(g);
  ic::linear_field_adjoint(Cuda{}, *plan, w_d.view(), amp, bar.view(), w_bar.view());
  const auto wb = w_bar.to_host();
  double rhs = 0.0;
  for (std::size_t n = 0; n < w.data.size(); ++n) rhs += wb.data[n] * v.data[n];
  CHECK(lhs == Approx(rhs).epsilon(1e-12));
}

TEST_CASE("device linear field and LPT reject bad input, naming it", "[device][lpt]") {
  const mesh::Grid g = mesh::Grid::cube(8, 40.0), other = mesh::Grid::cube(8, 50.0);
  using L = particles::Lpt<double, Cuda>;
  CHECK(throws_invalid([&] { L l(g, {3, 8, 8}); }, "3 particles along x"));
  CHECK(throws_invalid([&] { L l(g, {8, 8, -2}); }, "-2 particles along z"));
  CHECK(throws_invalid([&] { L l(std::shared_ptr<const FftPlan<double, Cuda>>{}); }, "null"));

  L lpt(g);
  const std::size_t np = lpt.num_particles();
  test::DevicePositions<double> x(np), p(np), few(5);
  test::DeviceSpectrum<double> delta(g), elsewhere(other), bar(g), bar_elsewhere(other);
  delta.data.zero();
  CHECK(throws_invalid([&] { lpt.particles({}, x.view(), p.view()); }, "compute() has not"));
  CHECK(throws_invalid([&] { lpt.compute(elsewhere.view(), 1); }, "delta_L is on a 8x8x8 mesh"));
  CHECK(throws_invalid([&] { lpt.compute(delta.view(), 3); }, "order = 3"));
  lpt.compute(delta.view(), 2);
  CHECK(throws_invalid([&] { lpt.particles({}, few.view(), p.view()); },
                       "a view of 5 positions for 512 particles"));
  CHECK(throws_invalid([&] { lpt.displacements({}, x.view(), few.view()); },
                       "a view of 5 momenta for 512 particles"));
  CHECK(throws_invalid(
      [&] {
        lpt.particles({}, x.view(), p.view(), {0.0, std::numeric_limits<double>::quiet_NaN(), 0.0});
      },
      "lattice offset 1"));
  LptFactors<double> fbar;
  CHECK(
      throws_invalid([&] { lpt.adjoint(delta.view(), few.view(), p.view(), bar.view(), fbar, {}); },
                     "5 position and 512 momentum gradients for 512 particles"));
  CHECK(throws_invalid(
      [&] { lpt.adjoint(delta.view(), x.view(), p.view(), bar_elsewhere.view(), fbar, {}); },
      "delta_bar is on a"));
  lpt.compute(delta.view(), 2);  // ends the adjoint pass that the last check interrupted
  CHECK(throws_invalid([&] { lpt.adjoint_accumulate(x.view(), p.view(), {}); },
                       "adjoint_begin() was not called"));

  FftPlan<double, Cuda> plan(g);
  const device::Buffer<double> amp(ic::mode_amplitudes(g, power)),
      short_amp(std::vector<double>(7));
  test::DeviceMesh<double> noise(g), noise_elsewhere(other);
  CHECK(
      throws_invalid([&] { ic::linear_field(Cuda{}, plan, noise.view(), short_amp, delta.view()); },
                     "7 mode amplitudes for a half spectrum of 320 modes"));
  CHECK(throws_invalid(
      [&] { ic::linear_field(Cuda{}, plan, noise_elsewhere.view(), amp, delta.view()); },
      "noise is on"));
  CHECK(throws_invalid([&] { ic::linear_field(Cuda{}, plan, noise.view(), amp, elsewhere.view()); },
                       "delta is on"));
  CHECK(throws_invalid(
      [&] {
        ic::linear_field_adjoint(Cuda{}, plan, noise.view(), amp, elsewhere.view(), noise.view());
      },
      "delta_bar is on"));
}

TEMPLATE_TEST_CASE("run_simulation with backend cuda makes its initial conditions on the device",
                   "[device][lpt][simulation]", float, double) {
  // The seeded run, a run from the caller's white noise and one from the caller's delta_L, each
  // against the CPU run: delta_L and the final state bit for bit in the emulation (the same
  // functions at every stage); on a GPU, FFT rounding moves the trajectories apart, within a
  // hundredth of the 6 Mpc/h particle spacing after 4 steps.
  using T = TestType;
  namespace nb = nbody;
  const cosmology::Cosmology<double> cosmo{cosmology::Parameters<double>{}};
  nb::SimulationConfig cfg;
  cfg.box = {96.0, 72.0, 84.0};
  cfg.particles = {16, 12, 14};
  cfg.mesh = {32, 24, 28};
  cfg.steps = 4;
  cfg.seed = 8;
  for (const int order : {1, 2})
    for (const bool fixed : {false, true}) {
      INFO("order " << order << ", fixed amplitude " << fixed);
      cfg.lpt_order = order;
      cfg.fixed_amplitude = fixed;
      const mesh::Grid ic_grid(cfg.particles, cfg.box);
      const auto noise = ic::white_noise<T>(ic_grid, 21);
      cfg.backend = BackendKind::cpu;
      std::vector<nb::SimulationResult<T>> cpu;
      cpu.push_back(nb::run_simulation<T>(cosmo, cfg));
      cpu.push_back(nb::run_simulation<T>(cosmo, cfg, noise));
      cpu.push_back(nb::run_simulation<T>(cosmo, cfg, cpu[1].delta_linear));
      cfg.backend = BackendKind::cuda;
      std::vector<std::string> said;
      const auto progress = [&](const std::string& m) { said.push_back(m); };
      const nb::SimulationResult<T> dev[3] = {
          nb::run_simulation<T>(cosmo, cfg, nb::IntegratorOptions{}, {}, progress),
          nb::run_simulation<T>(cosmo, cfg, noise, nb::IntegratorOptions{}, {}, progress),
          nb::run_simulation<T>(cosmo, cfg, cpu[1].delta_linear, nb::IntegratorOptions{}, {},
                                progress)};
      CHECK(std::count_if(said.begin(), said.end(), [](const std::string& m) {
              return m.find("LPT at a = 0.1 on the device") != std::string::npos;
            }) == 3);
      for (int run = 0; run < 3; ++run) {
        INFO("run " << run);
        check_same<T>(dev[run].delta_linear.data, cpu[run].delta_linear.data, "delta_L");
        REQUIRE(dev[run].state.x.size() == cpu[run].state.x.size());
        if (test::emulated_device) {
          CHECK(same_bits(dev[run].state.x, cpu[run].state.x));
          CHECK(same_bits(dev[run].state.p, cpu[run].state.p));
        } else {
          double worst = 0.0;
          for (std::size_t i = 0; i < cpu[run].state.x.size(); ++i)
            for (int d = 0; d < 3; ++d) {
              double dx = double(dev[run].state.x[i][d]) - double(cpu[run].state.x[i][d]);
              dx -= cfg.box[d] * std::round(dx / cfg.box[d]);
              worst = std::max(worst, std::abs(dx));
            }
          CHECK(worst < 0.06);
        }
      }
    }
}
