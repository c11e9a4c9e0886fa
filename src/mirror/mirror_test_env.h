// A cache with several imported repos and a MirrorServer on port 0 over it, shared by the mirror
// integration tests (created on first use, torn down at exit). Tests only read from it.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "mc/cache/importer.h"
#include "mc/mirror/mirror_server.h"
#include "mc/net/http_client.h"

namespace mc::mirror::testenv {

inline constexpr char kGatedToken[] = "hf_gated_reader";
inline constexpr char kPrivateToken[] = "hf_private_reader";

// ImportResult has no default constructor; Env fills these in while it is built.
inline cache::ImportResult Unset() {
  return cache::ImportResult{*CommitSha::Parse(std::string(40, '0')), {}, 0};
}

struct Env {
  std::filesystem::path root;  // temp dir: cache/, src/, access.json
  std::filesystem::path cache_dir;
  cache::ImportResult model = Unset();     // org/model @ main (fixture + extras)
  cache::ImportResult model_pr = Unset();  // org/model @ refs/pr/1 (different config.json)
  cache::ImportResult dataset = Unset();   // datasets/org/data @ main
  cache::ImportResult many = Unset();      // org/many @ main: 30 files in 3 dirs
  cache::ImportResult copied = Unset();    // org/copied @ main, no-symlink snapshot
  std::unique_ptr<MirrorServer> server;

  std::string Url(const std::string& target) const { return server->base_url() + target; }
  // The bytes of `path` as imported into `repo_dir` (a folder under src/).
  std::string Source(const std::string& repo_dir, const std::string& path) const;
  const cache::ImportedFile& File(const cache::ImportResult& r, const std::string& path) const;
  ~Env();
};

// The shared environment; aborts the test binary if it cannot be built.
Env& Get();

// Sends a request with an optional bearer token and Range.
net::HttpClientResponse Send(const std::string& method, const std::string& url,
                             const std::string& token = "", const std::string& range = "");

}  // namespace mc::mirror::testenv
