/// \file
/// \brief The particle-mesh gravitational force and its adjoint (vector-Jacobian product).
#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "diffpm/backend/cpu/fft.hpp"
#include "diffpm/core/deterministic_sum.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/mesh/field.hpp"
#include "diffpm/mesh/finite_difference.hpp"
#include "diffpm/mesh/fourier_kernels.hpp"
#include "diffpm/particles/cic.hpp"
#include "diffpm/particles/cic_plan.hpp"

namespace diffpm::nbody {

/// Wall-clock seconds spent in each part of the force, accumulated over calls (for the
/// benchmarks' step breakdown; reset with `timings = {}`).
struct ForceTimings {
  double paint = 0, fft = 0, kernels = 0, readout = 0;
  double total() const { return paint + fft + kernels + readout; }
};

/// F = -grad phi with lap phi = 3/2 Omega_m delta at each particle (docs/physics.md; FastPM's
/// force), on a periodic mesh:
///   counts = paint_CIC(x),  delta_k = (N_cells / N_p) r2c(counts)  (the mean drops out at k = 0),
///   phi_k = -S(k) (3/2 Omega_m) delta_k / |k|_L^2          (mesh/fourier_kernels.hpp),
///   F_d = -D_d phi on the mesh,  F_d(x_p) = readout_CIC(F_d)(x_p),
/// with the gradient D, Laplacian L and smoothing S chosen in `kernel`. A finite-difference
/// gradient (the default) is applied in real space (mesh/finite_difference.hpp; unless
/// kernel.real_space_gradient is false): one r2c and one c2r per call, and the memory is one
/// half-complex and two real meshes (phi and one force component at a time). The exact
/// gradient i k needs the spectrum: F_d,k = i g_d S (3/2 Omega_m) delta_k / |k|_L^2, one r2c
/// and three c2r, one real and two half-complex meshes. Both forms are the same operator up to
/// rounding (tests/nbody/test_pm_force.cpp); in real space each component costs a stencil
/// pass (~1/5 of an FFT) instead of an FFT.
///
/// Each particle has mass 1 / N_p of the box (its mean density is 1), where N_p is the number
/// of particles the mean density is made of: by default those passed in, or a fixed count set
/// in the constructor when a call sees only some of them.
///
/// Backend: Cpu (this class) or Cuda (nbody/pm_force_device.hpp: the same force on device
/// memory).
template <class T, class Backend = Cpu>
class PmForce;

template <class T>
class PmForce<T, Cpu> {
 public:
  PmForce(const mesh::Grid& grid, mesh::ForceKernelOptions kernel = {}, std::size_t mean_count = 0,
          int threads = max_threads())
      : PmForce(std::make_shared<const FftPlan<T>>(grid, threads), kernel, mean_count) {}

  /// On a shared FFT plan (its grid is the force mesh; out-of-place packed, the default layout,
  /// else InvalidArgument). A force whose bits must repeat, such as
  /// the forward and the reverse pass of the exact integrator (nbody/reversible.hpp), must run
  /// on one plan object: a second plan of the same size can compute other bits once the process
  /// holds FFTW wisdom (backend/cpu/fft.hpp, "Determinism").
  PmForce(std::shared_ptr<const FftPlan<T>> plan, mesh::ForceKernelOptions kernel = {},
          std::size_t mean_count = 0)
      : plan_(std::move(plan)),
        points_(require_plan(plan_, "PmForce").grid()),
        kernel_(kernel),
        mean_count_(mean_count),
        stencil_(kernel.real_space_gradient && mesh::has_real_space_stencil(kernel.gradient)),
        real_(plan_->grid()),
        k_(plan_->grid()) {
    if (plan_->layout() != FftLayout::out_of_place_packed) {
      throw InvalidArgument(std::string("PmForce: the FFT plan has the ") +
                            to_string(plan_->layout()) +
                            " layout; the force transforms its own fields, which need an "
                            "out-of-place packed plan");
    }
    if (stencil_) {
      scratch_ = mesh::RealField<T>(grid());
    } else {
      work_k_ = mesh::ComplexField<T>(grid());
    }
  }

  const mesh::Grid& grid() const { return plan_->grid(); }
  const FftPlan<T>& plan() const { return *plan_; }
  const std::shared_ptr<const FftPlan<T>>& shared_plan() const { return plan_; }
  ForceTimings timings;

  /// F_p = F(x_p) for matter density Omega_m, positions x in Mpc/h (anywhere: the mesh wraps
  /// them), written into the caller's memory (F.size == x.size). Views let the caller's own
  /// particle layout (struct of arrays, or the coordinates inside its particle struct) be used
  /// without copies (particles/particles.hpp).
  void operator()(particles::Vec3View<const T> x, double Omega_m, particles::Vec3View<T> F) {
    check_omega(Omega_m);
    check_size(F.size, x.size, "forces");
    density_spectrum(x);
    prepare_force_meshes(Omega_m);
    for (int d = 0; d < 3; ++d) read_force(d, force_mesh(d, Omega_m), &F, nullptr, nullptr);
    points_.clear();
    x_ = {};
  }
  /// The same on diffpm's containers; F is resized to x.size().
  void operator()(const particles::Positions<T>& x, double Omega_m, particles::Positions<T>& F) {
    F.resize(x.size());
    (*this)(particles::view(x), Omega_m, particles::view(F));
  }

  /// Vector-Jacobian product: given F_bar = dL/dF, accumulates x_bar += (dF/dx)^T F_bar and
  /// returns dL/dOmega_m = <F_bar, F> / Omega_m (F is linear in Omega_m). Two terms
  /// (docs/physics.md, "Adjoint of the leapfrog"): (1) the readout weights move with x:
  /// x_bar_p += sum_d F_bar_p,d grad(readout of F_d mesh)(x_p); (2) through the mesh: paint the
  /// components of F_bar (readout^T), apply the transposed kernels (conj K, same scaling), sum
  /// into one density adjoint, and read its gradient at x_p (paint^T with respect to x).
  /// The forward meshes are recomputed here, so nothing is stored between the two passes, and
  /// the adjoint needs no mesh beyond the force's own: term (2) does not need the force meshes,
  /// so it runs after term (1) in the same fields. With a finite-difference gradient, term (2)
  /// is delta_bar = phi-kernel(sum_d D_d paint(F_bar_d)) ((-D_d)^T = D_d and the potential
  /// kernel is real), the stencils applied in real space and summed before one r2c: 4 FFTs in
  /// all (the force's r2c and c2r, then one r2c and one c2r), three stencil passes for the force
  /// and three for the adjoint. With the exact gradient it applies the transposed Fourier kernel
  /// to each painted component: 8 FFTs (the force's 4, three r2c and one c2r). Both make one
  /// fused readout-and-gradient pass per component, three weighted paints and one paint adjoint,
  /// all from one bucketing of x (particles::CicPlan).
  double adjoint(particles::Vec3View<const T> x, double Omega_m, particles::Vec3View<const T> F_bar,
                 particles::Vec3View<T> x_bar) {
    return adjoint_impl(x, Omega_m, F_bar, x_bar, nullptr);
  }
  /// The same on diffpm's containers; an empty x_bar is first made zeros of x's size.
  double adjoint(const particles::Positions<T>& x, double Omega_m,
                 const particles::Positions<T>& F_bar, particles::Positions<T>& x_bar) {
    prepare_accumulator(x_bar, x.size());
    return adjoint(particles::view(x), Omega_m, particles::view(F_bar), particles::view(x_bar));
  }

  /// The force and the vector-Jacobian product in one pass: F = F(x) (bit for bit what
  /// operator() gives) and x_bar += (dF/dx)^T F_bar, returning dL/dOmega_m. The adjoint reads
  /// out the force meshes anyway, so the force costs nothing extra (the reverse pass of the
  /// integrator needs both at every step boundary: nbody/reversible.hpp).
  double value_and_adjoint(particles::Vec3View<const T> x, double Omega_m,
                           particles::Vec3View<const T> F_bar, particles::Vec3View<T> F,
                           particles::Vec3View<T> x_bar) {
    check_size(F.size, x.size, "forces");
    return adjoint_impl(x, Omega_m, F_bar, x_bar, &F);
  }
  /// The same on diffpm's containers (F resized; an empty x_bar made zeros).
  double value_and_adjoint(const particles::Positions<T>& x, double Omega_m,
                           const particles::Positions<T>& F_bar, particles::Positions<T>& F,
                           particles::Positions<T>& x_bar) {
    F.resize(x.size());
    prepare_accumulator(x_bar, x.size());
    return value_and_adjoint(particles::view(x), Omega_m, particles::view(F_bar),
                             particles::view(F), particles::view(x_bar));
  }

 private:
  double adjoint_impl(particles::Vec3View<const T> x, double Omega_m,
                      particles::Vec3View<const T> F_bar, particles::Vec3View<T> x_bar,
                      particles::Vec3View<T>* F_out) {
    check_omega(Omega_m);
    check_size(F_bar.size, x.size, "force adjoints");
    check_size(x_bar.size, x.size, "position adjoints (x_bar)");
    density_spectrum(x);
    prepare_force_meshes(Omega_m);  // real space: phi; spectral: k_ stays, force_mesh() reads it
    double omega_bar = 0.0;
    // (1) readout weights, one fused pass per component: x_bar += F_bar_d grad F_d(x) and
    // <F_bar_d, F_d> for Omega_m; the value is F_d itself (kept when F_out is given), from the
    // readout operator() runs.
    for (int d = 0; d < 3; ++d)
      omega_bar += read_force(d, force_mesh(d, Omega_m), F_out, &F_bar, &x_bar) / Omega_m;
    // (2) through the mesh: readout^T (paint of F_bar_d, from the points the density paint
    // bucketed), then the transposed kernel, summed over d into k_; the force meshes are no
    // longer needed, so no extra mesh is allocated.
    auto paint_component = [&](int d, mesh::RealField<T>& target) {
      const auto t0 = clock::now();
      points_.paint(F_bar.component[d], F_bar.stride, target);
      timings.paint += seconds_since(t0);
    };
    auto mode = [](int d) {
      return d == 0 ? mesh::OutputMode::overwrite : mesh::OutputMode::accumulate;
    };
    if (stencil_) {
      // real_ (phi is done with) collects sum_d (-D_d)^T paint(F_bar_d), which goes through the
      // potential kernel (its own transpose) after one r2c.
      for (int d = 0; d < 3; ++d) {
        paint_component(d, scratch_);
        const auto t0 = clock::now();
        mesh::apply_difference_adjoint(scratch_, d, kernel_.gradient, -1.0, real_, mode(d));
        timings.kernels += seconds_since(t0);
      }
      auto t0 = clock::now();
      plan_->forward(real_, k_);
      timings.fft += seconds_since(t0);
      t0 = clock::now();
      mesh::apply_potential_kernel_adjoint(k_, kernel_, Omega_m, scale(x.size), k_);
      timings.kernels += seconds_since(t0);
    } else {
      for (int d = 0; d < 3; ++d) {
        paint_component(d, real_);
        auto t0 = clock::now();
        plan_->forward(real_, work_k_);
        timings.fft += seconds_since(t0);
        t0 = clock::now();
        mesh::apply_force_kernel_adjoint(work_k_, d, kernel_, Omega_m, scale(x.size), k_, mode(d));
        timings.kernels += seconds_since(t0);
      }
    }
    auto t0 = clock::now();
    plan_->inverse_destroying_input(k_, real_);  // dL/dcounts
    timings.fft += seconds_since(t0);
    t0 = clock::now();
    points_.paint_adjoint(real_, T(1), x_bar);
    timings.paint += seconds_since(t0);
    points_.clear();
    x_ = {};
    return omega_bar;
  }

  /// The one readout of a force mesh, for operator() and both adjoints: F_p,d = F_d(x_p) (F may
  /// be null with F_bar), and with F_bar also x_bar_p += F_bar_p,d grad F_d(x_p), returning
  /// <F_bar_d, F_d>. Both passes of the exact integrator undo each other's kicks with these
  /// values, so they must be the same bits whatever the caller asks for: one routine computes
  /// them in every case (particles::detail::interpolate, with or
  /// without the gradient).
  double read_force(int d, const mesh::RealField<T>& mesh, particles::Vec3View<T>* F,
                    const particles::Vec3View<const T>* F_bar, particles::Vec3View<T>* x_bar) {
    const auto t0 = clock::now();
    double dot = 0.0;
    // Packed triples everywhere (diffpm's containers): plain array indexing, no run-time
    // strides (the same arithmetic, so the same bits).
    const auto* xp = particles::packed(x_);
    const Packed<T> Fp{F ? particles::packed(*F) : nullptr};
    if (F_bar) {
      const Packed<const T> fbp{particles::packed(*F_bar)};
      const Packed<T> xbp{particles::packed(*x_bar)};
      if (xp && (!F || Fp.a) && fbp.a && xbp.a) {
        dot = read_force_loop(d, mesh, Packed<const T>{xp}, F ? &Fp : nullptr, fbp, xbp, true);
      } else {
        dot = read_force_loop(d, mesh, x_, F, *F_bar, *x_bar, true);
      }
    } else if (xp && Fp.a) {
      read_force_loop(d, mesh, Packed<const T>{xp}, &Fp, Packed<const T>{}, Packed<T>{}, false);
    } else {
      read_force_loop(d, mesh, x_, F, particles::Vec3View<const T>{}, particles::Vec3View<T>{},
                      false);
    }
    timings.readout += seconds_since(t0);
    return dot;
  }

  /// Packed triples accessed as (particle, component), like a Vec3View.
  template <class U>
  struct Packed {
    using Triple = std::conditional_t<std::is_const_v<U>, const std::array<T, 3>, std::array<T, 3>>;
    Triple* a = nullptr;
    U& operator()(std::size_t i, int e) const { return a[i][e]; }
  };

  /// read_force's loop over accessors X (positions), F (forces; null: none), Fb and Xb (the
  /// adjoints; read only when has_adjoint). In particle order rather than the plan's bucket
  /// order: particles stay near their lattice order, so the mesh reads keep their locality and
  /// the writes stream (bucket order was slower: docs/benchmarks.md). The same bits in every
  /// order and layout.
  template <class X, class Fo, class Fb, class Xb>
  double read_force_loop(int d, const mesh::RealField<T>& mesh, const X x, const Fo* F,
                         const Fb F_bar, const Xb x_bar, bool has_adjoint) const {
    const T* m = mesh.data.data();
    const auto g = particles::detail::cic_geometry<T>(grid());
    const std::ptrdiff_t n = std::ptrdiff_t(x_.size);
    double dot = 0.0;
    if (has_adjoint) {
      // <F_bar_d, F_d> with the same bits for any thread count (core/deterministic_sum.hpp).
      dot = deterministic_sum(n, [&](std::ptrdiff_t p) {
        const std::size_t i = std::size_t(p);
        const T xi[3] = {x(i, 0), x(i, 1), x(i, 2)};
        T value, grad[3];
        particles::detail::interpolate<true>(m, xi, g, value, grad);
        if (F) (*F)(i, d) = value;
        const T f = F_bar(i, d);
        for (int e = 0; e < 3; ++e) x_bar(i, e) += f * grad[e];
        return double(f) * double(value);
      });
    } else {
      DIFFPM_OMP(omp parallel for schedule(static))
      for (std::ptrdiff_t p = 0; p < n; ++p) {
        const std::size_t i = std::size_t(p);
        const T xi[3] = {x(i, 0), x(i, 1), x(i, 2)};
        particles::detail::interpolate<false>(m, xi, g, (*F)(i, d), nullptr);
      }
    }
    return dot;
  }

  using clock = std::chrono::steady_clock;
  static double seconds_since(clock::time_point t0) {
    return std::chrono::duration<double>(clock::now() - t0).count();
  }

  void check_omega(double Omega_m) const {
    if (!(Omega_m > 0.0) || !std::isfinite(Omega_m)) {
      throw InvalidArgument("PmForce: Omega_m = " + format_number(Omega_m) +
                            " (must be finite and > 0)");
    }
  }

  /// Throws unless n (of `what`: "forces", "force adjoints", ...) matches the particle count.
  static void check_size(std::size_t n, std::size_t particles, const char* what) {
    if (n != particles) {
      throw InvalidArgument("PmForce: " + std::to_string(n) + " " + what + " for " +
                            std::to_string(particles) + " particles");
    }
  }
  /// An accumulated container output: zeros of size n if empty (else check_size decides).
  static void prepare_accumulator(particles::Positions<T>& v, std::size_t n) {
    if (v.empty()) v.assign(n, {T(0), T(0), T(0)});
  }

  /// 1/N_p: the (N_cells / N_p) of the overdensity times the 1/N_cells of the c2r.
  double scale(std::size_t n_particles) const {
    const std::size_t np = mean_count_ ? mean_count_ : n_particles;
    if (np == 0) throw InvalidArgument("PmForce: no particles to set the mean density");
    return 1.0 / double(np);
  }

  /// Buckets x into points_ (kept for the adjoint's component paints) and paints the counts.
  void density_spectrum(particles::Vec3View<const T> x) {
    x_ = x;  // the caller's positions, read again by read_force during this call
    auto t0 = clock::now();
    points_.set_points(x);
    points_.paint(real_);
    timings.paint += seconds_since(t0);
    t0 = clock::now();
    plan_->forward(real_, k_);
    timings.fft += seconds_since(t0);
    last_count_ = x.size;
  }

  /// Real-space gradient: real_ = phi from k_ (the counts spectrum, consumed). Spectral: nothing
  /// (each component is computed from k_, which stays).
  void prepare_force_meshes(double Omega_m) {
    if (!stencil_) return;
    auto t0 = clock::now();
    mesh::apply_potential_kernel(k_, kernel_, Omega_m, scale(last_count_), k_);
    timings.kernels += seconds_since(t0);
    t0 = clock::now();
    plan_->inverse_destroying_input(k_, real_);
    timings.fft += seconds_since(t0);
  }

  /// The mesh of F_d: scratch_ = -D_d phi (real-space gradient) or real_ = c2r of the force
  /// kernel times k_ (spectral). Valid until the next call.
  const mesh::RealField<T>& force_mesh(int d, double Omega_m) {
    auto t0 = clock::now();
    if (stencil_) {
      mesh::apply_difference(real_, d, kernel_.gradient, -1.0, scratch_);
      timings.kernels += seconds_since(t0);
      return scratch_;
    }
    mesh::apply_force_kernel(k_, d, kernel_, Omega_m, scale(last_count_), work_k_);
    timings.kernels += seconds_since(t0);
    t0 = clock::now();
    plan_->inverse_destroying_input(work_k_, real_);
    timings.fft += seconds_since(t0);
    return real_;
  }

  std::shared_ptr<const FftPlan<T>> plan_;
  particles::CicPlan<T> points_;      ///< the positions of the current call, bucketed once
  particles::Vec3View<const T> x_{};  ///< the current call's positions (caller's memory)
  mesh::ForceKernelOptions kernel_;
  std::size_t mean_count_ = 0, last_count_ = 0;
  bool stencil_ = true;  // finite-difference gradient: applied in real space
  // real_: painted counts, then phi (stencil) or F_d (spectral), then the adjoint's sums;
  // scratch_ (stencil only): F_d, then the painted F_bar_d; k_: the spectrum; work_k_
  // (spectral only): F_d,k and the adjoint components' spectra.
  mesh::RealField<T> real_, scratch_;
  mesh::ComplexField<T> k_, work_k_;
};

}  // namespace diffpm::nbody
