// <Eigen/Dense> for tests. Eigen 3.4's matrix-vector kernels trip GCC 12's
// -Wmaybe-uninitialized (a false positive inside Eigen, not in the tests), so the warning is
// silenced for Eigen's own lines only.
#pragma once

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <Eigen/Dense>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
