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
#include "diffpm/core/host_device.hpp"
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

namespace detail {

// The per-mode and per-particle arithmetic of Lpt, shared by the CPU class below and the device
// class (particles/lpt_device.hpp): one kernel source, so the backends cannot diverge. Complex
// numbers are pairs of doubles (std::complex's operators are host functions), with the
// expressions std::complex<double> evaluates written out: a complex times a real scales both
// parts, and (a + ib)(c + id) = (ac - bd) + i(ad + bc), what GCC computes for finite values.

/// A complex number as two doubles.
struct LptComplex {
  double re, im;
};

/// Wavevector of one half-spectrum entry, with the Nyquist-zeroed first-derivative factors.
struct LptMode {
  double k[3];      // true wavenumbers (h/Mpc)
  double k_odd[3];  // k_d, or 0 on the Nyquist plane of axis d
  double inv_k2;    // 1/k^2, 0 for the zero mode
  /// i k_d / k^2 (the inverse gradient: div of it applied to f is -f).
  DIFFPM_HOST_DEVICE LptComplex inv_gradient(int d) const { return {0.0, k_odd[d] * inv_k2}; }
  /// -k_i k_j / k^2 (second derivative of the inverse gradient).
  DIFFPM_HOST_DEVICE LptComplex hessian(int i, int j) const {
    return {i == j ? -k[i] * k[i] * inv_k2 : -k_odd[i] * k_odd[j] * inv_k2, 0.0};
  }
};

/// The wavenumbers of a grid by FFT index, per axis (half spectrum along z): k[d][idx] =
/// Grid::wavenumber(d, idx), k_odd[d][idx] the same or 0 on the Nyquist plane. Pointers into
/// lpt_axis_tables' values, in host or device memory.
struct LptAxes {
  const double* k[3];
  const double* k_odd[3];
  int ny, nzc;

  DIFFPM_HOST_DEVICE LptMode mode(std::size_t c) const {
    const int kz = int(c % std::size_t(nzc));
    const std::size_t ij = c / std::size_t(nzc);
    const int idx[3] = {int(ij / std::size_t(ny)), int(ij % std::size_t(ny)), kz};
    LptMode m;
    double k2 = 0;
    for (int d = 0; d < 3; ++d) {
      m.k[d] = k[d][idx[d]];
      m.k_odd[d] = k_odd[d][idx[d]];
      k2 += m.k[d] * m.k[d];
    }
    m.inv_k2 = k2 > 0 ? 1.0 / k2 : 0.0;
    return m;
  }
};

/// The values behind LptAxes, computed on the host: k_x, k_y, k_z, then k_odd in the same
/// layout (2 (n_x + n_y + n_z/2 + 1) doubles).
inline std::vector<double> lpt_axis_tables(const mesh::Grid& grid) {
  const int len[3] = {grid.n[0], grid.n[1], grid.complex_nz()};
  std::vector<double> t;
  for (int odd = 0; odd < 2; ++odd)
    for (int d = 0; d < 3; ++d)
      for (int idx = 0; idx < len[d]; ++idx) {
        const double k = grid.wavenumber(d, idx);
        t.push_back(odd && grid.is_nyquist(d, idx) ? 0.0 : k);
      }
  return t;
}
/// LptAxes over a copy of lpt_axis_tables(grid) at `tables`.
inline LptAxes lpt_axes(const double* tables, const mesh::Grid& grid) {
  const std::size_t len[3] = {std::size_t(grid.n[0]), std::size_t(grid.n[1]),
                              std::size_t(grid.complex_nz())};
  LptAxes a;
  const double* p = tables;
  for (int d = 0; d < 3; ++d) a.k[d] = p, p += len[d];
  for (int d = 0; d < 3; ++d) a.k_odd[d] = p, p += len[d];
  a.ny = grid.n[1];
  a.nzc = grid.complex_nz();
  return a;
}

/// The Fourier kernels of LPT and its adjoint, K(n), selected by value (device code calls no
/// host lambdas): the inverse gradient along axis i, its conjugate, its negative and the
/// conjugate of that, and the second derivative (i, j).
struct LptKernel {
  enum Kind {
    inv_gradient,
    inv_gradient_conj,
    minus_inv_gradient,
    minus_inv_gradient_conj,
    hessian
  };
  Kind kind;
  int i, j;
  DIFFPM_HOST_DEVICE LptComplex operator()(const LptMode& m) const {
    if (kind == hessian) return m.hessian(i, j);
    const LptComplex g = m.inv_gradient(i);
    switch (kind) {
      case inv_gradient_conj:
        return {g.re, -g.im};
      case minus_inv_gradient:
        return {-g.re, -g.im};
      case minus_inv_gradient_conj:
        return {-g.re, -(-g.im)};
      default:
        return g;
    }
  }
};

/// Entry c of out (=|+=) K(n) in / N (inv_n = 1/N: the inverse FFT's normalisation folded in),
/// for half spectra stored as interleaved (re, im) pairs of T.
template <class T>
DIFFPM_HOST_DEVICE inline void lpt_kernel_entry(const LptAxes& axes, const LptKernel& kernel,
                                                double inv_n, std::size_t c, const T* in, T* out,
                                                bool accumulate) {
  const LptComplex K = kernel(axes.mode(c));
  const double a = K.re * inv_n, b = K.im * inv_n;
  const double x = in[2 * c], y = in[2 * c + 1];
  const T re = T(a * x - b * y), im = T(a * y + b * x);
  if (accumulate) {
    out[2 * c] += re;
    out[2 * c + 1] += im;
  } else {
    out[2 * c] = re;
    out[2 * c + 1] = im;
  }
}

/// The particle lattice of an Lpt: particle p (row-major, z fastest) sits on mesh point
/// (a s_x, b s_y, c s_z) of a mesh of n cells.
struct LptLattice {
  int lattice[3];
  int stride[3];
  int n[3];
  DIFFPM_HOST_DEVICE void mesh_point(std::size_t p, int m[3]) const {
    const int c = int(p % std::size_t(lattice[2]));
    const std::size_t ab = p / std::size_t(lattice[2]);
    const int b = int(ab % std::size_t(lattice[1]));
    const int a = int(ab / std::size_t(lattice[1]));
    m[0] = a * stride[0];
    m[1] = b * stride[1];
    m[2] = c * stride[2];
  }
  /// Grid::index of the mesh point.
  DIFFPM_HOST_DEVICE std::size_t mesh_index(std::size_t p) const {
    int m[3];
    mesh_point(p, m);
    return (std::size_t(m[0]) * std::size_t(n[1]) + std::size_t(m[1])) * std::size_t(n[2]) +
           std::size_t(m[2]);
  }
};

/// The 2LPT source S = H_00 H_11 + H_00 H_22 + H_11 H_22 - sum_{i<j} H_ij^2, in two steps: the
/// diagonal products, then one off-diagonal square subtracted at a time.
template <class T>
DIFFPM_HOST_DEVICE inline T lpt_source_diagonal(T h0, T h1, T h2) {
  return h0 * h1 + h0 * h2 + h1 * h2;
}
template <class T>
DIFFPM_HOST_DEVICE inline T lpt_source_offdiagonal(T s, T h) {
  return s - h * h;
}
/// Their adjoints: Hbar_ii = Sbar (H_jj + H_kk) and Hbar_ij = -2 Sbar H_ij.
template <class T>
DIFFPM_HOST_DEVICE inline T lpt_source_diagonal_adjoint(T s_bar, T ha, T hb) {
  return s_bar * (ha + hb);
}
template <class T>
DIFFPM_HOST_DEVICE inline T lpt_source_offdiagonal_adjoint(T s_bar, T h) {
  return T(-2) * s_bar * h;
}

/// The lattice sampling's transpose at one particle: a xbar_d + b pbar_d, rounded to T.
template <class T>
DIFFPM_HOST_DEVICE inline T lpt_scatter_value(double a, T x_bar, double b, T p_bar) {
  return T(a * double(x_bar) + b * double(p_bar));
}

/// Particle p's term of one factor adjoint, summed over the three axes in double:
/// component 0 <xbar, Psi1>, 1 <pbar, Psi1>, 2 <xbar, Psi2>, 3 <pbar, Psi2> (0 without Psi2).
template <class T>
struct LptFactorTerm {
  Vec3View<const T> x_bar, p_bar;
  LptLattice lattice;
  const T* psi1[3];
  const T* psi2[3];  // null at order 1
  DIFFPM_HOST_DEVICE double operator()(int component, std::size_t p) const {
    const bool second_order = component >= 2;
    if (second_order && !psi2[0]) return 0.0;
    const Vec3View<const T>& v = component % 2 == 0 ? x_bar : p_bar;
    const std::size_t c = lattice.mesh_index(p);
    double t = 0.0;
    for (int d = 0; d < 3; ++d) {
      const double s = second_order ? psi2[d][c] : psi1[d][c];
      t += double(v(p, d)) * s;
    }
    return t;
  }
};

/// Particle i's displacement s = D1 Psi1 + D2 Psi2 (Mpc/h; with `positions`, x = q + offset + s
/// wrapped into [0, L)) and momentum p = p1 Psi1 + p2 Psi2: sums in double, rounded once to T.
template <class T>
struct LptEvaluation {
  LptLattice lattice;
  double cell[3];    // mesh cell sizes (Mpc/h): q = mesh point times cell
  double length[3];  // box lengths (Mpc/h)
  double offset[3];
  LptFactors<double> f;
  const T* psi1[3];
  const T* psi2[3];  // null at order 1
  bool positions;
  DIFFPM_HOST_DEVICE void operator()(std::size_t i, Vec3View<T> x, Vec3View<T> p) const {
    int m[3];
    lattice.mesh_point(i, m);
    const std::size_t c = lattice.mesh_index(i);
    const bool second = psi2[0] != nullptr;
    for (int d = 0; d < 3; ++d) {
      const double s1 = psi1[d][c], s2 = second ? double(psi2[d][c]) : 0.0;
      double s = f.D1 * s1 + f.D2 * s2;
      if (positions) {
        const double L = length[d];
        s += m[d] * cell[d] + offset[d];
        s -= L * std::floor(s / L);
        T v = T(s);
        if (v >= T(L)) v = T(0);  // rounding up to L (float) wraps to 0
        x(i, d) = v;
      } else {
        x(i, d) = T(s);
      }
      p(i, d) = T(f.p1 * s1 + f.p2 * s2);
    }
  }
};

/// The lattice strides n_d / n_p,d, with zeros in `lattice` replaced by n_d (one particle per
/// mesh point); InvalidArgument naming the axis unless n_p,d >= 1 divides n_d.
inline std::array<int, 3> lpt_lattice_strides(const mesh::Grid& mesh, std::array<int, 3>& lattice) {
  const char* axis[3] = {"x", "y", "z"};
  std::array<int, 3> stride{};
  for (int d = 0; d < 3; ++d) {
    if (lattice[d] == 0) lattice[d] = mesh.n[d];
    if (lattice[d] < 1 || mesh.n[d] % lattice[d] != 0) {
      throw InvalidArgument(std::string("LPT: ") + std::to_string(lattice[d]) +
                            " particles along " + axis[d] + " do not divide the mesh's " +
                            std::to_string(mesh.n[d]) + " cells");
    }
    stride[d] = mesh.n[d] / lattice[d];
  }
  return stride;
}

inline void check_lpt_order(int order) {
  if (order != 1 && order != 2) {
    throw InvalidArgument("LPT order = " + std::to_string(order) + " (must be 1 or 2)");
  }
}

inline void check_lpt_offset(const std::array<double, 3>& offset) {
  for (int d = 0; d < 3; ++d) {
    if (!std::isfinite(offset[d])) {
      throw InvalidArgument("LPT: lattice offset " + std::to_string(d) + " = " +
                            format_number(offset[d]) + " Mpc/h (must be finite)");
    }
  }
}

/// InvalidArgument unless v holds n vectors with non-null components; `name` says which.
template <class T>
void check_lpt_view(const Vec3View<T>& v, std::size_t n, const char* name) {
  if (v.size != n) {
    throw InvalidArgument("LPT: a view of " + std::to_string(v.size) + " " + name + " for " +
                          std::to_string(n) + " particles");
  }
  for (int d = 0; d < 3; ++d) {
    if (v.size > 0 && !v.component[d]) {
      throw InvalidArgument(std::string("LPT: a view of ") + name +
                            " with a null pointer for component " + std::to_string(d));
    }
  }
}

inline void check_lpt_gradients(std::size_t x_bar, std::size_t p_bar, std::size_t n) {
  if (x_bar != n || p_bar != n) {
    throw InvalidArgument("LPT adjoint: " + std::to_string(x_bar) + " position and " +
                          std::to_string(p_bar) + " momentum gradients for " + std::to_string(n) +
                          " particles");
  }
}

/// "LPT: <what> is on a ... mesh, the LPT plan on ...", for a field on another mesh than the plan.
inline InvalidArgument lpt_mesh_error(const mesh::Grid& grid, const mesh::Grid& plan,
                                      const char* what) {
  return InvalidArgument(std::string("LPT: ") + what + " is on a " + std::to_string(grid.n[0]) +
                         "x" + std::to_string(grid.n[1]) + "x" + std::to_string(grid.n[2]) +
                         " mesh, the LPT plan on " + std::to_string(plan.n[0]) + "x" +
                         std::to_string(plan.n[1]) + "x" + std::to_string(plan.n[2]) +
                         " (or other box lengths)");
}

}  // namespace detail

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
///
/// The CPU class is Lpt<T> (= Lpt<T, Cpu>); Lpt<T, Cuda> (particles/lpt_device.hpp) runs the
/// same arithmetic on device memory.
template <class T, class Backend = Cpu>
class Lpt;

template <class T>
class Lpt<T, Cpu> {
 public:
  using Vec3 = std::array<T, 3>;

  /// `lattice` defaults (zeros) to one particle per mesh point.
  explicit Lpt(const mesh::Grid& mesh, std::array<int, 3> lattice = {0, 0, 0},
               int threads = max_threads())
      : Lpt(std::make_shared<const FftPlan<T>>(mesh, threads), lattice) {}

  /// On a shared FFT plan (its grid is the mesh), so that a later Lpt, or an adjoint pass, runs
  /// the very same transforms (backend/cpu/fft.hpp, "Determinism").
  explicit Lpt(std::shared_ptr<const FftPlan<T>> plan, std::array<int, 3> lattice = {0, 0, 0})
      : grid_(require_plan(plan, "LPT").grid()),
        plan_(std::move(plan)),
        lattice_(lattice),
        stride_(detail::lpt_lattice_strides(grid_, lattice_)),
        axis_tables_(detail::lpt_axis_tables(grid_)) {}

  const mesh::Grid& grid() const { return grid_; }
  const FftPlan<T>& plan() const { return *plan_; }
  const std::shared_ptr<const FftPlan<T>>& shared_plan() const { return plan_; }
  std::array<int, 3> lattice() const { return lattice_; }
  std::size_t num_particles() const { return std::size_t(lattice_[0]) * lattice_[1] * lattice_[2]; }
  /// The order of the last compute() (0 before any).
  int order() const { return order_; }

  /// Lagrangian position q (Mpc/h) of particle p.
  std::array<double, 3> lattice_position(std::size_t p) const {
    int m[3];
    lattice_geometry().mesh_point(p, m);
    return {m[0] * grid_.cell_size(0), m[1] * grid_.cell_size(1), m[2] * grid_.cell_size(2)};
  }

  /// Psi1 and, for order 2, the source S and Psi2 on the mesh, from delta_L (half spectrum at
  /// D1 = 1, e.g. ic::linear_field at a = 1).
  void compute(const mesh::ComplexField<T>& delta, int order) {
    detail::check_lpt_order(order);
    check_spectrum(delta, "delta_L");
    accumulating_ = false;  // an adjoint in progress would refer to the old fields
    for (int d = 0; d < 3; ++d) {
      apply_kernel(delta, work_, {Kernel::inv_gradient, d, d});
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
      for (std::ptrdiff_t c = 0; c < n; ++c)
        s[c] = detail::lpt_source_diagonal(h0[c], h1[c], h2[c]);
    }
    for (const auto& ij : offdiagonal()) {
      hessian(delta, ij[0], ij[1], scratch_);
      const T* h = scratch_.data.data();
      T* s = source_.data.data();
      DIFFPM_OMP(omp parallel for schedule(static))
      for (std::ptrdiff_t c = 0; c < n; ++c) s[c] = detail::lpt_source_offdiagonal(s[c], h[c]);
    }
    resize(source_k_);
    plan_->forward(source_, source_k_);
    for (int d = 0; d < 3; ++d) {
      apply_kernel(source_k_, work_, {Kernel::minus_inv_gradient, d, d});
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
    detail::check_lpt_offset(offset);
    check_computed();
    x.resize(num_particles());
    p.resize(num_particles());
    evaluate(f, view(x), view(p), true, offset);
  }
  /// The same, written into the caller's memory (particles/particles.hpp): x and p must hold
  /// num_particles() vectors; particle i is lattice point i in row-major order (z fastest).
  void particles(const LptFactors<double>& f, Vec3View<T> x, Vec3View<T> p,
                 std::array<double, 3> offset = {0.0, 0.0, 0.0}) const {
    detail::check_lpt_offset(offset);
    check_computed();
    detail::check_lpt_view(x, num_particles(), "positions");
    detail::check_lpt_view(p, num_particles(), "momenta");
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
    detail::check_lpt_gradients(x_bar.size(), p_bar.size(), np);
    // Scalar factors: <xbar, Psi>, <pbar, Psi>, in double with the same bits for any thread
    // count (core/deterministic_sum.hpp). The device sums each component with
    // backend::deterministic_sum, whose blocks are these: the same bits in its emulation.
    detail::LptFactorTerm<T> term{view(x_bar), view(p_bar), lattice_geometry(), {}, {}};
    fields(term.psi1, term.psi2);
    const auto sums = deterministic_sums<4>(std::ptrdiff_t(np), [&](std::ptrdiff_t p) {
      std::array<double, 4> t;  // D1, p1, D2, p2
      for (int k = 0; k < 4; ++k) t[std::size_t(k)] = term(k, std::size_t(p));
      return t;
    });
    const double gD1 = sums[0], gp1 = sums[1], gD2 = sums[2], gp2 = sums[3];
    resize(scratch_);
    resize(work_);
    // First order: delta_bar += conj(i k_d/k^2) r2c(D1 xbar_d + p1 pbar_d) / N.
    for (int d = 0; d < 3; ++d) {
      scatter(x_bar, p_bar, d, f.D1, f.p1, scratch_);
      plan_->forward(scratch_, work_);
      accumulate_kernel(work_, delta_bar_acc_, {Kernel::inv_gradient_conj, d, d});
    }
    // Second order: Sbar_n += sum_d conj(-i k_d/k^2) r2c(D2 xbar_d + p2 pbar_d) / N.
    if (order_ == 2) {
      for (int d = 0; d < 3; ++d) {
        scatter(x_bar, p_bar, d, f.D2, f.p2, scratch_);
        plan_->forward(scratch_, work_);
        accumulate_kernel(work_, source_k_, {Kernel::minus_inv_gradient_conj, d, d});
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
      for (std::ptrdiff_t c = 0; c < n; ++c)
        out[c] = detail::lpt_source_diagonal_adjoint(sb[c], ha[c], hb[c]);
      plan_->forward(scratch_, work_);
      accumulate_kernel(work_, delta_bar, {Kernel::hessian, d, d});
    }
    // Off-diagonal: Hbar_ij = -2 Sbar H_ij.
    for (const auto& ij : offdiagonal()) {
      hessian(delta, ij[0], ij[1], scratch_);
      const T* sb = s_bar.data.data();
      T* out = scratch_.data.data();
      DIFFPM_OMP(omp parallel for schedule(static))
      for (std::ptrdiff_t c = 0; c < n; ++c)
        out[c] = detail::lpt_source_offdiagonal_adjoint(sb[c], out[c]);
      plan_->forward(scratch_, work_);
      accumulate_kernel(work_, delta_bar, {Kernel::hessian, ij[0], ij[1]});
    }
  }

 private:
  using Kernel = detail::LptKernel;

  detail::LptLattice lattice_geometry() const {
    return {{lattice_[0], lattice_[1], lattice_[2]},
            {stride_[0], stride_[1], stride_[2]},
            {grid_.n[0], grid_.n[1], grid_.n[2]}};
  }
  /// Pointers to Psi1 and, after an order-2 compute(), Psi2 (else null).
  void fields(const T* psi1[3], const T* psi2[3]) const {
    for (int d = 0; d < 3; ++d) {
      psi1[d] = psi1_[d].data.data();
      psi2[d] = order_ == 2 ? psi2_[d].data.data() : nullptr;
    }
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
      throw detail::lpt_mesh_error(f.grid, grid_, what);
    }
  }

  /// out_n = K(n) in_n / N (the inverse FFT's 1/N folded in).
  void apply_kernel(const mesh::ComplexField<T>& in, mesh::ComplexField<T>& out,
                    const Kernel& kernel) {
    resize(out);
    run_kernel(in, out, kernel, false);
  }

  /// out_n += K(n) in_n / N.
  void accumulate_kernel(const mesh::ComplexField<T>& in, mesh::ComplexField<T>& out,
                         const Kernel& kernel) const {
    run_kernel(in, out, kernel, true);
  }

  void run_kernel(const mesh::ComplexField<T>& in, mesh::ComplexField<T>& out, const Kernel& kernel,
                  bool accumulate) const {
    const detail::LptAxes axes = detail::lpt_axes(axis_tables_.data(), grid_);
    const double inv_n = 1.0 / double(grid_.size());
    // std::complex<T> is an array of two T ([complex.numbers]).
    const T* a = reinterpret_cast<const T*>(in.data.data());
    T* b = reinterpret_cast<T*>(out.data.data());
    const std::ptrdiff_t m = std::ptrdiff_t(grid_.complex_size());
    DIFFPM_OMP(omp parallel for schedule(static))
    for (std::ptrdiff_t c = 0; c < m; ++c)
      detail::lpt_kernel_entry(axes, kernel, inv_n, std::size_t(c), a, b, accumulate);
  }

  /// out = c2r(in) (in destroyed).
  void inverse(mesh::ComplexField<T>& in, mesh::RealField<T>& out) {
    resize(out);
    plan_->inverse_destroying_input(in, out);
  }

  /// out = H_ij = Psi1_{i,j} = (1/N) c2r(-k_i k_j delta / k^2).
  void hessian(const mesh::ComplexField<T>& delta, int i, int j, mesh::RealField<T>& out) {
    apply_kernel(delta, work_, {Kernel::hessian, i, j});
    inverse(work_, out);
  }

  /// out = 0 off the lattice, a xbar_d + b pbar_d on it: the transpose of the lattice sampling.
  void scatter(const std::vector<Vec3>& x_bar, const std::vector<Vec3>& p_bar, int d, double a,
               double b, mesh::RealField<T>& out) const {
    std::fill(out.data.begin(), out.data.end(), T(0));
    const detail::LptLattice lattice = lattice_geometry();
    const std::ptrdiff_t np = std::ptrdiff_t(num_particles());
    DIFFPM_OMP(omp parallel for schedule(static))
    for (std::ptrdiff_t p = 0; p < np; ++p) {
      out.data[lattice.mesh_index(std::size_t(p))] =
          detail::lpt_scatter_value(a, x_bar[p][d], b, p_bar[p][d]);
    }
  }

  void check_computed() const {
    if (order_ == 0) throw InvalidArgument("LPT: compute() has not been called");
  }
  void evaluate(const LptFactors<double>& f, Vec3View<T> x, Vec3View<T> p, bool positions,
                const std::array<double, 3>& offset) const {
    detail::LptEvaluation<T> e;
    e.lattice = lattice_geometry();
    for (int d = 0; d < 3; ++d) {
      e.cell[d] = grid_.cell_size(d);
      e.length[d] = grid_.length[d];
      e.offset[d] = offset[d];
    }
    e.f = f;
    fields(e.psi1, e.psi2);
    e.positions = positions;
    const std::ptrdiff_t np = std::ptrdiff_t(num_particles());
    DIFFPM_OMP(omp parallel for schedule(static))
    for (std::ptrdiff_t i = 0; i < np; ++i) e(std::size_t(i), x, p);
  }

  mesh::Grid grid_;
  std::shared_ptr<const FftPlan<T>> plan_;
  std::array<int, 3> lattice_;
  std::array<int, 3> stride_{};
  std::vector<double> axis_tables_;  // detail::lpt_axis_tables(grid_)
  int order_ = 0;
  bool accumulating_ = false;
  std::array<mesh::RealField<T>, 3> psi1_, psi2_;
  mesh::RealField<T> source_, scratch_;
  mesh::ComplexField<T> work_, source_k_, delta_bar_acc_;
};

}  // namespace diffpm::particles
