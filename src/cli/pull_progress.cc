#include "pull_progress.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "exit_codes.h"
#include "format.h"
#include "mc/common/byte_count.h"

namespace mc::cli {
namespace {

using downloader::PlannedFile;
using downloader::PullEvent;
using downloader::PullResult;
using Json = nlohmann::ordered_json;  // keeps "event" first on every line

constexpr int kMinWidth = 20;
constexpr int kMaxFileLines = 10;  // files in flight shown in the area; the rest are counted
constexpr int kTotalBarCells = 30;
constexpr int kFileBarCells = 10;

const char* KindName(PullEvent::Kind kind) {
  switch (kind) {
    case PullEvent::Kind::kPlan:
      return "plan";
    case PullEvent::Kind::kFileStarted:
      return "file_started";
    case PullEvent::Kind::kProgress:
      return "progress";
    case PullEvent::Kind::kFileVerified:
      return "file_verified";
    case PullEvent::Kind::kFileLinked:
      return "file_linked";
    case PullEvent::Kind::kRetry:
      return "retry";
    case PullEvent::Kind::kDone:
      return "done";
  }
  return "unknown";
}

const char* ActionName(PlannedFile::Action action) {
  switch (action) {
    case PlannedFile::Action::kDone:
      return "present";
    case PlannedFile::Action::kLink:
      return "link";
    case PlannedFile::Action::kFetch:
      return "fetch";
  }
  return "unknown";
}

std::string Human(uint64_t bytes) { return ByteCount(bytes).ToHuman(); }

std::string Seconds(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f s", seconds);
  return buf;
}

size_t CodePoints(std::string_view text) {
  return std::count_if(text.begin(), text.end(),
                       [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

std::string Dump(const Json& j) {
  // Invalid UTF-8 (server text) is replaced instead of throwing.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

void AddTotals(Json& j, const PullEvent& e) {
  j["commit"] = e.commit;
  j["files_total"] = e.files_total;
  j["files_to_fetch"] = e.files_to_fetch;
  j["files_done"] = e.files_done;
  j["bytes_total"] = e.bytes_total;
  j["bytes_to_fetch"] = e.bytes_to_fetch;
  j["bytes_done"] = e.bytes_done;
  j["rate_bytes_per_second"] = e.rate_bytes_per_second;
}

Json EventJson(const PullEvent& e) {
  Json j;
  j["event"] = KindName(e.kind);
  switch (e.kind) {
    case PullEvent::Kind::kFileStarted:
    case PullEvent::Kind::kFileLinked:
      j["path"] = e.path;
      j["etag"] = e.etag;
      j["size"] = e.size;
      break;
    case PullEvent::Kind::kFileVerified:
      j["path"] = e.path;
      j["etag"] = e.etag;
      j["size"] = e.size;
      j["source"] = RedactSecrets(e.source);
      break;
    case PullEvent::Kind::kRetry:
      j["path"] = e.path;
      j["source"] = RedactSecrets(e.source);
      j["message"] = RedactSecrets(e.message);
      j["wait_ms"] = e.wait.count();
      break;
    case PullEvent::Kind::kProgress: {
      Json files = Json::array();
      for (const auto& f : e.files) {
        files.push_back({{"path", f.path}, {"done", f.done}, {"size", f.size}});
      }
      j["files"] = std::move(files);
      break;
    }
    case PullEvent::Kind::kPlan:
    case PullEvent::Kind::kDone:
      break;
  }
  AddTotals(j, e);
  return j;
}

Json ResultJson(const PullResult& r) {
  Json by_source = Json::object();
  for (const auto& [source, bytes] : r.bytes_by_source) by_source[RedactSecrets(source)] = bytes;
  return {{"repo", r.repo.id()},
          {"repo_type", std::string(RepoTypeName(r.repo.type()))},
          {"snapshot_path", r.snapshot_dir.string()},
          {"files_fetched", r.files_fetched},
          {"files_linked", r.files_linked},
          {"bytes_fetched", r.bytes_fetched},
          {"bytes_resumed", r.bytes_resumed},
          {"bytes_by_source", std::move(by_source)},
          {"retries", r.retries},
          {"connections", r.connections},
          {"seconds", r.seconds}};
}

// "45%  1.2 GB / 2.7 GB  350.2 MB/s  ETA 0:04  3/12 files"
std::string TotalsText(const PullEvent& e) {
  uint64_t left = e.bytes_to_fetch > e.bytes_done ? e.bytes_to_fetch - e.bytes_done : 0;
  return FormatPercent(e.bytes_done, e.bytes_to_fetch) + "  " + Human(e.bytes_done) + " / " +
         Human(e.bytes_to_fetch) + "  " + FormatRate(e.rate_bytes_per_second) + "  ETA " +
         FormatEta(left, e.rate_bytes_per_second) + "  " + std::to_string(e.files_done) + "/" +
         std::to_string(e.files_total) + " files";
}

std::string PlanText(const std::string& title, const PullEvent& e) {
  std::string text = "Pulling " + (title.empty() ? std::string("model") : title);
  if (!e.commit.empty()) text += " (commit " + e.commit.substr(0, 12) + ")";
  text += ": " + std::to_string(e.files_total) + " file(s), " + Human(e.bytes_total);
  if (e.files_to_fetch == 0) return text + "; nothing to download";
  return text + "; fetching " + std::to_string(e.files_to_fetch) + " file(s), " +
         Human(e.bytes_to_fetch);
}

// Engine text for the human modes: no credential, no control character (no escape sequence from
// a server can reach the terminal).
std::string Safe(std::string_view text) {
  std::string out = RedactSecrets(text);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return out;
}

// The permanent line for a file or retry event; "" for the other kinds.
std::string EventLine(const PullEvent& e) {
  switch (e.kind) {
    case PullEvent::Kind::kFileVerified: {
      std::string line = "fetched  " + e.path + "  " + Human(e.size);
      if (!e.source.empty() && e.source != "upstream") line += "  from " + Safe(e.source);
      return line;
    }
    case PullEvent::Kind::kFileLinked:
      return "linked   " + e.path + "  " + Human(e.size) + "  (already in the cache)";
    case PullEvent::Kind::kRetry: {
      std::string line =
          "retry    " + (e.path.empty() ? std::string("request") : e.path) + ": " + Safe(e.message);
      if (!e.source.empty()) line += " (" + Safe(e.source) + ")";
      char wait[32];
      std::snprintf(wait, sizeof(wait), "%.1f s", e.wait.count() / 1000.0);
      return line + "; trying again in " + wait;
    }
    default:
      return "";
  }
}

}  // namespace

PullProgress::PullProgress(PullProgressOptions options, std::ostream& out, std::ostream& err)
    : options_(std::move(options)), out_(out), err_(err) {}

void PullProgress::OnEvent(const PullEvent& event, TimePoint now) {
  if (options_.dry_run) return;  // PrintPlan() shows the whole result
  if (event.kind == PullEvent::Kind::kDone) {
    done_ = event;
    return;
  }
  switch (options_.mode) {
    case PullProgressOptions::Mode::kJson:
      out_ << Dump(EventJson(event)) << "\n" << std::flush;
      break;
    case PullProgressOptions::Mode::kPlain:
      RenderPlain(event, now);
      break;
    case PullProgressOptions::Mode::kTty:
      RenderTty(event);
      break;
  }
}

void PullProgress::Track(const PullEvent& event) {
  std::vector<PullEvent::FileProgress> in_flight = std::move(last_.files);
  if (event.kind == PullEvent::Kind::kProgress) in_flight = event.files;
  if (event.kind == PullEvent::Kind::kFileStarted) {
    in_flight.push_back({event.path, 0, event.size});
  }
  if (event.kind == PullEvent::Kind::kFileVerified) {
    std::erase_if(in_flight, [&](const auto& f) { return f.path == event.path; });
  }
  last_ = event;
  last_.files = std::move(in_flight);
  planned_ = planned_ || event.kind == PullEvent::Kind::kPlan;
}

void PullProgress::RenderPlain(const PullEvent& event, TimePoint now) {
  Track(event);
  if (!last_plain_progress_) last_plain_progress_ = now;
  if (event.kind == PullEvent::Kind::kPlan) {
    err_ << PlanText(options_.title, event) << "\n" << std::flush;
    return;
  }
  if (event.kind == PullEvent::Kind::kProgress) {
    if (now - *last_plain_progress_ < options_.plain_interval) return;
    last_plain_progress_ = now;
    err_ << "progress " << TotalsText(event) << "\n" << std::flush;
    return;
  }
  std::string line = EventLine(event);
  if (!line.empty()) err_ << line << "\n" << std::flush;
}

void PullProgress::RenderTty(const PullEvent& event) {
  Track(event);
  if (event.kind == PullEvent::Kind::kPlan) {
    PrintAbove(PlanText(options_.title, event));
  } else if (std::string line = EventLine(event); !line.empty()) {
    PrintAbove(line);
  }
  DrawArea();
}

void PullProgress::MoveToAreaStart() {
  err_ << "\r";
  if (area_lines_ > 0) err_ << "\x1b[" << area_lines_ << "A";
  area_lines_ = 0;
}

void PullProgress::PrintAbove(const std::string& line) {
  MoveToAreaStart();
  err_ << "\x1b[2K" << line << "\n";
}

std::vector<std::string> PullProgress::AreaLines() const {
  std::vector<std::string> lines;
  if (!planned_ || last_.bytes_to_fetch == 0) return lines;
  const int usable = std::max(options_.width - 1, kMinWidth);
  std::string totals = TotalsText(last_);
  int cells = std::min<int>(kTotalBarCells, usable - static_cast<int>(totals.size()) - 4);
  lines.push_back(Fit(
      cells >= 5 ? Bar(last_.bytes_done, last_.bytes_to_fetch, cells) + "  " + totals : totals));
  int shown = 0;
  for (const auto& f : last_.files) {
    if (shown++ == kMaxFileLines) {
      lines.push_back(
          Fit("  ... and " + std::to_string(last_.files.size() - kMaxFileLines) + " more file(s)"));
      break;
    }
    // "  <name>  [#####.....]  37%"
    std::string percent = FormatPercent(f.done, f.size);
    percent.insert(0, 4 - std::min<size_t>(4, percent.size()), ' ');  // "  7%", "100%"
    std::string tail = "  " + Bar(f.done, f.size, kFileBarCells) + "  " + percent;
    int name_width = usable - 2 - static_cast<int>(tail.size());
    if (name_width < 8) tail = "  " + percent;
    name_width = usable - 2 - static_cast<int>(tail.size());
    std::string name = TruncateLeft(f.path, std::max(name_width, 4));
    name.append(std::max<int>(0, name_width - static_cast<int>(CodePoints(name))), ' ');
    lines.push_back(Fit("  " + name + tail));
  }
  return lines;
}

void PullProgress::DrawArea() {
  MoveToAreaStart();
  std::vector<std::string> lines = AreaLines();
  for (const auto& line : lines) err_ << "\x1b[2K" << line << "\n";
  err_ << "\x1b[J" << std::flush;  // whatever the previous, longer area left below
  area_lines_ = static_cast<int>(lines.size());
}

void PullProgress::ClearArea() {
  if (options_.mode != PullProgressOptions::Mode::kTty) return;
  MoveToAreaStart();
  err_ << "\x1b[J" << std::flush;
}

std::string PullProgress::Fit(const std::string& line) const {
  const int usable = std::max(options_.width - 1, kMinWidth);
  if (static_cast<int>(CodePoints(line)) <= usable) return line;
  // Cut at a code point boundary.
  int kept = 0;
  size_t i = 0;
  for (; i < line.size(); ++i) {
    if ((static_cast<unsigned char>(line[i]) & 0xC0) != 0x80 && kept++ == usable) break;
  }
  return line.substr(0, i);
}

void PullProgress::Finish(const PullResult& result) {
  ClearArea();
  if (options_.mode == PullProgressOptions::Mode::kJson) {
    Json j;
    j["event"] = "done";
    if (done_) AddTotals(j, *done_);
    j["commit"] = result.commit.str();
    Json summary = ResultJson(result);
    for (auto& [key, value] : summary.items()) j[key] = value;
    out_ << Dump(j) << "\n" << std::flush;
    return;
  }
  int present = 0;
  for (const auto& f : result.plan.files) present += f.action == PlannedFile::Action::kDone;
  double rate = result.seconds > 0 ? result.bytes_fetched / result.seconds : 0;
  err_ << "Pulled " << (options_.title.empty() ? result.repo.id() : options_.title) << " (commit "
       << result.commit.str().substr(0, 12) << "): " << result.plan.files.size()
       << " file(s): " << result.files_fetched << " fetched, " << result.files_linked << " linked, "
       << present << " already there; " << Human(result.bytes_fetched) << " in "
       << Seconds(result.seconds) << ", " << FormatRate(rate) << ", " << result.retries << " retr"
       << (result.retries == 1 ? "y" : "ies");
  if (result.connections > 0) err_ << ", " << result.connections << " connection(s)";
  err_ << "\n";
  for (const auto& [source, bytes] : result.bytes_by_source) {
    err_ << "  from " << Safe(source) << ": " << Human(bytes) << "\n";
  }
  if (result.bytes_resumed > 0) {
    err_ << "  resumed: " << Human(result.bytes_resumed)
         << " already on disk from an interrupted pull\n";
  }
  err_ << std::flush;
  out_ << result.snapshot_dir.string() << "\n" << std::flush;
}

void PullProgress::PrintPlan(const PullResult& result) {
  const downloader::DownloadPlan& plan = result.plan;
  if (options_.mode == PullProgressOptions::Mode::kJson) {
    Json files = Json::array();
    for (const auto& f : plan.files) {
      files.push_back({{"path", f.file.path.str()},
                       {"size", f.file.size},
                       {"etag", f.file.etag.str()},
                       {"action", ActionName(f.action)}});
    }
    Json j = {{"event", "plan"},
              {"dry_run", true},
              {"repo", plan.repo.id()},
              {"commit", plan.commit.str()},
              {"files_total", plan.files.size()},
              {"files_to_fetch", plan.files_to_fetch},
              {"bytes_total", plan.bytes_total},
              {"bytes_to_fetch", plan.bytes_to_fetch},
              {"files", std::move(files)}};
    out_ << Dump(j) << "\n";
    Json done = {{"event", "done"}, {"dry_run", true}, {"commit", plan.commit.str()}};
    Json summary = ResultJson(result);
    for (auto& [key, value] : summary.items()) done[key] = value;
    out_ << Dump(done) << "\n" << std::flush;
    return;
  }
  int links = 0, present = 0;
  Table table({"FILE", "SIZE", "ACTION"});
  for (const auto& f : plan.files) {
    links += f.action == PlannedFile::Action::kLink;
    present += f.action == PlannedFile::Action::kDone;
    table.AddRow({f.file.path.str(), Human(f.file.size), ActionName(f.action)});
  }
  out_ << (options_.title.empty() ? plan.repo.id() : options_.title) << " = commit "
       << plan.commit.str() << "\n\n";
  table.Print(out_);
  out_ << "\n"
       << plan.files.size() << " file(s), " << Human(plan.bytes_total) << ": fetch "
       << plan.files_to_fetch << " (" << Human(plan.bytes_to_fetch) << "), link " << links
       << ", present " << present << ".\nDry run: nothing was written.\n"
       << std::flush;
}

void PullProgress::Fail(const Status& status) {
  ClearArea();
  if (options_.mode != PullProgressOptions::Mode::kJson) return;
  Json j = {{"event", "error"},
            {"code", StatusCodeCamelName(status.code())},
            {"exit_code", ExitCodeFor(status)},
            {"message", RedactSecrets(status.message())}};
  out_ << Dump(j) << "\n" << std::flush;
}

std::string FormatEta(uint64_t bytes_left, double bytes_per_second) {
  if (bytes_left == 0) return "0:00";
  if (!(bytes_per_second > 0)) return "--:--";
  double secs = std::ceil(static_cast<double>(bytes_left) / bytes_per_second);
  if (secs >= 99.0 * 3600) return "--:--";
  auto s = static_cast<uint64_t>(secs);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof(buf), "%llu:%02llu:%02llu", static_cast<unsigned long long>(s / 3600),
                  static_cast<unsigned long long>(s / 60 % 60),
                  static_cast<unsigned long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof(buf), "%llu:%02llu", static_cast<unsigned long long>(s / 60),
                  static_cast<unsigned long long>(s % 60));
  }
  return buf;
}

std::string FormatRate(double bytes_per_second) {
  if (!(bytes_per_second > 0)) return "0 B/s";
  return Human(static_cast<uint64_t>(bytes_per_second)) + "/s";
}

std::string FormatPercent(uint64_t done, uint64_t total) {
  if (total == 0 || done >= total) return "100%";
  return std::to_string(static_cast<int>(static_cast<long double>(done) * 100 / total)) + "%";
}

std::string Bar(uint64_t done, uint64_t total, int cells) {
  int filled = cells;
  if (total > 0 && done < total) {
    filled = static_cast<int>(static_cast<long double>(done) * cells / total);
  }
  return "[" + std::string(filled, '#') + std::string(cells - filled, '.') + "]";
}

std::string TruncateLeft(std::string_view text, int width) {
  const int count = static_cast<int>(CodePoints(text));
  if (count <= width) return std::string(text);
  if (width <= 0) return "";
  const std::string_view dots = width > 3 ? "..." : "";
  int drop = count - (width - static_cast<int>(dots.size()));
  // Skip `drop` code points from the start.
  size_t i = 0;
  for (int seen = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80 && seen++ == drop) break;
  }
  return std::string(dots) + std::string(text.substr(i));
}

std::string RedactSecrets(std::string_view text) {
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  auto ieq = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) ==
                    std::tolower(static_cast<unsigned char>(y));
           });
  };
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 3, "hf_") == 0 && (i == 0 || !alnum(text[i - 1]))) {
      size_t end = i + 3;
      while (end < text.size() && alnum(text[end])) ++end;
      if (end - i - 3 >= 20) {
        out += "hf_***";
        i = end;
        continue;
      }
    }
    if (i + 7 <= text.size() && ieq(text.substr(i, 7), "bearer ")) {
      size_t end = i + 7;
      while (end < text.size() && text[end] == ' ') ++end;
      size_t value_end = end;
      while (value_end < text.size() &&
             !std::isspace(static_cast<unsigned char>(text[value_end])) && text[value_end] != '"' &&
             text[value_end] != '\'') {
        ++value_end;
      }
      if (value_end > end) {
        out.append(text.substr(i, 7));
        out += "***";
        i = value_end;
        continue;
      }
    }
    out += text[i++];
  }
  return out;
}

std::string StatusCodeCamelName(StatusCode code) {
  std::string_view snake = StatusCodeName(code);
  std::string camel;
  bool upper = true;
  for (char c : snake) {
    if (c == '_') {
      upper = true;
      continue;
    }
    camel += upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
    upper = false;
  }
  return camel;
}

}  // namespace mc::cli
