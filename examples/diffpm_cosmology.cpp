// diffpm-cosmology: background, growth and linear power of one cosmology, as CSV on stdout,
// optionally with exact forward-mode derivatives with respect to the eight parameters.
//
//   diffpm-cosmology [--Omega_c V] ... [--no-radiation] --z Z1,Z2,... [--k K1,K2,...]
//                    [--transfer eh|eh_nowiggle|bbks | --pk-file FILE] [--derivatives]
//
// Errors (bad flags, bad numbers, invalid cosmologies, unreadable files) print one line
// "diffpm-cosmology: error: ..." on stderr and exit with status 2. The whole table is built in
// memory before anything is written, so a failure half-way leaves stdout empty, never a partial
// table that a script could mistake for a result.
#include <array>
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

#include "diffpm/core/error.hpp"
#include "diffpm/cosmology/cosmology.hpp"

namespace {

namespace dc = diffpm::cosmology;
using dc::ParameterDual;

constexpr int kExitError = 2;

/// Bad command-line input; the message is printed after "diffpm-cosmology: error: ".
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Options {
  dc::Parameters<double> params;  // defaults: the library's (Planck 2018)
  std::vector<double> z, k;
  bool have_z = false, have_k = false;
  std::optional<std::string> transfer, pk_file;  // as given, for messages
  dc::Transfer transfer_kind = dc::CosmologyOptions{}.transfer;
  bool derivatives = false;
  bool help = false;
};

/// %.17g: enough digits for every double to round-trip exactly.
std::string format17(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

/// The shortest decimal that reads back as x, for human-facing defaults in --help.
std::string format_short(double x) {
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
std::optional<std::string> number_problem(const std::string& text, double& out) {
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

double parse_number(const std::string& flag, const std::string& text) {
  double v = 0.0;
  if (auto why = number_problem(text, v)) throw UsageError(flag + " '" + text + "' " + *why);
  return v;
}

/// A comma-separated list; an empty entry ("1,,2", "1,") is an error, not a silent skip.
std::vector<double> parse_list(const std::string& flag, const std::string& text) {
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

void print_help() {
  const dc::Parameters<double> d;
  const dc::CosmologyOptions defaults;
  const std::string transfer_default = dc::transfer_name(defaults.transfer);
  const double z_max = 1.0 / defaults.table.a_min - 1.0;
  std::printf(
      "usage: diffpm-cosmology [parameters] --z Z1,Z2,... [--k K1,K2,...]\n"
      "                        [--transfer eh|eh_nowiggle|bbks | --pk-file FILE] [--derivatives]\n"
      "\n"
      "Prints CSV on stdout (one header line, numbers with 17 significant digits):\n"
      "  without --k: z,a,E,chi,D1,f1,D2,f2   E = H/H0, chi comoving distance in Mpc/h,\n"
      "               D1 linear growth (1 at z = 0), f1 = dlnD1/dlna, D2, f2 second order\n"
      "  with --k:    z,k,P_lin   one row per (z, k), z outer; k in h/Mpc, P in (Mpc/h)^3\n"
      "\n"
      "Cosmological parameters (default in brackets: Planck 2018):\n");
  for (int i = 0; i < dc::n_parameters; ++i) {
    const char* name = dc::parameter_names[i];
    std::printf("  --%-9s V  %s [%s]\n", name, name, format_short(d[dc::Parameter(i)]).c_str());
  }
  std::printf(
      "  --T_CMB     V  CMB temperature in K, also used by the transfer functions [%s]\n"
      "  --N_eff     V  effective number of massless neutrino species [%s]\n"
      "  --no-radiation  no photons or neutrinos in E(a) [radiation %s]\n"
      "\n"
      "Queries:\n"
      "  --z Z1,Z2,...   redshifts, required, 0 <= z <= %s\n"
      "  --k K1,K2,...   wavenumbers in h/Mpc (> 0): print P_lin(k, z) instead\n"
      "  --transfer T    eh (Eisenstein & Hu), eh_nowiggle, bbks [%s]\n"
      "  --pk-file FILE  P(k) at z = 0 from FILE (columns k [h/Mpc], P [(Mpc/h)^3]),\n"
      "                  rescaled to sigma8; replaces --transfer\n"
      "  --derivatives   add a column dQ/dX for each printed quantity Q and each\n"
      "                  X in Omega_c, Omega_b, h, n_s, sigma8, Omega_k, w0, wa (exact,\n"
      "                  forward-mode automatic differentiation)\n"
      "  -h, --help      print this help and exit\n"
      "\n"
      "Errors print one line on stderr and exit with status 2.\n",
      format_short(d.T_CMB).c_str(), format_short(d.N_eff).c_str(), d.radiation ? "on" : "off",
      format_short(z_max).c_str(), transfer_default.c_str());
}

/// Library messages start with "diffpm: "; after our own prefix that would be noise.
std::string library_message(const std::exception& e) {
  std::string m = e.what();
  const std::string prefix = "diffpm: ";
  if (m.compare(0, prefix.size(), prefix) == 0) m.erase(0, prefix.size());
  return m;
}

Options parse_arguments(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") {
      o.help = true;  // help wins over whatever follows it
      return o;
    }
    if (flag == "--no-radiation") {
      o.params.radiation = false;
      continue;
    }
    if (flag == "--derivatives") {
      o.derivatives = true;
      continue;
    }
    // Every other flag takes the next argument as its value, even if it starts with '-' (so
    // that "--w0 -0.9" works).
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError(flag + " needs a value");
      return argv[++i];
    };
    bool is_parameter = false;
    for (int p = 0; p < dc::n_parameters; ++p) {
      if (flag == std::string("--") + dc::parameter_names[p]) {
        o.params[dc::Parameter(p)] = parse_number(flag, value());
        is_parameter = true;
      }
    }
    if (is_parameter) continue;
    if (flag == "--T_CMB") {
      o.params.T_CMB = parse_number(flag, value());
    } else if (flag == "--N_eff") {
      o.params.N_eff = parse_number(flag, value());
    } else if (flag == "--z") {
      const std::string text = value();
      o.z = parse_list(flag, text);
      // The tables start at a_min: checking here names the flag, which the library cannot.
      const double z_max = 1.0 / dc::CosmologyOptions{}.table.a_min - 1.0;
      for (double& z : o.z) {
        if (z < 0) throw UsageError("--z '" + text + "': z = " + format_short(z) + " is negative");
        if (z > z_max) {
          throw UsageError("--z '" + text + "': z = " + format_short(z) +
                           " is beyond z = " + format_short(z_max) + ", where the tables start");
        }
        z += 0.0;  // -0 becomes 0, so that the z column never prints "-0"
      }
      o.have_z = true;
    } else if (flag == "--k") {
      const std::string text = value();
      o.k = parse_list(flag, text);
      for (double k : o.k) {
        if (!(k > 0)) {
          throw UsageError("--k '" + text + "': k = " + format_short(k) + " h/Mpc must be > 0");
        }
      }
      o.have_k = true;
    } else if (flag == "--transfer") {
      // The library owns the list of names; its message says which ones exist.
      o.transfer = value();
      try {
        o.transfer_kind = dc::transfer_from_name(*o.transfer);
      } catch (const std::exception& e) {
        throw UsageError("--transfer '" + *o.transfer + "': " + library_message(e));
      }
    } else if (flag == "--pk-file") {
      o.pk_file = value();
    } else {
      throw UsageError("unknown flag '" + flag + "' (see --help)");
    }
  }
  if (!o.have_z) throw UsageError("missing --z (the redshifts to print; see --help)");
  if (o.transfer && o.pk_file) {
    throw UsageError("--pk-file '" + *o.pk_file + "' and --transfer '" + *o.transfer +
                     "' conflict: the file replaces the transfer function");
  }
  return o;
}

dc::CosmologyOptions cosmology_options(const Options& o) {
  dc::CosmologyOptions c;
  if (o.pk_file) {
    c.transfer = dc::Transfer::tabulated;
    try {
      c.power_table = std::make_shared<const dc::PowerTable>(dc::PowerTable::from_file(*o.pk_file));
    } catch (const std::exception& e) {
      // The library's message names the path too; the flag tells which input it was.
      throw UsageError("--pk-file '" + *o.pk_file + "': " + library_message(e));
    }
  } else {
    c.transfer = o.transfer_kind;
  }
  return c;
}

/// The CSV header: input columns, quantity columns, then (with derivatives) dQ/dX for each Q in
/// column order and each parameter X in the library's order.
template <std::size_t NQ>
std::string header(const std::vector<const char*>& inputs,
                   const std::array<const char*, NQ>& quantities, bool derivatives) {
  std::string h;
  for (const char* c : inputs) h += std::string(h.empty() ? "" : ",") + c;
  for (const char* q : quantities) h += std::string(",") + q;
  if (derivatives) {
    for (const char* q : quantities) {
      for (const char* x : dc::parameter_names) h += std::string(",d") + q + "/d" + x;
    }
  }
  return h + "\n";
}

/// One CSV row. Values come from the double build; derivatives, if any, from the dual build
/// (whose values agree with the double ones to rounding, but printing the double build's keeps
/// the base columns bit-identical with and without --derivatives).
template <std::size_t NQ>
std::string row(const std::vector<double>& inputs, const std::array<double, NQ>& values,
                const std::array<ParameterDual, NQ>* duals) {
  std::string r;
  for (double x : inputs) r += (r.empty() ? "" : ",") + format17(x);
  for (double v : values) r += "," + format17(v);
  if (duals) {
    for (const ParameterDual& q : *duals) {
      for (int i = 0; i < dc::n_parameters; ++i) r += "," + format17(diffpm::derivative(q, i));
    }
  }
  return r + "\n";
}

/// The background quantities at scale factor a, in the column order of the header.
template <class T>
std::array<T, 6> background_quantities(const dc::Cosmology<T>& c, double a) {
  const T at(a);
  const auto& bg = c.background();
  const auto& g = c.growth();
  return {bg.E(at),          bg.comoving_distance(at), g.growth_factor(at),
          g.growth_rate(at), g.growth_factor_2(at),    g.growth_rate_2(at)};
}

/// Mode 1 (no --k): z,a,E,chi,D1,f1,D2,f2 at each redshift.
std::string background_table(const Options& o, const dc::CosmologyOptions& copt) {
  const std::array<const char*, 6> names = {"E", "chi", "D1", "f1", "D2", "f2"};
  const dc::Cosmology<double> c(o.params, copt);
  std::optional<dc::Cosmology<ParameterDual>> cd;
  if (o.derivatives) cd.emplace(dc::seed_parameters(o.params), copt);
  std::string out = header({"z", "a"}, names, o.derivatives);
  for (double z : o.z) {
    const double a = 1.0 / (1.0 + z);
    std::optional<std::array<ParameterDual, 6>> d;
    if (cd) d = background_quantities(*cd, a);
    out += row({z, a}, background_quantities(c, a), d ? &*d : nullptr);
  }
  return out;
}

/// Mode 2 (--k): z,k,P_lin for every (z, k), z in the outer loop.
std::string power_table(const Options& o, const dc::CosmologyOptions& copt) {
  const std::array<const char*, 1> names = {"P_lin"};
  const dc::Cosmology<double> c(o.params, copt);
  std::optional<dc::Cosmology<ParameterDual>> cd;
  if (o.derivatives) cd.emplace(dc::seed_parameters(o.params), copt);
  std::string out = header({"z", "k"}, names, o.derivatives);
  for (double z : o.z) {
    const double a = 1.0 / (1.0 + z);
    for (double k : o.k) {
      std::optional<std::array<ParameterDual, 1>> d;
      if (cd) d = std::array<ParameterDual, 1>{cd->linear_power(k, ParameterDual(a))};
      out += row({z, k}, std::array<double, 1>{c.linear_power(k, a)}, d ? &*d : nullptr);
    }
  }
  return out;
}

/// One line on stderr, whatever the message quotes (a file name may hold a newline).
int fail(std::string message) {
  for (char& c : message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  std::fprintf(stderr, "diffpm-cosmology: error: %s\n", message.c_str());
  return kExitError;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse_arguments(argc, argv);
    if (o.help) {
      print_help();
      return std::fflush(stdout) == 0 ? 0 : fail("cannot write to stdout");
    }
    const dc::CosmologyOptions copt = cosmology_options(o);
    const std::string table = o.have_k ? power_table(o, copt) : background_table(o, copt);
    if (std::fwrite(table.data(), 1, table.size(), stdout) != table.size() ||
        std::fflush(stdout) != 0) {
      return fail("cannot write to stdout");
    }
    return 0;
  } catch (const UsageError& e) {
    return fail(e.what());
  } catch (const std::exception& e) {
    // diffpm::InvalidArgument / OutOfRange / IoError name the parameter and value themselves.
    return fail(library_message(e));
  } catch (...) {
    return fail("unexpected internal error");
  }
}
