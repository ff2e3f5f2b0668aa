// The PM force: pair force against Newton, momentum conservation, and its adjoint.
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "diffpm/nbody/pm_force.hpp"

using namespace diffpm;
using particles::Positions;

TEST_CASE("PM pair force follows 1/r^2 beyond a few cells", "[nbody][force]") {
  // Mesh of 1 Mpc/h cells in a 96 Mpc/h box. With mean_count = N_p, a particle is a point mass
  // M = V / N_p in units of the mean density, so Newton gives |F| = (3/2 Omega_m) M / (4 pi r^2)
  // (lap phi = 3/2 Omega_m delta). With CIC, -1/k^2 and the default 4-point gradient the PM
  // force is softened below ~2 cells and anisotropic beyond (Hockney & Eastwood 1988, ch. 7):
  // measured over 16 random directions and offsets, the mean radial force is within 0.5% of
  // Newton for r >= 3 cells and the worst direction within 10% at r = 3, 4.4% at r = 4 and 2%
  // beyond. Periodic images and the subtracted mean density add ~(4 pi/3)(r/L)^3 <= 0.4% at
  // r = 9. Tolerances: 1.5% on the mean; 12%, 6%, 4% on the worst direction.
  const auto grid = mesh::Grid::cube(96, 96.0);
  const std::size_t np = 1000;
  nbody::PmForce<double> force(grid, {}, np);
  const double Om = 0.3, M = grid.volume() / double(np), pi = 3.14159265358979323846;
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (double r : {3.0, 4.0, 6.0, 9.0}) {
    double ratio_sum = 0.0, worst = 0.0;
    const int samples = 16;
    for (int s = 0; s < samples; ++s) {
      const double ct = 2 * u(rng) - 1, ph = 2 * pi * u(rng), st = std::sqrt(1 - ct * ct);
      const std::array<double, 3> e = {st * std::cos(ph), st * std::sin(ph), ct};
      const std::array<double, 3> a = {48 + u(rng), 48 + u(rng), 48 + u(rng)};
      Positions<double> x = {a, {a[0] + r * e[0], a[1] + r * e[1], a[2] + r * e[2]}};
      Positions<double> F;
      force(x, Om, F);
      const double newton = 1.5 * Om * M / (4 * pi * r * r);
      // Radial component on the second particle, pointing back to the first (attraction).
      const double radial = -(F[1][0] * e[0] + F[1][1] * e[1] + F[1][2] * e[2]);
      ratio_sum += radial / newton;
      worst = std::max(worst, std::abs(radial / newton - 1));
      // Newton's third law holds exactly for CIC with an antisymmetric gradient kernel.
      for (int d = 0; d < 3; ++d) CHECK(F[0][d] + F[1][d] == Approx(0.0).margin(1e-12 * newton));
    }
    INFO("r = " << r << " cells: mean ratio " << ratio_sum / samples << ", worst " << worst);
    CHECK(ratio_sum / samples == Approx(1.0).epsilon(0.015));
    CHECK(worst < (r < 4 ? 0.12 : r < 5 ? 0.06 : 0.04));
  }
}

TEMPLATE_TEST_CASE("Total PM force vanishes to round-off", "[nbody][force]", float, double) {
  const auto grid = mesh::Grid({16, 12, 20}, {50.0, 40.0, 70.0});
  nbody::PmForce<TestType> force(grid);
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Positions<TestType> x(500);
  for (auto& p : x)
    for (int d = 0; d < 3; ++d) p[d] = TestType(u(rng) * grid.length[d]);
  Positions<TestType> F;
  force(x, 0.3, F);
  for (int d = 0; d < 3; ++d) {
    double sum = 0, scale = 0;
    for (const auto& f : F) sum += f[d], scale += std::abs(f[d]);
    // Momentum conservation: paint and readout share the CIC weights and the kernel is odd,
    // so the pair forces cancel up to rounding of the mesh sums (eps * sum |F|).
    CHECK(std::abs(sum) < (sizeof(TestType) == 4 ? 1e-4 : 1e-12) * scale);
  }
}

namespace {
/// The exact tangent J v of the PM force, J = dF/dx, built independently of PmForce::adjoint
/// from the CIC weight derivatives: F_d(x_p) = sum_c w_c(x_p) M_d,c with M_d = R_d counts, so
/// J v = sum_c (grad w_c(x_p) . v_p) M_d,c + readout(R_d counts_dot), counts_dot_c =
/// sum_p grad w_c(x_p) . v_p, with R_d the linear mesh operator of the force (kernel and FFTs).
Positions<double> force_tangent(const mesh::Grid& grid, const Positions<double>& x,
                                const Positions<double>& v, double Om,
                                const mesh::ForceKernelOptions& options) {
  const auto g = particles::detail::cic_geometry<double>(grid);
  mesh::RealField<double> counts(grid), counts_dot(grid);
  for (std::size_t p = 0; p < x.size(); ++p) {
    std::size_t idx[8];
    double w[8], dw[3][8];
    particles::detail::cic_stencil_gradient(x[p].data(), g, idx, w, dw);
    for (int c = 0; c < 8; ++c) {
      counts.data[idx[c]] += w[c];
      for (int e = 0; e < 3; ++e) counts_dot.data[idx[c]] += dw[e][c] * v[p][e];
    }
  }
  FftPlan<double> plan(grid, 1);
  const double scale = 1.0 / double(x.size());
  auto R = [&](const mesh::RealField<double>& in, int d) {
    mesh::ComplexField<double> k(grid), f(grid);
    mesh::RealField<double> out(grid);
    plan.forward(in, k);
    mesh::apply_force_kernel(k, d, options, Om, scale, f);
    plan.inverse_destroying_input(f, out);
    return out;
  };
  Positions<double> Jv(x.size(), {0, 0, 0});
  for (int d = 0; d < 3; ++d) {
    const auto M = R(counts, d), M_dot = R(counts_dot, d);
    for (std::size_t p = 0; p < x.size(); ++p) {
      std::size_t idx[8];
      double w[8], dw[3][8];
      particles::detail::cic_stencil_gradient(x[p].data(), g, idx, w, dw);
      for (int c = 0; c < 8; ++c) {
        Jv[p][d] += w[c] * M_dot.data[idx[c]];
        for (int e = 0; e < 3; ++e) Jv[p][d] += dw[e][c] * v[p][e] * M.data[idx[c]];
      }
    }
  }
  return Jv;
}

/// The kernels PmForce is tested with: the default (4-point gradient applied in real space to
/// the potential), the same in Fourier space, the 2-point gradient with smoothing and a
/// finite-difference Laplacian, and the exact gradient (always in Fourier space).
std::vector<std::pair<const char*, mesh::ForceKernelOptions>> force_kernels() {
  using mesh::GradientKernel;
  using mesh::LaplacianKernel;
  return {{"4-point gradient, real space", {}},
          {"4-point gradient, Fourier space",
           {LaplacianKernel::exact, GradientKernel::finite_difference_4, 0.0, false}},
          {"2-point gradient, FD Laplacian, smoothing, real space",
           {LaplacianKernel::finite_difference, GradientKernel::finite_difference_2, 3.0, true}},
          {"exact gradient", {LaplacianKernel::exact, GradientKernel::exact, 0.0, true}}};
}
}  // namespace

TEMPLATE_TEST_CASE("PM force adjoint passes the dot-product test", "[nbody][force][adjoint]", float,
                   double) {
  // <J v, w> = <v, J^T w>, J = dF/dx, with J v from force_tangent above (exact, in double).
  // In double both sides are exact up to round-off (1e-10 relative asked, ~1e-14 expected);
  // in float the adjoint runs in float on the same positions, so the check measures its
  // rounding, ~1e-6 per operation accumulated over a few thousand terms: 1e-4.
  const auto grid = mesh::Grid({16, 12, 10}, {32.0, 24.0, 20.0});
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const std::size_t np = 300;
  Positions<double> x(np), v(np), w(np);
  for (std::size_t p = 0; p < np; ++p)
    for (int d = 0; d < 3; ++d) {
      x[p][d] = u(rng) * grid.length[d];
      v[p][d] = 2 * u(rng) - 1;
      w[p][d] = 2 * u(rng) - 1;
    }
  const double Om = 0.3;
  for (const auto& [name, options] : force_kernels()) {
    INFO(name);
    const auto Jv = force_tangent(grid, x, v, Om, options);
    double Jv_w = 0;
    for (std::size_t p = 0; p < np; ++p)
      for (int d = 0; d < 3; ++d) Jv_w += Jv[p][d] * w[p][d];

    Positions<TestType> xt(np), wt(np), x_bar;
    for (std::size_t p = 0; p < np; ++p)
      for (int d = 0; d < 3; ++d) xt[p][d] = TestType(x[p][d]), wt[p][d] = TestType(w[p][d]);
    nbody::PmForce<TestType> force(grid, options);
    const double omega_bar = force.adjoint(xt, Om, wt, x_bar);
    double v_JTw = 0;
    for (std::size_t p = 0; p < np; ++p)
      for (int d = 0; d < 3; ++d) v_JTw += v[p][d] * double(x_bar[p][d]);
    CHECK(v_JTw == Approx(Jv_w).epsilon(sizeof(TestType) == 4 ? 1e-4 : 1e-10));

    // The tangent itself against central differences (steps of 1e-6 Mpc/h; away from cell
    // boundaries F is a polynomial in the step, so the difference is accurate to ~1e-9).
    if (sizeof(TestType) == 8) {
      nbody::PmForce<double> fd(grid, options);
      auto F_at = [&](double h) {
        Positions<double> xs = x, F;
        for (std::size_t p = 0; p < np; ++p)
          for (int d = 0; d < 3; ++d) xs[p][d] += h * v[p][d];
        fd(xs, Om, F);
        return F;
      };
      const auto Fp = F_at(1e-6), Fm = F_at(-1e-6);
      double fd_w = 0;
      for (std::size_t p = 0; p < np; ++p)
        for (int d = 0; d < 3; ++d) fd_w += (Fp[p][d] - Fm[p][d]) / 2e-6 * w[p][d];
      CHECK(fd_w == Approx(Jv_w).epsilon(1e-6));
    }

    // dL/dOmega_m = <w, F>/Omega_m: F is linear in Omega_m.
    nbody::PmForce<double> fdouble(grid, options);
    Positions<double> F;
    fdouble(x, Om, F);
    double wF = 0;
    for (std::size_t p = 0; p < np; ++p)
      for (int d = 0; d < 3; ++d) wF += w[p][d] * F[p][d];
    CHECK(omega_bar == Approx(wF / Om).epsilon(sizeof(TestType) == 4 ? 1e-5 : 1e-12));
  }
}

TEMPLATE_TEST_CASE("PM force value_and_adjoint gives operator() and adjoint() in one pass",
                   "[nbody][force][adjoint]", float, double) {
  // Same computation, so the same bits: the force of operator() and the x_bar and dL/dOmega_m of
  // adjoint(), at once (the integrator's reverse pass relies on the force being the forward's).
  const auto grid = mesh::Grid({16, 12, 10}, {32.0, 24.0, 20.0});
  std::mt19937_64 rng(12);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Positions<TestType> x(200), w(200);
  for (std::size_t p = 0; p < x.size(); ++p)
    for (int d = 0; d < 3; ++d) {
      x[p][d] = TestType(u(rng) * grid.length[d]);
      w[p][d] = TestType(2 * u(rng) - 1);
    }
  for (const auto& [name, options] : force_kernels()) {
    INFO(name);
    nbody::PmForce<TestType> force(grid, options);
    Positions<TestType> F_ref, x_bar_ref, F, x_bar;
    force(x, 0.3, F_ref);
    const double om_ref = force.adjoint(x, 0.3, w, x_bar_ref);
    const double om = force.value_and_adjoint(x, 0.3, w, F, x_bar);
    const bool same = F == F_ref && x_bar == x_bar_ref;
    CHECK(same);
    CHECK(om == om_ref);
  }
}

TEMPLATE_TEST_CASE("PM force: finite differences in real space and in Fourier space agree",
                   "[nbody][force]", float, double) {
  // The same operator computed two ways (one c2r and real-space stencils, or three c2r of the
  // Fourier kernel): they differ by FFT rounding only, ~eps log2(N) relative to the largest
  // value (observed: forces 5e-16 in double and 2e-7 in float, position adjoints, which pass
  // through two more FFTs, 1.2e-15 and 1e-6; bounds 1e-12 and 1e-5).
  using T = TestType;
  const double tol = sizeof(T) == 4 ? 1e-5 : 1e-12;
  const auto grid = mesh::Grid({16, 12, 20}, {32.0, 24.0, 40.0});
  std::mt19937_64 rng(13);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Positions<T> x(400), w(400);
  for (std::size_t p = 0; p < x.size(); ++p)
    for (int d = 0; d < 3; ++d) {
      x[p][d] = T(u(rng) * grid.length[d]);
      w[p][d] = T(2 * u(rng) - 1);
    }
  auto max_relative = [](const Positions<T>& a, const Positions<T>& b) {
    double err = 0, largest = 0;
    for (std::size_t p = 0; p < a.size(); ++p)
      for (int d = 0; d < 3; ++d) {
        err = std::max(err, std::abs(double(a[p][d]) - double(b[p][d])));
        largest = std::max(largest, std::abs(double(b[p][d])));
      }
    return err / largest;
  };
  for (const auto gradient :
       {mesh::GradientKernel::finite_difference_2, mesh::GradientKernel::finite_difference_4}) {
    mesh::ForceKernelOptions real_space{mesh::LaplacianKernel::exact, gradient, 2.0, true};
    mesh::ForceKernelOptions fourier = real_space;
    fourier.real_space_gradient = false;
    nbody::PmForce<T> a(grid, real_space), b(grid, fourier);
    Positions<T> Fa, Fb, xa, xb;
    const double oa = a.value_and_adjoint(x, 0.27, w, Fa, xa);
    const double ob = b.value_and_adjoint(x, 0.27, w, Fb, xb);
    INFO("gradient kernel " << int(gradient) << ": force " << max_relative(Fa, Fb) << ", adjoint "
                            << max_relative(xa, xb));
    CHECK(max_relative(Fa, Fb) < tol);
    CHECK(max_relative(xa, xb) < tol);
    CHECK(oa == Approx(ob).epsilon(tol));
  }
}

TEST_CASE("PM force rejects bad input", "[nbody][force][errors]") {
  nbody::PmForce<double> force(mesh::Grid::cube(8, 10.0));
  Positions<double> x = {{1, 2, 3}}, F, x_bar;
  CHECK_THROWS_WITH(force(x, -0.3, F), Catch::Contains("Omega_m = -0.3"));
  CHECK_THROWS_AS(force({{1, std::nan(""), 3}}, 0.3, F), InvalidArgument);
  CHECK_THROWS_WITH(force.adjoint(x, 0.3, {{1, 1, 1}, {2, 2, 2}}, x_bar),
                    Catch::Contains("2 force adjoints"));
  // The force transforms its own fields: an in-place padded plan is refused up front.
  const auto padded = std::make_shared<const FftPlan<double>>(
      mesh::Grid::cube(8, 10.0), diffpm::FftLayout::in_place_padded, 1);
  CHECK_THROWS_WITH(nbody::PmForce<double>(padded),
                    Catch::Contains("PmForce: the FFT plan has the in-place padded layout"));
}

TEST_CASE("PM force on views of a user's arrays is the force on containers, bit for bit",
          "[nbody][force]") {
  // Struct-of-arrays positions and an array-of-structs force record: the same values as through
  // diffpm's containers, for the force, its adjoint and value_and_adjoint; mismatched views are
  // refused with the sizes named.
  namespace dp = particles;
  const auto grid = mesh::Grid({12, 8, 10}, {60.0, 40.0, 50.0});
  std::mt19937_64 rng(4);
  std::uniform_real_distribution<double> u(-10.0, 70.0);
  std::normal_distribution<double> nd;
  const std::size_t n = 700;
  Positions<double> x(n), Fb(n);
  for (std::size_t i = 0; i < n; ++i)
    for (int d = 0; d < 3; ++d) x[i][d] = u(rng), Fb[i][d] = nd(rng);
  std::vector<double> xs[3];
  for (int d = 0; d < 3; ++d)
    for (std::size_t i = 0; i < n; ++i) xs[d].push_back(x[i][d]);
  struct Record {
    int id;
    double force[3];
    double x_bar[3];
  };
  std::vector<Record> rec(n, Record{0, {0, 0, 0}, {0, 0, 0}});
  const auto xv = dp::soa_view<const double>(xs[0].data(), xs[1].data(), xs[2].data(), n);
  const auto Fv = dp::aos_view(&rec[0].force[0], sizeof(Record), n);
  const auto xbv = dp::aos_view(&rec[0].x_bar[0], sizeof(Record), n);
  nbody::PmForce<double> force(grid);
  Positions<double> F, F2, xb;
  force(x, 0.3, F);
  force(xv, 0.3, Fv);
  bool same = true;
  for (std::size_t i = 0; i < n; ++i)
    for (int d = 0; d < 3; ++d) same = same && rec[i].force[d] == F[i][d];
  CHECK(same);
  const double om = force.value_and_adjoint(x, 0.3, Fb, F2, xb);
  const double om_v = force.value_and_adjoint(xv, 0.3, dp::view(Fb), Fv, xbv);
  CHECK(om == om_v);  // a deterministic sum (core/deterministic_sum.hpp): any thread count
  for (std::size_t i = 0; i < n; ++i)
    for (int d = 0; d < 3; ++d)
      same = same && rec[i].force[d] == F2[i][d] && rec[i].x_bar[d] == xb[i][d];
  CHECK(same);
  CHECK_THROWS_WITH(force(xv, 0.3, dp::aos_view(&rec[0].force[0], sizeof(Record), n - 1)),
                    Catch::Contains("699 forces for 700 particles"));
  CHECK_THROWS_WITH(
      force.adjoint(xv, 0.3, dp::view(Fb), dp::aos_view(&rec[0].x_bar[0], sizeof(Record), 3)),
      Catch::Contains("3 position adjoints (x_bar) for 700 particles"));
}
