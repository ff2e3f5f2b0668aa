/// \file
/// \brief The library's version, the one source of it: CMakeLists.txt's project() and the Python
/// package (pyproject.toml) read it from this file.
#pragma once

#define DIFFPM_VERSION_MAJOR 0
#define DIFFPM_VERSION_MINOR 1
#define DIFFPM_VERSION_PATCH 0
#define DIFFPM_VERSION_STRING "0.1.0"

namespace diffpm {

/// "major.minor.patch", as diffpm.__version__ in Python.
inline constexpr const char* version = DIFFPM_VERSION_STRING;

}  // namespace diffpm
