// PullProgress without a terminal, an engine or a clock: events in, text out.
#include "pull_progress.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

namespace mc::cli {
namespace {

using downloader::PullEvent;
using downloader::PullResult;
using Kind = PullEvent::Kind;
using Mode = PullProgressOptions::Mode;
using namespace std::chrono_literals;

constexpr char kToken[] = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";
constexpr char kCommit[] = "0123456789abcdef0123456789abcdef01234567";

PullEvent Totals(Kind kind) {
  PullEvent e;
  e.kind = kind;
  e.commit = kCommit;
  e.files_total = 3;
  e.files_to_fetch = 2;
  e.bytes_total = 300'000'000;
  e.bytes_to_fetch = 200'000'000;
  return e;
}

PullEvent FileEvent(Kind kind, const std::string& path, uint64_t size) {
  PullEvent e = Totals(kind);
  e.path = path;
  e.etag = std::string(64, 'a');
  e.size = size;
  return e;
}

PullEvent Progress(uint64_t done, double rate, std::vector<PullEvent::FileProgress> files = {}) {
  PullEvent e = Totals(Kind::kProgress);
  e.bytes_done = done;
  e.rate_bytes_per_second = rate;
  e.files = std::move(files);
  return e;
}

PullEvent Retry(const std::string& message) {
  PullEvent e = Totals(Kind::kRetry);
  e.path = "model.safetensors";
  e.source = "127.0.0.1";
  e.message = message;
  e.wait = 1500ms;
  return e;
}

PullResult Result() {
  auto repo = RepoId::Parse("org/model");
  auto commit = CommitSha::Parse(kCommit);
  PullResult r{*repo,
               *commit,
               "/cache/models--org--model/snapshots/" + std::string(kCommit),
               downloader::DownloadPlan{*repo, *commit, std::nullopt, {}, 0, 0, 0},
               0,
               0,
               0,
               0,
               {},
               0,
               0};
  for (auto [path, size, action] :
       {std::tuple{"config.json", 700, downloader::PlannedFile::Action::kFetch},
        std::tuple{"model.safetensors", 200'000'000, downloader::PlannedFile::Action::kFetch},
        std::tuple{"tokenizer.json", 100'000'000, downloader::PlannedFile::Action::kLink}}) {
    r.plan.files.push_back(downloader::PlannedFile{
        downloader::RemoteFile{*RepoFilePath::Parse(path), *Etag::Parse(std::string(64, 'b')),
                               static_cast<uint64_t>(size)},
        action});
  }
  r.plan.bytes_total = 300'000'700;
  r.plan.bytes_to_fetch = 200'000'700;
  r.plan.files_to_fetch = 2;
  r.files_fetched = 2;
  r.files_linked = 1;
  r.bytes_fetched = 200'000'700;
  r.bytes_by_source = {{"upstream", 150'000'000}, {"http://peer:8765", 50'000'700}};
  r.retries = 1;
  r.seconds = 2.0;
  return r;
}

struct Rendered {
  std::ostringstream out, err;
  PullProgress progress;
  PullProgress::TimePoint t0 = PullProgress::TimePoint(1000s);

  explicit Rendered(Mode mode, int width = 80, bool dry_run = false)
      : progress(PullProgressOptions{mode, width, 5000ms, "org/model@main", dry_run}, out, err) {}
  void At(std::chrono::milliseconds offset, const PullEvent& event) {
    progress.OnEvent(event, t0 + offset);
  }
};

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<nlohmann::json> JsonLines(const std::string& text) {
  std::vector<nlohmann::json> events;
  for (const std::string& line : Lines(text)) {
    events.push_back(nlohmann::json::parse(line, nullptr, false));
  }
  return events;
}

TEST(FormatTest, EtaIsMinutesAndSecondsOrHours) {
  EXPECT_EQ(FormatEta(7'000'000, 1'000'000), "0:07");
  EXPECT_EQ(FormatEta(754'000'000, 1'000'000), "12:34");
  EXPECT_EQ(FormatEta(3'723'000'000ull, 1'000'000), "1:02:03");
  EXPECT_EQ(FormatEta(1, 1'000'000), "0:01");  // rounded up: never 0:00 while bytes are left
  EXPECT_EQ(FormatEta(0, 0), "0:00");
}

TEST(FormatTest, EtaIsUnknownWithoutARateOrWhenAbsurd) {
  EXPECT_EQ(FormatEta(1000, 0), "--:--");
  EXPECT_EQ(FormatEta(1'000'000'000'000ull, 1), "--:--");
}

TEST(FormatTest, RateAndPercentAndBar) {
  EXPECT_EQ(FormatRate(350'200'000), "350.2 MB/s");
  EXPECT_EQ(FormatRate(0), "0 B/s");
  EXPECT_EQ(FormatPercent(45, 100), "45%");
  EXPECT_EQ(FormatPercent(999, 1000), "99%");  // never 100% before the end
  EXPECT_EQ(FormatPercent(0, 0), "100%");
  EXPECT_EQ(Bar(5, 10, 10), "[#####.....]");
  EXPECT_EQ(Bar(0, 0, 4), "[####]");
}

TEST(FormatTest, TruncateLeftKeepsTheEndOfTheName) {
  EXPECT_EQ(TruncateLeft("model-00001-of-00004.safetensors", 20), "...00004.safetensors");
  EXPECT_EQ(TruncateLeft("short.json", 20), "short.json");
  // Code points, not bytes: no UTF-8 sequence is cut.
  EXPECT_EQ(TruncateLeft("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9.bin", 8), "...\xc3\xa9.bin");
}

TEST(FormatTest, RedactSecretsHidesTokensAndBearerValues) {
  EXPECT_EQ(RedactSecrets(std::string("token ") + kToken + " refused"), "token hf_*** refused");
  EXPECT_EQ(RedactSecrets("Authorization: Bearer abc.def"), "Authorization: Bearer ***");
  EXPECT_EQ(RedactSecrets("hf_model_v2.bin stays"), "hf_model_v2.bin stays");
}

TEST(FormatTest, StatusCodeNamesAreCamelCase) {
  EXPECT_EQ(StatusCodeCamelName(StatusCode::kNotFound), "NotFound");
  EXPECT_EQ(StatusCodeCamelName(StatusCode::kPermissionDenied), "PermissionDenied");
}

TEST(PlainProgressTest, PrintsOneLinePerFileAndRetryWithoutAnsi) {
  Rendered r(Mode::kPlain);
  r.At(0ms, Totals(Kind::kPlan));
  r.At(1ms, FileEvent(Kind::kFileStarted, "model.safetensors", 200'000'000));
  r.At(2ms, FileEvent(Kind::kFileLinked, "tokenizer.json", 100'000'000));
  r.At(3ms, Retry("connection reset"));
  PullEvent verified = FileEvent(Kind::kFileVerified, "model.safetensors", 200'000'000);
  verified.source = "upstream";
  r.At(4ms, verified);
  auto lines = Lines(r.err.str());
  ASSERT_EQ(lines.size(), 4u) << r.err.str();
  EXPECT_NE(lines[0].find("org/model@main"), std::string::npos);
  EXPECT_NE(lines[0].find("fetching 2 file(s), 200.0 MB"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[1], "linked   tokenizer.json  100.0 MB  (already in the cache)");
  EXPECT_EQ(lines[2],
            "retry    model.safetensors: connection reset (127.0.0.1); trying again in 1.5 s");
  EXPECT_EQ(lines[3], "fetched  model.safetensors  200.0 MB");
  EXPECT_EQ(r.err.str().find('\x1b'), std::string::npos);
  EXPECT_EQ(r.out.str(), "");
}

TEST(PlainProgressTest, PrintsProgressAtMostEveryInterval) {
  Rendered r(Mode::kPlain);
  r.At(0ms, Totals(Kind::kPlan));
  r.At(1000ms, Progress(10'000'000, 10'000'000));
  r.At(4999ms, Progress(50'000'000, 10'000'000));
  r.At(5000ms, Progress(100'000'000, 20'000'000));
  r.At(9000ms, Progress(150'000'000, 20'000'000));
  r.At(10'000ms, Progress(180'000'000, 20'000'000));
  auto lines = Lines(r.err.str());
  ASSERT_EQ(lines.size(), 3u) << r.err.str();
  EXPECT_EQ(lines[1], "progress 50%  100.0 MB / 200.0 MB  20.0 MB/s  ETA 0:05  0/3 files");
  EXPECT_EQ(lines[2], "progress 90%  180.0 MB / 200.0 MB  20.0 MB/s  ETA 0:01  0/3 files");
}

TEST(PlainProgressTest, SummaryPutsOnlyThePathOnStdout) {
  Rendered r(Mode::kPlain);
  r.At(0ms, Totals(Kind::kPlan));
  r.At(1ms, Totals(Kind::kDone));
  r.progress.Finish(Result());
  EXPECT_EQ(r.out.str(), "/cache/models--org--model/snapshots/" + std::string(kCommit) + "\n");
  std::string err = r.err.str();
  EXPECT_NE(err.find("3 file(s): 2 fetched, 1 linked, 0 already there; 200.0 MB in 2.0 s, "
                     "100.0 MB/s, 1 retry"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("from upstream: 150.0 MB"), std::string::npos) << err;
  EXPECT_NE(err.find("from http://peer:8765: 50.0 MB"), std::string::npos) << err;
}

TEST(JsonProgressTest, EveryEventIsOneParseableLineWithItsFields) {
  Rendered r(Mode::kJson);
  r.At(0ms, Totals(Kind::kPlan));
  r.At(1ms, FileEvent(Kind::kFileStarted, "model.safetensors", 200'000'000));
  r.At(2ms, Progress(50'000'000, 25'000'000, {{"model.safetensors", 50'000'000, 200'000'000}}));
  r.At(3ms, Retry("HTTP 503"));
  PullEvent verified = FileEvent(Kind::kFileVerified, "model.safetensors", 200'000'000);
  verified.source = "upstream";
  r.At(4ms, verified);
  r.At(5ms, FileEvent(Kind::kFileLinked, "tokenizer.json", 100'000'000));
  r.At(6ms, Totals(Kind::kDone));
  r.progress.Finish(Result());
  EXPECT_EQ(r.err.str(), "");
  auto events = JsonLines(r.out.str());
  ASSERT_EQ(events.size(), 7u) << r.out.str();
  std::vector<std::string> kinds;
  for (const auto& e : events) {
    ASSERT_TRUE(e.is_object());
    kinds.push_back(e["event"]);
    EXPECT_EQ(e["commit"], kCommit);
    EXPECT_EQ(e["bytes_to_fetch"], 200'000'000);
    EXPECT_TRUE(e["files_total"].is_number());
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"plan", "file_started", "progress", "retry",
                                             "file_verified", "file_linked", "done"}));
  EXPECT_EQ(events[1]["path"], "model.safetensors");
  EXPECT_EQ(events[1]["size"], 200'000'000);
  EXPECT_EQ(events[2]["bytes_done"], 50'000'000);
  EXPECT_EQ(events[2]["rate_bytes_per_second"], 25'000'000.0);
  EXPECT_EQ(events[2]["files"][0]["done"], 50'000'000);
  EXPECT_EQ(events[3]["message"], "HTTP 503");
  EXPECT_EQ(events[3]["wait_ms"], 1500);
  EXPECT_EQ(events[4]["source"], "upstream");
  EXPECT_EQ(events[4]["etag"], std::string(64, 'a'));
  EXPECT_EQ(events[6]["snapshot_path"],
            "/cache/models--org--model/snapshots/" + std::string(kCommit));
  EXPECT_EQ(events[6]["bytes_by_source"]["upstream"], 150'000'000);
  EXPECT_EQ(events[6]["files_fetched"], 2);
  EXPECT_EQ(events[6]["retries"], 1);
}

TEST(JsonProgressTest, FailureIsAFinalErrorEvent) {
  Rendered r(Mode::kJson);
  r.At(0ms, Totals(Kind::kPlan));
  r.progress.Fail(NotFoundError("model org/x not found"));
  auto events = JsonLines(r.out.str());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1]["event"], "error");
  EXPECT_EQ(events[1]["code"], "NotFound");
  EXPECT_EQ(events[1]["exit_code"], 3);
  EXPECT_EQ(events[1]["message"], "model org/x not found");
}

TEST(JsonProgressTest, DryRunIsOnePlanWithTheFilesThenDone) {
  Rendered r(Mode::kJson, 80, /*dry_run=*/true);
  r.At(0ms, Totals(Kind::kPlan));  // ignored: the plan comes from the result
  r.progress.PrintPlan(Result());
  auto events = JsonLines(r.out.str());
  ASSERT_EQ(events.size(), 2u) << r.out.str();
  EXPECT_EQ(events[0]["event"], "plan");
  EXPECT_EQ(events[0]["dry_run"], true);
  ASSERT_EQ(events[0]["files"].size(), 3u);
  EXPECT_EQ(events[0]["files"][1]["path"], "model.safetensors");
  EXPECT_EQ(events[0]["files"][1]["action"], "fetch");
  EXPECT_EQ(events[0]["files"][2]["action"], "link");
  EXPECT_EQ(events[1]["event"], "done");
}

TEST(DryRunTest, PrintsATableWithActionsAndTotals) {
  Rendered r(Mode::kPlain, 80, /*dry_run=*/true);
  r.progress.PrintPlan(Result());
  std::string out = r.out.str();
  EXPECT_NE(out.find("model.safetensors  200.0 MB  fetch"), std::string::npos) << out;
  EXPECT_NE(out.find("tokenizer.json     100.0 MB  link"), std::string::npos) << out;
  EXPECT_NE(out.find("3 file(s), 300.0 MB: fetch 2 (200.0 MB), link 1, present 0"),
            std::string::npos)
      << out;
  EXPECT_EQ(r.err.str(), "");
}

// The visible text of a TTY rendering: the screen lines after applying \r, cursor-up, clear-line
// and clear-below, as a terminal would.
std::vector<std::string> Screen(const std::string& bytes) {
  std::vector<std::string> screen(1);
  size_t row = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    char c = bytes[i];
    if (c == '\x1b' && i + 1 < bytes.size() && bytes[i + 1] == '[') {
      size_t j = i + 2;
      int n = 0;
      while (j < bytes.size() && std::isdigit(static_cast<unsigned char>(bytes[j]))) {
        n = n * 10 + (bytes[j++] - '0');
      }
      char op = bytes[j];
      if (op == 'A') row -= std::min<size_t>(row, n);
      if (op == 'K') screen[row].clear();
      if (op == 'J') screen.resize(row + 1), screen[row].clear();
      i = j;
    } else if (c == '\r') {
      // Column 0: the next text overwrites; every line we draw starts with clear-line anyway.
    } else if (c == '\n') {
      if (++row == screen.size()) screen.emplace_back();
    } else {
      screen[row] += c;
    }
  }
  while (!screen.empty() && screen.back().empty()) screen.pop_back();
  return screen;
}

TEST(TtyProgressTest, RedrawsTheAreaInPlaceBelowPermanentLines) {
  Rendered r(Mode::kTty, 80);
  r.At(0ms, Totals(Kind::kPlan));
  r.At(1ms, FileEvent(Kind::kFileStarted, "model.safetensors", 150'000'000));
  r.At(2ms, FileEvent(Kind::kFileStarted, "config.json", 50'000'000));
  r.At(3ms, Progress(100'000'000, 50'000'000,
                     {{"model.safetensors", 75'000'000, 150'000'000},
                      {"config.json", 25'000'000, 50'000'000}}));
  PullEvent verified = FileEvent(Kind::kFileVerified, "config.json", 50'000'000);
  verified.source = "upstream";
  verified.bytes_done = 100'000'000;  // every event carries the current totals
  verified.rate_bytes_per_second = 50'000'000;
  r.At(4ms, verified);
  auto screen = Screen(r.err.str());
  ASSERT_EQ(screen.size(), 4u) << r.err.str();
  EXPECT_NE(screen[0].find("Pulling org/model@main"), std::string::npos);
  EXPECT_EQ(screen[1], "fetched  config.json  50.0 MB");
  EXPECT_NE(screen[2].find("50%  100.0 MB / 200.0 MB  50.0 MB/s  ETA 0:02"), std::string::npos)
      << screen[2];
  EXPECT_EQ(screen[2].rfind("[#####", 0), 0u) << screen[2];
  EXPECT_NE(screen[3].find("model.safetensors"), std::string::npos) << screen[3];
  EXPECT_NE(screen[3].find("50%"), std::string::npos) << screen[3];
  // The redrawn area never reaches the last column (permanent lines may wrap).
  for (size_t i = 2; i < screen.size(); ++i) EXPECT_LT(screen[i].size(), 80u) << screen[i];
}

TEST(TtyProgressTest, TruncatesFileNamesToTheWidth) {
  Rendered r(Mode::kTty, 40);
  std::string name = "very/long/folder/name/model-00001-of-00004.safetensors";
  r.At(0ms, Totals(Kind::kPlan));
  r.At(1ms, Progress(10, 0, {{name, 10, 100}}));
  auto screen = Screen(r.err.str());
  ASSERT_EQ(screen.size(), 3u) << r.err.str();
  for (const auto& line : screen) {
    if (line.rfind("Pulling", 0) == 0) continue;  // permanent lines may wrap
    EXPECT_LE(line.size(), 39u) << line;
  }
  EXPECT_NE(screen[2].find("..."), std::string::npos) << screen[2];
  EXPECT_NE(screen[2].find(".safetensors"), std::string::npos) << screen[2];
  EXPECT_NE(screen[2].find("10%"), std::string::npos) << screen[2];
}

TEST(TtyProgressTest, FinishClearsTheAreaBeforeTheSummary) {
  Rendered r(Mode::kTty, 80);
  r.At(0ms, Totals(Kind::kPlan));
  r.At(1ms, Progress(10, 5, {{"a.bin", 10, 100}}));
  r.progress.Finish(Result());
  auto screen = Screen(r.err.str());
  ASSERT_EQ(screen.size(), 4u) << r.err.str();
  EXPECT_EQ(screen[1].rfind("Pulled org/model@main", 0), 0u) << screen[1];
}

TEST(RedactionTest, ServerTextCannotSendEscapeSequencesToTheTerminal) {
  for (Mode mode : {Mode::kTty, Mode::kPlain}) {
    Rendered r(mode);
    r.At(0ms, Totals(Kind::kPlan));
    r.At(1ms, Retry("evil \x1b]0;title\x07 \x1b[2J text"));
    EXPECT_EQ(r.err.str().find("\x1b]"), std::string::npos);
    EXPECT_EQ(r.err.str().find("\x1b[2J"), std::string::npos);
    EXPECT_NE(r.err.str().find("evil ?]0;title? ?[2J text"), std::string::npos) << r.err.str();
  }
}

TEST(RedactionTest, NoModeShowsATokenFromAnEngineMessage) {
  for (Mode mode : {Mode::kTty, Mode::kPlain, Mode::kJson}) {
    Rendered r(mode);
    r.At(0ms, Totals(Kind::kPlan));
    r.At(1ms, Retry(std::string("server said: bad token ") + kToken));
    PullEvent e = Retry("x");
    e.source = std::string("http://h/?token=") + kToken;
    r.At(2ms, e);
    r.progress.Fail(PermissionDeniedError(std::string("Authorization: Bearer ") + kToken));
    EXPECT_EQ(r.out.str().find(kToken), std::string::npos) << r.out.str();
    EXPECT_EQ(r.err.str().find(kToken), std::string::npos) << r.err.str();
    EXPECT_EQ((r.out.str() + r.err.str()).find("AbCdEfGh"), std::string::npos);
  }
}

}  // namespace
}  // namespace mc::cli
