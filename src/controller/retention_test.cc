// HistoryRetention (retention.h) on a FakeClock, against both stores: what it deletes, when, and
// that it keeps the ledger's totals.
#include "controller/retention.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "controller/store_test_util.h"

namespace mc::controller::store_test {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;

constexpr auto kDay = 24h;

class RetentionTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    backend_ = MakeBackend(GetParam());
    ASSERT_NE(backend_, nullptr);
    auto store = backend_->Open();
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }

  int64_t NowMs() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now().time_since_epoch())
        .count();
  }
  // A worker that stopped `ago` before now, with its one closed ledger row.
  void Ended(const std::string& id, std::chrono::milliseconds ago) {
    const int64_t end = NowMs() - ago.count();
    WorkerRecord w = Worker(id, "ep-a", "stopped", end - 1000);
    w.stopped_ms = end;
    ASSERT_TRUE(store_->PutWorker(w).ok());
    LedgerRow row = Ledger(id, "ep-a", end - 1000);
    row.end_ms = end;
    ASSERT_TRUE(store_->AppendLedger(row).ok());
  }
  std::vector<std::string> WorkerIds() {
    std::vector<std::string> ids;
    auto workers = store_->ListWorkers("", false);
    EXPECT_TRUE(workers.ok()) << workers.status().ToString();
    if (workers.ok()) {
      for (const WorkerRecord& w : *workers) ids.push_back(w.id);
    }
    return ids;
  }
  int64_t BilledMs() {
    int64_t ms = 0;
    auto s = store_->SummarizeLedger();
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (s.ok()) {
      for (const LedgerTotal& t : s->totals) ms += t.closed_ms;
    }
    return ms;
  }

  FakeClock clock_;
  std::unique_ptr<StoreBackend> backend_;
  std::unique_ptr<ControllerStore> store_;
};

INSTANTIATE_TEST_SUITE_P(Stores, RetentionTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const auto& info) { return BackendName(info.param); });

TEST_P(RetentionTest, DeletesWhatEndedBeforeTheRetentionAndKeepsTheRest) {
  Ended("w-31-days", 31 * kDay);
  Ended("w-29-days", 29 * kDay);
  ASSERT_TRUE(store_->PutWorker(Worker("w-live", "ep-a", "running", 1)).ok());
  int64_t cutoff = 0;
  HistoryRetention retention(*store_, clock_, RetentionOptions{}, [&](int64_t c) { cutoff = c; });
  const auto pruned = retention.Tick();
  ASSERT_TRUE(pruned.has_value());
  EXPECT_EQ(pruned->workers, 1);
  EXPECT_EQ(pruned->ledger_rows, 1);
  EXPECT_EQ(cutoff, NowMs() - std::chrono::milliseconds(30 * kDay).count());
  EXPECT_THAT(WorkerIds(), ElementsAre("w-live", "w-29-days"));
  EXPECT_THAT(*store_->ListLedger(""), ::testing::SizeIs(1));
  EXPECT_EQ(BilledMs(), 2000);  // both rows' time, the pruned one's too
}

TEST_P(RetentionTest, PrunesAtOnceThenOncePerInterval) {
  RetentionOptions o;
  o.retention = 10 * kDay;
  o.interval = 1h;
  HistoryRetention retention(*store_, clock_, o);
  EXPECT_TRUE(retention.Tick().has_value());  // the first tick prunes
  Ended("w-old", 11 * kDay);
  EXPECT_FALSE(retention.Tick().has_value());  // not due: nothing is deleted
  clock_.Advance(1h - 1ms);
  EXPECT_FALSE(retention.Tick().has_value());
  EXPECT_THAT(WorkerIds(), ElementsAre("w-old"));
  clock_.Advance(1ms);
  const auto pruned = retention.Tick();
  ASSERT_TRUE(pruned.has_value());
  EXPECT_EQ(pruned->workers, 1);
  EXPECT_THAT(WorkerIds(), ::testing::IsEmpty());
}

TEST_P(RetentionTest, AWorkerIsDeletedOnceItsAgePassesTheRetention) {
  RetentionOptions o;
  o.retention = 30 * kDay;
  o.interval = 1h;
  HistoryRetention retention(*store_, clock_, o);
  Ended("w-1", 30 * kDay - 2h);
  EXPECT_EQ(retention.Tick()->workers, 0);
  clock_.Advance(1h);
  EXPECT_EQ(retention.Tick()->workers, 0);  // 1 h short
  clock_.Advance(1h + 1ms);
  EXPECT_EQ(retention.Tick()->workers, 1);
}

TEST_P(RetentionTest, ZeroRetentionKeepsEverything) {
  RetentionOptions o;
  o.retention = 0ms;
  HistoryRetention retention(*store_, clock_, o);
  Ended("w-ancient", 3650 * kDay);
  EXPECT_FALSE(retention.Tick().has_value());
  EXPECT_THAT(WorkerIds(), ElementsAre("w-ancient"));
}

}  // namespace
}  // namespace mc::controller::store_test
