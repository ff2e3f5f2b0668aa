/// \file
/// \brief FFTW3 plans for real-to-complex and complex-to-real 3D transforms (float, double).
#pragma once

#include <fftw3.h>

#include <array>
#include <complex>
#include <cstddef>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "diffpm/backend/tags.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/core/openmp.hpp"
#include "diffpm/mesh/field.hpp"
#include "diffpm/mesh/view.hpp"

namespace diffpm {

namespace detail {
/// FFTW's planner is not thread-safe (FFTW manual, "Thread safety"): every plan creation and
/// destruction in diffpm takes this lock. It only orders diffpm's own calls; a host program
/// that plans on other threads is covered by fftw_make_planner_thread_safe(), which
/// Fftw<T>::init_threads calls once per precision (FFTW >= 3.3.5).
inline std::mutex& fftw_planner_mutex() {
  static std::mutex m;
  return m;
}

/// The fftw_ (double) and fftwf_ (float) APIs behind one name; other types fail to compile.
template <class T>
struct Fftw;

template <>
struct Fftw<double> {
  using plan = fftw_plan;
  using complex = fftw_complex;
  static void init_threads() {
    static std::once_flag once;
    std::call_once(once, [] {
      fftw_init_threads();
      fftw_make_planner_thread_safe();
    });
  }
  static int planner_nthreads() { return fftw_planner_nthreads(); }
  static void plan_with_nthreads(int n) { fftw_plan_with_nthreads(n); }
  static void* malloc(std::size_t bytes) { return fftw_malloc(bytes); }
  static void free(void* p) { fftw_free(p); }
  static plan r2c(const int* n, double* in, complex* out, unsigned flags) {
    return fftw_plan_dft_r2c(3, n, in, out, flags);
  }
  static plan c2r(const int* n, complex* in, double* out, unsigned flags) {
    return fftw_plan_dft_c2r(3, n, in, out, flags);
  }
  /// One 3D transform through the advanced interface, with explicit row lengths of the real
  /// (inembed / onembed) and complex arrays: FFTW's padded in-place layout.
  static plan r2c_embedded(const int* n, double* in, const int* real_embed, complex* out,
                           const int* complex_embed, unsigned flags) {
    return fftw_plan_many_dft_r2c(3, n, 1, in, real_embed, 1, 0, out, complex_embed, 1, 0, flags);
  }
  static plan c2r_embedded(const int* n, complex* in, const int* complex_embed, double* out,
                           const int* real_embed, unsigned flags) {
    return fftw_plan_many_dft_c2r(3, n, 1, in, complex_embed, 1, 0, out, real_embed, 1, 0, flags);
  }
  static int alignment_of(const double* p) { return fftw_alignment_of(const_cast<double*>(p)); }
  static void execute_r2c(plan p, double* in, complex* out) { fftw_execute_dft_r2c(p, in, out); }
  static void execute_c2r(plan p, complex* in, double* out) { fftw_execute_dft_c2r(p, in, out); }
  static void destroy(plan p) { fftw_destroy_plan(p); }
};

template <>
struct Fftw<float> {
  using plan = fftwf_plan;
  using complex = fftwf_complex;
  static void init_threads() {
    static std::once_flag once;
    std::call_once(once, [] {
      fftwf_init_threads();
      fftwf_make_planner_thread_safe();
    });
  }
  static int planner_nthreads() { return fftwf_planner_nthreads(); }
  static void plan_with_nthreads(int n) { fftwf_plan_with_nthreads(n); }
  static void* malloc(std::size_t bytes) { return fftwf_malloc(bytes); }
  static void free(void* p) { fftwf_free(p); }
  static plan r2c(const int* n, float* in, complex* out, unsigned flags) {
    return fftwf_plan_dft_r2c(3, n, in, out, flags);
  }
  static plan c2r(const int* n, complex* in, float* out, unsigned flags) {
    return fftwf_plan_dft_c2r(3, n, in, out, flags);
  }
  /// One 3D transform through the advanced interface, with explicit row lengths of the real
  /// (inembed / onembed) and complex arrays: FFTW's padded in-place layout.
  static plan r2c_embedded(const int* n, float* in, const int* real_embed, complex* out,
                           const int* complex_embed, unsigned flags) {
    return fftwf_plan_many_dft_r2c(3, n, 1, in, real_embed, 1, 0, out, complex_embed, 1, 0, flags);
  }
  static plan c2r_embedded(const int* n, complex* in, const int* complex_embed, float* out,
                           const int* real_embed, unsigned flags) {
    return fftwf_plan_many_dft_c2r(3, n, 1, in, complex_embed, 1, 0, out, real_embed, 1, 0, flags);
  }
  static int alignment_of(const float* p) { return fftwf_alignment_of(const_cast<float*>(p)); }
  static void execute_r2c(plan p, float* in, complex* out) { fftwf_execute_dft_r2c(p, in, out); }
  static void execute_c2r(plan p, complex* in, float* out) { fftwf_execute_dft_c2r(p, in, out); }
  static void destroy(plan p) { fftwf_destroy_plan(p); }
};
}  // namespace detail

/// The memory layout an FftPlan is made for. FFTW's new-array execute interface (FFTW manual,
/// "New-array Execute Functions") runs a plan only on arrays with the layout, the in-place-ness
/// and the SIMD alignment it was planned with, so a plan has one layout and checks every call.
enum class FftLayout {
  /// The real mesh and its half spectrum in two separate packed arrays (RealField and
  /// ComplexField, or packed views): the default.
  out_of_place_packed,
  /// FFTW's padded in-place r2c layout: one buffer of n_x n_y 2 (n_z/2 + 1) T whose real mesh has
  /// rows of 2 (n_z/2 + 1) T and whose half spectrum is packed (mesh::padded_in_place).
  in_place_padded
};

inline const char* to_string(FftLayout layout) {
  return layout == FftLayout::in_place_padded ? "in-place padded" : "out-of-place packed";
}

/// FFT plans for one Grid, precision and memory layout, made once and reused at every step.
///
/// forward: the unnormalised DFT with e^{-ikx} (docs/conventions.md); inverse: the unnormalised
/// DFT with e^{+ikx}, so inverse(forward(x)) = N x. The caller applies 1/N where the
/// conventions need it (usually folded into a Fourier-space kernel).
///
/// Layout. A plan transforms views (mesh/view.hpp) with its FftLayout: out_of_place_packed
/// (the default; RealField and ComplexField are such arrays) or in_place_padded (the two views
/// mesh::padded_in_place makes of one buffer). Both arrays must be as aligned as fftw_malloc's
/// memory (fftw_alignment_of = 0; every field is). A call whose views are on another grid, have
/// another layout, are (or are not) the same buffer when the plan is out-of-place (in-place),
/// or are misaligned throws InvalidArgument naming what differs: FFTW would otherwise compute
/// garbage or crash. FFTW does not promise that the two layouts run the same codelets, so their
/// results are only guaranteed to agree to rounding (tests/mesh/test_view.cpp; with FFTW 3.3.10
/// and FFTW_ESTIMATE they were bitwise equal on every grid tried).
///
/// Determinism. Plans use FFTW_ESTIMATE: FFTW_MEASURE may choose a different algorithm from one
/// run to the next, and then the same seed would not give bitwise the same result. FFTW_ESTIMATE
/// still uses any wisdom the process holds (FFTW manual, "Planner Flags"), so two plans of one
/// size made before and after a host program imports wisdom, or plans that size with
/// FFTW_MEASURE, may compute different bits. Whatever must be bitwise the same twice (the
/// forward and reverse pass of the exact integrator) executes one plan object: share it through
/// std::shared_ptr (Lpt, PmForce and model::ForwardModel do). The thread count is fixed when the
/// plan is made (default: the OpenMP thread count).
///
/// FFTW's global state is left as found: the planner's thread count (fftw_plan_with_nthreads)
/// is restored after planning, so a host program's own plans are not affected.
template <class T, class Backend = Cpu>
class FftPlan;

template <class T>
class FftPlan<T, Cpu> {
  using F = detail::Fftw<T>;
  using C = typename F::complex;

 public:
  explicit FftPlan(const mesh::Grid& grid, int threads = max_threads())
      : FftPlan(grid, FftLayout::out_of_place_packed, threads) {}

  FftPlan(const mesh::Grid& grid, FftLayout layout, int threads = max_threads())
      : grid_(grid), layout_(layout) {
    grid.validate();
    if (layout != FftLayout::out_of_place_packed && layout != FftLayout::in_place_padded) {
      throw InvalidArgument("FFT plan: layout = " + std::to_string(static_cast<int>(layout)) +
                            " is not an FftLayout");
    }
    const bool in_place = layout == FftLayout::in_place_padded;
    // FFTW_ESTIMATE neither reads nor writes the arrays, but needs their alignment: plan on
    // fftw_malloc'd buffers (the alignment of every field, mesh/field.hpp) that are never
    // touched, so no page of them is committed.
    const std::size_t real_bytes = grid.size() * sizeof(T);
    const std::size_t complex_bytes = grid.complex_size() * 2 * sizeof(T);
    struct Buffer {
      void* p;
      ~Buffer() { F::free(p); }
    } r{in_place ? nullptr : F::malloc(real_bytes)}, c{F::malloc(complex_bytes)};
    if ((!in_place && !r.p) || !c.p) {
      throw FftError("FFT plan: cannot allocate " +
                     std::to_string(((in_place ? 0 : real_bytes) + complex_bytes) >> 20) +
                     " MiB to plan the FFT of " + grid.to_string());
    }
    const std::lock_guard<std::mutex> lock(detail::fftw_planner_mutex());
    F::init_threads();
    const int host_threads = F::planner_nthreads();
    F::plan_with_nthreads(threads > 0 ? threads : 1);
    if (in_place) {
      // One buffer (the complex array's size is the padded real one's); its real rows hold
      // 2 (n_z/2 + 1) T, its complex rows n_z/2 + 1: FFTW's in-place r2c layout, spelled out
      // through the advanced interface's embed arguments.
      const int real_embed[3] = {grid.n[0], grid.n[1], 2 * grid.complex_nz()};
      const int complex_embed[3] = {grid.n[0], grid.n[1], grid.complex_nz()};
      T* real = static_cast<T*>(c.p);
      C* spectrum = static_cast<C*>(c.p);
      r2c_ =
          F::r2c_embedded(grid.n.data(), real, real_embed, spectrum, complex_embed, FFTW_ESTIMATE);
      c2r_ =
          F::c2r_embedded(grid.n.data(), spectrum, complex_embed, real, real_embed, FFTW_ESTIMATE);
    } else {
      r2c_ = F::r2c(grid.n.data(), static_cast<T*>(r.p), static_cast<C*>(c.p), FFTW_ESTIMATE);
      c2r_ = F::c2r(grid.n.data(), static_cast<C*>(c.p), static_cast<T*>(r.p), FFTW_ESTIMATE);
    }
    F::plan_with_nthreads(host_threads);
    if (!r2c_ || !c2r_) {
      if (r2c_) F::destroy(r2c_);
      if (c2r_) F::destroy(c2r_);
      throw FftError("FFTW could not make a " + std::string(to_string(layout)) + " plan for " +
                     grid.to_string());
    }
  }
  FftPlan(const FftPlan&) = delete;
  FftPlan& operator=(const FftPlan&) = delete;
  ~FftPlan() {
    const std::lock_guard<std::mutex> lock(detail::fftw_planner_mutex());
    F::destroy(r2c_);
    F::destroy(c2r_);
  }

  const mesh::Grid& grid() const { return grid_; }
  FftLayout layout() const { return layout_; }

  /// out = DFT(in) on the half spectrum. Out of place, `in` is preserved (FFTW's out-of-place
  /// r2c does not write its input, FFTW manual, "Planner Flags"); in place, `in` and `out` are
  /// the two views of one buffer and the spectrum replaces the mesh.
  void forward(mesh::RealView<const T> in, mesh::ComplexView<T> out) const {
    check_pair(in, out, "forward input", "forward output");
    F::execute_r2c(r2c_, const_cast<T*>(in.data), reinterpret_cast<C*>(out.data));
  }
  void forward(const mesh::RealField<T>& in, mesh::ComplexField<T>& out) const {
    forward(mesh::view(in), mesh::view(out));
  }

  /// out = unnormalised inverse DFT of the half spectrum `in`. FFTW's multi-dimensional c2r
  /// overwrites its input (FFTW_PRESERVE_INPUT is not available for it), so `in` is taken as
  /// scratch and left undefined, out of place as in place (where it is `out`'s buffer anyway).
  void inverse_destroying_input(mesh::ComplexView<T> in, mesh::RealView<T> out) const {
    check_pair(out, in, "inverse output", "inverse input");
    F::execute_c2r(c2r_, reinterpret_cast<C*>(in.data), out.data);
  }
  void inverse_destroying_input(mesh::ComplexField<T>& in, mesh::RealField<T>& out) const {
    inverse_destroying_input(mesh::view(in), mesh::view(out));
  }

 private:
  static std::string strides(const std::array<std::ptrdiff_t, 3>& s) {
    return std::to_string(s[0]) + ", " + std::to_string(s[1]) + ", " + std::to_string(s[2]);
  }

  /// Throws InvalidArgument naming the view and what differs unless the real view `r` and the
  /// complex view `c` are what the plan was made for.
  template <class R, class Cx>
  void check_pair(const mesh::RealView<R>& r, const mesh::ComplexView<Cx>& c, const char* r_name,
                  const char* c_name) const {
    // Messages are built only on failure: every transform checks its views.
    const auto plan = [this] { return std::string("FFT plan (") + to_string(layout_) + ")"; };
    check_one(r, r_name);
    check_one(c, c_name);
    const bool in_place = layout_ == FftLayout::in_place_padded;
    const bool real_ok = in_place ? mesh::is_padded_in_place(r) : r.is_packed();
    if (!real_ok) {
      const auto expected = in_place ? mesh::padded_in_place(r.data, grid_).real.stride
                                     : mesh::packed(r.data, grid_).stride;
      throw InvalidArgument(plan() + ": " + r_name + " has strides " + strides(r.stride) +
                            ", the plan's layout needs " + strides(expected));
    }
    if (!c.is_packed()) {
      throw InvalidArgument(plan() + ": " + c_name + " has strides " + strides(c.stride) +
                            ", the plan's layout needs " + strides(c.packed_strides()));
    }
    const auto* rb = reinterpret_cast<const unsigned char*>(r.data);
    const auto* cb = reinterpret_cast<const unsigned char*>(c.data);
    if (in_place && rb != cb) {
      throw InvalidArgument(plan() + ": " + r_name + " and " + c_name +
                            " are different buffers; an in-place plan needs the two views of "
                            "one buffer (mesh::padded_in_place)");
    }
    if (!in_place) {
      const std::size_t r_bytes = r.span() * sizeof(T), c_bytes = c.span() * 2 * sizeof(T);
      if (rb < cb + c_bytes && cb < rb + r_bytes) {
        throw InvalidArgument(plan() + ": " + r_name + " and " + c_name +
                              " overlap; an out-of-place plan needs two separate arrays");
      }
    }
  }

  template <class V, bool Complex>
  void check_one(const mesh::MeshView<V, Complex>& v, const char* name) const {
    if (v.grid != grid_) {
      throw InvalidArgument(std::string("FFT plan: ") + name + " is on another mesh (" +
                            v.grid.to_string() + ", the plan's is " + grid_.to_string() + ")");
    }
    mesh::check_view(v, "FFT plan", name);
    const int a = F::alignment_of(reinterpret_cast<const T*>(v.data));
    if (a != 0) {
      throw InvalidArgument(std::string("FFT plan: ") + name + " is " + std::to_string(a) +
                            " bytes off the SIMD alignment the plan was made with (that of "
                            "fftw_malloc, which every field has)");
    }
  }

  mesh::Grid grid_;
  FftLayout layout_;
  typename F::plan r2c_ = nullptr;
  typename F::plan c2r_ = nullptr;
};

/// The plan behind a shared handle; throws InvalidArgument naming `who` if there is none.
template <class T>
const FftPlan<T>& require_plan(const std::shared_ptr<const FftPlan<T>>& plan, const char* who) {
  if (!plan) throw InvalidArgument(std::string(who) + ": no FFT plan (null shared_ptr)");
  return *plan;
}

}  // namespace diffpm
