// The PGD correction: against a brute-force evaluation, its direction, its adjoint (dot-product
// and finite differences in the positions) and its derivatives with respect to its own
// parameters.
#include <catch2/catch.hpp>
#include <cmath>
#include <complex>
#include <random>
#include <tuple>
#include <vector>

#include "diffpm/core/openmp.hpp"
#include "diffpm/nbody/pgd.hpp"
#include "diffpm/nbody/pgd_calibration.hpp"
#include "diffpm/particles/cic.hpp"

using namespace diffpm;
using particles::Positions;

namespace {

/// A perturbed lattice of n^3 particles in `grid`'s box, displaced by up to `amplitude` cells
/// per axis (so the density has structure on every scale).
template <class T>
Positions<T> perturbed_lattice(const mesh::Grid& grid, int n, double amplitude, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  Positions<T> x;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      for (int k = 0; k < n; ++k) {
        const int idx[3] = {i, j, k};
        std::array<T, 3> p;
        for (int d = 0; d < 3; ++d) {
          const double spacing = grid.length[d] / n;
          p[d] = T((idx[d] + 0.5) * spacing + amplitude * grid.cell_size(d) * u(rng));
        }
        x.push_back(p);
      }
  return x;
}

Positions<double> random_vectors(std::size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0.0, 1.0);
  Positions<double> v(n);
  for (auto& p : v)
    for (int d = 0; d < 3; ++d) p[d] = g(rng);
  return v;
}

double dot(const Positions<double>& a, const Positions<double>& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i)
    for (int d = 0; d < 3; ++d) s += a[i][d] * b[i][d];
  return s;
}

Positions<double> displaced(const Positions<double>& x, const Positions<double>& v, double eps) {
  Positions<double> y = x;
  for (std::size_t i = 0; i < x.size(); ++i)
    for (int d = 0; d < 3; ++d) y[i][d] += eps * v[i][d];
  return y;
}

/// S(x) by brute force, sharing nothing with PgdCorrection but the CIC paint: the full complex
/// DFT of the counts as a direct sum, the kernel -O(k) / k^2 (exact Laplacian) with the counts
/// normalised to delta, the inverse DFT as a direct sum, the 4-point stencil written out, and
/// the trilinear CIC readout written out.
Positions<double> brute_force_pgd(const mesh::Grid& grid, const Positions<double>& x,
                                  const nbody::PgdParameters& p, double a) {
  const int n = grid.n[0];  // a cube
  const double L = grid.length[0], h = L / n, pi = 3.14159265358979323846;
  const std::size_t cells = std::size_t(n) * n * n;
  mesh::RealField<double> counts(grid);
  particles::paint_cic(x, counts, 1.0);
  std::vector<double> delta(cells);
  for (std::size_t c = 0; c < cells; ++c)
    delta[c] = counts.data[c] * double(cells) / double(x.size()) - 1.0;
  auto freq = [n](int m) { return m <= n / 2 ? m : m - n; };
  std::vector<std::complex<double>> spec(cells);
  for (int a0 = 0; a0 < n; ++a0)
    for (int a1 = 0; a1 < n; ++a1)
      for (int a2 = 0; a2 < n; ++a2) {
        std::complex<double> s = 0.0;
        for (int b0 = 0; b0 < n; ++b0)
          for (int b1 = 0; b1 < n; ++b1)
            for (int b2 = 0; b2 < n; ++b2) {
              const double ph = -2 * pi * double(a0 * b0 + a1 * b1 + a2 * b2) / n;
              s += delta[(std::size_t(b0) * n + b1) * n + b2] * std::polar(1.0, ph);
            }
        const double k0 = 2 * pi * freq(a0) / L, k1 = 2 * pi * freq(a1) / L,
                     k2 = 2 * pi * freq(a2) / L;
        const double kk = k0 * k0 + k1 * k1 + k2 * k2;
        const double filter =
            kk > 0 ? std::exp(-p.k_l * p.k_l / kk) * std::exp(-std::pow(std::sqrt(kk) / p.k_s, 4))
                   : 0.0;
        spec[(std::size_t(a0) * n + a1) * n + a2] = kk > 0 ? -filter * s / kk : 0.0;
      }
  std::vector<double> psi(cells);
  for (int b0 = 0; b0 < n; ++b0)
    for (int b1 = 0; b1 < n; ++b1)
      for (int b2 = 0; b2 < n; ++b2) {
        std::complex<double> s = 0.0;
        for (int a0 = 0; a0 < n; ++a0)
          for (int a1 = 0; a1 < n; ++a1)
            for (int a2 = 0; a2 < n; ++a2) {
              const double ph = 2 * pi * double(a0 * b0 + a1 * b1 + a2 * b2) / n;
              s += spec[(std::size_t(a0) * n + a1) * n + a2] * std::polar(1.0, ph);
            }
        psi[(std::size_t(b0) * n + b1) * n + b2] = s.real() / double(cells);
      }
  auto at = [&](const std::vector<double>& f, int i, int j, int k) {
    auto w = [n](int m) { return ((m % n) + n) % n; };
    return f[(std::size_t(w(i)) * n + w(j)) * n + w(k)];
  };
  const double alpha = p.alpha * std::pow(a, p.mu);
  Positions<double> S(x.size());
  for (int d = 0; d < 3; ++d) {
    std::vector<double> F(cells);  // -alpha D_d psi, D the 4-point stencil
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j)
        for (int k = 0; k < n; ++k) {
          auto shifted = [&](int s) {
            return at(psi, i + (d == 0) * s, j + (d == 1) * s, k + (d == 2) * s);
          };
          const double D = (8 * (shifted(1) - shifted(-1)) - (shifted(2) - shifted(-2))) / (12 * h);
          F[(std::size_t(i) * n + j) * n + k] = -alpha * D;
        }
    for (std::size_t q = 0; q < x.size(); ++q) {
      int base[3];
      double frac[3];
      for (int e = 0; e < 3; ++e) {
        const double u = x[q][e] / h;
        base[e] = int(std::floor(u));
        frac[e] = u - base[e];
      }
      double v = 0.0;
      for (int c = 0; c < 8; ++c) {
        const int o[3] = {c & 1, (c >> 1) & 1, (c >> 2) & 1};
        double w = 1.0;
        for (int e = 0; e < 3; ++e) w *= o[e] ? frac[e] : 1.0 - frac[e];
        v += w * at(F, base[0] + o[0], base[1] + o[1], base[2] + o[2]);
      }
      S[q][d] = v;
    }
  }
  return S;
}

}  // namespace

TEST_CASE("PGD displacement equals a brute-force evaluation", "[nbody][pgd]") {
  // An 8^3 mesh of 10 Mpc/h cells, 6^3 particles off the mesh's nodes. k spans 0.079 to
  // 0.54 h/Mpc per axis, so k_l = 0.15 and k_s = 0.4 h/Mpc cut into both ends of the band. The
  // brute force repeats every step by hand in double (direct DFT sums, the stencil, the
  // trilinear readout); the two differ by the FFT's rounding (~1e-15 relative to max |S|).
  const auto grid = mesh::Grid::cube(8, 80.0);
  const auto x = perturbed_lattice<double>(grid, 6, 0.4, 11);
  const nbody::PgdParameters p{0.7, 0.15, 0.4, -1.5};
  const double a = 0.6;
  nbody::PgdCorrection<double> pgd(grid);
  Positions<double> S(x.size());
  pgd.displacement(particles::view(x), p, a, particles::view(S));
  const auto ref = brute_force_pgd(grid, x, p, a);
  double max_ref = 0.0, max_diff = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i)
    for (int d = 0; d < 3; ++d) {
      max_ref = std::max(max_ref, std::abs(ref[i][d]));
      max_diff = std::max(max_diff, std::abs(S[i][d] - ref[i][d]));
    }
  INFO("max |S| = " << max_ref << " Mpc/h, max difference " << max_diff);
  REQUIRE(max_ref > 1e-3);  // the case must move the particles
  CHECK(max_diff < 1e-12 * max_ref);
}

TEST_CASE("PGD moves particles towards a small-scale overdensity", "[nbody][pgd]") {
  // A uniform lattice plus a compact clump of 64 particles at the centre of a 64 Mpc/h box on
  // a 32^3 mesh: the band-filtered potential has its minimum at the clump, so the particles
  // of the lattice 2-14 Mpc/h away (k ~ 2 pi / r inside the band) move towards it, and the clump's
  // own particles barely move (the displacement is odd about the centre: no net motion of the
  // clump's centre).
  const auto grid = mesh::Grid::cube(32, 64.0);
  Positions<double> x = perturbed_lattice<double>(grid, 16, 0.0, 1);
  const std::array<double, 3> c = {32.3, 31.8, 32.1};
  std::mt19937_64 rng(5);
  std::normal_distribution<double> g(0.0, 0.5);
  for (int i = 0; i < 64; ++i) x.push_back({c[0] + g(rng), c[1] + g(rng), c[2] + g(rng)});
  nbody::PgdCorrection<double> pgd(grid);
  const nbody::PgdParameters p{1.0, 0.2, 2.0, 0.0};
  Positions<double> y;
  pgd.apply(x, p, 1.0, y);
  int inward = 0, counted = 0;
  for (std::size_t i = 0; i < 16 * 16 * 16; ++i) {
    double r2 = 0.0, radial = 0.0;
    for (int d = 0; d < 3; ++d) {
      r2 += (x[i][d] - c[d]) * (x[i][d] - c[d]);
      radial += (y[i][d] - x[i][d]) * (c[d] - x[i][d]);
    }
    if (r2 > 2.0 * 2.0 && r2 < 14.0 * 14.0) {
      ++counted;
      inward += radial > 0.0;
    }
  }
  INFO(inward << " of " << counted << " lattice particles 2-14 Mpc/h from the clump move in");
  REQUIRE(counted > 100);
  CHECK(inward == counted);
}

TEMPLATE_TEST_CASE("PGD with alpha = 0 leaves the particles where they are", "[nbody][pgd]", float,
                   double) {
  const auto grid = mesh::Grid::cube(16, 50.0);
  const auto x = perturbed_lattice<TestType>(grid, 8, 0.5, 2);
  nbody::PgdCorrection<TestType> pgd(grid);
  Positions<TestType> y;
  pgd.apply(x, {0.0, 0.1, 1.0, 2.0}, 0.5, y);
  CHECK(y == x);
}

TEST_CASE("PGD adjoint: dot-product test against the tangent, and finite differences",
          "[nbody][pgd][adjoint]") {
  // S is piecewise smooth in x (CIC is trilinear inside a cell), so the central difference of
  // <S_bar, S(x + eps v)> with eps = 1e-6 Mpc/h (1e-6 of a cell) is the tangent <S_bar, J v> to
  // O(eps^2) ~ 1e-12 relative unless a particle crosses a cell face, which needs a particle
  // within 1e-6 cells of a face (probability ~1e-3 for these 216 particles; the seeds are
  // fixed). The adjoint gives <J^T S_bar, v> to rounding: agreement to 1e-7 relative.
  const auto grid = mesh::Grid({12, 10, 8}, {60.0, 50.0, 44.0});
  const auto x = perturbed_lattice<double>(grid, 6, 0.7, 3);
  const auto S_bar = random_vectors(x.size(), 4), v = random_vectors(x.size(), 5);
  const nbody::PgdParameters p{0.8, 0.1, 0.6, -2.0};
  const double a = 0.7, eps = 1e-6;
  nbody::PgdCorrection<double> pgd(grid);
  auto objective = [&](const Positions<double>& pos) {
    Positions<double> S(pos.size());
    pgd.displacement(particles::view(pos), p, a, particles::view(S));
    return dot(S_bar, S);
  };
  const double tangent =
      (objective(displaced(x, v, eps)) - objective(displaced(x, v, -eps))) / (2 * eps);
  Positions<double> x_bar(x.size(), {0.0, 0.0, 0.0});
  pgd.displacement_adjoint(particles::view(x), p, a, particles::view(S_bar),
                           particles::view(x_bar));
  const double adjoint = dot(x_bar, v);
  INFO("<S_bar, J v> = " << tangent << ", <J^T S_bar, v> = " << adjoint);
  REQUIRE(std::abs(tangent) > 1e-3);
  CHECK(adjoint == Approx(tangent).epsilon(1e-7));

  // apply_adjoint adds the identity: x_bar = y_bar + J^T y_bar.
  Positions<double> x_bar2;
  pgd.apply_adjoint(x, p, a, S_bar, x_bar2);
  CHECK(dot(x_bar2, v) == Approx(adjoint + dot(S_bar, v)).epsilon(1e-12));
}

TEST_CASE("PGD parameter derivatives match central differences", "[nbody][pgd][adjoint]") {
  // L = <S_bar, S(x; alpha, k_l, k_s, mu)> at a = 0.6. S is linear in alpha (exact to rounding)
  // and smooth in the other three; steps of 1e-5 relative give central differences good to
  // ~1e-9. Tolerance 1e-7 relative.
  const auto grid = mesh::Grid::cube(16, 96.0);
  const auto x = perturbed_lattice<double>(grid, 8, 0.8, 7);
  const auto S_bar = random_vectors(x.size(), 8);
  const nbody::PgdParameters p0{0.9, 0.12, 0.45, -1.2};
  const double a = 0.6;
  nbody::PgdCorrection<double> pgd(grid);
  auto objective = [&](const nbody::PgdParameters& p) {
    Positions<double> S(x.size());
    pgd.displacement(particles::view(x), p, a, particles::view(S));
    return dot(S_bar, S);
  };
  Positions<double> x_bar(x.size(), {0.0, 0.0, 0.0});
  const nbody::PgdGradient g = pgd.displacement_adjoint(
      particles::view(x), p0, a, particles::view(S_bar), particles::view(x_bar));
  auto central = [&](double nbody::PgdParameters::*member) {
    const double h = 1e-5 * std::abs(p0.*member);
    nbody::PgdParameters up = p0, down = p0;
    up.*member += h;
    down.*member -= h;
    return (objective(up) - objective(down)) / (2 * h);
  };
  const double d_alpha = central(&nbody::PgdParameters::alpha);
  const double d_kl = central(&nbody::PgdParameters::k_l);
  const double d_ks = central(&nbody::PgdParameters::k_s);
  const double d_mu = central(&nbody::PgdParameters::mu);
  INFO("alpha " << g.alpha << " vs " << d_alpha << "; k_l " << g.k_l << " vs " << d_kl << "; k_s "
                << g.k_s << " vs " << d_ks << "; mu " << g.mu << " vs " << d_mu);
  REQUIRE(std::abs(d_kl) > 1e-6);
  REQUIRE(std::abs(d_ks) > 1e-6);
  CHECK(g.alpha == Approx(d_alpha).epsilon(1e-7));
  CHECK(g.k_l == Approx(d_kl).epsilon(1e-7));
  CHECK(g.k_s == Approx(d_ks).epsilon(1e-7));
  CHECK(g.mu == Approx(d_mu).epsilon(1e-7));
}

TEST_CASE("PGD in float agrees with double, adjoint included", "[nbody][pgd][adjoint]") {
  // The same mesh and particles in float and double (positions of ~50 Mpc/h rounded to float,
  // 4e-6 Mpc/h): float meshes and FFTs carry ~1e-6 relative rounding through the sums of the
  // transforms (~1e-5 of max |S| after two FFTs of 4096 cells). Tolerances: 1e-4 of the
  // largest value for S and x_bar, 1e-4 relative on the parameter derivatives (double sums).
  const auto grid = mesh::Grid::cube(16, 64.0);
  const auto xd = perturbed_lattice<double>(grid, 8, 0.6, 9);
  Positions<float> xf(xd.size());
  for (std::size_t i = 0; i < xd.size(); ++i)
    for (int d = 0; d < 3; ++d) xf[i][d] = float(xd[i][d]);
  Positions<double> xd_rounded(xd.size());
  for (std::size_t i = 0; i < xd.size(); ++i)
    for (int d = 0; d < 3; ++d) xd_rounded[i][d] = double(xf[i][d]);
  const auto bar_d = random_vectors(xd.size(), 10);
  Positions<float> bar_f(xd.size());
  for (std::size_t i = 0; i < xd.size(); ++i)
    for (int d = 0; d < 3; ++d) bar_f[i][d] = float(bar_d[i][d]);
  Positions<double> bar_d_rounded(xd.size());
  for (std::size_t i = 0; i < xd.size(); ++i)
    for (int d = 0; d < 3; ++d) bar_d_rounded[i][d] = double(bar_f[i][d]);
  const nbody::PgdParameters p{0.5, 0.1, 0.8, 0.0};
  nbody::PgdCorrection<double> pd(grid);
  nbody::PgdCorrection<float> pf(grid);
  Positions<double> yd, xbd;
  Positions<float> yf, xbf;
  pd.apply(xd_rounded, p, 1.0, yd);
  pf.apply(xf, p, 1.0, yf);
  const auto gd = pd.apply_adjoint(xd_rounded, p, 1.0, bar_d_rounded, xbd);
  const auto gf = pf.apply_adjoint(xf, p, 1.0, bar_f, xbf);
  double max_s = 0.0, max_ds = 0.0, max_b = 0.0, max_db = 0.0;
  for (std::size_t i = 0; i < xd.size(); ++i)
    for (int d = 0; d < 3; ++d) {
      max_s = std::max(max_s, std::abs(yd[i][d] - xd_rounded[i][d]));
      max_ds = std::max(max_ds, std::abs(double(yf[i][d]) - yd[i][d]));
      max_b = std::max(max_b, std::abs(xbd[i][d]));
      max_db = std::max(max_db, std::abs(double(xbf[i][d]) - xbd[i][d]));
    }
  INFO("max |S| " << max_s << ", float - double " << max_ds << "; max |x_bar| " << max_b
                  << ", float - double " << max_db);
  // y = x + S in float rounds x (~50 Mpc/h) to 4e-6: the margin covers it.
  CHECK(max_ds < 1e-4 * max_s + 1e-5);
  CHECK(max_db < 1e-4 * max_b);
  CHECK(gf.alpha == Approx(gd.alpha).epsilon(1e-4));
  CHECK(gf.k_l == Approx(gd.k_l).epsilon(1e-4));
  CHECK(gf.k_s == Approx(gd.k_s).epsilon(1e-4));
}

TEST_CASE("PGD gives the same bits for any thread count", "[nbody][pgd]") {
  // Paint in fixed point, parallel loops element-wise, and every sum in fixed blocks: one
  // object on one FFT plan gives the same bits with 1 and 2 OpenMP threads.
  const auto grid = mesh::Grid::cube(16, 64.0);
  const auto x = perturbed_lattice<double>(grid, 8, 0.6, 12);
  const auto bar = random_vectors(x.size(), 13);
  const nbody::PgdParameters p{0.5, 0.1, 0.8, 1.0};
  nbody::PgdCorrection<double> pgd(grid);
  const int saved = max_threads();
  auto run = [&](int threads) {
    set_threads(threads);
    Positions<double> y, xb;
    const auto g = pgd.apply_adjoint(x, p, 0.8, bar, xb);
    pgd.apply(x, p, 0.8, y);
    return std::make_tuple(y, xb, g.alpha, g.k_l, g.k_s, g.mu);
  };
  const auto one = run(1), two = run(2);
  set_threads(saved);
  CHECK(one == two);
}

TEST_CASE("PGD rejects bad parameters and inputs with a clear error", "[nbody][pgd][errors]") {
  const auto grid = mesh::Grid::cube(8, 40.0);
  nbody::PgdCorrection<double> pgd(grid);
  const auto x = perturbed_lattice<double>(grid, 4, 0.3, 1);
  Positions<double> y;
  using Catch::Matchers::Contains;
  CHECK_THROWS_AS(pgd.apply(x, {0.5, 0.1, 0.0, 0.0}, 1.0, y), InvalidArgument);
  CHECK_THROWS_WITH(pgd.apply(x, {0.5, 0.1, 0.0, 0.0}, 1.0, y),
                    Contains("PgdCorrection: k_s = 0 (h/Mpc; must be finite and > 0)"));
  CHECK_THROWS_WITH(pgd.apply(x, {0.5, -0.1, 1.0, 0.0}, 1.0, y), Contains("k_l = -0.1"));
  CHECK_THROWS_WITH(pgd.apply(x, {std::nan(""), 0.1, 1.0, 0.0}, 1.0, y), Contains("alpha = nan"));
  CHECK_THROWS_WITH(pgd.apply(x, {0.5, 0.1, 1.0, INFINITY}, 1.0, y), Contains("mu = inf"));
  CHECK_THROWS_WITH(pgd.apply(x, {0.5, 0.1, 1.0, 0.0}, 0.0, y), Contains("scale factor a = 0"));
  CHECK_THROWS_WITH(pgd.apply(x, {0.5, 0.1, 1.0, 0.0}, 1.0, const_cast<Positions<double>&>(x)),
                    Contains("y must not be x"));
  Positions<double> short_bar(3), xb;
  CHECK_THROWS_WITH(pgd.apply_adjoint(x, {0.5, 0.1, 1.0, 0.0}, 1.0, short_bar, xb),
                    Contains("3 position adjoints (y_bar) for 64 particles"));
  mesh::ForceKernelOptions exact;
  exact.gradient = mesh::GradientKernel::exact;
  CHECK_THROWS_WITH(nbody::PgdCorrection<double>(grid, exact), Contains("gradient kernel"));
  mesh::ForceKernelOptions smooth;
  smooth.smoothing_scale = 1.0;
  CHECK_THROWS_WITH(nbody::PgdCorrection<double>(grid, smooth), Contains("smoothing scale = 1"));
  CHECK_THROWS_WITH(pgd.apply(Positions<double>{}, {0.5, 0.1, 1.0, 0.0}, 1.0, y),
                    Contains("no particles"));
}

TEST_CASE("PGD calibrations: each entry is found by its own run, others are refused",
          "[nbody][pgd][errors]") {
  REQUIRE_FALSE(nbody::pgd_calibrations().empty());
  for (const auto& c : nbody::pgd_calibrations()) {
    c.parameters.validate();
    CHECK(c.parameters.alpha > 0.0);
    CHECK(c.parameters.k_l < c.parameters.k_s);
    nbody::SimulationConfig cfg;
    const int n = 64;
    const double L = c.spacing * n;
    cfg.box = {L, L, L};
    cfg.particles = {n, n, n};
    cfg.mesh = {c.mesh_ratio * n, c.mesh_ratio * n, c.mesh_ratio * n};
    cfg.steps = c.steps;
    cfg.a_start = 0.05;
    const auto& found = nbody::find_pgd_calibration(cfg);
    CHECK(&found == &c);
    // The same spacing from another lattice (the table is per spacing, not per N).
    cfg.particles = {2 * n, 2 * n, 2 * n};
    cfg.mesh = {2 * c.mesh_ratio * n, 2 * c.mesh_ratio * n, 2 * c.mesh_ratio * n};
    cfg.box = {2 * L, 2 * L, 2 * L};
    CHECK(&nbody::find_pgd_calibration(cfg) == &c);
    auto other = cfg;
    other.a_start = 0.1;
    CHECK_THROWS_WITH(nbody::find_pgd_calibration(other), Catch::Contains("a_start = 0.1"));
    other = cfg;
    other.steps = c.steps + 1;
    CHECK_THROWS_WITH(nbody::find_pgd_calibration(other), Catch::Contains("no entry for"));
    other = cfg;
    other.box = {1.5 * other.box[0], 1.5 * other.box[0], 1.5 * other.box[0]};
    CHECK_THROWS_WITH(nbody::find_pgd_calibration(other), Catch::Contains("calibrated: "));
    other = cfg;
    other.kernel.gradient = mesh::GradientKernel::finite_difference_2;
    CHECK_THROWS_AS(nbody::find_pgd_calibration(other), InvalidArgument);
  }
}
