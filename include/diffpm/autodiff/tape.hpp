/// \file
/// \brief The tape: coarse operations recorded by a forward run with their hand-written reverse
/// functions, replayed backwards by the gradient pass (docs/design.md, "The adjoint").
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace diffpm::autodiff {

/// An ordered list of coarse operations (linear field, LPT, the integrator with its lightcone,
/// the final density, ...), each with the reverse function that propagates adjoints through it.
///
/// Fields are large and parameters few, so the tape is coarse: an entry is a whole kernel
/// (thousands to billions of flops), whose reverse function is its hand-written vector-Jacobian
/// product, and the adjoint variables live with the code that records the entry (captured by
/// the reverse function), not on the tape. Entries record what their reverse pass needs to
/// find its inputs, not the inputs themselves where they can be rebuilt: the integrator's entry
/// keeps only the final particle state and runs the trajectory backwards (nbody/reversible.hpp),
/// so the tape's memory does not grow with the number of time steps.
///
/// Cosmological scalars do not appear on the tape: they are dual numbers (forward mode), and
/// each reverse function pulls its coefficients' adjoints back onto the parameters
/// (model/parameter_pullback.hpp).
class Tape {
 public:
  using Reverse = std::function<void()>;

  /// Appends an operation; `reverse` runs during backward(), after every operation recorded
  /// later.
  void record(std::string name, Reverse reverse) {
    entries_.push_back({std::move(name), std::move(reverse), 0.0});
  }

  /// Runs the reverse functions from the last recorded to the first, timing each, then forgets
  /// them (a tape is replayed once: reverse-time reconstruction consumes the final state).
  void backward() {
    for (std::size_t i = entries_.size(); i-- > 0;) {
      const auto t0 = std::chrono::steady_clock::now();
      entries_[i].reverse();
      entries_[i].seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    timings_.clear();
    for (auto& e : entries_) timings_.emplace_back(e.name, e.seconds);
    entries_.clear();
  }

  void clear() { entries_.clear(); }
  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  /// The names of the recorded operations, in forward order.
  std::vector<std::string> names() const {
    std::vector<std::string> n;
    for (const auto& e : entries_) n.push_back(e.name);
    return n;
  }
  /// (name, seconds) of each reverse function of the last backward(), in forward order.
  const std::vector<std::pair<std::string, double>>& timings() const { return timings_; }

 private:
  struct Entry {
    std::string name;
    Reverse reverse;
    double seconds;
  };
  std::vector<Entry> entries_;
  std::vector<std::pair<std::string, double>> timings_;
};

}  // namespace diffpm::autodiff
