#include "mc/common/clock.h"

namespace mc {
namespace {
class RealClock : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::system_clock::now(); }
};
}  // namespace

Clock& Clock::Real() {
  static RealClock clock;
  return clock;
}

int64_t ToUnixSeconds(Clock::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace mc
