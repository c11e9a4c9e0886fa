// The public pin functions (mc/agent/pins.h) on a real state database in a temp dir.
#include "mc/agent/pins.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "agent/state_db.h"

namespace mc::agent {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

const RepoId kRepo = *RepoId::Parse("org/name");
const CommitSha kCommit = *CommitSha::Parse("0123456789abcdef0123456789abcdef01234567");
const Clock::TimePoint kAt{milliseconds(1'700'000'000'000)};

class PinsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("mc_pins_test_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path state_dir() const { return root_ / "state"; }
  fs::path root_;
};

TEST_F(PinsTest, ListingAStateDirWithoutADatabaseCreatesNothing) {
  auto pins = ListPins(state_dir());
  ASSERT_TRUE(pins.ok()) << pins.status().ToString();
  EXPECT_TRUE(pins->empty());
  EXPECT_FALSE(fs::exists(state_dir()));
}

TEST_F(PinsTest, OperatorPinIsListedWithItsOwnerAndTimeAndKeepsItsFirstTime) {
  ASSERT_TRUE(AddOperatorPin(state_dir(), kRepo, kCommit, kAt).ok());
  ASSERT_TRUE(AddOperatorPin(state_dir(), kRepo, kCommit, kAt + milliseconds(5)).ok());
  auto pins = ListPins(state_dir());
  ASSERT_TRUE(pins.ok()) << pins.status().ToString();
  ASSERT_EQ(pins->size(), 1u);
  EXPECT_EQ((*pins)[0].repo, "models--org--name");
  EXPECT_EQ((*pins)[0].commit, kCommit.str());
  EXPECT_EQ((*pins)[0].owner, kOperatorPinOwner);
  EXPECT_EQ((*pins)[0].created, kAt);
}

TEST_F(PinsTest, RemovingTheOperatorPinLeavesAWorkersPin) {
  ASSERT_TRUE(AddOperatorPin(state_dir(), kRepo, kCommit, kAt).ok());
  {
    auto db = StateDb::Open(StateDbPath(state_dir()));
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->AddPin({kRepo.FolderName(), kCommit.str(), "worker:w1", kAt}).ok());
  }
  ASSERT_TRUE(RemoveOperatorPin(state_dir(), kRepo, kCommit).ok());
  auto pins = ListPins(state_dir());
  ASSERT_TRUE(pins.ok());
  ASSERT_EQ(pins->size(), 1u);
  EXPECT_EQ((*pins)[0].owner, "worker:w1");
  EXPECT_EQ(RemoveOperatorPin(state_dir(), kRepo, kCommit).code(), StatusCode::kNotFound);
}

TEST_F(PinsTest, RemovingFromAStateDirWithoutADatabaseIsNotFoundAndCreatesNothing) {
  EXPECT_EQ(RemoveOperatorPin(state_dir(), kRepo, kCommit).code(), StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(state_dir()));
}

}  // namespace
}  // namespace mc::agent
