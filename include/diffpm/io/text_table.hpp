/// \file
/// \brief Reading whitespace-separated numeric tables (P(k) from CLASS or CAMB, n(z) files).
#pragma once

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "diffpm/core/error.hpp"

namespace diffpm::io {

/// Reads the first `columns` numbers of every line of a text file into columns. Blank lines and
/// lines starting with '#' are skipped; extra columns are ignored (CLASS and CAMB files carry
/// several). Throws IoError if the file cannot be opened, and InvalidArgument naming the file,
/// line and text if a line has fewer numbers or a value that is not a finite number.
inline std::vector<std::vector<double>> read_text_columns(const std::string& path, int columns) {
  std::ifstream in(path);
  if (!in) throw IoError("cannot open '" + path + "' for reading");
  std::vector<std::vector<double>> out(columns);
  std::string line;
  int line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    std::istringstream fields(line);
    for (int c = 0; c < columns; ++c) {
      std::string token;
      fields >> token;
      std::size_t used = 0;
      double v = NAN;
      try {
        v = std::stod(token, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (token.empty() || used != token.size() || !std::isfinite(v)) {
        throw InvalidArgument("'" + path + "' line " + std::to_string(line_number) + ": column " +
                              std::to_string(c + 1) + " is '" + token +
                              "', expected a finite number (" + std::to_string(columns) +
                              " columns needed)");
      }
      out[c].push_back(v);
    }
  }
  if (in.bad()) throw IoError("error while reading '" + path + "'");
  return out;
}

}  // namespace diffpm::io
