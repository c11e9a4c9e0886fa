// The fixture of the Puller tests against real MirrorServers on loopback (pull_test.cc,
// pull_disk_test.cc): one upstream cache shared by the tests of the process, a fresh directory
// per test, options with short timeouts and recorded retry waits.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "mc/cache/cache_store.h"
#include "mc/cache/importer.h"
#include "mc/downloader/pull.h"
#include "mc/mirror/mirror_server.h"

namespace mc::downloader {

inline constexpr char kGatedToken[] = "hf_pull_test_gated_token";
inline constexpr char kWeights[] = "model-00001-of-00002.safetensors";

void WriteTestFile(const std::filesystem::path& file, const std::string& content);
std::string ReadTestFile(const std::filesystem::path& file);

// The upstream: a cache with org/model (two ~6 MiB shards and small files) and org/gated.
struct Upstream {
  Upstream();
  ~Upstream();
  const cache::ImportedFile& File(const std::string& path) const;

  std::filesystem::path root;
  std::filesystem::path cache_dir;
  std::filesystem::path access;
  cache::ImportResult model{*CommitSha::Parse(std::string(40, '0')), {}, 0};
};

// The process's upstream, made on first use.
Upstream& Up();

// A started mirror of `cache_dir` with Up()'s access rules, `faults` and a per-answer rate cap.
std::unique_ptr<mirror::MirrorServer> Serve(const std::filesystem::path& cache_dir,
                                            std::vector<mirror::FaultRule> faults = {},
                                            uint64_t per_answer_bytes_per_second = 0);

mirror::FaultRule Rule(mirror::FaultRule::Action action, int64_t count = 1,
                       std::string path = kWeights);

class PullTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // 4 connections and no scaling, small cells and splits, 1 s stalls, 4 attempts; retry waits
  // are recorded in waits_ and return at once.
  PullOptions Options(const mirror::MirrorServer& server, const std::string& repo = "org/model");
  // Runs a pull, recording its events in events_.
  StatusOr<PullResult> Pull(PullOptions options);
  std::unique_ptr<cache::CacheStore> Store(const std::filesystem::path& dir);
  // Every file of the pulled snapshot equals the upstream's, and verify passes.
  void ExpectComplete(const PullResult& r, const std::filesystem::path& cache_dir);
  // Every blob of the cache verifies and no ref was written: what a failed pull may leave.
  void ExpectNothingUnverified(const std::filesystem::path& cache_dir);

  std::filesystem::path dir_;
  std::mutex mu_;
  std::vector<PullEvent> events_;                  // guarded by mu_
  std::vector<std::chrono::milliseconds> waits_;  // guarded by mu_
};

}  // namespace mc::downloader
