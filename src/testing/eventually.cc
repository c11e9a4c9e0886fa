#include "mc/testing/eventually.h"

#include <thread>

namespace mc::testing {

bool Eventually(const std::function<bool()>& predicate, std::chrono::milliseconds timeout) {
  constexpr auto kInterval = std::chrono::milliseconds(20);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(kInterval);
  }
  return true;
}

}  // namespace mc::testing
