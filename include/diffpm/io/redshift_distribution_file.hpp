/// \file
/// \brief Reading a tabulated source redshift distribution n(z) from a text file into a
/// lensing::SourceDistribution. Needs no external library, so it is part of the core umbrella
/// <diffpm/diffpm.hpp>.
#pragma once

#include <string>
#include <utility>

#include "diffpm/io/text_table.hpp"
#include "diffpm/lensing/redshift_distribution.hpp"

namespace diffpm::io {

/// Reads a two-column text file `z n(z)` (blank lines and lines starting with '#' skipped;
/// further columns are an error) into SourceDistribution::histogram, described as "nz=" and the
/// file's name in FITS headers. Throws IoError if it cannot be read, InvalidArgument naming the
/// line for a malformed row, a negative n, a non-increasing z, and for a zero integral.
inline lensing::SourceDistribution read_source_distribution(const std::string& path) {
  auto t = read_text_table(path, 2, /*exact=*/true);
  const auto slash = path.find_last_of('/');
  const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  return lensing::SourceDistribution::histogram(std::move(t.columns[0]), std::move(t.columns[1]),
                                                "nz=" + name, t.lines,
                                                "n(z) file '" + path + "' line");
}

}  // namespace diffpm::io
