/// \file
/// \brief First- and second-order Lagrangian perturbation theory (Zel'dovich, 2LPT) initial
/// conditions on a particle lattice, with the vector-Jacobian product of the whole map.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <complex>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "diffpm/backend/cpu/fft.hpp"
#include "diffpm/core/deterministic_sum.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/cosmology/cosmology.hpp"
#include "diffpm/cosmology/model.hpp"
#include "diffpm/mesh/field.hpp"
#include "diffpm/particles/particles.hpp"

namespace diffpm::particles {

/// Scale factors of the LPT terms at one a:
///   x = q + D1 Psi1 + D2 Psi2,   p = p1 Psi1 + p2 Psi2,
/// with the FastPM momentum p = a^3 E dx/da (docs/physics.md, "LPT") and dD/da = f D / a:
///   p1 = a^2 E f1 D1,   p2 = a^2 E f2 D2.
/// S = double for values; S = a dual number carries dD1/dtheta... to meet the scalar adjoints
/// that Lpt::adjoint returns in an LptFactors<double> (docs/design.md, "The adjoint").
template <class S = double>
struct LptFactors {
  S D1{}, D2{}, p1{}, p2{};
};

/// The factors of `cosmology` at scale factor a for LPT order 1 (D2 = p2 = 0) or 2.
template <class S>
LptFactors<S> lpt_factors(const cosmology::Model<S>& cosmology, const S& a, int order) {
  if (order != 1 && order != 2) {
    throw InvalidArgument("LPT order = " + std::to_string(order) + " (must be 1 or 2)");
  }
  const S a2E = a * a * cosmology.E(a);
  LptFactors<S> f;
  f.D1 = cosmology.growth_factor(a);
  f.p1 = a2E * cosmology.growth_factor_dlna(a);  // a^2 E f1 D1
  if (order == 2) {
    f.D2 = cosmology.growth_factor_2(a);
    f.p2 = a2E * cosmology.growth_factor_2_dlna(a);  // a^2 E f2 D2
  }
  return f;
}

/// The lattice translation (Mpc/h) that keeps LPT particles off the kinks of the CIC weights of
/// `force_mesh`: half a force-mesh cell along each axis. On the lattice q = i L / N_p the
/// particles of a run with a force mesh of B N_p cells (integer B) sit exactly on mesh points,
/// where the CIC weights have their kink: the painted density is then not differentiable in the
/// displacement, and its linear response is off by O(k dx) (a plane wave of 1% of the Nyquist
/// scale got a 4.5% force error with B = 1 and 0.24% with the offset;
/// tests/nbody/test_simulation.cpp). A uniform translation changes nothing else in a periodic
/// box, but it depends on the force mesh: the same seed with another mesh gives particles
/// translated by the difference, and the linear field is not co-registered with them (a phase
/// e^{-i k . offset} relates the two).
inline std::array<double, 3> kink_free_offset(const mesh::Grid& force_mesh) {
  force_mesh.validate();
  return {0.5 * force_mesh.cell_size(0), 0.5 * force_mesh.cell_size(1),
          0.5 * force_mesh.cell_size(2)};
}

/// LPT displacement fields on a mesh and the particles of a regular lattice.
///
/// Lattice: n_p = (n_px, n_py, n_pz) particles, each n_p,d dividing the mesh's n_d; particle
/// (a, b, c) sits on the mesh point (a s_x, b s_y, c s_z), s_d = n_d / n_p,d, i.e.
/// q = (a L_x/n_px, b L_y/n_py, c L_z/n_pz): on mesh points, not cell centres, as FastPM and
/// JaxPM do, so the displacement is read off the mesh without interpolation. Particles are
/// ordered row-major with z fastest, like mesh cells.
///
/// Signs (Bernardeau, Colombi, Gaztanaga & Scoccimarro 2002, Phys. Rep. 367, 1, the section on
/// Lagrangian dynamics; Scoccimarro 1998, MNRAS 299, 1097, appendix; the 2LPTic code of Crocce,
/// Pueblas & Scoccimarro 2006, MNRAS 373, 369; equation numbers not restated here, as they
/// differ between the arXiv and journal versions):
///   x = q - D1 grad phi1 + D2 grad phi2,   lap phi1 = delta_L (at D1 = 1),
///   lap phi2 = sum_{i>j} (phi1_{,ii} phi1_{,jj} - phi1_{,ij}^2),   D2 = -3/7 D1^2 in EdS.
/// With Psi1 = -grad phi1 and Psi2 = +grad phi2 this is x = q + D1 Psi1 + D2 Psi2 with D2 < 0
/// (cosmology::Growth's sign), div Psi1 = -delta_L and div Psi2 = S, where
///   S = sum_{i<j} (Psi1_{i,i} Psi1_{j,j} - Psi1_{i,j}^2)
///     = 1/2 sum_{i != j} (Psi1_{i,i} Psi1_{j,j} - Psi1_{i,j} Psi1_{j,i})
/// (Psi1_{i,j} = -phi1_{,ij}, and S is even in Psi1). Cross-check: Bernardeau et al. write the
/// EdS second-order displacement as div Psi^(2) = -3/14 sum_{i != j} (Psi^(1)_{i,i}
/// Psi^(1)_{j,j} - Psi^(1)_{i,j} Psi^(1)_{j,i}) with Psi^(1) = D1 Psi1; that is D2 S with
/// D2 = -3/7 D1^2. The -3/7 lives in D2 only; Psi2 carries no 3/7 (fastpm-python issue #17
/// applied it twice). Sign sanity: where two perpendicular waves both peak, S > 0, Psi2 points
/// away from the peak and D2 < 0 pulls particles in: 2LPT collapses faster than Zel'dovich.
/// In Fourier space (docs/conventions.md, d(x) = (1/N) sum_n d_n e^{ik.x}):
///   Psi1_n = i k delta_n / k^2,   Psi1_{i,j},n = -k_i k_j delta_n / k^2,
///   Psi2_n = -i k S_n / k^2      (the same inverse gradient i k/k^2 applied to -S).
/// On the Nyquist plane of axis d (even n_d) the first-derivative factor i k_d is set to 0: k_d
/// and -k_d are the same mode there, so an imaginary kernel would not be Hermitian (and c2r
/// would silently drop half of it); this keeps every kernel a real-to-real map whose transpose
/// is exact. The mixed second derivative k_i k_j (i != j) is a product of two such factors and
/// vanishes there too; the even k_d^2 is kept.
///
/// Cost: order 1, 3 c2r; order 2, 3 + 6 c2r + 1 r2c + 3 c2r. The adjoint recomputes the second
/// derivatives instead of storing six fields.
template <class T>
class Lpt {
 public:
  using Vec3 = std::array<T, 3>;

  /// `lattice` defaults (zeros) to one particle per mesh point.
  explicit Lpt(const mesh::Grid& mesh, std::array<int, 3> lattice = {0, 0, 0},
               int threads = max_threads())
      : Lpt(std::make_shared<const FftPlan<T>>(mesh, threads), lattice) {}

  /// On a shared FFT plan (its grid is the mesh), so that a later Lpt, or an adjoint pass, runs
  /// the very same transforms (backend/cpu/fft.hpp, "Determinism").
  explicit Lpt(std::shared_ptr<const FftPlan<T>> plan, std::array<int, 3> lattice = {0, 0, 0})
      : grid_(require_plan(plan, "LPT").grid()), plan_(std::move(plan)), lattice_(lattice) {
    const mesh::Grid& mesh = grid_;
    const char* axis[3] = {"x", "y", "z"};
    for (int d = 0; d < 3; ++d) {
      if (lattice_[d] == 0) lattice_[d] = mesh.n[d];
      if (lattice_[d] < 1 || mesh.n[d] % lattice_[d] != 0) {
        throw InvalidArgument(std::string("LPT: ") + std::to_string(lattice_[d]) +
                              " particles along " + axis[d] + " do not divide the mesh's " +
                              std::to_string(mesh.n[d]) + " cells");
      }
      stride_[d] = mesh.n[d] / lattice_[d];
    }
  }

  const mesh::Grid& grid() const { return grid_; }
  const FftPlan<T>& plan() const { return *plan_; }
  const std::shared_ptr<const FftPlan<T>>& shared_plan() const { return plan_; }
  std::array<int, 3> lattice() const { return lattice_; }
  std::size_t num_particles() const { return std::size_t(lattice_[0]) * lattice_[1] * lattice_[2]; }
  /// The order of the last compute() (0 before any).
  int order() const { return order_; }

  /// Lagrangian position q (Mpc/h) of particle p.
  std::array<double, 3> lattice_position(std::size_t p) const {
    const auto m = mesh_point(p);
    return {m[0] * grid_.cell_size(0), m[1] * grid_.cell_size(1), m[2] * grid_.cell_size(2)};
  }

  /// Psi1 and, for order 2, the source S and Psi2 on the mesh, from delta_L (half spectrum at
  /// D1 = 1, e.g. ic::linear_field at a = 1).
  void compute(const mesh::ComplexField<T>& delta, int order) {
    if (order != 1 && order != 2) {
      throw InvalidArgument("LPT order = " + std::to_string(order) + " (must be 1 or 2)");
    }
    check_spectrum(delta, "delta_L");
    accumulating_ = false;  // an adjoint in progress would refer to the old fields
    for (int d = 0; d < 3; ++d) {
      apply_kernel(delta, work_, [d](const Mode& m) { return m.inv_gradient(d); });
      inverse(work_, psi1_[d]);
    }
    order_ = order;
    if (order == 1) return;
    // S = sum_{i<j} H_ii H_jj - H_ij^2, H_ij = Psi1_{i,j}: diagonals in psi2_ as scratch.
    for (int d = 0; d < 3; ++d) hessian(delta, d, d, psi2_[d]);
    resize(source_);
    resize(scratch_);
    const std::ptrdiff_t n = std::ptrdiff_t(grid_.size());
    {
      const T *h0 = psi2_[0].data.data(), *h1 = psi2_[1].data.data(), *h2 = psi2_[2].data.data();
      T* s = source_.data.data();
      DIFFPM_OMP(omp parallel for schedule(static))
      for (std::ptrdiff_t c = 0; c < n; ++c) s[c] = h0[c] * h1[c] + h0[c] * h2[c] + h1[c] * h2[c];
    }
    for (const auto& ij : offdiagonal()) {
      hessian(delta, ij[0], ij[1], scratch_);
      const T* h = scratch_.data.data();
      T* s = source_.data.data();
      DIFFPM_OMP(omp parallel for schedule(static))
      for (std::ptrdiff_t c = 0; c < n; ++c) s[c] -= h[c] * h[c];
    }
    resize(source_k_);
    plan_->forward(source_, source_k_);
    for (int d = 0; d < 3; ++d) {
      apply_kernel(source_k_, work_, [d](const Mode& m) { return -m.inv_gradient(d); });
      inverse(work_, psi2_[d]);
    }
  }

  /// Psi1_d, Psi2_d (order 2) and the 2LPT source S = div Psi2 on the mesh, from compute().
  const mesh::RealField<T>& psi1(int d) const { return psi1_[d]; }
  const mesh::RealField<T>& psi2(int d) const { return psi2_[d]; }
  const mesh::RealField<T>& source() const { return source_; }

  /// Displacements s = D1 Psi1 + D2 Psi2 (Mpc/h, not wrapped) and momenta p = p1 Psi1 + p2 Psi2
  /// of the lattice particles, for the order of the last compute() (its Psi2 terms are skipped at
  /// order 1). Sums in double, rounded once to T.
  void displacements(const LptFactors<double>& f, std::vector<Vec3>& s,
                     std::vector<Vec3>& p) const {
    check_computed();
    s.resize(num_particles());
    p.resize(num_particles());
    evaluate(f, view(s), view(p), false, {0.0, 0.0, 0.0});
  }

  /// Positions x = q + offset + s wrapped into [0, L) and momenta: the initial conditions at
  /// the a of f. `offset` (Mpc/h) translates the whole lattice; a PM run wants
  /// kink_free_offset(force mesh), since particles on force-mesh points sit on the CIC kinks
  /// (see there). The translation and the wrap are constants and a periodic relabelling:
  /// adjoint() treats them as the identity.
  void particles(const LptFactors<double>& f, std::vector<Vec3>& x, std::vector<Vec3>& p,
                 std::array<double, 3> offset = {0.0, 0.0, 0.0}) const {
    check_offset(offset);
    check_computed();
    x.resize(num_particles());
    p.resize(num_particles());
    evaluate(f, view(x), view(p), true, offset);
  }
  /// The same, written into the caller's memory (particles/particles.hpp): x and p must hold
  /// num_particles() vectors; particle i is lattice point i in row-major order (z fastest).
  void particles(const LptFactors<double>& f, Vec3View<T> x, Vec3View<T> p,
                 std::array<double, 3> offset = {0.0, 0.0, 0.0}) const {
    check_offset(offset);
    check_computed();
    check_view(x, "positions");
    check_view(p, "momenta");
    evaluate(f, x, p, true, offset);
  }

  /// Vector-Jacobian product of (delta_L, factors) -> (x, p) at the delta_L of the last compute()
  /// (passed again: order 2 recomputes its second derivatives). Returns delta_bar, the spectrum
  /// gradient (convention in ic/linear_field.hpp, so it feeds ic::linear_field_adjoint), and
  /// factors_bar = (dL/dD1, dL/dD2, dL/dp1, dL/dp2).
  ///
  /// Derivation. With ybar the gradient of a field y = (1/N) c2r(K delta):
  /// delta_bar = conj(K) r2c(ybar) / N; for Y = r2c(y), ybar(x) = c2r(Ybar). Then
  ///   Psi1bar = D1 xbar + p1 pbar, Psi2bar = D2 xbar + p2 pbar (on the lattice points),
  ///   delta_bar  = sum_d (-i k_d / k^2) r2c(Psi1bar_d) / N,
  ///   S_n bar    = sum_d (-i k_d / k^2)^* r2c(Psi2bar_d) / N,   Sbar(x) = c2r(S_n bar),
  ///   Hbar_ii    = Sbar sum_{j != i} H_jj,   Hbar_ij = -2 Sbar H_ij (i < j),
  ///   delta_bar += sum_{i <= j} (-k_i k_j / k^2) r2c(Hbar_ij) / N,
  /// and dL/dD1 = <xbar, Psi1>, dL/dD2 = <xbar, Psi2>, dL/dp1 = <pbar, Psi1>, dL/dp2 = <pbar,
  /// Psi2>.
  void adjoint(const mesh::ComplexField<T>& delta, const std::vector<Vec3>& x_bar,
               const std::vector<Vec3>& p_bar, mesh::ComplexField<T>& delta_bar,
               LptFactors<double>& factors_bar, const LptFactors<double>& f) {
    adjoint_begin();
    factors_bar = adjoint_accumulate(x_bar, p_bar, f);
    adjoint_end(delta, delta_bar);
  }

  /// The adjoint of several evaluations of the same displacement fields at other factors (the
  /// initial conditions and lightcone planes painted from LPT): adjoint_begin(), then one
  /// adjoint_accumulate per evaluation, each returning its own factors_bar, then adjoint_end,
  /// which adds up delta_bar once. The map is linear in (x_bar, p_bar) given the factors, so
  /// the evaluations' Psi adjoints are summed in Fourier space (3 r2c per evaluation and order)
  /// and the second-order source's Hessian terms are taken once, in adjoint_end.
  void adjoint_begin() {
    if (order_ == 0) throw InvalidArgument("LPT adjoint: compute() has not been called");
    resize(delta_bar_acc_);
    std::fill(delta_bar_acc_.data.begin(), delta_bar_acc_.data.end(), std::complex<T>(0));
    if (order_ == 2) {
      resize(source_k_);
      std::fill(source_k_.data.begin(), source_k_.data.end(), std::complex<T>(0));
    }
    accumulating_ = true;
  }

  LptFactors<double> adjoint_accumulate(const std::vector<Vec3>& x_bar,
                                        const std::vector<Vec3>& p_bar,
                                        const LptFactors<double>& f) {
    if (!accumulating_) throw InvalidArgument("LPT adjoint: adjoint_begin() was not called");
    const std::size_t np = num_particles();
    if (x_bar.size() != np || p_bar.size() != np) {
      throw InvalidArgument("LPT adjoint: " + std::to_string(x_bar.size()) + " position and " +
                            std::to_string(p_bar.size()) + " momentum gradients for " +
                            std::to_string(np) + " particles");
    }
    // Scalar factors: <xbar, Psi>, <pbar, Psi>, in double with the same bits for any thread
    // count (core/deterministic_sum.hpp).
    const std::ptrdiff_t npp = std::ptrdiff_t(np);
    const bool second = order_ == 2;
    const auto sums = deterministic_sums<4>(npp, [&](std::ptrdiff_t p) {
      std::array<double, 4> t{};  // D1, p1, D2, p2
      const std::size_t c = mesh_index(std::size_t(p));
      for (int d = 0; d < 3; ++d) {
        const double xb = x_bar[p][d], pb = p_bar[p][d], s1 = psi1_[d].data[c];
        t[0] += xb * s1;
        t[1] += pb * s1;
        if (second) {
          const double s2 = psi2_[d].data[c];
          t[2] += xb * s2;
          t[3] += pb * s2;
        }
      }
      return t;
    });
    const double gD1 = sums[0], gp1 = sums[1], gD2 = sums[2], gp2 = sums[3];
    resize(scratch_);
    resize(work_);
    // First order: delta_bar += conj(i k_d/k^2) r2c(D1 xbar_d + p1 pbar_d) / N.
    for (int d = 0; d < 3; ++d) {
      scatter(x_bar, p_bar, d, f.D1, f.p1, scratch_);
      plan_->forward(scratch_, work_);
      accumulate_kernel(work_, delta_bar_acc_,
                        [d](const Mode& m) { return std::conj(m.inv_gradient(d)); });
    }
    // Second order: Sbar_n += sum_d conj(-i k_d/k^2) r2c(D2 xbar_d + p2 pbar_d) / N.
    if (second) {
      for (int d = 0; d < 3; ++d) {
        scatter(x_bar, p_bar, d, f.D2, f.p2, scratch_);
        plan_->forward(scratch_, work_);
        accumulate_kernel(work_, source_k_,
                          [d](const Mode& m) { return std::conj(-m.inv_gradient(d)); });
      }
    }
    return LptFactors<double>{gD1, gD2, gp1, gp2};
  }

  /// delta_bar (overwritten) from the accumulated evaluations, at the delta_L of compute().
  void adjoint_end(const mesh::ComplexField<T>& delta, mesh::ComplexField<T>& delta_bar) {
    if (!accumulating_) throw InvalidArgument("LPT adjoint: adjoint_begin() was not called");
    check_spectrum(delta, "delta_L");
    accumulating_ = false;
    delta_bar = delta_bar_acc_;
    if (order_ != 2) return;
    // Sbar(x) = c2r(Sbar_n), unnormalised: the adjoint of r2c.
    mesh::RealField<T> s_bar(grid_);
    plan_->inverse_destroying_input(source_k_, s_bar);
    // Diagonal second derivatives (recomputed); Hbar_ii = Sbar (H_jj + H_kk).
    std::array<mesh::RealField<T>, 3> h;
    for (int d = 0; d < 3; ++d) {
      h[d] = mesh::RealField<T>(grid_);
      hessian(delta, d, d, h[d]);
    }
    const std::ptrdiff_t n = std::ptrdiff_t(grid_.size());
    for (int d = 0; d < 3; ++d) {
      const T *sb = s_bar.data.data(), *ha = h[(d + 1) % 3].data.data(),
              *hb = h[(d + 2) % 3].data.data();
      T* out = scratch_.data.data();
      DIFFPM_OMP(omp parallel for schedule(static))
      for (std::ptrdiff_t c = 0; c < n; ++c) out[c] = sb[c] * (ha[c] + hb[c]);
      plan_->forward(scratch_, work_);
      accumulate_kernel(work_, delta_bar, [d](const Mode& m) { return m.hessian(d, d); });
    }
    // Off-diagonal: Hbar_ij = -2 Sbar H_ij.
    for (const auto& ij : offdiagonal()) {
      hessian(delta, ij[0], ij[1], scratch_);
      const T* sb = s_bar.data.data();
      T* out = scratch_.data.data();
      DIFFPM_OMP(omp parallel for schedule(static))
      for (std::ptrdiff_t c = 0; c < n; ++c) out[c] = T(-2) * sb[c] * out[c];
      plan_->forward(scratch_, work_);
      const int i = ij[0], j = ij[1];
      accumulate_kernel(work_, delta_bar, [i, j](const Mode& m) { return m.hessian(i, j); });
    }
  }

 private:
  /// Wavevector of one half-spectrum entry, with the Nyquist-zeroed first-derivative factors.
  struct Mode {
    double k[3];      // true wavenumbers (h/Mpc)
    double k_odd[3];  // k_d, or 0 on the Nyquist plane of axis d
    double inv_k2;    // 1/k^2, 0 for the zero mode
    /// i k_d / k^2 (the inverse gradient: div of it applied to f is -f).
    std::complex<double> inv_gradient(int d) const { return {0.0, k_odd[d] * inv_k2}; }
    /// -k_i k_j / k^2 (second derivative of the inverse gradient).
    std::complex<double> hessian(int i, int j) const {
      return {i == j ? -k[i] * k[i] * inv_k2 : -k_odd[i] * k_odd[j] * inv_k2, 0.0};
    }
  };

  Mode mode(int i, int j, int kz) const {
    Mode m;
    const int idx[3] = {i, j, kz};
    double k2 = 0;
    for (int d = 0; d < 3; ++d) {
      m.k[d] = grid_.wavenumber(d, idx[d]);
      m.k_odd[d] = grid_.is_nyquist(d, idx[d]) ? 0.0 : m.k[d];
      k2 += m.k[d] * m.k[d];
    }
    m.inv_k2 = k2 > 0 ? 1.0 / k2 : 0.0;
    return m;
  }

  static constexpr std::array<std::array<int, 2>, 3> offdiagonal() {
    return {{{0, 1}, {0, 2}, {1, 2}}};
  }

  template <class Field>
  void resize(Field& f) const {
    if (!f.allocated_on(grid_)) f = Field(grid_);
  }

  void check_spectrum(const mesh::ComplexField<T>& f, const char* what) const {
    if (f.grid != grid_ || f.data.size() != grid_.complex_size()) {
      throw InvalidArgument(std::string("LPT: ") + what + " is on a " +
                            std::to_string(f.grid.n[0]) + "x" + std::to_string(f.grid.n[1]) + "x" +
                            std::to_string(f.grid.n[2]) + " mesh, the LPT plan on " +
                            std::to_string(grid_.n[0]) + "x" + std::to_string(grid_.n[1]) + "x" +
                            std::to_string(grid_.n[2]) + " (or other box lengths)");
    }
  }

  /// out_n = K(n) in_n / N (the inverse FFT's 1/N folded in).
  template <class Kernel>
  void apply_kernel(const mesh::ComplexField<T>& in, mesh::ComplexField<T>& out,
                    const Kernel& kernel) {
    resize(out);
    const double inv_n = 1.0 / double(grid_.size());
    const int nzc = grid_.complex_nz();
    DIFFPM_OMP(omp parallel for schedule(static))
    for (int i = 0; i < grid_.n[0]; ++i)
      for (int j = 0; j < grid_.n[1]; ++j)
        for (int kz = 0; kz < nzc; ++kz) {
          const std::size_t c = grid_.complex_index(i, j, kz);
          out.data[c] =
              std::complex<T>(kernel(mode(i, j, kz)) * inv_n * std::complex<double>(in.data[c]));
        }
  }

  /// out_n += K(n) in_n / N.
  template <class Kernel>
  void accumulate_kernel(const mesh::ComplexField<T>& in, mesh::ComplexField<T>& out,
                         const Kernel& kernel) const {
    const double inv_n = 1.0 / double(grid_.size());
    const int nzc = grid_.complex_nz();
    DIFFPM_OMP(omp parallel for schedule(static))
    for (int i = 0; i < grid_.n[0]; ++i)
      for (int j = 0; j < grid_.n[1]; ++j)
        for (int kz = 0; kz < nzc; ++kz) {
          const std::size_t c = grid_.complex_index(i, j, kz);
          out.data[c] +=
              std::complex<T>(kernel(mode(i, j, kz)) * inv_n * std::complex<double>(in.data[c]));
        }
  }

  /// out = c2r(in) (in destroyed).
  void inverse(mesh::ComplexField<T>& in, mesh::RealField<T>& out) {
    resize(out);
    plan_->inverse_destroying_input(in, out);
  }

  /// out = H_ij = Psi1_{i,j} = (1/N) c2r(-k_i k_j delta / k^2).
  void hessian(const mesh::ComplexField<T>& delta, int i, int j, mesh::RealField<T>& out) {
    apply_kernel(delta, work_, [i, j](const Mode& m) { return m.hessian(i, j); });
    inverse(work_, out);
  }

  std::array<int, 3> mesh_point(std::size_t p) const {
    const int c = int(p % lattice_[2]);
    const std::size_t ab = p / lattice_[2];
    const int b = int(ab % lattice_[1]);
    const int a = int(ab / lattice_[1]);
    return {a * stride_[0], b * stride_[1], c * stride_[2]};
  }
  std::size_t mesh_index(std::size_t p) const {
    const auto m = mesh_point(p);
    return grid_.index(m[0], m[1], m[2]);
  }

  /// out = 0 off the lattice, a xbar_d + b pbar_d on it: the transpose of the lattice sampling.
  void scatter(const std::vector<Vec3>& x_bar, const std::vector<Vec3>& p_bar, int d, double a,
               double b, mesh::RealField<T>& out) const {
    std::fill(out.data.begin(), out.data.end(), T(0));
    const std::ptrdiff_t np = std::ptrdiff_t(num_particles());
    DIFFPM_OMP(omp parallel for schedule(static))
    for (std::ptrdiff_t p = 0; p < np; ++p) {
      out.data[mesh_index(std::size_t(p))] = T(a * double(x_bar[p][d]) + b * double(p_bar[p][d]));
    }
  }

  void check_computed() const {
    if (order_ == 0) throw InvalidArgument("LPT: compute() has not been called");
  }
  static void check_offset(const std::array<double, 3>& offset) {
    for (int d = 0; d < 3; ++d) {
      if (!std::isfinite(offset[d])) {
        throw InvalidArgument("LPT: lattice offset " + std::to_string(d) + " = " +
                              format_number(offset[d]) + " Mpc/h (must be finite)");
      }
    }
  }
  void check_view(const Vec3View<T>& v, const char* name) const {
    if (v.size != num_particles()) {
      throw InvalidArgument("LPT: a view of " + std::to_string(v.size) + " " + name + " for " +
                            std::to_string(num_particles()) + " particles");
    }
    for (int d = 0; d < 3; ++d) {
      if (v.size > 0 && !v.component[d]) {
        throw InvalidArgument(std::string("LPT: a view of ") + name +
                              " with a null pointer for component " + std::to_string(d));
      }
    }
  }

  void evaluate(const LptFactors<double>& f, Vec3View<T> x, Vec3View<T> p, bool positions,
                const std::array<double, 3>& offset) const {
    const std::size_t np = num_particles();
    const bool second = order_ == 2;
    const std::ptrdiff_t npp = std::ptrdiff_t(np);
    DIFFPM_OMP(omp parallel for schedule(static))
    for (std::ptrdiff_t i = 0; i < npp; ++i) {
      const std::size_t c = mesh_index(std::size_t(i));
      const auto q = lattice_position(std::size_t(i));
      for (int d = 0; d < 3; ++d) {
        const double s1 = psi1_[d].data[c], s2 = second ? double(psi2_[d].data[c]) : 0.0;
        double s = f.D1 * s1 + f.D2 * s2;
        if (positions) {
          const double L = grid_.length[d];
          s += q[d] + offset[d];
          s -= L * std::floor(s / L);
          T v = T(s);
          if (v >= T(L)) v = T(0);  // rounding up to L (float) wraps to 0
          x(std::size_t(i), d) = v;
        } else {
          x(std::size_t(i), d) = T(s);
        }
        p(std::size_t(i), d) = T(f.p1 * s1 + f.p2 * s2);
      }
    }
  }

  mesh::Grid grid_;
  std::shared_ptr<const FftPlan<T>> plan_;
  std::array<int, 3> lattice_;
  std::array<int, 3> stride_{};
  int order_ = 0;
  bool accumulating_ = false;
  std::array<mesh::RealField<T>, 3> psi1_, psi2_;
  mesh::RealField<T> source_, scratch_;
  mesh::ComplexField<T> work_, source_k_, delta_bar_acc_;
};

}  // namespace diffpm::particles
