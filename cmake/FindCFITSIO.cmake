# FindCFITSIO
# -----------
# Finds cfitsio (the FITS library of HEASARC), which diffpm's io/fits.hpp uses.
#
# Debian's libcfitsio-dev installs a pkg-config file but no CMake package, so pkg-config is used
# only as a hint and the header and library are looked up directly. CFITSIO_ROOT (a CMake or
# environment variable) names an installation prefix to search first.
#
# Defines CFITSIO_FOUND, CFITSIO_INCLUDE_DIR, CFITSIO_LIBRARY and the imported target
# CFITSIO::cfitsio (unless a target of that name already exists). Installed next to
# diffpmConfig.cmake, so consumers of an installed diffpm find cfitsio the same way.
include(FindPackageHandleStandardArgs)

find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(PC_CFITSIO QUIET cfitsio)
endif()

find_path(CFITSIO_INCLUDE_DIR
  NAMES fitsio.h
  HINTS ${CFITSIO_ROOT} ENV CFITSIO_ROOT ${PC_CFITSIO_INCLUDEDIR} ${PC_CFITSIO_INCLUDE_DIRS}
  PATH_SUFFIXES include include/cfitsio cfitsio)
find_library(CFITSIO_LIBRARY
  NAMES cfitsio
  HINTS ${CFITSIO_ROOT} ENV CFITSIO_ROOT ${PC_CFITSIO_LIBDIR} ${PC_CFITSIO_LIBRARY_DIRS}
  PATH_SUFFIXES lib lib64)
mark_as_advanced(CFITSIO_INCLUDE_DIR CFITSIO_LIBRARY)

find_package_handle_standard_args(CFITSIO
  REQUIRED_VARS CFITSIO_LIBRARY CFITSIO_INCLUDE_DIR
  REASON_FAILURE_MESSAGE
    "Install it (Debian/Ubuntu: apt-get install libcfitsio-dev, or cmake/install-debian-deps.sh) or set CFITSIO_ROOT to its installation prefix.")

if(CFITSIO_FOUND AND NOT TARGET CFITSIO::cfitsio)
  add_library(CFITSIO::cfitsio UNKNOWN IMPORTED)
  set_target_properties(CFITSIO::cfitsio PROPERTIES
    IMPORTED_LOCATION "${CFITSIO_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${CFITSIO_INCLUDE_DIR}")
endif()
