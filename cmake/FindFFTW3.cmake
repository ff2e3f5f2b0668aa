# Distributed with diffpm under the MIT license.
#[=======================================================================[.rst:
FindFFTW3
---------

Find the FFTW3 library (https://www.fftw.org), double and single precision, with its
threads and OpenMP variants.

This module exists because FFTW's autotools build (used by Debian and most distributions)
installs no CMake package file, and the ``FFTW3Config.cmake`` of its CMake build describes a
single precision and none of the threads/OpenMP libraries.

Components
^^^^^^^^^^

``double``   ``libfftw3``  (the default when no component is requested)
``float``    ``libfftw3f``
``threads``  ``libfftw3_threads`` / ``libfftw3f_threads`` for each requested precision
``omp``      ``libfftw3_omp`` / ``libfftw3f_omp`` for each requested precision

``threads`` and ``omp`` apply to the precisions requested alongside them; on their own
they imply ``double``.

Imported targets
^^^^^^^^^^^^^^^^

``FFTW3::fftw3``, ``FFTW3::fftw3f``
``FFTW3::fftw3_threads``, ``FFTW3::fftw3f_threads`` (link their base library and Threads)
``FFTW3::fftw3_omp``, ``FFTW3::fftw3f_omp`` (link their base library)

Each target is defined when its library is found, even if its component was not requested,
so optional use is possible with ``if(TARGET FFTW3::fftw3_omp)``.

Result variables
^^^^^^^^^^^^^^^^

``FFTW3_FOUND``, ``FFTW3_<component>_FOUND``, ``FFTW3_INCLUDE_DIRS``, ``FFTW3_LIBRARIES``
(the requested libraries), ``FFTW3_VERSION`` (only when pkg-config knows it).

Hints
^^^^^

``FFTW3_ROOT`` (CMake variable or environment variable) names an installation prefix.
pkg-config's ``fftw3`` module, when available, is used as a further search hint.
#]=======================================================================]

include(FindPackageHandleStandardArgs)

if(NOT FFTW3_FIND_COMPONENTS)
  set(FFTW3_FIND_COMPONENTS double)
  set(FFTW3_FIND_REQUIRED_double TRUE)
endif()

# Precisions the threads/omp components apply to.
set(_fftw3_precisions)
if("double" IN_LIST FFTW3_FIND_COMPONENTS)
  list(APPEND _fftw3_precisions double)
endif()
if("float" IN_LIST FFTW3_FIND_COMPONENTS)
  list(APPEND _fftw3_precisions float)
endif()
if(NOT _fftw3_precisions)
  set(_fftw3_precisions double)
endif()

# pkg-config is only a hint: it is absent on many systems and the search below works without.
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(PC_FFTW3 QUIET fftw3)
endif()

find_path(FFTW3_INCLUDE_DIR
  NAMES fftw3.h
  HINTS ${PC_FFTW3_INCLUDEDIR} ${PC_FFTW3_INCLUDE_DIRS}
  PATH_SUFFIXES include)
mark_as_advanced(FFTW3_INCLUDE_DIR)

# One cache variable per library, named after the library: FFTW3_fftw3f_threads_LIBRARY...
set(_fftw3_suffix_double "")
set(_fftw3_suffix_float "f")
foreach(_prec double float)
  set(_base "fftw3${_fftw3_suffix_${_prec}}")
  foreach(_lib ${_base} ${_base}_threads ${_base}_omp)
    find_library(FFTW3_${_lib}_LIBRARY
      NAMES ${_lib}
      HINTS ${PC_FFTW3_LIBDIR} ${PC_FFTW3_LIBRARY_DIRS}
      PATH_SUFFIXES lib lib64)
    mark_as_advanced(FFTW3_${_lib}_LIBRARY)
  endforeach()
endforeach()

# Per-component results, as FindPackageHandleStandardArgs(HANDLE_COMPONENTS) expects. An
# unknown component is simply not found (an error only if it was required).
set(FFTW3_LIBRARIES)
foreach(_comp IN LISTS FFTW3_FIND_COMPONENTS)
  set(FFTW3_${_comp}_FOUND TRUE)
  if(_comp STREQUAL "double" OR _comp STREQUAL "float")
    set(_libs "fftw3${_fftw3_suffix_${_comp}}")
  elseif(NOT _comp STREQUAL "threads" AND NOT _comp STREQUAL "omp")
    set(FFTW3_${_comp}_FOUND FALSE)
    set(_libs)
  else()
    set(_libs)
    foreach(_prec IN LISTS _fftw3_precisions)
      list(APPEND _libs "fftw3${_fftw3_suffix_${_prec}}_${_comp}")
    endforeach()
  endif()
  foreach(_lib IN LISTS _libs)
    if(FFTW3_${_lib}_LIBRARY)
      list(APPEND FFTW3_LIBRARIES "${FFTW3_${_lib}_LIBRARY}")
    else()
      set(FFTW3_${_comp}_FOUND FALSE)
    endif()
  endforeach()
endforeach()
list(REMOVE_DUPLICATES FFTW3_LIBRARIES)

if(PC_FFTW3_VERSION)
  set(FFTW3_VERSION "${PC_FFTW3_VERSION}")
endif()

find_package_handle_standard_args(FFTW3
  REQUIRED_VARS FFTW3_INCLUDE_DIR
  VERSION_VAR FFTW3_VERSION
  HANDLE_COMPONENTS)

if(FFTW3_FOUND)
  set(FFTW3_INCLUDE_DIRS "${FFTW3_INCLUDE_DIR}")

  # The threads libraries need the system thread library when linking statically; shared
  # builds already record it, and linking it twice is harmless.
  if(FFTW3_fftw3_threads_LIBRARY OR FFTW3_fftw3f_threads_LIBRARY)
    find_package(Threads QUIET)
  endif()

  foreach(_prec double float)
    set(_base "fftw3${_fftw3_suffix_${_prec}}")
    if(FFTW3_${_base}_LIBRARY AND NOT TARGET FFTW3::${_base})
      add_library(FFTW3::${_base} UNKNOWN IMPORTED)
      set_target_properties(FFTW3::${_base} PROPERTIES
        IMPORTED_LOCATION "${FFTW3_${_base}_LIBRARY}"
        INTERFACE_INCLUDE_DIRECTORIES "${FFTW3_INCLUDE_DIR}")
    endif()
    foreach(_variant threads omp)
      set(_lib "${_base}_${_variant}")
      if(FFTW3_${_lib}_LIBRARY AND TARGET FFTW3::${_base} AND NOT TARGET FFTW3::${_lib})
        add_library(FFTW3::${_lib} UNKNOWN IMPORTED)
        set_target_properties(FFTW3::${_lib} PROPERTIES
          IMPORTED_LOCATION "${FFTW3_${_lib}_LIBRARY}"
          INTERFACE_INCLUDE_DIRECTORIES "${FFTW3_INCLUDE_DIR}")
        # Listing the base library after the variant keeps static link order correct.
        target_link_libraries(FFTW3::${_lib} INTERFACE FFTW3::${_base})
        if(_variant STREQUAL "threads" AND TARGET Threads::Threads)
          target_link_libraries(FFTW3::${_lib} INTERFACE Threads::Threads)
        endif()
      endif()
    endforeach()
  endforeach()
endif()

unset(_fftw3_precisions)
unset(_fftw3_suffix_double)
unset(_fftw3_suffix_float)
unset(_base)
unset(_lib)
unset(_libs)
unset(_comp)
unset(_prec)
unset(_variant)
