/// \file
/// \brief Test helpers for command-line programs: run one as a separate process the way a user
/// or a script does (popen for stdout, stderr to a file, exit status from pclose).
#pragma once

#include <sys/wait.h>

#include <array>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace diffpm::test {

namespace fs = std::filesystem;

/// A fresh directory under the system temp dir, removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "diffpm-cli-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

/// Single-quotes an argument for /bin/sh, so that any text reaches the program verbatim.
inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

struct Result {
  int status = -1;  ///< exit code, or -1 if the program did not exit normally (crash, abort)
  std::string out, err;
};

/// Runs `exe` with `args` and collects stdout, stderr and the exit status.
inline Result run_program(const std::string& exe, const std::vector<std::string>& args) {
  static int counter = 0;
  const TempDir dir;
  const fs::path err_file = dir.path / ("stderr" + std::to_string(counter++));
  std::string cmd = shell_quote(exe);
  for (const auto& a : args) cmd += " " + shell_quote(a);
  cmd += " 2>" + shell_quote(err_file.string());

  Result r;
  FILE* pipe = popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buf;
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) r.out.append(buf.data(), n);
  const int wstatus = pclose(pipe);
  if (wstatus != -1 && WIFEXITED(wstatus)) r.status = WEXITSTATUS(wstatus);
  std::ifstream in(err_file);
  std::ostringstream ss;
  ss << in.rdbuf();
  r.err = ss.str();
  return r;
}

inline double parse_double(const std::string& s) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  INFO("field '" << s << "'");
  REQUIRE((!s.empty() && *end == '\0'));
  return v;
}

inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    const std::size_t p = s.find(sep, start);
    parts.push_back(s.substr(start, p == std::string::npos ? p : p - start));
    if (p == std::string::npos) return parts;
    start = p + 1;
  }
}

}  // namespace diffpm::test
