// diffpm._core: the C++ side of the Python package diffpm (python/diffpm/): the bindings of
// each translation unit, the version, and diffpm's exceptions as Python ones.
#include "common.hpp"
#include "diffpm/version.hpp"

namespace nb = nanobind;

NB_MODULE(_core, m) {
  m.doc() = "diffpm's C++ core (use the package diffpm and diffpm.jax)";
  m.attr("__version__") = diffpm::version;
  // A Model referenced from another library's module-level cache (NumPyro keeps the jitted
  // functions of its samplers, and with them the model, until the interpreter exits) is still
  // alive at teardown; nanobind would report it as leaked although nothing is lost.
  nb::set_leak_warnings(false);

  // InvalidArgument derives from std::invalid_argument: nanobind raises ValueError for it. The
  // others get Python's nearest meaning.
  nb::exception<diffpm::ReversibilityError>(m, "ReversibilityError", PyExc_RuntimeError);
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const diffpm::OutOfRange& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const diffpm::OutOfMemory& e) {
      PyErr_SetString(PyExc_MemoryError, e.what());
    } catch (const diffpm::IoError& e) {
      PyErr_SetString(PyExc_OSError, e.what());
    }
  });

  diffpm::python::bind_cosmology(m);
  diffpm::python::bind_simulation(m);
  diffpm::python::bind_model(m);
  diffpm::python::bind_ffi(m);
}
