// Connection scaling's decision (FetchTuning::max_connections, docs/pull.md "Connection
// scaling"), as a pure function of the measured windows so that it is tested without sockets or
// time. The fetch engine measures the bytes received over each `scale_window` of its Clock and
// asks NextScaleStep what to do. Internal to the downloader.
//
// The rule: the first window holds the connections' start and is only a warm-up. From the next
// one on, while every worker is busy and a range is left to split (`room`), the workers are
// doubled (up to `most`) as long as each step raises the rate by at least `gain` over the window
// before it; the first step that does not pay ends the scaling for good. A window without room
// tries nothing and is measured again before the next step.
#pragma once

#include <string>

namespace mc::downloader {

struct ScaleState {
  int workers = 0;
  int most = 0;
  double gain = 0.10;
  int windows = 0;      // windows measured so far
  double base = -1;     // bytes/s of the window before the last step; < 0: none
  bool scaling = true;  // false once `most` is reached or a step did not pay
};

// The state before the first window.
ScaleState StartScaling(int workers, int most, double gain);

struct ScaleStep {
  ScaleState state;  // after this window; state.workers is the count to have now
  std::string note;  // what was decided and why, for the debug log
};

// After a window with `rate` bytes/s; `room`: every worker was busy and a range could be split.
ScaleStep NextScaleStep(const ScaleState& state, double rate, bool room);

}  // namespace mc::downloader
