/// \file
/// \brief FftPlan<T, Cuda>: the device backend's 3D real FFTs, with the layout, sign and
/// normalisation of the CPU plan (backend/cpu/fft.hpp, docs/conventions.md).
///
/// forward: unnormalised r2c with e^{-ikx}; inverse_destroying_input: unnormalised c2r with
/// e^{+ikx} that may overwrite its input. Out-of-place and packed: the real mesh n_x n_y n_z,
/// the half spectrum n_x n_y (n_z/2 + 1), both row-major with z fastest, in device memory.
/// CUDA: cuFFT (R2C/C2R, D2Z/Z2D), whose forward transform also uses e^{-ikx} and which does
/// not normalise either. OMP emulation: FFTW, through the CPU plan, on the device buffers
/// (host memory there), so the emulated path gives the CPU's bits.
#pragma once

#include <memory>
#include <string>

#include "diffpm/backend/cpu/fft.hpp"
#include "diffpm/backend/device/memory.hpp"
#include "diffpm/backend/device/system.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/mesh/grid.hpp"
#include "diffpm/mesh/view.hpp"

#if defined(DIFFPM_DEVICE_CUDA)
#include <cufft.h>
#endif

namespace diffpm {

template <class T>
class FftPlan<T, Cuda> {
 public:
  explicit FftPlan(const mesh::Grid& grid) : grid_(grid) {
    grid.validate();
#if defined(DIFFPM_DEVICE_CUDA)
    constexpr cufftType r2c = std::is_same_v<T, float> ? CUFFT_R2C : CUFFT_D2Z;
    constexpr cufftType c2r = std::is_same_v<T, float> ? CUFFT_C2R : CUFFT_Z2D;
    check(cufftPlan3d(&forward_, grid.n[0], grid.n[1], grid.n[2], r2c), "cufftPlan3d (r2c)");
    const cufftResult e = cufftPlan3d(&inverse_, grid.n[0], grid.n[1], grid.n[2], c2r);
    if (e != CUFFT_SUCCESS) {
      cufftDestroy(forward_);
      check(e, "cufftPlan3d (c2r)");
    }
#else
    cpu_ = std::make_unique<FftPlan<T, Cpu> >(grid);
#endif
  }
  FftPlan(const FftPlan&) = delete;
  FftPlan& operator=(const FftPlan&) = delete;
  ~FftPlan() {
#if defined(DIFFPM_DEVICE_CUDA)
    cufftDestroy(forward_);
    cufftDestroy(inverse_);
#endif
  }

  const mesh::Grid& grid() const { return grid_; }

  /// out = r2c(in), both packed views of device memory on the plan's grid.
  void forward(mesh::RealView<const T> in, mesh::ComplexView<T> out) const {
    check_views(in, out, "forward");
#if defined(DIFFPM_DEVICE_CUDA)
    if constexpr (std::is_same_v<T, float>) {
      check(cufftExecR2C(forward_, const_cast<float*>(in.data),
                         reinterpret_cast<cufftComplex*>(out.data)),
            "cufftExecR2C");
    } else {
      check(cufftExecD2Z(forward_, const_cast<double*>(in.data),
                         reinterpret_cast<cufftDoubleComplex*>(out.data)),
            "cufftExecD2Z");
    }
#else
    cpu_->forward(in, out);
#endif
  }

  /// out = c2r(in); `in` may be overwritten.
  void inverse_destroying_input(mesh::ComplexView<T> in, mesh::RealView<T> out) const {
    check_views(mesh::RealView<const T>(out), in, "inverse");
#if defined(DIFFPM_DEVICE_CUDA)
    if constexpr (std::is_same_v<T, float>) {
      check(cufftExecC2R(inverse_, reinterpret_cast<cufftComplex*>(in.data), out.data),
            "cufftExecC2R");
    } else {
      check(cufftExecZ2D(inverse_, reinterpret_cast<cufftDoubleComplex*>(in.data), out.data),
            "cufftExecZ2D");
    }
#else
    cpu_->inverse_destroying_input(in, out);
#endif
  }

 private:
  template <class R, class C>
  void check_views(const mesh::RealView<R>& r, const mesh::ComplexView<C>& c,
                   const char* what) const {
    if (r.grid != grid_ || c.grid != grid_) {
      throw InvalidArgument(std::string("device FFT ") + what + ": views on " + r.grid.to_string() +
                            " / " + c.grid.to_string() + ", plan on " + grid_.to_string());
    }
    if (!r.is_packed() || !c.is_packed()) {
      throw InvalidArgument(std::string("device FFT ") + what +
                            ": the device plan transforms packed views only");
    }
    if (static_cast<const void*>(r.data) == static_cast<const void*>(c.data)) {
      throw InvalidArgument(std::string("device FFT ") + what +
                            ": the device plan is out of place; the real and complex views "
                            "share memory");
    }
  }

#if defined(DIFFPM_DEVICE_CUDA)
  static void check(cufftResult e, const char* what) {
    if (e != CUFFT_SUCCESS) {
      throw DeviceError(std::string(what) + " failed with cufftResult " + std::to_string(int(e)));
    }
  }
  cufftHandle forward_ = 0, inverse_ = 0;
#else
  std::unique_ptr<FftPlan<T, Cpu> > cpu_;
#endif
  mesh::Grid grid_;
};

}  // namespace diffpm
