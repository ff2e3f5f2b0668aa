/// \file
/// \brief Typed exceptions thrown by diffpm for bad input, out-of-range queries and I/O failures.
#pragma once

#include <charconv>
#include <stdexcept>
#include <string>

#include "diffpm/core/floating_point.hpp"

namespace diffpm {

/// The shortest decimal text that reads back as exactly `value` ("0.45", not
/// "0.45000000000000001"), for error messages that name a value the way the user wrote it.
inline std::string format_number(double value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

/// A parameter has a value that the library cannot work with (negative density, h <= 0, NaN...).
/// The message names the parameter and the value.
class InvalidArgument : public std::invalid_argument {
 public:
  explicit InvalidArgument(const std::string& what) : std::invalid_argument("diffpm: " + what) {}
};

/// A query lies outside the range where a table or model is defined (a redshift beyond the
/// tabulated range, a wavenumber outside a user's P(k) table...).
class OutOfRange : public std::out_of_range {
 public:
  explicit OutOfRange(const std::string& what) : std::out_of_range("diffpm: " + what) {}
};

/// A computation that must be exact was not: the reverse pass of the fixed-point integrator did
/// not rebuild the forward run's states bit for bit (nbody/reversible.hpp), so a gradient from it
/// would be wrong. The message says which state differed and what usually causes it.
class ReversibilityError : public std::runtime_error {
 public:
  explicit ReversibilityError(const std::string& what) : std::runtime_error("diffpm: " + what) {}
};

/// The FFT library could not make a plan (FFTW returned none: out of memory, or a size it
/// refuses).
class FftError : public std::runtime_error {
 public:
  explicit FftError(const std::string& what) : std::runtime_error("diffpm: " + what) {}
};

/// A device (GPU) operation failed: no CUDA device, a CUDA runtime or cuFFT call returned an
/// error. The message names the operation and the error the runtime reported.
class DeviceError : public std::runtime_error {
 public:
  explicit DeviceError(const std::string& what) : std::runtime_error("diffpm: " + what) {}
};

/// A run would not fit in the memory available to it. Thrown before anything is allocated, with
/// the bytes needed and available, so the caller can change the configuration.
class OutOfMemory : public std::runtime_error {
 public:
  explicit OutOfMemory(const std::string& what) : std::runtime_error("diffpm: " + what) {}
};

/// A file could not be read or written.
class IoError : public std::runtime_error {
 public:
  explicit IoError(const std::string& what) : std::runtime_error("diffpm: " + what) {}
};

}  // namespace diffpm
