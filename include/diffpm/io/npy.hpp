/// \file
/// \brief Writing and reading NumPy .npy arrays (format version 1.0, little-endian, C order).
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <type_traits>
#include <vector>

#include "diffpm/core/error.hpp"
#include "diffpm/io/atomic_file.hpp"

namespace diffpm::io {

namespace detail {
template <class T>
constexpr const char* npy_descr() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "npy: only float and double arrays are supported");
  return std::is_same_v<T, float> ? "<f4" : "<f8";
}

inline std::string npy_shape(const std::vector<std::size_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += std::to_string(shape[i]) + ", ";
  if (shape.size() > 1)
    s.erase(s.size() - 2);  // "(n, m)"; a 1-tuple keeps its comma: "(n,)"
  else if (shape.size() == 1)
    s.erase(s.size() - 1);
  return s + ")";
}
}  // namespace detail

/// Writes `count` values of type T with the given C-order shape to a .npy file, atomically
/// (io::write_atomically). The header follows the NumPy format specification, version 1.0:
/// magic "\x93NUMPY", version 1.0, a little-endian uint16 header length, and a Python dict
/// literal padded with spaces and a newline so that the data starts at a multiple of 64 bytes.
template <class T>
void write_npy(const std::string& path, const T* data, const std::vector<std::size_t>& shape) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "npy: float or double");
  std::size_t count = 1;
  for (std::size_t n : shape) count *= n;
  std::string dict = std::string("{'descr': '") + detail::npy_descr<T>() +
                     "', 'fortran_order': False, 'shape': " + detail::npy_shape(shape) + ", }";
  const std::size_t preamble = 10;
  std::size_t total = preamble + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  if (dict.size() > 65535) throw InvalidArgument("npy: header too long for format 1.0");
  write_atomically(path, [&](std::ofstream& out) {
    const unsigned char magic[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
    out.write(reinterpret_cast<const char*>(magic), 8);
    const std::uint16_t len = static_cast<std::uint16_t>(dict.size());
    const unsigned char len_le[2] = {static_cast<unsigned char>(len & 0xff),
                                     static_cast<unsigned char>(len >> 8)};
    out.write(reinterpret_cast<const char*>(len_le), 2);
    out.write(dict.data(), static_cast<std::streamsize>(dict.size()));
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(count * sizeof(T)));
  });
}

/// Reads a .npy file written by write_npy (or NumPy) holding float or double data in C order.
/// Returns the data converted to T and fills `shape`. Throws IoError for unreadable files and
/// InvalidArgument (naming the file) for a format it does not handle.
template <class T>
std::vector<T> read_npy(const std::string& path, std::vector<std::size_t>& shape) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open '" + path + "' for reading");
  char magic[10];
  in.read(magic, 10);
  if (!in || std::memcmp(magic, "\x93NUMPY", 6) != 0 || magic[6] != 1) {
    throw InvalidArgument("'" + path + "' is not a version-1 .npy file");
  }
  const std::size_t len = static_cast<unsigned char>(magic[8]) |
                          (static_cast<std::size_t>(static_cast<unsigned char>(magic[9])) << 8);
  std::string header(len, ' ');
  in.read(header.data(), static_cast<std::streamsize>(len));
  const bool is_f4 = header.find("'<f4'") != std::string::npos;
  const bool is_f8 = header.find("'<f8'") != std::string::npos;
  if (!(is_f4 || is_f8) || header.find("'fortran_order': False") == std::string::npos) {
    throw InvalidArgument("'" + path +
                          "': only little-endian float32/float64 C-order arrays are read");
  }
  const auto open = header.find('(', header.find("'shape'")), close = header.find(')', open);
  shape.clear();
  std::size_t count = 1;
  for (std::size_t pos = open + 1; pos < close;) {
    const std::size_t end = std::min(header.find(',', pos), close);
    const std::string item = header.substr(pos, end - pos);
    if (item.find_first_not_of(' ') != std::string::npos) {
      shape.push_back(std::stoull(item));
      count *= shape.back();
    }
    pos = end + 1;
  }
  std::vector<T> out(count);
  if (is_f4) {
    std::vector<float> raw(count);
    in.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(count * 4));
    for (std::size_t i = 0; i < count; ++i) out[i] = static_cast<T>(raw[i]);
  } else {
    std::vector<double> raw(count);
    in.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(count * 8));
    for (std::size_t i = 0; i < count; ++i) out[i] = static_cast<T>(raw[i]);
  }
  if (!in) throw IoError("'" + path + "' is shorter than its header says");
  return out;
}

}  // namespace diffpm::io
