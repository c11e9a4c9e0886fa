// Helpers for the cache tests: hermetic temp dirs and small file utilities.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "mc/cache/cache_store.h"

namespace mc::cache::test {

namespace fs = std::filesystem;

inline fs::path NewTempDir() {
  std::string tmpl = ::testing::TempDir() + "cache_XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
  return fs::path(tmpl);
}

inline std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void WriteText(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

inline std::unique_ptr<CacheStore> OpenStore(const fs::path& root,
                                             std::optional<bool> symlinks = true) {
  auto store = CacheStore::Open({.root = root, .use_symlinks = symlinks});
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(*store) : nullptr;
}

inline RepoId Repo(const std::string& id = "org/model") { return RepoId::Parse(id).value(); }
inline Etag E(const std::string& s) { return Etag::Parse(s).value(); }
inline CommitSha C(const std::string& s) { return CommitSha::Parse(s).value(); }
inline Revision R(const std::string& s) { return Revision::Parse(s).value(); }
inline RepoFilePath P(const std::string& s) { return RepoFilePath::Parse(s).value(); }

// Writes `content` as a published blob and returns its etag (git sha1, or sha256 if `lfs`).
Etag PutBlob(CacheStore& store, const RepoId& repo, const std::string& content, bool lfs = false);

}  // namespace mc::cache::test
