/// \file
/// \brief Source redshift distributions n(z) for lensing: a fixed redshift, Smail, Gaussian and
/// tabulated (histogram) forms, normalised to unit integral.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "diffpm/core/error.hpp"
#include "diffpm/cosmology/detail/gauss_legendre.hpp"

namespace diffpm::lensing {

/// The redshift distribution of the sources of one lensing map or tomographic bin, n(z) with
/// int n dz = 1. It lives in redshift and does not depend on the cosmology; LensingEfficiency
/// maps it to comoving distance for each cosmology, so its chi moves with the parameters.
///
/// Forms (factories below):
/// - `fixed(z)`: all sources at one redshift, n = delta(z - z_s).
/// - `smail(alpha, beta, z0)`: n ~ z^alpha exp(-(z/z0)^beta) (Smail, Ellis & Fitchett 1994, MNRAS
///   270, 245), z >= 0.
/// - `gaussian(mean, sigma)`: n ~ exp(-(z - mean)^2 / (2 sigma^2)) on z >= 0 (CCL's "analytic"
///   benchmark bins are gaussian(1.0, 0.15) and gaussian(1.5, 0.15)).
/// - `histogram(z, n)`: n tabulated at nodes z_i, linearly interpolated between them and zero
///   outside [z_0, z_last] (the convention of CCL's "histo" benchmark,
///   tests/reference/ccl/README.md). io::read_source_distribution(path)
///   (io/redshift_distribution_file.hpp) reads one from a two-column text file.
///
/// The analytic forms are cut where their tail no longer matters: the Gaussian at
/// mean +- 9 sigma (density exp(-40.5) ~ 3e-18 of the peak there, ~1e-19 of the mass beyond),
/// Smail where the remaining integral falls below ~1e-14. Each is normalised by the same
/// Gauss-Legendre rule that LensingEfficiency integrates with, so its q(0) = 1 to rounding.
class SourceDistribution {
 public:
  /// Gauss-Legendre nodes per panel of `panel_edges()`: 8 nodes integrate a degree-15
  /// polynomial exactly. Panels are narrow (sigma/2 for a Gaussian, a histogram bin), so
  /// n(z) times any smooth function of chi(z) is integrated to ~1e-12.
  static constexpr int quadrature_order = 8;

  /// All sources at redshift z (> 0).
  static SourceDistribution fixed(double z) {
    if (!(z > 0.0) || !std::isfinite(z)) {
      throw InvalidArgument("source redshift z = " + format_number(z) +
                            " (must be finite and > 0)");
    }
    SourceDistribution d(Kind::delta, "z=" + format_number(z));
    d.z_source_ = z;
    d.edges_ = {z, z};
    return d;
  }

  /// Smail et al. (1994) n(z) ~ z^alpha exp(-(z/z0)^beta), alpha >= 0, beta > 0, z0 > 0.
  static SourceDistribution smail(double alpha, double beta, double z0) {
    if (!(alpha >= 0.0) || !std::isfinite(alpha)) {
      throw InvalidArgument("Smail n(z): alpha = " + format_number(alpha) +
                            " (must be finite and >= 0)");
    }
    if (!(beta > 0.0) || !std::isfinite(beta)) {
      throw InvalidArgument("Smail n(z): beta = " + format_number(beta) +
                            " (must be finite and > 0)");
    }
    if (!(z0 > 0.0) || !std::isfinite(z0)) {
      throw InvalidArgument("Smail n(z): z0 = " + format_number(z0) + " (must be finite and > 0)");
    }
    SourceDistribution d(Kind::smail, "nz=smail(alpha=" + format_number(alpha) + ",beta=" +
                                          format_number(beta) + ",z0=" + format_number(z0) + ")");
    d.p0_ = alpha;
    d.p1_ = beta;
    d.p2_ = z0;
    // Cut at t = (z/z0)^beta where the tail int_t^inf e^-s s^(m-1) ds ~ e^-t t^(m-1),
    // m = (alpha+1)/beta, is below e^-32 ~ 1e-14 (times 1/Gamma(m) <= 1.13 of the total).
    const double m = (alpha + 1.0) / beta;
    double t = 32.0;
    for (int i = 0; i < 50; ++i) t = 32.0 + std::max(0.0, (m - 1.0) * std::log(t));
    const double z_max = z0 * std::pow(t, 1.0 / beta);
    // Panels of width <= z0/4, graded geometrically towards z = 0, where z^alpha with
    // non-integer alpha is not smooth (each halving keeps Gauss-Legendre accurate there).
    std::vector<double> edges = {0.0};
    for (int k = 16; k >= 1; --k) edges.push_back(0.25 * z0 * std::ldexp(1.0, -k));
    const double start = 0.25 * z0;
    const int n = static_cast<int>(std::ceil((z_max - start) / (0.25 * z0)));
    for (int i = 0; i <= n; ++i) edges.push_back(start + (z_max - start) * i / n);
    d.edges_ = std::move(edges);
    d.normalise();
    return d;
  }

  /// Gaussian n(z) ~ exp(-(z - mean)^2 / (2 sigma^2)), truncated to z >= 0 and renormalised.
  static SourceDistribution gaussian(double mean, double sigma) {
    if (!std::isfinite(mean)) {
      throw InvalidArgument("Gaussian n(z): mean = " + format_number(mean) + " (must be finite)");
    }
    if (!(sigma > 0.0) || !std::isfinite(sigma)) {
      throw InvalidArgument("Gaussian n(z): sigma = " + format_number(sigma) +
                            " (must be finite and > 0)");
    }
    const double lo = std::max(0.0, mean - 9.0 * sigma), hi = mean + 9.0 * sigma;
    if (!(hi > 0.0)) {
      throw InvalidArgument("Gaussian n(z): mean = " + format_number(mean) +
                            ", sigma = " + format_number(sigma) + " put no sources at z > 0");
    }
    SourceDistribution d(Kind::gaussian, "nz=gaussian(mean=" + format_number(mean) +
                                             ",sigma=" + format_number(sigma) + ")");
    d.p0_ = mean;
    d.p1_ = sigma;
    const int n = std::max(1, static_cast<int>(std::ceil((hi - lo) / (0.5 * sigma))));
    for (int i = 0; i <= n; ++i) d.edges_.push_back(lo + (hi - lo) * i / n);
    d.normalise();
    return d;
  }

  /// n tabulated at increasing redshifts z (>= 0), linearly interpolated, zero outside
  /// [z.front(), z.back()]. n >= 0 with a positive integral; it is normalised here.
  /// `description` names the table in FITS headers ("nz=table(N nodes)" if empty).
  static SourceDistribution histogram(std::vector<double> z, std::vector<double> n,
                                      std::string description = "") {
    if (z.size() != n.size()) {
      throw InvalidArgument("n(z) table: " + std::to_string(z.size()) + " redshifts but " +
                            std::to_string(n.size()) + " values");
    }
    std::vector<int> lines(z.size());
    for (std::size_t i = 0; i < z.size(); ++i) lines[i] = static_cast<int>(i) + 1;
    if (description.empty()) description = "nz=table(" + std::to_string(z.size()) + " nodes)";
    return make_table(std::move(z), std::move(n), lines, "n(z) table row", std::move(description));
  }

  /// histogram(z, n, description) for a table read from a file: the error about row i names
  /// `where` and `lines[i]`, the line it came from (where = "n(z) file 'nz.txt' line" gives
  /// "n(z) file 'nz.txt' line 7: ..."). io::read_source_distribution
  /// (io/redshift_distribution_file.hpp) builds its distributions with this.
  static SourceDistribution histogram(std::vector<double> z, std::vector<double> n,
                                      std::string description, const std::vector<int>& lines,
                                      const std::string& where) {
    if (z.size() != n.size() || lines.size() != z.size()) {
      throw InvalidArgument(where + ": " + std::to_string(z.size()) + " redshifts, " +
                            std::to_string(n.size()) + " values and " +
                            std::to_string(lines.size()) + " line numbers");
    }
    return make_table(std::move(z), std::move(n), lines, where, std::move(description));
  }

  bool is_delta() const { return kind_ == Kind::delta; }

  /// The redshift of a fixed-source distribution; throws InvalidArgument for the others.
  double source_redshift() const {
    if (!is_delta()) {
      throw InvalidArgument("source_redshift(): '" + description_ +
                            "' is a distribution, not a fixed source redshift");
    }
    return z_source_;
  }

  /// Range outside which n = 0 (for a fixed source both are its redshift).
  double z_min() const { return edges_.front(); }
  double z_max() const { return edges_.back(); }

  /// The normalised n(z) (per unit redshift). Throws InvalidArgument for a fixed source
  /// redshift, whose n is a delta function.
  double operator()(double z) const {
    if (is_delta()) {
      throw InvalidArgument("n(z) of '" + description_ +
                            "' is a delta function; use source_redshift()");
    }
    return norm_ * unnormalised(z);
  }

  /// Short text for FITS headers and logs: "z=1", "nz=bin1_histo.txt", "nz=smail(...)".
  const std::string& description() const { return description_; }

  /// Edges z_0 < ... < z_P of panels on each of which n(z) is smooth (histogram nodes, or
  /// panels narrow against the analytic form's scale); integrate with quadrature_order nodes.
  const std::vector<double>& panel_edges() const { return edges_; }

 private:
  enum class Kind { delta, smail, gaussian, histogram };

  SourceDistribution(Kind kind, std::string description)
      : kind_(kind), description_(std::move(description)) {}

  double unnormalised(double z) const {
    switch (kind_) {
      case Kind::delta:
        return 0.0;
      case Kind::smail:
        if (!(z >= 0.0) || z > edges_.back()) return 0.0;
        return std::pow(z, p0_) * std::exp(-std::pow(z / p2_, p1_));
      case Kind::gaussian: {
        if (z < edges_.front() || z > edges_.back()) return 0.0;
        const double u = (z - p0_) / p1_;
        return std::exp(-0.5 * u * u);
      }
      case Kind::histogram: {
        if (!(z >= edges_.front() && z <= edges_.back())) return 0.0;
        auto it = std::upper_bound(edges_.begin(), edges_.end(), z);
        std::size_t i = static_cast<std::size_t>(it - edges_.begin());
        i = std::min(std::max<std::size_t>(i, 1), edges_.size() - 1) - 1;
        const double t = (z - edges_[i]) / (edges_[i + 1] - edges_[i]);
        return (1.0 - t) * values_[i] + t * values_[i + 1];
      }
    }
    return 0.0;
  }

  // Integral of the unnormalised n with the panels' Gauss-Legendre rule (exact for the
  // piecewise-linear histogram), so that the normalised n integrates to 1 under the same rule.
  void normalise() {
    const cosmology::detail::GaussLegendre gl(quadrature_order);
    double sum = 0.0;
    for (std::size_t p = 0; p + 1 < edges_.size(); ++p) {
      const double a = edges_[p], b = edges_[p + 1], half = 0.5 * (b - a);
      for (int j = 0; j < quadrature_order; ++j)
        sum += half * gl.weights[j] * unnormalised(a + half * (1.0 + gl.nodes[j]));
    }
    if (!(sum > 0.0) || !std::isfinite(sum)) {
      throw InvalidArgument("'" + description_ + "': n(z) integrates to " + format_number(sum) +
                            " (must be > 0 and finite)");
    }
    norm_ = 1.0 / sum;
  }

  // `where` + line number prefixes each error, e.g. "n(z) file 'x' line 7".
  static SourceDistribution make_table(std::vector<double> z, std::vector<double> n,
                                       const std::vector<int>& lines, const std::string& where,
                                       std::string description) {
    if (z.size() < 2) {
      throw InvalidArgument(description + ": n(z) needs at least 2 rows, got " +
                            std::to_string(z.size()));
    }
    for (std::size_t i = 0; i < z.size(); ++i) {
      const std::string at = where + " " + std::to_string(lines[i]) + ": ";
      if (!std::isfinite(z[i]) || !std::isfinite(n[i])) {
        throw InvalidArgument(at + "z = " + format_number(z[i]) + ", n = " + format_number(n[i]) +
                              " (must be finite)");
      }
      if (z[i] < 0.0) throw InvalidArgument(at + "z = " + format_number(z[i]) + " (must be >= 0)");
      if (n[i] < 0.0) throw InvalidArgument(at + "n = " + format_number(n[i]) + " (must be >= 0)");
      if (i > 0 && !(z[i] > z[i - 1])) {
        throw InvalidArgument(at + "z = " + format_number(z[i]) +
                              " does not increase (previous z = " + format_number(z[i - 1]) + ")");
      }
    }
    SourceDistribution d(Kind::histogram, std::move(description));
    d.edges_ = std::move(z);
    d.values_ = std::move(n);
    d.normalise();
    return d;
  }

  Kind kind_;
  std::string description_;
  double z_source_ = 0.0;
  double p0_ = 0.0, p1_ = 0.0, p2_ = 0.0;  // Smail alpha, beta, z0; Gaussian mean, sigma
  double norm_ = 1.0;
  std::vector<double> edges_;   // panel edges (histogram: its nodes)
  std::vector<double> values_;  // histogram: unnormalised n at the nodes
};

}  // namespace diffpm::lensing
