/// \file
/// \brief The tape: the coarse operations a forward run recorded, as objects with their
/// hand-written vector-Jacobian products, replayed backwards by the gradient pass
/// (docs/design.md, "The adjoint").
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace diffpm::autodiff {

/// One recorded operation (a stage of a run: linear field, LPT, the integrator with its
/// lightcone, the final density, ...). It owns, or shares with the other operations of the same
/// run, everything its reverse pass needs, and nothing of the object that recorded it: a tape
/// can be moved, and the recorder with it, between the forward and the gradient pass.
///
/// `Adjoints` is the state of a reverse pass: the adjoints of the outputs given by the caller,
/// and the adjoint variables the operations pass on to each other (model/adjoints.hpp).
template <class Adjoints>
class Operation {
 public:
  virtual ~Operation() = default;
  /// A short name, for timings and messages.
  virtual const char* name() const = 0;
  /// Propagates the adjoints of this operation's outputs to its inputs (accumulating: an
  /// adjoint that several operations feed is summed), and pulls its scalar coefficients'
  /// adjoints back onto the parameters.
  virtual void vjp(Adjoints& adjoints) = 0;
};

/// An ordered list of coarse operations, each with its reverse function.
///
/// Fields are large and parameters few, so the tape is coarse: an entry is a whole kernel
/// (thousands to billions of flops), whose reverse function is its hand-written vector-Jacobian
/// product. Entries keep what their reverse pass needs to find its inputs, not the inputs
/// themselves where they can be rebuilt: the integrator's entry keeps only the final particle
/// state and runs the trajectory backwards (nbody/reversible.hpp), so the tape's memory does not
/// grow with the number of time steps.
///
/// Cosmological scalars do not appear on the tape: they are dual numbers (forward mode), and
/// each operation pulls its coefficients' adjoints back onto the parameters
/// (model/parameter_pullback.hpp).
///
/// Movable, not copyable (the operations of one run are its own).
template <class Adjoints>
class Tape {
 public:
  using Entry = Operation<Adjoints>;

  /// Appends an operation; its vjp runs during backward(), after every operation recorded later.
  void record(std::unique_ptr<Entry> op) { entries_.push_back(std::move(op)); }

  /// Runs the vector-Jacobian products from the last recorded operation to the first, timing
  /// each, then forgets them (a tape is replayed once: reverse-time reconstruction consumes the
  /// final state). Operations are released as soon as their vjp has run, so the memory they
  /// hold goes back during the pass, not after it.
  void backward(Adjoints& adjoints) {
    std::vector<std::pair<std::string, double>> timings(entries_.size());
    for (std::size_t i = entries_.size(); i-- > 0;) {
      const auto t0 = std::chrono::steady_clock::now();
      timings[i].first = entries_[i]->name();
      entries_[i]->vjp(adjoints);
      entries_[i].reset();
      timings[i].second =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    entries_.clear();
    timings_ = std::move(timings);
  }

  void clear() { entries_.clear(); }
  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  /// The names of the recorded operations, in forward order.
  std::vector<std::string> names() const {
    std::vector<std::string> n;
    for (const auto& e : entries_) n.push_back(e->name());
    return n;
  }
  /// (name, seconds) of each vjp of the last backward(), in forward order.
  const std::vector<std::pair<std::string, double>>& timings() const { return timings_; }

 private:
  std::vector<std::unique_ptr<Entry>> entries_;
  std::vector<std::pair<std::string, double>> timings_;
};

}  // namespace diffpm::autodiff
