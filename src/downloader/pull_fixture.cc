#include "downloader/pull_fixture.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "mc/cache/blob_hasher.h"
#include "mc/cache/cache_scan.h"
#include "mc/testing/model_fixture.h"

namespace mc::downloader {

namespace fs = std::filesystem;
using mirror::FaultRule;

void WriteTestFile(const fs::path& file, const std::string& content) {
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << content;
}

std::string ReadTestFile(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

Upstream::Upstream() {
  root = fs::temp_directory_path() / ("mc_pull_test_" + std::to_string(::getpid()));
  fs::remove_all(root);
  cache_dir = root / "upstream";
  const fs::path src = root / "src";
  testing::ModelFixtureOptions fixture;
  fixture.total_weight_bytes = 12 << 20;
  fixture.shards = 2;
  if (!testing::WriteModelFixture(src / "model", fixture).ok()) std::abort();
  WriteTestFile(src / "model" / "README.md", "# model\n");
  WriteTestFile(src / "model" / "onnx" / "my model+v2.onnx", std::string(3000, 'x'));
  WriteTestFile(src / "model" / "empty.txt", "");
  WriteTestFile(src / "model" / "copy.json", ReadTestFile(src / "model" / "config.json"));
  WriteTestFile(src / "gated" / "config.json", "{\"gated\": true}\n");
  access = root / "access.json";
  WriteTestFile(access, std::string(R"({"repos": {"org/gated": {"gated": "manual", "tokens": [")") +
                            kGatedToken + R"("]}}})");
  auto store = cache::CacheStore::Open({cache_dir, std::nullopt, true});
  if (!store.ok()) std::abort();
  auto imported = cache::ImportFolder(**store, src / "model", *RepoId::Parse("org/model"),
                                      *Revision::Parse("main"));
  if (!imported.ok()) std::abort();
  model = *imported;
  if (!cache::ImportFolder(**store, src / "gated", *RepoId::Parse("org/gated"),
                           *Revision::Parse("main"))
           .ok()) {
    std::abort();
  }
}

Upstream::~Upstream() {
  std::error_code ec;
  fs::remove_all(root, ec);
}

const cache::ImportedFile& Upstream::File(const std::string& path) const {
  const cache::ImportedFile* f = model.Find(path);
  if (f == nullptr) std::abort();
  return *f;
}

Upstream& Up() {
  static Upstream* up = new Upstream();
  return *up;
}

std::unique_ptr<mirror::MirrorServer> Serve(const fs::path& cache_dir,
                                            std::vector<FaultRule> faults,
                                            uint64_t per_answer_bytes_per_second) {
  mirror::MirrorOptions options;
  options.cache_dir = cache_dir;
  options.access_config = Up().access;
  options.faults.rules = std::move(faults);
  options.max_bytes_per_second_per_answer = per_answer_bytes_per_second;
  auto server = mirror::MirrorServer::Create(std::move(options));
  if (!server.ok() || !(*server)->Start().ok()) std::abort();
  return std::move(*server);
}

FaultRule Rule(FaultRule::Action action, int64_t count, std::string path) {
  FaultRule rule;
  rule.action = std::move(action);
  rule.count = count;
  rule.path_contains = std::move(path);
  return rule;
}

void PullTest::SetUp() {
  Up();
  dir_ = fs::temp_directory_path() /
         ("mc_pull_case_" + std::to_string(::getpid()) + "_" +
          ::testing::UnitTest::GetInstance()->current_test_info()->name());
  fs::remove_all(dir_);
  fs::create_directories(dir_);
}

void PullTest::TearDown() {
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

PullOptions PullTest::Options(const mirror::MirrorServer& server, const std::string& repo) {
  PullOptions o;
  o.cache_dir = dir_ / "cache";
  o.state_dir = dir_ / "state";
  o.endpoint = *hub::Endpoint::Parse(server.base_url());
  o.repo = *RepoId::Parse(repo);
  o.revision = *Revision::Parse("main");
  o.tuning.connections = 4;
  o.tuning.max_connections = 4;  // no scaling, but in the tests of scaling
  o.tuning.cell_size = 256 << 10;
  o.tuning.min_split_size = 1 << 20;
  o.tuning.stall_timeout = std::chrono::seconds(1);
  o.tuning.peer_stall_timeout = std::chrono::seconds(1);
  o.tuning.max_attempts = 4;
  o.sleep = [this](std::chrono::milliseconds d) {
    std::lock_guard<std::mutex> lock(mu_);
    waits_.push_back(d);
  };
  return o;
}

StatusOr<PullResult> PullTest::Pull(PullOptions options) {
  Puller puller(std::move(options));
  return puller.Run([this](const PullEvent& e) {
    if (getenv("PULL_TEST_TRACE") && e.kind != PullEvent::Kind::kProgress) {
      fprintf(stderr, "event %d %s %s %s\n", static_cast<int>(e.kind), e.path.c_str(),
              e.source.c_str(), e.message.c_str());
    }
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(e);
  });
}

std::unique_ptr<cache::CacheStore> PullTest::Store(const fs::path& dir) {
  return std::move(*cache::CacheStore::Open({dir, std::nullopt, false}));
}

void PullTest::ExpectComplete(const PullResult& r, const fs::path& cache_dir) {
  for (const auto& f : Up().model.files) {
    fs::path got = r.snapshot_dir / f.path;
    ASSERT_TRUE(fs::exists(got)) << f.path;
    EXPECT_EQ(
        cache::HashFile(got, f.lfs ? cache::HashKind::kSha256 : cache::HashKind::kGitSha1).value(),
        f.etag)
        << f.path;
  }
  auto store = Store(cache_dir);
  auto report = cache::VerifyCache(*store, std::nullopt, std::nullopt);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->failed, 0);
}

void PullTest::ExpectNothingUnverified(const fs::path& cache_dir) {
  auto store = Store(cache_dir);
  auto report = cache::VerifyCache(*store, std::nullopt, std::nullopt);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->failed, 0);
  EXPECT_FALSE(fs::exists(cache_dir / "models--org--model" / "refs" / "main"));
}

}  // namespace mc::downloader
