// Real-space central differences (mesh/finite_difference.hpp): the same operators as the Fourier
// finite-difference gradient kernels on every mesh shape, including axes of 2-5 cells where the
// 4-point stencil wraps onto itself; exact transposes by the dot-product test; accumulation;
// input validation.
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <string>

#include "diffpm/backend/cpu/fft.hpp"
#include "diffpm/mesh/finite_difference.hpp"
#include "diffpm/mesh/fourier_kernels.hpp"
#include "support/mesh_fields.hpp"

namespace {

using diffpm::FftPlan;
using diffpm::InvalidArgument;
using diffpm::mesh::ComplexField;
using diffpm::mesh::GradientKernel;
using diffpm::mesh::Grid;
using diffpm::mesh::OutputMode;
using diffpm::mesh::RealField;
using diffpm::test::dot;
using diffpm::test::max_relative;
using diffpm::test::random_field;
using diffpm::test::to_double;

// Even sides on all axes; odd and even mixed; axes short enough that the 4-point stencil's
// +-2 neighbours wrap (2 cells: +2 is the cell itself; 3 cells: +2 is -1).
const Grid grids[] = {Grid({16, 12, 20}, {100.0, 75.0, 125.0}),
                      Grid({9, 10, 7}, {90.0, 50.0, 77.0}), Grid({2, 3, 4}, {10.0, 30.0, 20.0}),
                      Grid({5, 2, 3}, {25.0, 8.0, 33.0})};
const GradientKernel kinds[] = {GradientKernel::finite_difference_2,
                                GradientKernel::finite_difference_4};

template <class T>
struct Tolerance;
template <>
struct Tolerance<double> {
  // The Fourier side carries FFT round-off ~ eps log2(N) relative to the largest value (observed
  // <= 5e-16), the stencil a few ulps: 1e-12 leaves decades without hiding a wrong factor.
  static constexpr double same_operator = 1e-12;
  // The brief's bound for double dot-product tests.
  static constexpr double adjoint = 1e-10;
};
template <>
struct Tolerance<float> {
  // Float FFTs add a few 1e-7 relative to the largest value (observed 2.3e-7).
  static constexpr double same_operator = 1e-5;
  // Both sides in float, the dot products accumulated in double (observed ~1e-8).
  static constexpr double adjoint = 1e-6;
};

std::string text(const Grid& g) {
  return std::to_string(g.n[0]) + "x" + std::to_string(g.n[1]) + "x" + std::to_string(g.n[2]);
}

}  // namespace

TEMPLATE_TEST_CASE("real-space differences are the Fourier finite-difference gradient kernels",
                   "[mesh][finite_difference]", float, double) {
  using T = TestType;
  const double s = -0.7;  // any scale, here with the force's sign
  for (const Grid& g : grids) {
    const FftPlan<T> plan(g, 1);
    const RealField<T> v = random_field<T>(g, 5);
    for (const auto kind : kinds)
      for (int d = 0; d < 3; ++d) {
        INFO(text(g) << ", kind " << int(kind) << ", axis " << d);
        ComplexField<T> vk(g);
        plan.forward(v, vk);
        diffpm::mesh::apply_gradient(vk, d, kind, s * diffpm::mesh::inverse_fft_scale(g), vk);
        RealField<T> fourier(g);
        plan.inverse_destroying_input(vk, fourier);

        RealField<T> real_space;  // unallocated: overwrite allocates it
        diffpm::mesh::apply_difference(v, d, kind, s, real_space);
        if (g.n[d] == 2) {
          // Only the zero and Nyquist modes: both operators are exactly 0 (f(+1) = f(-1)).
          CHECK(dot(real_space, real_space) == 0.0);
          CHECK(dot(fourier, fourier) == 0.0);
        } else {
          const double err = max_relative(real_space, to_double(fourier));
          INFO("max relative error " << err);
          CHECK(err < Tolerance<T>::same_operator);
        }

        // Accumulate adds exactly the overwrite's values.
        RealField<T> sum = random_field<T>(g, 9);
        const RealField<T> before = sum;
        diffpm::mesh::apply_difference(v, d, kind, s, sum, OutputMode::accumulate);
        bool exact = true;
        for (std::size_t c = 0; c < g.size(); ++c)
          exact = exact && sum.data[c] == T(before.data[c] + real_space.data[c]);
        CHECK(exact);
      }
  }
}

TEMPLATE_TEST_CASE("real-space differences pass the dot-product test <D v, w> = <v, D^T w>",
                   "[mesh][finite_difference][adjoint]", float, double) {
  using T = TestType;
  for (const Grid& g : grids) {
    const RealField<T> v = random_field<T>(g, 1), w = random_field<T>(g, 2);
    for (const auto kind : kinds)
      for (int d = 0; d < 3; ++d) {
        if (g.n[d] == 2) continue;  // D = 0 there (previous test)
        RealField<T> dv(g), dtw(g);
        diffpm::mesh::apply_difference(v, d, kind, 1.3, dv);
        diffpm::mesh::apply_difference_adjoint(w, d, kind, 1.3, dtw);
        const double lhs = dot(dv, w), rhs = dot(v, dtw);
        const double bound =
            std::max(std::sqrt(dot(dv, dv) * dot(w, w)), std::sqrt(dot(v, v) * dot(dtw, dtw)));
        INFO(text(g) << ", kind " << int(kind) << ", axis " << d << ": <Dv,w> = " << lhs
                     << ", <v,D^T w> = " << rhs);
        REQUIRE(bound > 0.0);
        CHECK(std::abs(lhs - rhs) / bound < Tolerance<T>::adjoint);
      }
  }
}

TEST_CASE("real-space differences reject bad input, naming the value",
          "[mesh][finite_difference]") {
  using diffpm::mesh::apply_difference;
  const Grid g = grids[0];
  RealField<double> in(g), out(g), other(grids[1]);
  auto check_message = [](const std::function<void()>& f, const std::string& message) {
    CHECK_THROWS_AS(f(), InvalidArgument);
    CHECK_THROWS_WITH(f(), Catch::Contains(message));
  };
  check_message([&] { apply_difference(in, 0, GradientKernel::exact, 1.0, out); },
                "gradient kernel = 0 has no real-space stencil");
  check_message([&] { apply_difference(in, 3, GradientKernel::finite_difference_4, 1.0, out); },
                "axis = 3");
  check_message([&] { apply_difference(in, 0, GradientKernel::finite_difference_4, NAN, out); },
                "scale = nan");
  check_message([&] { apply_difference(in, 1, GradientKernel::finite_difference_2, 1.0, in); },
                "output is the input");
  check_message(
      [&] {
        apply_difference(in, 2, GradientKernel::finite_difference_4, 1.0, other,
                         OutputMode::accumulate);
      },
      "9x10x7");
  // Overwrite re-allocates a field on another mesh instead of writing past its end.
  apply_difference(in, 2, GradientKernel::finite_difference_4, 1.0, other);
  CHECK(other.allocated_on(g));
}
