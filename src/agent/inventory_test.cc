// Unit tests of the Inventory's disk accounting, driven directly (no downloader, no network): the
// cache is written through the CacheStore the way a pull writes it, and the maintenance tick is
// Reconcile() + EnforceWatermarks() as in the agent.
#include "agent/inventory.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>

#include "mc/cache/blob_hasher.h"
#include "mc/cache/cache_store.h"

namespace mc::agent {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

// The issue's agent scaled down 1000×: 200 kB budget, three models of 64 KiB each; the second and
// third (131 kB) fit under the low watermark (160 kB), all three (197 kB) do not fit under the
// high one (180 kB).
constexpr uint64_t kCapacity = 200'000;
constexpr size_t kModelBytes = 64 * 1024;

class InventoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mc_inventory_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "state");
    store_ = cache::CacheStore::Open({.root = dir_ / "cache", .use_symlinks = true}).value();
    db_ = StateDb::Open(dir_ / "state" / "state.db").value();
    inventory_ = std::make_unique<Inventory>(
        *store_, *db_, BudgetOptions{.capacity = kCapacity, .high_watermark = 0.90,
                                     .low_watermark = 0.80},
        clock_);
    ASSERT_TRUE(inventory_->Reconcile().ok());
  }
  void TearDown() override { fs::remove_all(dir_); }

  struct Model {
    RepoId repo;
    CommitSha commit;
    std::string content;
    Etag etag;
  };
  static Model MakeModel(int i) {
    std::string content(kModelBytes, static_cast<char>('a' + i));
    std::string commit(40, static_cast<char>('0' + i));
    return Model{RepoId::Parse("org/m" + std::to_string(i)).value(),
                 CommitSha::Parse(commit).value(), content,
                 Etag::Parse(cache::Sha256Hex(content)).value()};
  }
  static std::string Key(const Model& m) { return m.repo.FolderName() + "@" + m.commit.str(); }

  Status Reserve(const Model& m) {
    return inventory_->Reserve(Key(m), m.repo, m.commit, m.content.size(),
                               {BlobUse{m.etag.str(), m.content.size(), /*fetch=*/true}});
  }
  // What a pull does after its reservation: the blob, then the snapshot's link to it.
  void WriteBlobAndLink(const Model& m) {
    auto writer = store_->NewBlobWriter(m.repo, m.etag);
    ASSERT_TRUE(writer.ok()) << writer.status().ToString();
    ASSERT_TRUE(writer->Append(m.content.data(), m.content.size()).ok());
    ASSERT_TRUE(store_->PublishBlob(std::move(*writer), m.content.size(), true).ok());
    ASSERT_TRUE(store_->LinkSnapshotFile(m.repo, m.commit,
                                         RepoFilePath::Parse("model.bin").value(), m.etag)
                    .ok());
  }
  void Download(const Model& m) {
    ASSERT_TRUE(Reserve(m).ok());
    WriteBlobAndLink(m);
    ASSERT_TRUE(inventory_->RecordComplete(Key(m), m.repo, m.commit, "").ok());
  }
  // The agent's maintenance tick.
  void Maintain() {
    ASSERT_TRUE(inventory_->Reconcile().ok());
    ASSERT_TRUE(inventory_->EnforceWatermarks().ok());
  }
  std::set<std::string> Cached() const {
    std::set<std::string> out;
    for (const SnapshotView& s : inventory_->Snapshots()) out.insert(s.repo.id());
    return out;
  }

  fs::path dir_;
  FakeClock clock_;
  std::unique_ptr<cache::CacheStore> store_;
  std::unique_ptr<StateDb> db_;
  std::unique_ptr<Inventory> inventory_;
};

TEST_F(InventoryTest, ThirdModelEvictsOnlyTheFirstWhenItsBlobIsLinkedBeforeItIsRecorded) {
  const Model m0 = MakeModel(0), m1 = MakeModel(1), m2 = MakeModel(2);
  Download(m0);
  clock_.Advance(seconds(10));
  Download(m1);
  clock_.Advance(seconds(10));
  ASSERT_TRUE(Reserve(m2).ok());  // evicts m0 to make room
  EXPECT_EQ(Cached(), (std::set<std::string>{"org/m1"}));
  // The pull has linked the blob; a maintenance tick runs before the download records itself.
  WriteBlobAndLink(m2);
  Maintain();
  EXPECT_EQ(Cached(), (std::set<std::string>{"org/m1", "org/m2"}));
  const BudgetView b = inventory_->Budget();
  EXPECT_EQ(b.used + b.reserved, 2 * kModelBytes);
  ASSERT_TRUE(inventory_->RecordComplete(Key(m2), m2.repo, m2.commit, "").ok());
  Maintain();
  EXPECT_EQ(Cached(), (std::set<std::string>{"org/m1", "org/m2"}));
}

TEST_F(InventoryTest, InFlightTempFileIsCountedOnceAfterACacheScan) {
  const Model m0 = MakeModel(0), m1 = MakeModel(1);
  Download(m0);
  ASSERT_TRUE(Reserve(m1).ok());
  // Half of m1 written to its temp file, as a pull in flight leaves it.
  auto writer = store_->NewBlobWriter(m1.repo, m1.etag);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE(writer->Append(m1.content.data(), kModelBytes / 2).ok());
  ASSERT_TRUE(inventory_->Reconcile().ok());
  const BudgetView b = inventory_->Budget();
  EXPECT_EQ(b.partial, 0u);
  EXPECT_EQ(b.used + b.reserved, 2 * kModelBytes);
}

TEST_F(InventoryTest, TempFileOfAnInterruptedDownloadCountsAsPartial) {
  const Model m1 = MakeModel(1);
  auto writer = store_->NewBlobWriter(m1.repo, m1.etag);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE(writer->Append(m1.content.data(), 1000).ok());
  ASSERT_TRUE(inventory_->Reconcile().ok());
  EXPECT_EQ(inventory_->Budget().partial, 1000u);
}

}  // namespace
}  // namespace mc::agent
