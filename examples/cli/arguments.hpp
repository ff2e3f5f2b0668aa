/// \file
/// \brief Command-line helpers shared by diffpm's programs: strict number parsing, the
/// cosmology flags (identical in every program), error reporting with exit status 2.
#pragma once

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "diffpm/cosmology/cosmology.hpp"
#include "diffpm/io/power_table_file.hpp"

namespace diffpm::cli {

namespace dc = diffpm::cosmology;

inline constexpr int kExitError = 2;

/// Bad command-line input; the message is printed after "<program>: error: ".
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// %.17g: enough digits for every double to round-trip exactly.
inline std::string format17(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

/// The shortest decimal that reads back as x, for human-facing defaults in --help.
inline std::string format_short(double x) {
  char buf[32];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  return buf;
}

/// Why `text` is not an acceptable number, or nothing (and `out` set) if it is. Stricter than
/// strtod alone: the whole text must be consumed, and leading blanks, NaN, infinities and
/// values that over- or underflow a double are refused.
inline std::optional<std::string> number_problem(const std::string& text, double& out) {
  if (text.empty()) return "is empty";
  if (std::isspace(static_cast<unsigned char>(text[0]))) return "is not a number";
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0') return "is not a number";
  if (!std::isfinite(v)) return "is not finite";
  if (errno == ERANGE) return "is out of the range of a double";
  out = v;
  return std::nullopt;
}

inline double parse_number(const std::string& flag, const std::string& text) {
  double v = 0.0;
  if (auto why = number_problem(text, v)) throw UsageError(flag + " '" + text + "' " + *why);
  return v;
}

/// A comma-separated list; an empty entry ("1,,2", "1,") is an error, not a silent skip.
inline std::vector<double> parse_list(const std::string& flag, const std::string& text) {
  std::vector<double> values;
  std::size_t start = 0;
  for (int entry = 1;; ++entry) {
    const std::size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? comma : comma - start);
    double v = 0.0;
    if (auto why = number_problem(item, v)) {
      throw UsageError(flag + " '" + text + "': entry " + std::to_string(entry) +
                       (item.empty() ? "" : " '" + item + "'") + " " + *why);
    }
    values.push_back(v);
    if (comma == std::string::npos) return values;
    start = comma + 1;
  }
}

/// Library messages start with "diffpm: "; after our own prefix that would be noise.
inline std::string library_message(const std::exception& e) {
  std::string m = e.what();
  const std::string prefix = "diffpm: ";
  if (m.compare(0, prefix.size(), prefix) == 0) m.erase(0, prefix.size());
  return m;
}

/// The cosmology and its linear spectrum as given on the command line: the eight parameters,
/// --T_CMB, --N_eff, --no-radiation, --transfer and --pk-file, parsed the same way by every
/// program.
struct CosmologyFlags {
  dc::Parameters<double> params;                 // defaults: the library's (Planck 2018)
  std::optional<std::string> transfer, pk_file;  // as given, for messages
  dc::Transfer transfer_kind = dc::CosmologyOptions{}.transfer;

  /// Consumes `flag` (and its value through `value()`) if it is a cosmology flag.
  template <class NextValue>
  bool parse(const std::string& flag, NextValue&& value) {
    if (flag == "--no-radiation") {
      params.radiation = false;
      return true;
    }
    for (int p = 0; p < dc::n_parameters; ++p) {
      if (flag == std::string("--") + dc::parameter_names[p]) {
        params[dc::Parameter(p)] = parse_number(flag, value());
        return true;
      }
    }
    if (flag == "--T_CMB") {
      params.T_CMB = parse_number(flag, value());
    } else if (flag == "--N_eff") {
      params.N_eff = parse_number(flag, value());
    } else if (flag == "--transfer") {
      // The library owns the list of names; its message says which ones exist.
      transfer = value();
      try {
        transfer_kind = dc::transfer_from_name(*transfer);
      } catch (const std::exception& e) {
        throw UsageError("--transfer '" + *transfer + "': " + library_message(e));
      }
    } else if (flag == "--pk-file") {
      pk_file = value();
    } else {
      return false;
    }
    return true;
  }

  /// Checks combinations once all flags are read.
  void finish() const {
    if (transfer && pk_file) {
      throw UsageError("--pk-file '" + *pk_file + "' and --transfer '" + *transfer +
                       "' conflict: the file replaces the transfer function");
    }
  }

  dc::CosmologyOptions options() const {
    dc::CosmologyOptions c;
    if (pk_file) {
      c.transfer = dc::Transfer::tabulated;
      try {
        c.power_table = std::make_shared<const dc::PowerTable>(io::read_power_table(*pk_file));
      } catch (const std::exception& e) {
        // The library's message names the path too; the flag tells which input it was.
        throw UsageError("--pk-file '" + *pk_file + "': " + library_message(e));
      }
    } else {
      c.transfer = transfer_kind;
    }
    return c;
  }

  /// The help lines for these flags, defaults printed from the library's structs.
  static void print_help() {
    const dc::Parameters<double> d;
    std::printf("Cosmological parameters (default in brackets: Planck 2018):\n");
    for (int i = 0; i < dc::n_parameters; ++i) {
      const char* name = dc::parameter_names[i];
      std::printf("  --%-9s V  %s [%s]\n", name, name, format_short(d[dc::Parameter(i)]).c_str());
    }
    std::printf(
        "  --T_CMB     V  CMB temperature in K, also used by the transfer functions [%s]\n"
        "  --N_eff     V  effective number of massless neutrino species [%s]\n"
        "  --no-radiation  no photons or neutrinos in E(a) [radiation %s]\n"
        "  --transfer T    eh (Eisenstein & Hu), eh_nowiggle, bbks [%s]\n"
        "  --pk-file FILE  P(k) at z = 0 from FILE (columns k [h/Mpc], P [(Mpc/h)^3]),\n"
        "                  rescaled to sigma8; replaces --transfer\n",
        format_short(d.T_CMB).c_str(), format_short(d.N_eff).c_str(), d.radiation ? "on" : "off",
        dc::transfer_name(dc::CosmologyOptions{}.transfer));
  }
};

/// One line on stderr, whatever the message quotes (a file name may hold a newline).
inline int fail(const char* program, std::string message) {
  for (char& c : message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  std::fprintf(stderr, "%s: error: %s\n", program, message.c_str());
  return kExitError;
}

}  // namespace diffpm::cli
