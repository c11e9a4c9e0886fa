// PullProgress: what `modelcache pull` shows while it runs, rendered from PullEvents.
//
// Three modes:
//   kTty    a progress area on `err` redrawn in place (\r, ANSI cursor-up, clear-line): a total
//           bar with percent, bytes, rate and ETA, then one line per file in flight. Finished
//           files and retries are printed as permanent lines above the area.
//   kPlain  no ANSI, for logs and pipes: one line per verified file, linked file and retry, and a
//           progress line at most every `plain_interval`.
//   kJson   one JSON object per line on `out` for every event, {"event": "plan" | "file_started" |
//           "progress" | "file_verified" | "file_linked" | "retry" | "done" | "error", ...}, with
//           snake_case keys and numbers as numbers. Nothing else goes to `out`.
// The summary (Finish) puts the snapshot path alone on `out` in the human modes, so that
// `dir=$(modelcache pull ...)` works, and the numbers on `err`.
//
// Pure: it writes to the streams it is given and takes the time and the terminal width as inputs,
// so tests drive it without a terminal or a clock. Messages and sources from the engine are passed
// through RedactSecrets() (defence in depth: tokens never reach the screen or a log). Not
// thread-safe: the caller serialises calls (Puller's observer already is).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "mc/common/status.h"
#include "mc/downloader/pull.h"

namespace mc::cli {

struct PullProgressOptions {
  enum class Mode { kTty, kPlain, kJson };
  Mode mode = Mode::kPlain;
  int width = 80;  // terminal columns (kTty); lines never reach the last column
  std::chrono::milliseconds plain_interval{5'000};
  std::string title;     // "org/name@main": what is pulled, for the human modes
  bool dry_run = false;  // events are ignored; PrintPlan() shows the result
};

class PullProgress {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  // `out` and `err` are borrowed and must outlive this object.
  PullProgress(PullProgressOptions options, std::ostream& out, std::ostream& err);

  // Renders one engine event that happened at `now`. kDone is held back until Finish(), which
  // adds the result to it.
  void OnEvent(const downloader::PullEvent& event, TimePoint now);
  // The terminal was resized (kTty).
  void SetWidth(int width) { options_.width = width; }
  // What is pulled, once the model reference is parsed.
  void SetTitle(std::string title) { options_.title = std::move(title); }

  // Success: clears the progress area, then the summary (human modes) or the "done" line (kJson).
  void Finish(const downloader::PullResult& result);
  // --dry-run: the plan as a table on `out` (human modes) or one "plan" event with the files and a
  // "done" event (kJson).
  void PrintPlan(const downloader::PullResult& result);
  // Failure: clears the progress area; kJson writes the final {"event": "error", ...} line. The
  // human modes print nothing here: main() prints the message on stderr.
  void Fail(const Status& status);

 private:
  void Track(const downloader::PullEvent& event);  // updates last_ and the files in flight
  void RenderTty(const downloader::PullEvent& event);
  void RenderPlain(const downloader::PullEvent& event, TimePoint now);
  // kTty: the cursor goes to the first line of the progress area, which is then free to overwrite.
  void MoveToAreaStart();
  void PrintAbove(const std::string& line);  // a permanent line, where the area was (kTty)
  std::vector<std::string> AreaLines() const;
  void DrawArea();
  void ClearArea();
  std::string Fit(const std::string& line) const;  // cut to the usable width (kTty)

  PullProgressOptions options_;
  std::ostream& out_;
  std::ostream& err_;
  downloader::PullEvent last_;  // the latest totals and files in flight
  bool planned_ = false;        // a kPlan event was seen: the totals mean something
  std::optional<downloader::PullEvent> done_;
  std::optional<TimePoint> last_plain_progress_;
  int area_lines_ = 0;  // lines of the progress area currently on screen (kTty)
};

// Formatting helpers, exposed for tests.

// "0:07", "12:34", "1:02:03"; "--:--" when unknown (no rate yet) or over 99 hours.
std::string FormatEta(uint64_t bytes_left, double bytes_per_second);
// "350.2 MB/s", "0 B/s".
std::string FormatRate(double bytes_per_second);
// "45%": done of total, rounded down; 100% when total is 0.
std::string FormatPercent(uint64_t done, uint64_t total);
// "[#####.....]" with `cells` cells between the brackets.
std::string Bar(uint64_t done, uint64_t total, int cells);
// Shortens `text` to at most `width` characters (UTF-8 code points) by replacing its start with
// "...", so the end of a file name (the extension, the shard number) stays visible.
std::string TruncateLeft(std::string_view text, int width);
// Replaces what looks like a credential: Hugging Face tokens (hf_ followed by 20+ letters or
// digits) become "hf_***", the value after "Bearer " becomes "***".
std::string RedactSecrets(std::string_view text);
// "NotFound", "PermissionDenied", ...: the code's name in the JSON error event.
std::string StatusCodeCamelName(StatusCode code);

}  // namespace mc::cli
