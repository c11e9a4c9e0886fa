#include "downloader/connection_scaling.h"

#include <algorithm>
#include <cstdio>

namespace mc::downloader {

namespace {

std::string Note(const ScaleState& s, double rate, const char* what) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%d connections: %.1f MB/s%s", s.workers, rate / 1e6, what);
  return buf;
}

}  // namespace

ScaleState StartScaling(int workers, int most, double gain) {
  ScaleState s;
  s.workers = workers;
  s.most = most;
  s.gain = gain;
  s.scaling = workers < most;
  return s;
}

ScaleStep NextScaleStep(const ScaleState& state, double rate, bool room) {
  ScaleStep step{state, ""};
  ScaleState& s = step.state;
  // The first window has the connections' start in it: it is the baseline's warm-up only.
  if (++s.windows == 1 || !s.scaling) {
    step.note = Note(s, rate, "");
    return step;
  }
  if (s.base >= 0 && rate < s.base * (1 + s.gain)) {  // the last step did not pay
    step.note = Note(s, rate, ", not enough more than before: no more");
    s.scaling = false;
    return step;
  }
  s.base = rate;
  // More workers help only when all are busy and there is a range left to split.
  if (!room) {
    step.note = Note(s, rate, "; an idle worker or no range to split: measure again");
    s.base = -1;  // nothing was tried: measure again before the next step
    return step;
  }
  const int next = std::min(s.most, 2 * s.workers);
  step.note = Note(s, rate, ("; trying " + std::to_string(next)).c_str());
  s.workers = next;
  s.scaling = next < s.most;
  return step;
}

}  // namespace mc::downloader
