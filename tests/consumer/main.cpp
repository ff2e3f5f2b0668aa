// A downstream program built against the core target diffpm::diffpm as a user would, under the
// consumer's own compiler flags (the consumer_* tests build it with CMake's defaults, -std=gnu++17,
// and one of them adds -O3 -march=native). It exercises the link line and what those flags could
// break:
//  - CIC painting and an FFT (OpenMP and FFTW, float and double): the k = 0 mode is the mass;
//  - the exact gradient: a strongly nonlinear model run (30 steps from a = 0.02) and its
//    gradient in reverse mode (which checks after the reverse pass that the initial state was
//    rebuilt bit for bit, and throws otherwise) and in store mode, which must agree bit for bit.
// Exit code 0 when every check holds, 1 otherwise.
#include <cmath>
#include <cstdio>
#include <diffpm/diffpm.hpp>
#include <exception>

// The core umbrella header needs neither cfitsio nor zlib (those are diffpm::io's).
#if defined(_FITSIO_H) || defined(ZLIB_H)
#error "<diffpm/diffpm.hpp> pulled in cfitsio or zlib"
#endif
#include <iostream>
#include <vector>

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  std::cout << (ok ? "ok   " : "FAIL ") << what << "\n";
  if (!ok) ++failures;
}

template <class T>
void paint_and_fft(const char* name) {
  const diffpm::mesh::Grid grid = diffpm::mesh::Grid::cube(16, 32.0);
  diffpm::particles::Positions<T> x;
  for (int i = 0; i < 1000; ++i)
    x.push_back({T(0.37 * i), T(std::fmod(1.3 * i * i, 32.0)), T(31.99 - 0.031 * i)});
  diffpm::mesh::RealField<T> mesh(grid);
  diffpm::particles::paint_cic(x, mesh);
  diffpm::FftPlan<T> plan(grid);
  diffpm::mesh::ComplexField<T> k(grid);
  plan.forward(mesh, k);
  std::cout << name << ": ";
  check(std::fabs(double(k.data[0].real()) - 1000.0) < 1e-2, "painted mass is the k = 0 mode");
}

template <class T>
diffpm::model::ModelConfig nonlinear_config(diffpm::nbody::AdjointMode mode) {
  diffpm::model::ModelConfig c;
  auto& s = c.simulation;
  s.box = {24.0, 24.0, 24.0};
  s.particles = {12, 12, 12};
  s.mesh = {24, 24, 24};
  s.a_start = 0.02;
  s.a_end = 1.0;
  s.steps = 30;
  c.final_density = true;
  c.adjoint = mode;
  return c;
}

template <class T>
void exact_gradient(const char* name) {
  auto run = [](diffpm::nbody::AdjointMode mode) {
    diffpm::model::ModelConfig cfg = nonlinear_config<T>(mode);
    diffpm::model::ForwardModel<T> model(cfg);
    const diffpm::cosmology::Parameters<double> params;
    const auto& out = model.forward(params, model.white_noise(11));
    diffpm::mesh::RealField<T> density_bar = out.density;  // L = |delta|^2 / 2
    return model.gradient({}, density_bar);
  };
  const auto reverse = run(diffpm::nbody::AdjointMode::reverse);  // throws if not exact
  const auto store = run(diffpm::nbody::AdjointMode::store);
  bool same = reverse.noise.data == store.noise.data;
  for (int i = 0; i < diffpm::cosmology::n_parameters; ++i)
    same = same && reverse.parameters[i] == store.parameters[i];
  std::cout << name << ": ";
  check(same, "reverse-mode gradient equals the stored-trajectory gradient bit for bit");
}

}  // namespace

int main() {
  try {
    paint_and_fft<float>("float");
    paint_and_fft<double>("double");
    exact_gradient<float>("float");
    exact_gradient<double>("double");
  } catch (const std::exception& e) {
    std::cout << "FAIL exception: " << e.what() << "\n";
    return 1;
  }
  std::cout << (failures == 0 ? "OK\n" : "FAILED\n");
  return failures == 0 ? 0 : 1;
}
