// Fourier-space force kernels: analytic plane-wave forces (exact and finite-difference kernels,
// smoothing), agreement with real-space stencils, exact adjoints by dot-product tests, the
// Omega_m derivative and input validation.
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "diffpm/backend/cpu/fft.hpp"
#include "diffpm/mesh/fourier_kernels.hpp"
#include "support/mesh_fields.hpp"

namespace {

using diffpm::FftPlan;
using diffpm::InvalidArgument;
using diffpm::mesh::ComplexField;
using diffpm::mesh::ForceKernelOptions;
using diffpm::mesh::GradientKernel;
using diffpm::mesh::Grid;
using diffpm::mesh::LaplacianKernel;
using diffpm::mesh::OutputMode;
using diffpm::mesh::RealField;

constexpr double pi = 3.14159265358979323846;

// A non-cubic box with even sides (Nyquist planes on all three axes) and unequal cell counts.
Grid test_grid() { return Grid({16, 12, 20}, {100.0, 75.0, 125.0}); }
// Odd and even sides mixed: no Nyquist plane along x and z.
Grid odd_grid() { return Grid({9, 10, 7}, {90.0, 50.0, 77.0}); }

template <class T>
struct Tolerance;
template <>
struct Tolerance<double> {
  // FFT round-off ~ eps log2(N) plus the kernel's few ulps: observed <= 4e-15 relative to the
  // largest value; 1e-12 leaves two decades without hiding a wrong factor.
  static constexpr double analytic = 1e-12;
  // The brief's bound for double dot-product tests (observed ~2e-16).
  static constexpr double adjoint = 1e-10;
  // Stencil differences of the kernel output cancel at most (n/2)^2 ~ 100 ulps (observed 8e-16).
  static constexpr double stencil = 1e-13;
};
template <>
struct Tolerance<float> {
  // The input is rounded to float (6e-8) and each float FFT pass adds a few 1e-8: observed
  // <= 2e-7 over the 2 x 3 x 2 kernel combinations; 1e-5 is the same two-decade margin.
  static constexpr double analytic = 1e-5;
  // Both sides of <R v, w> = <v, R^T w> carry ~1e-7 of float rounding that averages down in the
  // double-accumulated dot product (observed 2e-8).
  static constexpr double adjoint = 1e-6;
  // The 7-point stencil of float phi cancels ~100 float ulps (observed 4.5e-7).
  static constexpr double stencil = 1e-5;
};

using diffpm::test::dot;
using diffpm::test::max_relative;
using diffpm::test::random_field;

template <class T>
using KernelFn = std::function<void(ComplexField<T>&)>;

/// inverse(K(forward(v))), the kernel applied in place and carrying the 1/N itself.
template <class T>
RealField<T> apply_real(const FftPlan<T>& plan, const RealField<T>& v, const KernelFn<T>& kernel) {
  ComplexField<T> vk(v.grid);
  plan.forward(v, vk);
  kernel(vk);
  RealField<T> out(v.grid);
  plan.inverse_destroying_input(vk, out);
  return out;
}

const char* name(LaplacianKernel k) {
  return k == LaplacianKernel::exact ? "exact Laplacian" : "FD Laplacian";
}
const char* name(GradientKernel k) {
  switch (k) {
    case GradientKernel::exact:
      return "exact gradient";
    case GradientKernel::finite_difference_2:
      return "2-point gradient";
    default:
      return "4-point gradient";
  }
}

// Independent (test-side) symbols, written from the stencils.
double lap_axis(LaplacianKernel kind, double k, double h) {
  if (kind == LaplacianKernel::exact) return k * k;
  const double s = 2.0 * std::sin(0.5 * k * h) / h;
  return s * s;
}
double grad_axis(GradientKernel kind, double k, double h) {
  switch (kind) {
    case GradientKernel::exact:
      return k;
    case GradientKernel::finite_difference_2:
      return std::sin(k * h) / h;
    default:
      return (8.0 * std::sin(k * h) - std::sin(2.0 * k * h)) / (6.0 * h);
  }
}

const LaplacianKernel laplacians[] = {LaplacianKernel::exact, LaplacianKernel::finite_difference};
const GradientKernel gradients[] = {GradientKernel::exact, GradientKernel::finite_difference_2,
                                    GradientKernel::finite_difference_4};

}  // namespace

TEMPLATE_TEST_CASE("force of a plane wave is the analytic -grad phi, lap phi = 3/2 Om delta",
                   "[mesh][fourier_kernels]", float, double) {
  using T = TestType;
  const Grid g = test_grid();
  const FftPlan<T> plan(g, 1);
  const double amplitude = 0.7, omega_m = 0.3;
  const int m[3] = {2, -3, 4};
  double k1[3], h[3];
  for (int d = 0; d < 3; ++d) {
    k1[d] = 2.0 * pi * m[d] / g.length[d];
    h[d] = g.cell_size(d);
  }
  RealField<T> delta(g);
  std::vector<double> phase(g.size());
  for (int i = 0; i < g.n[0]; ++i)
    for (int j = 0; j < g.n[1]; ++j)
      for (int k = 0; k < g.n[2]; ++k) {
        const double p = k1[0] * i * h[0] + k1[1] * j * h[1] + k1[2] * k * h[2];
        phase[g.index(i, j, k)] = p;
        delta(i, j, k) = static_cast<T>(amplitude * std::cos(p));
      }
  ComplexField<T> delta_k(g);
  plan.forward(delta, delta_k);
  const double scale = diffpm::mesh::inverse_fft_scale(g);

  for (const auto lap : laplacians)
    for (const auto grad : gradients)
      for (const double r_s : {0.0, 2.0}) {
        // lap phi = 3/2 Om A cos(k1.x) => phi = -(3/2 Om A / |k1|_L^2) cos(k1.x), and
        // F = -grad phi = -(3/2 Om A) g(k1) sin(k1.x) / |k1|_L^2 (g = k1 for the exact gradient).
        double k_lap = 0.0, k2 = 0.0;
        for (int d = 0; d < 3; ++d) {
          k_lap += lap_axis(lap, k1[d], h[d]);
          k2 += k1[d] * k1[d];
        }
        const double smoothing = std::exp(-k2 * r_s * r_s);
        const ForceKernelOptions options{lap, grad, r_s};
        for (int d = 0; d < 3; ++d) {
          const double coefficient =
              -1.5 * omega_m * amplitude * grad_axis(grad, k1[d], h[d]) * smoothing / k_lap;
          std::vector<double> expected(g.size());
          for (std::size_t c = 0; c < g.size(); ++c) expected[c] = coefficient * std::sin(phase[c]);
          const RealField<T> force = apply_real<T>(plan, delta, [&](ComplexField<T>& f) {
            diffpm::mesh::apply_force_kernel(f, d, options, omega_m, scale, f);
          });
          INFO(name(lap) << ", " << name(grad) << ", r_s = " << r_s << ", axis " << d);
          {
            const double err = max_relative(force, expected);
            INFO("max relative error " << err);
            CHECK(err < Tolerance<T>::analytic);
          }
        }
      }

  SECTION("the force equals minus the gradient of the potential from the separate kernels") {
    // F = -grad(L^{-1}(3/2 Om delta)): the separate kernels, composed with the signs of
    // lap phi = 3/2 Om delta and F = -grad phi, give the fused force kernel.
    for (int d = 0; d < 3; ++d) {
      const RealField<T> fused = apply_real<T>(plan, delta, [&](ComplexField<T>& f) {
        diffpm::mesh::apply_force_kernel(f, d, ForceKernelOptions{}, omega_m, scale, f);
      });
      // ForceKernelOptions{} = exact Laplacian, 4-point gradient.
      const RealField<T> composed = apply_real<T>(plan, delta, [&](ComplexField<T>& f) {
        diffpm::mesh::apply_inverse_laplacian(f, LaplacianKernel::exact, 1.5 * omega_m, f);
        diffpm::mesh::apply_gradient(f, d, GradientKernel::finite_difference_4, -scale, f);
      });
      {
        const double err = max_relative(composed, diffpm::test::to_double(fused));
        INFO("max relative error " << err);
        CHECK(err < Tolerance<T>::analytic);
      }
    }
  }

  SECTION("the potential kernel is -3/2 Om S L^{-1}, and the force kernel is -grad of it") {
    // phi = -(3/2 Om) S(k) delta / |k|_L^2 from the separate inverse Laplacian and smoothing;
    // F_d = -D_d phi is the fused force kernel (PmForce's real-space path relies on it).
    for (const auto lap : laplacians)
      for (const auto grad : gradients) {
        const ForceKernelOptions options{lap, grad, 2.0};
        INFO(name(lap) << ", " << name(grad));
        const RealField<T> phi = apply_real<T>(plan, delta, [&](ComplexField<T>& f) {
          diffpm::mesh::apply_potential_kernel(f, options, omega_m, scale, f);
        });
        const RealField<T> composed = apply_real<T>(plan, delta, [&](ComplexField<T>& f) {
          diffpm::mesh::apply_inverse_laplacian(f, lap, 1.5 * omega_m, f);
          diffpm::mesh::apply_smoothing(f, 2.0, scale, f);
        });
        {
          const double err = max_relative(phi, diffpm::test::to_double(composed));
          INFO("potential: max relative error " << err);
          CHECK(err < Tolerance<T>::analytic);
        }
        for (int d = 0; d < 3; ++d) {
          const RealField<T> fused = apply_real<T>(plan, delta, [&](ComplexField<T>& f) {
            diffpm::mesh::apply_force_kernel(f, d, options, omega_m, scale, f);
          });
          const RealField<T> minus_grad = apply_real<T>(plan, delta, [&](ComplexField<T>& f) {
            diffpm::mesh::apply_potential_kernel(f, options, omega_m, 1.0, f);
            diffpm::mesh::apply_gradient(f, d, grad, -scale, f);
          });
          const double err = max_relative(minus_grad, diffpm::test::to_double(fused));
          INFO("force, axis " << d << ": max relative error " << err);
          CHECK(err < Tolerance<T>::analytic);
        }
      }
  }

  SECTION("inverse Laplacian and smoothing alone") {
    const double r_s = 3.0;  // S(k1) = 0.34: the output is not swamped by round-off
    double k2 = 0.0;
    for (int d = 0; d < 3; ++d) k2 += k1[d] * k1[d];
    std::vector<double> expected_phi(g.size()), expected_smooth(g.size());
    for (std::size_t c = 0; c < g.size(); ++c) {
      expected_phi[c] = -amplitude * std::cos(phase[c]) / k2;
      expected_smooth[c] = amplitude * std::exp(-k2 * r_s * r_s) * std::cos(phase[c]);
    }
    const RealField<T> phi = apply_real<T>(plan, delta, [&](ComplexField<T>& f) {
      diffpm::mesh::apply_inverse_laplacian(f, LaplacianKernel::exact, scale, f);
    });
    {
      const double err = max_relative(phi, expected_phi);
      INFO("max relative error " << err);
      CHECK(err < Tolerance<T>::analytic);
    }
    const RealField<T> smooth = apply_real<T>(
        plan, delta, [&](ComplexField<T>& f) { diffpm::mesh::apply_smoothing(f, r_s, scale, f); });
    {
      const double err = max_relative(smooth, expected_smooth);
      INFO("max relative error " << err);
      CHECK(err < Tolerance<T>::analytic);
    }
  }
}

TEMPLATE_TEST_CASE("finite-difference kernels are the Fourier symbols of their stencils",
                   "[mesh][fourier_kernels]", float, double) {
  using T = TestType;
  for (const Grid& g : {test_grid(), odd_grid()}) {
    const FftPlan<T> plan(g, 1);
    const double scale = diffpm::mesh::inverse_fft_scale(g);
    const RealField<T> v = random_field<T>(g, 17);
    const int nx = g.n[0], ny = g.n[1], nz = g.n[2];
    auto at = [&](const RealField<T>& f, int i, int j, int k) {
      return double(f((i + nx) % nx, (j + ny) % ny, (k + nz) % nz));
    };
    INFO("mesh " << nx << "x" << ny << "x" << nz);

    // The 7-point Laplacian of phi = L_FD^{-1} v gives back v minus its mean.
    const RealField<T> phi = apply_real<T>(plan, v, [&](ComplexField<T>& f) {
      diffpm::mesh::apply_inverse_laplacian(f, LaplacianKernel::finite_difference, scale, f);
    });
    double mean = 0.0;
    for (const auto x : v.data) mean += double(x);
    mean /= double(g.size());
    std::vector<double> stencil(g.size());
    const double h0 = g.cell_size(0), h1 = g.cell_size(1), h2 = g.cell_size(2);
    for (int i = 0; i < nx; ++i)
      for (int j = 0; j < ny; ++j)
        for (int k = 0; k < nz; ++k) {
          const double c = at(phi, i, j, k);
          stencil[g.index(i, j, k)] =
              (at(phi, i + 1, j, k) - 2 * c + at(phi, i - 1, j, k)) / (h0 * h0) +
              (at(phi, i, j + 1, k) - 2 * c + at(phi, i, j - 1, k)) / (h1 * h1) +
              (at(phi, i, j, k + 1) - 2 * c + at(phi, i, j, k - 1)) / (h2 * h2) + mean;
        }
    std::vector<double> v_ref(v.data.begin(), v.data.end());
    RealField<T> stencil_field(g);
    for (std::size_t c = 0; c < g.size(); ++c) stencil_field.data[c] = static_cast<T>(stencil[c]);
    {
      const double err = max_relative(stencil_field, v_ref);
      INFO("max relative error " << err);
      CHECK(err < Tolerance<T>::stencil);
    }

    // Central differences: the kernels' zero on the Nyquist plane is also the stencils' value
    // there (sin(pi) = sin(2 pi) = 0), so they agree on every mode.
    for (int d = 0; d < 3; ++d) {
      const double h = g.cell_size(d);
      for (const auto kind :
           {GradientKernel::finite_difference_2, GradientKernel::finite_difference_4}) {
        const RealField<T> grad = apply_real<T>(plan, v, [&](ComplexField<T>& f) {
          diffpm::mesh::apply_gradient(f, d, kind, scale, f);
        });
        std::vector<double> expected(g.size());
        for (int i = 0; i < nx; ++i)
          for (int j = 0; j < ny; ++j)
            for (int k = 0; k < nz; ++k) {
              int e[3] = {0, 0, 0};
              e[d] = 1;
              auto shifted = [&](int s) { return at(v, i + s * e[0], j + s * e[1], k + s * e[2]); };
              expected[g.index(i, j, k)] =
                  kind == GradientKernel::finite_difference_2
                      ? (shifted(1) - shifted(-1)) / (2 * h)
                      : (8 * (shifted(1) - shifted(-1)) - (shifted(2) - shifted(-2))) / (12 * h);
            }
        INFO(name(kind) << ", axis " << d);
        {
          const double err = max_relative(grad, expected);
          INFO("max relative error " << err);
          CHECK(err < Tolerance<T>::stencil);
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("the gradient vanishes on the Nyquist plane of its own axis only",
                   "[mesh][fourier_kernels]", float, double) {
  using T = TestType;
  const Grid g = test_grid();
  const FftPlan<T> plan(g, 1);
  const double scale = diffpm::mesh::inverse_fft_scale(g);
  // v = (-1)^i cos(k_y y): the x-Nyquist mode times a y wave.
  const double ky = 2.0 * pi * 2 / g.length[1];
  RealField<T> v(g);
  std::vector<double> expected_dy(g.size());
  for (int i = 0; i < g.n[0]; ++i)
    for (int j = 0; j < g.n[1]; ++j)
      for (int k = 0; k < g.n[2]; ++k) {
        const double y = j * g.cell_size(1), sign = i % 2 ? -1.0 : 1.0;
        v(i, j, k) = static_cast<T>(sign * std::cos(ky * y));
        expected_dy[g.index(i, j, k)] = -sign * ky * std::sin(ky * y);
      }
  for (const auto kind : gradients) {
    INFO(name(kind));
    const RealField<T> dx = apply_real<T>(
        plan, v, [&](ComplexField<T>& f) { diffpm::mesh::apply_gradient(f, 0, kind, scale, f); });
    double largest = 0.0;
    for (const auto x : dx.data) largest = std::max(largest, std::abs(double(x)));
    CHECK(largest == 0.0);  // the kernel is exactly 0 there, so no round-off either
    if (kind == GradientKernel::exact) {
      const RealField<T> dy = apply_real<T>(
          plan, v, [&](ComplexField<T>& f) { diffpm::mesh::apply_gradient(f, 1, kind, scale, f); });
      {
        const double err = max_relative(dy, expected_dy);
        INFO("max relative error " << err);
        CHECK(err < Tolerance<T>::analytic);
      }
    }
  }
}

TEMPLATE_TEST_CASE("every kernel's adjoint passes the dot-product test <R v, w> = <v, R^T w>",
                   "[mesh][fourier_kernels][adjoint]", float, double) {
  using T = TestType;
  for (const Grid& g : {test_grid(), odd_grid()}) {
    const FftPlan<T> plan(g, 1);
    const double s = diffpm::mesh::inverse_fft_scale(g);
    const RealField<T> v = random_field<T>(g, 3), w = random_field<T>(g, 4);
    auto check_pair = [&](const std::string& what, const KernelFn<T>& forward,
                          const KernelFn<T>& adjoint) {
      const RealField<T> rv = apply_real<T>(plan, v, forward);
      const RealField<T> rtw = apply_real<T>(plan, w, adjoint);
      const double lhs = dot(rv, w), rhs = dot(v, rtw);
      // Normalised by the Cauchy-Schwarz bound, so that a small <R v, w> is not a false alarm.
      const double bound =
          std::max(std::sqrt(dot(rv, rv) * dot(w, w)), std::sqrt(dot(v, v) * dot(rtw, rtw)));
      INFO(what << " on " << g.n[0] << "x" << g.n[1] << "x" << g.n[2] << ": <Rv,w> = " << lhs
                << ", <v,R^T w> = " << rhs);
      CHECK(bound > 0.0);
      INFO("relative mismatch " << std::abs(lhs - rhs) / bound);
      CHECK(std::abs(lhs - rhs) / bound < Tolerance<T>::adjoint);
    };
    using namespace diffpm::mesh;
    for (const auto lap : laplacians) {
      check_pair(
          name(lap), [&](ComplexField<T>& f) { apply_inverse_laplacian(f, lap, s, f); },
          [&](ComplexField<T>& f) { apply_inverse_laplacian_adjoint(f, lap, s, f); });
    }
    check_pair(
        "smoothing", [&](ComplexField<T>& f) { apply_smoothing(f, 8.0, s, f); },
        [&](ComplexField<T>& f) { apply_smoothing_adjoint(f, 8.0, s, f); });
    for (const auto lap : laplacians) {
      const ForceKernelOptions o{lap, GradientKernel::finite_difference_4, 5.0};
      check_pair(
          std::string("potential, ") + name(lap),
          [&](ComplexField<T>& f) { apply_potential_kernel(f, o, 0.31, s, f); },
          [&](ComplexField<T>& f) { apply_potential_kernel_adjoint(f, o, 0.31, s, f); });
    }
    for (const auto grad : gradients)
      for (int d = 0; d < 3; ++d) {
        check_pair(
            std::string(name(grad)) + " axis " + std::to_string(d),
            [&](ComplexField<T>& f) { apply_gradient(f, d, grad, s, f); },
            [&](ComplexField<T>& f) { apply_gradient_adjoint(f, d, grad, s, f); });
      }
    for (const auto lap : laplacians)
      for (const auto grad : gradients)
        for (const double r_s : {0.0, 5.0})
          for (int d = 0; d < 3; ++d) {
            const ForceKernelOptions o{lap, grad, r_s};
            check_pair(
                std::string("force, ") + name(lap) + ", " + name(grad) + ", r_s " +
                    std::to_string(r_s) + ", axis " + std::to_string(d),
                [&](ComplexField<T>& f) { apply_force_kernel(f, d, o, 0.31, s, f); },
                [&](ComplexField<T>& f) { apply_force_kernel_adjoint(f, d, o, 0.31, s, f); });
          }
  }
}

TEMPLATE_TEST_CASE("the accumulated adjoint of the three force components is their transpose",
                   "[mesh][fourier_kernels][adjoint]", float, double) {
  using T = TestType;
  const Grid g = test_grid();
  const FftPlan<T> plan(g, 1);
  const double s = diffpm::mesh::inverse_fft_scale(g);
  const ForceKernelOptions o{LaplacianKernel::finite_difference,
                             GradientKernel::finite_difference_4, 3.0};
  const double omega_m = 0.27;
  const RealField<T> v = random_field<T>(g, 11);
  // sum_d <F_d(v), w_d> = <v, sum_d R_d^T w_d>, the adjoint summed in Fourier space.
  double lhs = 0.0;
  ComplexField<T> delta_bar_k(g);
  for (int d = 0; d < 3; ++d) {
    const RealField<T> w = random_field<T>(g, 20 + d);
    const RealField<T> f = apply_real<T>(plan, v, [&](ComplexField<T>& c) {
      diffpm::mesh::apply_force_kernel(c, d, o, omega_m, s, c);
    });
    lhs += dot(f, w);
    ComplexField<T> wk(g);
    plan.forward(w, wk);
    diffpm::mesh::apply_force_kernel_adjoint(wk, d, o, omega_m, s, delta_bar_k,
                                             OutputMode::accumulate);
  }
  RealField<T> delta_bar(g);
  plan.inverse_destroying_input(delta_bar_k, delta_bar);
  const double rhs = dot(v, delta_bar);
  INFO("relative mismatch " << std::abs(lhs - rhs) / std::abs(lhs));
  CHECK(std::abs(lhs - rhs) / std::abs(lhs) < 100 * Tolerance<T>::adjoint);
  // (relative to |lhs| itself, a sum of three O(sqrt N) random terms: 100x the per-operator
  // bound covers the cancellation.)
}

TEMPLATE_TEST_CASE("dF/dOmega_m is the force at Omega_m = 1", "[mesh][fourier_kernels]", float,
                   double) {
  using T = TestType;
  const Grid g = test_grid();
  const FftPlan<T> plan(g, 1);
  const double s = diffpm::mesh::inverse_fft_scale(g);
  const RealField<T> v = random_field<T>(g, 5);
  ComplexField<T> vk(g), f1(g), f2(g), df(g);
  plan.forward(v, vk);
  const ForceKernelOptions o{LaplacianKernel::exact, GradientKernel::exact, 4.0};
  const double omega_m = 0.3, step = 1e-3;
  diffpm::mesh::apply_force_kernel(vk, 1, o, omega_m + step, s, f2);
  diffpm::mesh::apply_force_kernel(vk, 1, o, omega_m - step, s, f1);
  diffpm::mesh::apply_force_kernel_omega_m_derivative(vk, 1, o, s, df);
  // The force is linear in Omega_m, so the central difference is exact up to round-off, which
  // the difference amplifies by |F| / (2 step |dF|) ~ 150 (Omega_m / 2 step), hence 200 times the
  // usual bound.
  double err = 0.0, largest = 0.0;
  for (std::size_t c = 0; c < g.complex_size(); ++c) {
    const std::complex<double> fd =
        (std::complex<double>(f2.data[c]) - std::complex<double>(f1.data[c])) / (2.0 * step);
    err = std::max(err, std::abs(fd - std::complex<double>(df.data[c])));
    largest = std::max(largest, std::abs(std::complex<double>(df.data[c])));
  }
  INFO("max relative error " << err / largest);
  CHECK(err / largest < 200 * Tolerance<T>::analytic);
}

TEST_CASE("force kernels reject bad input, naming the value", "[mesh][fourier_kernels]") {
  using namespace diffpm::mesh;
  const Grid g = test_grid();
  ComplexField<double> in(g), out(g), other(odd_grid());
  const ForceKernelOptions ok{};
  const double s = inverse_fft_scale(g);
  auto check_message = [](const std::function<void()>& f, const std::string& text) {
    CHECK_THROWS_AS(f(), InvalidArgument);
    CHECK_THROWS_WITH(f(), Catch::Contains(text));
  };
  check_message([&] { apply_force_kernel(in, 0, ok, 0.3, s, other); }, "9x10x7 cells");
  check_message([&] { apply_gradient(in, 0, GradientKernel::exact, s, other); }, "differs");
  check_message([&] { apply_inverse_laplacian(other, LaplacianKernel::exact, s, out); },
                "16x12x20");
  check_message([&] { apply_force_kernel(in, 3, ok, 0.3, s, out); }, "axis = 3");
  check_message([&] { apply_gradient(in, -1, GradientKernel::exact, s, out); }, "axis = -1");
  check_message([&] { apply_smoothing(in, -2.5, s, out); }, "r_s = -2.5");
  check_message(
      [&] {
        apply_force_kernel(in, 0, ForceKernelOptions{{}, {}, -1.0}, 0.3, s, out);
      },
      "r_s = -1");
  check_message([&] { apply_smoothing(in, std::nan(""), s, out); }, "r_s = nan");
  check_message([&] { apply_force_kernel(in, 0, ok, -0.3, s, out); }, "Omega_m = -0.3");
  check_message([&] { apply_potential_kernel(in, ok, -0.3, s, out); }, "Omega_m = -0.3");
  check_message([&] { apply_potential_kernel(in, ok, 0.3, s, other); }, "differs");
  check_message(
      [&] {
        apply_potential_kernel(in, ForceKernelOptions{{}, {}, -1.0}, 0.3, s, out);
      },
      "r_s = -1");
  check_message([&] { apply_potential_kernel_adjoint(in, ok, 0.3, NAN, out); }, "scale = nan");
  check_message([&] { apply_force_kernel_adjoint(in, 0, ok, std::nan(""), s, out); },
                "Omega_m = nan");
  check_message([&] { apply_gradient(in, 0, GradientKernel::exact, INFINITY, out); },
                "scale = inf");
  check_message([&] { apply_gradient(in, 0, static_cast<GradientKernel>(7), s, out); },
                "gradient kernel = 7");
  check_message(
      [&] {
        apply_force_kernel(in, 0, ForceKernelOptions{static_cast<LaplacianKernel>(5), {}, 0.0}, 0.3,
                           s, out);
      },
      "Laplacian kernel = 5");
}
