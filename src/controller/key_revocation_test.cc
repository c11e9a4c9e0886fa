// The key-revocation race (docs/security.md): a request whose key check is in flight while the
// key is deleted may pass, but must not put the revoked key back in the cache of valid keys. A
// real SQLite store; the delete is made to happen exactly between the check's store lookup and
// its cache update (ApiKeys' test hook), which no timing could arrange reliably.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "controller/api_keys.h"
#include "controller/store.h"
#include "mc/common/clock.h"

namespace mc::controller {
namespace {

namespace fs = std::filesystem;

TEST(KeyRevocationTest, AKeyDeletedDuringItsCheckIsNotCachedAgain) {
  const fs::path root =
      fs::temp_directory_path() / ("mc_key_revocation_test_" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  {
    auto store = ControllerStore::Open(root / "controller.db");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    FakeClock clock;
    ApiKeys keys(**store, clock);
    auto key = keys.Create("doomed");
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    auto listed = (*store)->ListApiKeys();
    ASSERT_TRUE(listed.ok() && listed->size() == 1u);
    const std::string id = (*listed)[0].id;

    bool deleted = false;
    keys.set_after_lookup_for_test([&] {
      if (deleted) return;
      deleted = true;
      ASSERT_TRUE(keys.Delete(id).ok());  // the DELETE lands while the check is in flight
    });
    keys.Authorized("Bearer " + *key);  // in flight: either answer is fine
    ASSERT_TRUE(deleted);
    EXPECT_FALSE(keys.Authorized("Bearer " + *key)) << "the revoked key was cached again";
  }
  fs::remove_all(root);
}

}  // namespace
}  // namespace mc::controller
