/// \file
/// \brief The scale factors at which a PM simulation steps: linear or logarithmic in a.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "diffpm/core/error.hpp"

namespace diffpm::nbody {

enum class StepSpacing { linear, logarithmic };

/// n_steps + 1 scale factors from a_start to a_end (both included, exactly), equally spaced in a
/// (FastPM's default) or in ln a. Throws InvalidArgument naming the value unless
/// 0 < a_start < a_end <= 1 and n_steps >= 1.
inline std::vector<double> time_steps(double a_start, double a_end, int n_steps,
                                      StepSpacing spacing = StepSpacing::linear) {
  if (!(a_start > 0.0) || !std::isfinite(a_start)) {
    throw InvalidArgument("a_start = " + format_number(a_start) + " (must be > 0)");
  }
  if (!(a_end > a_start) || !(a_end <= 1.0)) {
    throw InvalidArgument("a_end = " + format_number(a_end) +
                          " (must be in (a_start = " + format_number(a_start) + ", 1])");
  }
  if (n_steps < 1) throw InvalidArgument("steps = " + std::to_string(n_steps) + " (must be >= 1)");
  std::vector<double> a(n_steps + 1);
  for (int i = 0; i <= n_steps; ++i) {
    const double s = double(i) / n_steps;
    a[i] = spacing == StepSpacing::linear
               ? a_start + (a_end - a_start) * s
               : std::exp(std::log(a_start) + (std::log(a_end) - std::log(a_start)) * s);
  }
  a.front() = a_start;
  a.back() = a_end;
  return a;
}

}  // namespace diffpm::nbody
