/// \file
/// \brief Gauss-Legendre nodes and weights on [-1, 1], computed once per order.
#pragma once

#include <cmath>
#include <utility>
#include <vector>

namespace diffpm::cosmology::detail {

/// Nodes and weights of the n-point Gauss-Legendre rule on [-1, 1] (exact for polynomials of
/// degree 2n-1). Newton iteration on P_n from the Tricomi initial guess, to machine precision
/// (Golub & Welsch give the same nodes; this is the standard recurrence route).
struct GaussLegendre {
  std::vector<double> nodes;
  std::vector<double> weights;

  explicit GaussLegendre(int n) : nodes(n), weights(n) {
    const double pi = 3.14159265358979323846;
    // P_n(x) and P_n'(x) by the three-term recurrence.
    auto legendre = [n](double x, double& dp) {
      double p0 = 1.0, p1 = x;
      for (int k = 2; k <= n; ++k) {
        const double p2 = ((2.0 * k - 1.0) * x * p1 - (k - 1.0) * p0) / k;
        p0 = p1;
        p1 = p2;
      }
      dp = n * (x * p1 - p0) / (x * x - 1.0);
      return p1;
    };
    for (int i = 0; i < n; ++i) {
      double x = std::cos(pi * (i + 0.75) / (n + 0.5));
      double dp = 0.0;
      for (int iter = 0; iter < 100; ++iter) {
        const double dx = legendre(x, dp) / dp;
        x -= dx;
        if (std::abs(dx) < 1e-16) break;
      }
      legendre(x, dp);       // the derivative at the converged node, for the weight
      nodes[n - 1 - i] = x;  // ascending order
      weights[n - 1 - i] = 2.0 / ((1.0 - x * x) * dp * dp);
    }
  }
};

}  // namespace diffpm::cosmology::detail
