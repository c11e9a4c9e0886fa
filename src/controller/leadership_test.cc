// Leadership on a real PostgreSQL (leadership.h): one leader at a time, a new epoch per
// election, takeover when the leader's session ends, deposition when its session loses the lock,
// and the fenced worker rows. The campaigns run on a FakeClock: each try is an Advance.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "controller/leadership.h"
#include "controller/store.h"
#include "controller/store_test_util.h"
#include "mc/testing/eventually.h"
#include "postgres/postgres_for_test.h"

namespace mc::controller {
namespace {

using namespace std::chrono_literals;
using postgres::PostgresForTest;

// A campaign with what its callbacks saw.
struct Candidate {
  // The campaign stops first: its thread may call back into the members below until then.
  ~Candidate() {
    if (leadership) leadership->Stop();
  }

  std::unique_ptr<Leadership> leadership;
  std::mutex mu;
  std::vector<int64_t> elected;
  std::vector<std::string> deposed;

  std::vector<int64_t> Elected() {
    std::lock_guard<std::mutex> lock(mu);
    return elected;
  }
  std::vector<std::string> Deposed() {
    std::lock_guard<std::mutex> lock(mu);
    return deposed;
  }
};

class LeadershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pg = PostgresForTest::Shared();
    ASSERT_TRUE(pg.ok()) << pg.status().ToString();
    pg_ = *pg;
    auto db = pg_->CreateDatabase();
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = *db;
    auto store = ControllerStore::OpenPostgres(pg_->Uri(db_));  // the schema
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }

  std::unique_ptr<Candidate> Campaign(const std::string& url) {
    auto c = std::make_unique<Candidate>();
    PostgresLeadershipOptions o;
    o.uri = pg_->Uri(db_);
    o.advertise_url = url;
    o.clock = &clock_;
    auto l = PostgresLeadership(o);
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    if (!l.ok()) return nullptr;
    c->leadership = std::move(l).value();
    Candidate* raw = c.get();
    Status s = c->leadership->Start(
        [raw](int64_t epoch) {
          std::lock_guard<std::mutex> lock(raw->mu);
          raw->elected.push_back(epoch);
          return Status::Ok();
        },
        [raw](const std::string& why) {
          std::lock_guard<std::mutex> lock(raw->mu);
          raw->deposed.push_back(why);
        });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return c;
  }

  // One more try of every parked campaign: the clock moves past their retry.
  void Round(int campaigns) {
    ASSERT_TRUE(clock_.AwaitParked(campaigns));
    clock_.Advance(1s);
  }

  PostgresForTest* pg_ = nullptr;
  std::string db_;
  std::unique_ptr<ControllerStore> store_;
  FakeClock clock_;
};

TEST_F(LeadershipTest, OneLeaderAtATimeAndTheNextTakesOverWithANewEpoch) {
  auto a = Campaign("http://a");
  ASSERT_TRUE(testing::Eventually([&] { return a->Elected().size() == 1; }));
  EXPECT_EQ(a->Elected()[0], 1);
  auto b = Campaign("http://b");
  ASSERT_TRUE(testing::Eventually([&] { return b->leadership->Info().epoch == 1; }));
  for (int i = 0; i < 3; ++i) Round(2);  // b keeps trying; a keeps checking
  ASSERT_TRUE(clock_.AwaitParked(2));
  EXPECT_TRUE(b->Elected().empty());
  EXPECT_TRUE(a->Deposed().empty());
  LeaderInfo seen = b->leadership->Info();
  EXPECT_FALSE(seen.leader);
  EXPECT_EQ(seen.leader_url, "http://a");  // whom a follower forwards to
  EXPECT_EQ(a->leadership->Epoch(), 1);
  EXPECT_EQ(b->leadership->Epoch(), 0);

  a->leadership->Stop();  // its session ends: PostgreSQL releases the lock (its backend exits)
  ASSERT_TRUE(testing::Eventually([&] {
    Round(1);  // b's next try
    return b->Elected().size() == 1;
  }));
  EXPECT_EQ(b->Elected()[0], 2);
  EXPECT_EQ(b->leadership->Info().leader_url, "http://b");
  EXPECT_TRUE(a->Deposed().empty());  // stopped, not deposed: no callback after Stop
}

TEST_F(LeadershipTest, ALeaderWhoseSessionIsKilledIsDeposedAndTheOtherLeads) {
  auto a = Campaign("http://a");
  ASSERT_TRUE(testing::Eventually([&] { return a->Elected().size() == 1; }));
  auto b = Campaign("http://b");
  ASSERT_TRUE(testing::Eventually([&] { return b->leadership->Info().epoch == 1; }));
  // The leader's session ends behind its back (a network cut, an operator): its lock is gone
  // even though the process lives on, and its next check finds out.
  Status killed = pg_->Exec(
      db_, "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND "
           "classid = 1836213093 AND objid = 16 AND granted AND "
           "database = (SELECT oid FROM pg_database WHERE datname = current_database())");
  ASSERT_TRUE(killed.ok()) << killed.ToString();
  ASSERT_TRUE(testing::Eventually([&] {
    Round(2);  // a's check, b's try
    return !a->Deposed().empty() && !b->Elected().empty();
  }));
  EXPECT_EQ(b->Elected()[0], 2);
  EXPECT_FALSE(a->leadership->Info().leader);
  EXPECT_EQ(a->leadership->Epoch(), 0);
}

TEST_F(LeadershipTest, AWorkerRowWrittenByANewerEpochIsNotOverwrittenByAnOlderOne) {
  WorkerRecord w = store_test::Worker("w-1", "ep-1", "idle", 1000);
  w.epoch = 2;
  ASSERT_TRUE(store_->PutWorker(w).ok());
  WorkerRecord late = w;
  late.epoch = 1;  // a deposed leader's late write
  late.phase = "stopped";
  Status s = store_->PutWorker(late);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_NE(s.message().find("fenced"), std::string::npos) << s.ToString();
  auto row = store_->GetWorker("w-1");
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_EQ((*row)->phase, "idle");
  EXPECT_EQ((*row)->epoch, 2);
  w.phase = "running";  // the same epoch, or a newer one, writes
  EXPECT_TRUE(store_->PutWorker(w).ok());
  w.epoch = 3;
  EXPECT_TRUE(store_->PutWorker(w).ok());
  row = store_->GetWorker("w-1");
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_EQ((*row)->epoch, 3);
}

TEST(SoleLeadershipTest, AlwaysLeadsWithoutAnEpoch) {
  auto l = SoleLeadership();
  int64_t got = -1;
  ASSERT_TRUE(l->Start(
                   [&](int64_t epoch) {
                     got = epoch;
                     return Status::Ok();
                   },
                   [](const std::string&) {})
                  .ok());
  EXPECT_EQ(got, 0);
  EXPECT_TRUE(l->Info().leader);
  EXPECT_TRUE(l->Info().sole);
  EXPECT_EQ(l->Epoch(), 0);  // nothing fenced
}

}  // namespace
}  // namespace mc::controller
