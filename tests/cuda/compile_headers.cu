// A build check, not a test: nvcc compiles every public header (and what they include: Eigen,
// FFTW, the standard library), and instantiates the per-element DIFFPM_HOST_DEVICE functions
// (CIC weights, Fourier symbols, the Philox white noise) in device code for float and double.
// A failure is a build error. diffpm has no device backend yet, so nothing here runs.
#include <diffpm/diffpm.hpp>

namespace {

template <class T>
__global__ void per_element_functions(const T* x, T* out, int n,
                                      diffpm::particles::detail::CicGeometry<T> g) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= n) return;
  std::size_t index[8];
  T weight[8], dweight[3][8];
  diffpm::particles::detail::cic_stencil(x + 3 * i, g, index, weight);
  diffpm::particles::detail::cic_stencil_gradient(x + 3 * i, g, index, weight, dweight);
  const T k = x[3 * i];
  const T symbol = diffpm::mesh::gradient_symbol(k, T(0.5), false,
                                                 diffpm::mesh::GradientKernel::finite_difference_4);
  out[i] = weight[0] + dweight[1][2] + symbol +
           T(diffpm::ic::white_noise_value(42u, static_cast<std::uint64_t>(i)));
}

}  // namespace

// Host-side launchers make nvcc emit the kernels for both precisions.
void diffpm_nvcc_check_float(const float* x, float* out, int n,
                             diffpm::particles::detail::CicGeometry<float> g) {
  per_element_functions<<<(n + 127) / 128, 128>>>(x, out, n, g);
}
void diffpm_nvcc_check_double(const double* x, double* out, int n,
                              diffpm::particles::detail::CicGeometry<double> g) {
  per_element_functions<<<(n + 127) / 128, 128>>>(x, out, n, g);
}
