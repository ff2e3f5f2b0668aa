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
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "cli/arguments.hpp"
#include "diffpm/core/error.hpp"
#include "diffpm/cosmology/cosmology.hpp"

namespace {

namespace dc = diffpm::cosmology;
using dc::ParameterDual;
using namespace diffpm::cli;

constexpr const char* kProgram = "diffpm-cosmology";

struct Options {
  CosmologyFlags cosmology;
  std::vector<double> z, k;
  bool have_z = false, have_k = false;
  bool derivatives = false;
  bool help = false;
};

void print_help() {
  const double z_max = 1.0 / dc::CosmologyOptions{}.table.a_min - 1.0;
  std::printf(
      "usage: diffpm-cosmology [parameters] --z Z1,Z2,... [--k K1,K2,...]\n"
      "                        [--transfer eh|eh_nowiggle|bbks | --pk-file FILE] [--derivatives]\n"
      "\n"
      "Prints CSV on stdout (one header line, numbers with 17 significant digits):\n"
      "  without --k: z,a,E,chi,D1,f1,D2,f2   E = H/H0, chi comoving distance in Mpc/h,\n"
      "               D1 linear growth (1 at z = 0), f1 = dlnD1/dlna, D2, f2 second order\n"
      "  with --k:    z,k,P_lin   one row per (z, k), z outer; k in h/Mpc, P in (Mpc/h)^3\n"
      "\n");
  CosmologyFlags::print_help();
  std::printf(
      "\n"
      "Queries:\n"
      "  --z Z1,Z2,...   redshifts, required, 0 <= z <= %s\n"
      "  --k K1,K2,...   wavenumbers in h/Mpc (> 0): print P_lin(k, z) instead\n"
      "  --derivatives   add a column dQ/dX for each printed quantity Q and each\n"
      "                  X in Omega_c, Omega_b, h, n_s, sigma8, Omega_k, w0, wa (exact,\n"
      "                  forward-mode automatic differentiation)\n"
      "  -h, --help      print this help and exit\n"
      "\n"
      "Errors print one line on stderr and exit with status 2.\n",
      format_short(z_max).c_str());
}

Options parse_arguments(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") {
      o.help = true;  // help wins over whatever follows it
      return o;
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
    if (o.cosmology.parse(flag, value)) continue;
    if (flag == "--z") {
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
    } else {
      throw UsageError("unknown flag '" + flag + "' (see --help)");
    }
  }
  if (!o.have_z) throw UsageError("missing --z (the redshifts to print; see --help)");
  o.cosmology.finish();
  return o;
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
  const dc::Cosmology<double> c(o.cosmology.params, copt);
  std::optional<dc::Cosmology<ParameterDual>> cd;
  if (o.derivatives) cd.emplace(dc::seed_parameters(o.cosmology.params), copt);
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
  const dc::Cosmology<double> c(o.cosmology.params, copt);
  std::optional<dc::Cosmology<ParameterDual>> cd;
  if (o.derivatives) cd.emplace(dc::seed_parameters(o.cosmology.params), copt);
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

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse_arguments(argc, argv);
    if (o.help) {
      print_help();
      return std::fflush(stdout) == 0 ? 0 : fail(kProgram, "cannot write to stdout");
    }
    const dc::CosmologyOptions copt = o.cosmology.options();
    const std::string table = o.have_k ? power_table(o, copt) : background_table(o, copt);
    if (std::fwrite(table.data(), 1, table.size(), stdout) != table.size() ||
        std::fflush(stdout) != 0) {
      return fail(kProgram, "cannot write to stdout");
    }
    return 0;
  } catch (const UsageError& e) {
    return fail(kProgram, e.what());
  } catch (const std::exception& e) {
    // diffpm::InvalidArgument / OutOfRange / IoError name the parameter and value themselves.
    return fail(kProgram, library_message(e));
  } catch (...) {
    return fail(kProgram, "unexpected internal error");
  }
}
