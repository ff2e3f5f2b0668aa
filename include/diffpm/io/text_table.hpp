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

/// The numeric columns of a text file and the (1-based) line each row came from.
struct TextTable {
  std::vector<std::vector<double>> columns;
  std::vector<int> lines;
};

/// Reads the first `columns` numbers of every line of a text file. Blank lines and lines
/// starting with '#' are skipped. Extra columns are ignored (CLASS and CAMB files carry several)
/// unless `exact` is true, when they are an error. Throws IoError if the file cannot be opened
/// or read, and InvalidArgument naming the file, line and text if a line has too few (or, when
/// exact, too many) numbers or a value that is not a finite number.
inline TextTable read_text_table(const std::string& path, int columns, bool exact = false) {
  std::ifstream in(path);
  if (!in) throw IoError("cannot open '" + path + "' for reading");
  TextTable out;
  out.columns.resize(columns);
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
      out.columns[c].push_back(v);
    }
    std::string extra;
    if (exact && fields >> extra) {
      throw InvalidArgument("'" + path + "' line " + std::to_string(line_number) + ": '" + line +
                            "' has more than " + std::to_string(columns) + " columns");
    }
    out.lines.push_back(line_number);
  }
  if (in.bad()) throw IoError("error while reading '" + path + "'");
  return out;
}

/// The columns of read_text_table (extra columns ignored).
inline std::vector<std::vector<double>> read_text_columns(const std::string& path, int columns) {
  return read_text_table(path, columns).columns;
}

}  // namespace diffpm::io
