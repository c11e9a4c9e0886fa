// The ledger totals and retention of the store (store.h: AppendLedger and CloseLedger keep the
// totals, SummarizeLedger, PruneHistory), against both stores, as store_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "controller/store.h"
#include "controller/store_test_util.h"

namespace mc::controller::store_test {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

using Total = std::tuple<std::string, bool, int64_t>;  // endpoint, billed, closed ms

class StoreHistoryTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    backend_ = MakeBackend(GetParam());
    ASSERT_NE(backend_, nullptr);
    auto store = backend_->Open();
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }

  std::vector<Total> Totals() {
    auto s = store_->SummarizeLedger();
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    std::vector<Total> out;
    if (s.ok()) {
      for (const LedgerTotal& t : s->totals) out.emplace_back(t.endpoint_id, t.billed, t.closed_ms);
    }
    return out;
  }
  std::vector<int64_t> OpenIds() {
    std::vector<int64_t> ids;
    auto s = store_->SummarizeLedger();  // kept: a range-for over a temporary's member dangles
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (s.ok()) {
      for (const LedgerRow& r : s->open) ids.push_back(r.id);
    }
    return ids;
  }
  int64_t Append(const std::string& worker, const std::string& endpoint, int64_t start,
                 bool billed = true, std::optional<int64_t> end = std::nullopt) {
    LedgerRow row = Ledger(worker, endpoint, start);
    row.billed = billed;
    row.end_ms = end;
    auto id = store_->AppendLedger(row);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? *id : 0;
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

  std::unique_ptr<StoreBackend> backend_;
  std::unique_ptr<ControllerStore> store_;
};

INSTANTIATE_TEST_SUITE_P(Stores, StoreHistoryTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const auto& info) { return BackendName(info.param); });

TEST_P(StoreHistoryTest, ClosedRowsAddUpPerEndpointAndBillingAndOpenRowsAreListed) {
  const int64_t a_run = Append("w-1", "ep-a", 1000);
  const int64_t a_init = Append("w-2", "ep-a", 1000, /*billed=*/false);
  const int64_t b_run = Append("w-3", "ep-b", 2000);
  const int64_t a_idle = Append("w-1", "ep-a", 5000);
  Append("w-4", "ep-a", 100, true, 600);  // appended closed: counts at once
  ASSERT_TRUE(store_->CloseLedger(a_run, 5000).ok());
  ASSERT_TRUE(store_->CloseLedger(a_init, 1500).ok());
  EXPECT_THAT(Totals(), ElementsAre(Total{"ep-a", false, 500}, Total{"ep-a", true, 4500}));
  EXPECT_THAT(OpenIds(), ElementsAre(b_run, a_idle));
}

TEST_P(StoreHistoryTest, ClosingARowAgainReplacesItsTimeInTheTotals) {
  const int64_t id = Append("w-1", "ep-a", 1000);
  ASSERT_TRUE(store_->CloseLedger(id, 3000).ok());
  ASSERT_TRUE(store_->CloseLedger(id, 2500).ok());
  EXPECT_THAT(Totals(), ElementsAre(Total{"ep-a", true, 1500}));
}

TEST_P(StoreHistoryTest, PruningDeletesOnlyWhatEndedBeforeTheCutoffAndKeepsTheTotals) {
  WorkerRecord old_stopped = Worker("w-old-stopped", "ep-a", "stopped", 100);
  old_stopped.stopped_ms = 900;
  WorkerRecord old_failed = Worker("w-old-failed", "ep-a", "failed", 100);
  old_failed.stopped_ms = 999;
  WorkerRecord recent = Worker("w-recent", "ep-a", "stopped", 100);
  recent.stopped_ms = 1000;                                 // at the cutoff: kept
  WorkerRecord live = Worker("w-live", "ep-a", "idle", 1);  // created long ago, still live
  for (const WorkerRecord& w : {old_stopped, old_failed, recent, live}) {
    ASSERT_TRUE(store_->PutWorker(w).ok());
  }
  const int64_t old_row = Append("w-old-stopped", "ep-a", 100, true, 900);
  const int64_t recent_row = Append("w-recent", "ep-a", 100, true, 1000);
  const int64_t open_row = Append("w-live", "ep-a", 1);
  const std::vector<Total> before = Totals();

  auto pruned = store_->PruneHistory(1000);
  ASSERT_TRUE(pruned.ok()) << pruned.status().ToString();
  EXPECT_EQ(pruned->workers, 2);
  EXPECT_EQ(pruned->ledger_rows, 1);
  EXPECT_THAT(WorkerIds(), ElementsAre("w-live", "w-recent"));
  std::vector<int64_t> rows;
  auto ledger = store_->ListLedger("");
  ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
  for (const LedgerRow& r : *ledger) rows.push_back(r.id);
  EXPECT_THAT(rows, ElementsAre(recent_row, open_row));
  EXPECT_NE(old_row, 0);
  EXPECT_EQ(Totals(), before);  // the pruned row's time stays counted
  EXPECT_THAT(OpenIds(), ElementsAre(open_row));
}

TEST_P(StoreHistoryTest, PruningAnEmptyStoreDeletesNothing) {
  auto pruned = store_->PruneHistory(1'000'000);
  ASSERT_TRUE(pruned.ok()) << pruned.status().ToString();
  EXPECT_EQ(pruned->workers, 0);
  EXPECT_EQ(pruned->ledger_rows, 0);
  EXPECT_THAT(Totals(), IsEmpty());
}

TEST_P(StoreHistoryTest, ExportAndImportCarryTheTotalsOfPrunedRows) {
  Append("w-1", "ep-a", 100, true, 900);
  ASSERT_TRUE(store_->PruneHistory(1000).ok());
  ASSERT_THAT(*store_->ListLedger(""), IsEmpty());
  auto contents = ExportStore(*store_);
  ASSERT_TRUE(contents.ok()) << contents.status().ToString();
  ASSERT_TRUE(store_->Import(*contents, /*replace=*/true).ok());
  EXPECT_THAT(Totals(), ElementsAre(Total{"ep-a", true, 800}));
}

}  // namespace
}  // namespace mc::controller::store_test
