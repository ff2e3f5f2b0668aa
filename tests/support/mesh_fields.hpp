/// \file
/// \brief Test helpers for mesh fields: random fields, dot products, relative errors.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "diffpm/mesh/field.hpp"

namespace diffpm::test {

/// A field of independent standard normal values (mt19937_64 seeded with `seed`).
template <class T>
mesh::RealField<T> random_field(const mesh::Grid& g, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  mesh::RealField<T> f(g);
  for (auto& v : f.data) v = static_cast<T>(normal(rng));
  return f;
}

/// n independent standard normal values (mt19937_64 seeded with `seed`), rounded to T.
template <class T>
std::vector<T> random_vector(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> d(0.0, 1.0);
  std::vector<T> v(n);
  for (auto& x : v) x = T(d(rng));
  return v;
}

/// sum_i a_i b_i, accumulated in double.
template <class T>
double dot(const mesh::RealField<T>& a, const mesh::RealField<T>& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += double(a.data[i]) * double(b.data[i]);
  return s;
}

/// max |a - b| / max |b|
template <class T>
double max_relative(const mesh::RealField<T>& a, const std::vector<double>& b) {
  double err = 0.0, scale = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, std::abs(double(a.data[i]) - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return err / scale;
}

/// The values of a field in double.
template <class T>
std::vector<double> to_double(const mesh::RealField<T>& f) {
  return std::vector<double>(f.data.begin(), f.data.end());
}

}  // namespace diffpm::test
