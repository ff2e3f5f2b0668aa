/// \file
/// \brief The sigma8-normalised linear matter power spectrum today, for several transfer functions.
#pragma once

#include <memory>
#include <string>
#include <variant>

#include "diffpm/core/error.hpp"
#include "diffpm/cosmology/detail/math.hpp"
#include "diffpm/cosmology/parameters.hpp"
#include "diffpm/cosmology/power_table.hpp"
#include "diffpm/cosmology/tophat_variance.hpp"
#include "diffpm/cosmology/transfer_bbks.hpp"
#include "diffpm/cosmology/transfer_eisenstein_hu.hpp"

namespace diffpm::cosmology {

/// Which linear spectrum: an analytic transfer function times k^n_s, or a user's table.
enum class Transfer { eisenstein_hu, eisenstein_hu_nowiggle, bbks, tabulated };

/// The names of the analytic transfer functions, as diffpm-cosmology's --transfer takes them.
inline const char* transfer_name(Transfer t) {
  switch (t) {
    case Transfer::eisenstein_hu:
      return "eh";
    case Transfer::eisenstein_hu_nowiggle:
      return "eh_nowiggle";
    case Transfer::bbks:
      return "bbks";
    case Transfer::tabulated:
      return "tabulated";
  }
  return "unknown";
}

/// Inverse of transfer_name for the analytic transfer functions.
inline Transfer transfer_from_name(const std::string& name) {
  for (Transfer t : {Transfer::eisenstein_hu, Transfer::eisenstein_hu_nowiggle, Transfer::bbks})
    if (name == transfer_name(t)) return t;
  throw InvalidArgument("transfer = '" + name + "' is not one of eh, eh_nowiggle, bbks");
}

/// P_lin(k) at z = 0 in (Mpc/h)^3, k in h/Mpc, normalised so that the variance in top hats of
/// 8 Mpc/h is sigma8^2:
///   P(k) = A k^n_s T(k)^2  (analytic transfer),   P(k) = A P_table(k)  (tabulated),
/// with A = sigma8^2 / sigma_8,unnormalised^2 (the table is rescaled too, so that sigma8 stays a
/// parameter; its shape carries no derivative with respect to the other parameters).
/// The z dependence, D1(a)^2, is applied by Cosmology::linear_power.
template <class T>
class LinearPower {
 public:
  /// Analytic transfer function.
  LinearPower(const Parameters<T>& p, Transfer transfer) : n_s_(p.n_s) {
    switch (transfer) {
      case Transfer::eisenstein_hu:
        transfer_ = EisensteinHu<T>(p);
        break;
      case Transfer::eisenstein_hu_nowiggle:
        transfer_ = EisensteinHuNoWiggle<T>(p);
        break;
      case Transfer::bbks:
        transfer_ = Bbks<T>(p);
        break;
      case Transfer::tabulated:
        throw InvalidArgument("a tabulated linear power spectrum needs its PowerTable");
    }
    normalise(p.sigma8);
  }

  /// A user's table, rescaled to the parameters' sigma8.
  LinearPower(const Parameters<T>& p, std::shared_ptr<const PowerTable> table)
      : n_s_(p.n_s), table_(std::move(table)) {
    validate(p);
    if (!table_) throw InvalidArgument("tabulated linear power: the PowerTable pointer is null");
    normalise(p.sigma8);
  }

  /// P_lin(k, z = 0) in (Mpc/h)^3 (k in h/Mpc, finite and > 0).
  template <class K>
  T operator()(const K& k) const {
    return amplitude_ * shape(k);
  }

  /// sigma(R) at z = 0 for a top hat of radius R (Mpc/h).
  T sigma(double R) const {
    if (!(R > 0.0) || !std::isfinite(R)) {
      throw InvalidArgument("sigma(R): R = " + format_number(R) + " Mpc/h must be finite and > 0");
    }
    return sqrt(amplitude_ * unnormalised_variance(R));
  }

  /// The normalisation A.
  const T& amplitude() const { return amplitude_; }

 private:
  template <class K>
  T shape(const K& k) const {
    const double kv = value_of(k);
    if (!(kv > 0.0) || !std::isfinite(kv)) {
      throw InvalidArgument("linear power: k = " + format_number(kv) +
                            " h/Mpc must be finite and > 0");
    }
    if (table_) return T((*table_)(k));
    const T t = std::visit(
        [&](const auto& tf) -> T {
          if constexpr (std::is_same_v<std::decay_t<decltype(tf)>, std::monostate>) {
            return T(0.0);
          } else {
            return tf(k);
          }
        },
        transfer_);
    return exp(n_s_ * log(k)) * t * t;
  }

  T unnormalised_variance(double R) const {
    const auto q = tophat_quadrature(R);
    T sum = T(0.0);
    for (std::size_t j = 0; j < q->k.size(); ++j) sum += q->w[j] * shape(q->k[j]);
    return sum;
  }

  void normalise(const T& sigma8) { amplitude_ = sigma8 * sigma8 / unnormalised_variance(8.0); }

  T n_s_;
  std::variant<std::monostate, EisensteinHu<T>, EisensteinHuNoWiggle<T>, Bbks<T>> transfer_;
  std::shared_ptr<const PowerTable> table_;
  T amplitude_;
};

}  // namespace diffpm::cosmology
