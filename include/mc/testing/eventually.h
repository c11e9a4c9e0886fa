// Eventually: the one wait of the integration tests for state that another thread or process
// changes and that offers nothing to wait on (a controller's view of its hosts, a job's status
// over HTTP). In mc_test_support (tests only).
#pragma once

#include <chrono>
#include <functional>

namespace mc::testing {

// Calls `predicate` until it returns true, every 20 ms, for at most `timeout`; returns whether it
// did. A true answer returns at once, so the timeout only bounds a failing test and never makes
// one pass: give it room for a slow machine (the default 30 s), never a measured time.
bool Eventually(const std::function<bool()>& predicate,
                std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace mc::testing
