/// \file
/// \brief Reading a cosmology table (a, E, D1, D2, f1, f2, chi per row, e.g. written from CLASS,
/// CAMB or an N-body code's own tables) from a text file into a cosmology::TabulatedCosmology.
/// Needs no external library, so it is part of the core umbrella <diffpm/diffpm.hpp>.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "diffpm/cosmology/power_table.hpp"
#include "diffpm/cosmology/tabulated.hpp"
#include "diffpm/io/text_table.hpp"

namespace diffpm::io {

/// Reads the seven columns a, E = H/H0, D1, D2, f1 = dln D1/dln a, f2 = dln D2/dln a and
/// chi [Mpc/h] of a text file, one row per scale factor in increasing order (blank lines and
/// lines starting with '#' skipped, exactly seven columns), into a TabulatedCosmology with the
/// given Omega_m, Omega_k and z = 0 linear P(k) (null: none, see CosmologyTable::power), whose
/// errors name the file. The conventions of each column are CosmologyTable's (D2 < 0, the last
/// row at a = 1). Throws IoError if the file cannot be read, InvalidArgument for a malformed
/// line or a table TabulatedCosmology refuses (naming the data row, counted from 1 without
/// comments, and its a).
inline cosmology::TabulatedCosmology read_cosmology_table(
    const std::string& path, double Omega_m, double Omega_k = 0.0,
    std::shared_ptr<const cosmology::PowerTable> power = nullptr) {
  TextTable text = read_text_table(path, 7, true);
  cosmology::CosmologyTable t;
  t.a = std::move(text.columns[0]);
  t.E = std::move(text.columns[1]);
  t.D1 = std::move(text.columns[2]);
  t.D2 = std::move(text.columns[3]);
  t.f1 = std::move(text.columns[4]);
  t.f2 = std::move(text.columns[5]);
  t.chi = std::move(text.columns[6]);
  t.Omega_m = Omega_m;
  t.Omega_k = Omega_k;
  t.power = std::move(power);
  t.origin = "cosmology file '" + path + "'";
  return cosmology::TabulatedCosmology(t);
}

}  // namespace diffpm::io
