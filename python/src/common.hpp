// Shared by the translation units of diffpm._core: NumPy arrays out of C++ containers without a
// copy, checked NumPy arrays in, and the option tables of the configuration classes.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "diffpm/core/error.hpp"

namespace diffpm::python {

namespace nb = nanobind;

/// A NumPy array that owns `values` (moved onto the heap, freed when the array is collected):
/// the C++ result reaches Python without a copy. `shape` must multiply to the element count.
template <class T, class Container>
nb::ndarray<nb::numpy, T> to_numpy(Container&& values, std::vector<std::size_t> shape) {
  using C = std::decay_t<Container>;
  auto* owner = new C(std::forward<Container>(values));
  nb::capsule free_owner(owner, [](void* p) noexcept { delete static_cast<C*>(p); });
  return nb::ndarray<nb::numpy, T>(reinterpret_cast<T*>(owner->data()), shape.size(), shape.data(),
                                   free_owner);
}

/// A C-contiguous array of T read in place (nanobind converts other dtypes and layouts with a
/// copy, `nb::arg().noconvert()` not being set).
template <class T>
using In = nb::ndarray<const T, nb::c_contig, nb::device::cpu>;

/// `h` as a C-contiguous NumPy array of T (converted, with a copy, only where it is not one).
template <class T>
In<T> as_array(nb::handle h) {
  const char* dtype = std::is_same_v<T, double> ? "float64" : "float32";
  return nb::cast<In<T>>(nb::module_::import_("numpy").attr("ascontiguousarray")(h, dtype));
}

/// Whether `h` (anything numpy.asarray takes) holds float64 values.
inline bool is_float64(nb::handle h) {
  nb::object a = nb::module_::import_("numpy").attr("asarray")(h);
  return nb::cast<std::string>(a.attr("dtype").attr("name")) == "float64";
}

/// Throws InvalidArgument (ValueError) unless `a` has exactly `shape`, naming `what`.
template <class A>
void require_shape(const A& a, const std::vector<std::size_t>& shape, const std::string& what) {
  bool ok = a.ndim() == shape.size();
  for (std::size_t d = 0; ok && d < shape.size(); ++d) ok = a.shape(d) == shape[d];
  if (!ok) {
    auto text = [](auto n, auto at) {
      std::string s = "(";
      for (std::size_t d = 0; d < n; ++d) s += (d ? ", " : "") + std::to_string(at(d));
      return s + (n == 1 ? ",)" : ")");
    };
    throw InvalidArgument(
        what + " has shape " + text(a.ndim(), [&](std::size_t d) { return a.shape(d); }) +
        ", expected " + text(shape.size(), [&](std::size_t d) { return shape[d]; }));
  }
}

/// The Levenshtein distance, for "did you mean" in the messages of unknown option names.
inline std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

/// The options of one configuration class, by name: one table gives the keyword constructor,
/// the attributes and the error for an unknown name.
template <class Config>
class OptionTable {
 public:
  using Getter = std::function<nb::object(const Config&)>;
  using Setter = std::function<void(Config&, nb::handle)>;

  OptionTable(std::string class_name) : class_name_(std::move(class_name)) {}

  void add(const std::string& name, Getter get, Setter set) {
    entries_[name] = {std::move(get), std::move(set)};
  }
  void set(Config& c, const std::string& name, nb::handle value) const {
    find(name).second(c, value);
  }
  nb::object get(const Config& c, const std::string& name) const { return find(name).first(c); }
  std::vector<std::string> names() const {
    std::vector<std::string> n;
    for (const auto& e : entries_) n.push_back(e.first);
    return n;
  }
  /// Binds the table to `cls`: keyword constructor, one read-write property per option, and
  /// __repr__ listing them.
  template <class Class>
  void bind(Class& cls) const {
    const OptionTable* self = this;
    cls.def(
        "__init__",
        [self](Config* c, nb::kwargs kwargs) {
          new (c) Config();
          for (auto [key, value] : kwargs) self->set(*c, nb::cast<std::string>(key), value);
        },
        "Keyword arguments: any of the attributes.");
    for (const auto& [name, entry] : entries_) {
      const std::string n = name;
      cls.def_prop_rw(
          n.c_str(), [self, n](const Config& c) { return self->get(c, n); },
          [self, n](Config& c, nb::handle v) { self->set(c, n, v); });
    }
    cls.def("__repr__", [self](const Config& c) {
      std::string s = self->class_name_ + "(";
      bool first = true;
      for (const auto& e : self->entries_) {
        s += (first ? "" : ", ") + e.first + "=" +
             nb::cast<std::string>(nb::repr(e.second.first(c)));
        first = false;
      }
      return s + ")";
    });
    cls.def_prop_ro_static("option_names", [self](nb::handle) { return self->names(); });
  }

 private:
  const std::pair<Getter, Setter>& find(const std::string& name) const {
    auto it = entries_.find(name);
    if (it != entries_.end()) return it->second;
    std::string best;
    std::size_t best_distance = 3;  // suggest only names within two edits
    for (const auto& e : entries_) {
      const std::size_t d = edit_distance(name, e.first);
      if (d < best_distance) best_distance = d, best = e.first;
    }
    throw InvalidArgument(class_name_ + ": unknown option '" + name + "'" +
                          (best.empty() ? "" : " (did you mean '" + best + "'?)"));
  }

  std::string class_name_;
  std::map<std::string, std::pair<Getter, Setter>> entries_;
};

/// Converters for option values, each throwing InvalidArgument (ValueError) that names the
/// option and the value it could not take.
template <class T>
T cast_option(nb::handle value, const std::string& name, const char* expected) {
  try {
    return nb::cast<T>(value);
  } catch (const std::exception&) {
    throw InvalidArgument(name + " = " + nb::cast<std::string>(nb::repr(value)) + " (expected " +
                          expected + ")");
  }
}

/// A scalar (the same on every axis) or three values.
template <class T>
std::array<T, 3> cast_triple(nb::handle value, const std::string& name) {
  const char* expected = std::is_integral_v<T> ? "an integer or three" : "a number or three";
  if (!nb::hasattr(value, "__len__")) {  // a Python or NumPy scalar
    const T v = cast_option<T>(value, name, expected);
    return {v, v, v};
  }
  return cast_option<std::array<T, 3>>(value, name, expected);
}

/// One of `choices` (name -> value), by name.
template <class E>
E cast_choice(nb::handle value, const std::string& name,
              const std::vector<std::pair<std::string, E>>& choices) {
  std::string list;
  for (const auto& c : choices) list += (list.empty() ? "'" : ", '") + c.first + "'";
  const auto s = cast_option<std::string>(value, name, ("one of " + list).c_str());
  for (const auto& c : choices)
    if (c.first == s) return c.second;
  throw InvalidArgument(name + " = '" + s + "' (expected one of " + list + ")");
}

template <class E>
std::string choice_name(E value, const std::vector<std::pair<std::string, E>>& choices) {
  for (const auto& c : choices)
    if (c.second == value) return c.first;
  return "?";
}

// The bindings of each translation unit (module.cpp calls them in order).
void bind_cosmology(nb::module_& m);
void bind_simulation(nb::module_& m);
void bind_model(nb::module_& m);
void bind_ffi(nb::module_& m);

}  // namespace diffpm::python
