/// \file
/// \brief Test helpers: reading reference tables and the CCL benchmark cosmologies.
#pragma once

#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "diffpm/cosmology/parameters.hpp"

#ifndef DIFFPM_TEST_DATA_DIR
#error "DIFFPM_TEST_DATA_DIR must point to tests/reference"
#endif

namespace diffpm::test {

/// Rows of numbers from tests/reference/<name>; '#' lines skipped. A missing file is a test
/// failure (throws), never a silent skip: these tables are the references the accuracy claims
/// rest on.
inline std::vector<std::vector<double>> load_reference(const std::string& name) {
  const std::string path = std::string(DIFFPM_TEST_DATA_DIR) + "/" + name;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("reference table not found: " + path);
  std::vector<std::vector<double>> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::vector<double> row;
    double v;
    while (fields >> v) row.push_back(v);
    if (!row.empty()) rows.push_back(row);
  }
  if (rows.empty()) throw std::runtime_error("reference table is empty: " + path);
  return rows;
}

/// CCL's CosmoMAD models 1-5 (CCL paper CCL1-CCL5; tests/reference/ccl/README.md): no
/// radiation, Omega_c = 0.25, Omega_b = 0.05, h = 0.7, n_s = 0.96, sigma8 = 0.8 and
/// (Omega_k, w0, wa) = (0,-1,0), (0,-0.9,0), (0,-0.9,0.1), (0.05,-0.9,0.1), (-0.05,-0.9,0.1).
inline cosmology::Parameters<double> ccl_model(int m) {
  if (m < 1 || m > 5) throw std::invalid_argument("CCL model index must be 1..5");
  const double ok[] = {0.0, 0.0, 0.0, 0.05, -0.05};
  const double w0[] = {-1.0, -0.9, -0.9, -0.9, -0.9};
  const double wa[] = {0.0, 0.0, 0.1, 0.1, 0.1};
  cosmology::Parameters<double> p;
  p.Omega_c = 0.25;
  p.Omega_b = 0.05;
  p.h = 0.7;
  p.n_s = 0.96;
  p.sigma8 = 0.8;
  p.Omega_k = ok[m - 1];
  p.w0 = w0[m - 1];
  p.wa = wa[m - 1];
  p.radiation = false;
  p.T_CMB = 2.725;
  return p;
}

/// The same models as CLASS ran them for CCL's distance benchmarks: photons at T_CMB = 2.725 K
/// and N_eff = 3.046 massless neutrinos, dark energy closing the budget.
inline cosmology::Parameters<double> ccl_class_model(int m) {
  auto p = ccl_model(m);
  p.radiation = true;
  p.T_CMB = 2.725;
  p.N_eff = 3.046;
  return p;
}

/// Largest |x/ref - 1| accumulated by a test loop.
/// A NaN anywhere makes the result NaN, which fails any `<` comparison.
struct MaxRelative {
  void add(double x, double ref) {
    const double r = std::abs(x / ref - 1.0);
    if (std::isnan(r)) nan_seen_ = true;
    if (r > worst_) worst_ = r;
  }
  double value() const { return nan_seen_ ? NAN : worst_; }

 private:
  double worst_ = 0.0;
  bool nan_seen_ = false;
};

}  // namespace diffpm::test
