// Smallest useful program against diffpm: proves the installed headers, include paths and
// link dependencies work for a downstream project.
#include <diffpm/diffpm.hpp>
#include <iostream>

int main() {
  try {
    throw diffpm::InvalidArgument("consumer check");
  } catch (const diffpm::InvalidArgument& e) {
    std::cout << "OK (" << e.what() << ")\n";
    return 0;
  }
}
