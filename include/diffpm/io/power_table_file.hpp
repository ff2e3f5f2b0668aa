/// \file
/// \brief Reading a tabulated linear P(k) (e.g. from CLASS or CAMB) from a text file into a
/// cosmology::PowerTable. Needs no external library, so it is part of the core umbrella
/// <diffpm/diffpm.hpp>.
#pragma once

#include <string>
#include <utility>

#include "diffpm/cosmology/power_table.hpp"
#include "diffpm/io/text_table.hpp"

namespace diffpm::io {

/// Reads the first two columns k [h/Mpc], P [(Mpc/h)^3] of a text file (read_text_columns:
/// blank lines and lines starting with '#' skipped, further columns ignored) into a PowerTable
/// whose errors name the file. Throws IoError if the file cannot be read, InvalidArgument for a
/// malformed line or a table PowerTable refuses.
inline cosmology::PowerTable read_power_table(const std::string& path) {
  auto cols = read_text_columns(path, 2);
  return cosmology::PowerTable(std::move(cols[0]), std::move(cols[1]), "P(k) file '" + path + "'");
}

}  // namespace diffpm::io
