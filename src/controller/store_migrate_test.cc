// MigrateStore (modelcache controller migrate-store): a SQLite store copied into PostgreSQL and
// back, nothing lost (counts and every row of a sample compared), ids still increasing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "controller/store.h"
#include "controller/store_test_util.h"
#include "mc/controller/store_migration.h"

namespace mc::controller::store_test {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr int kJobs = 40;

// A store with some of everything: hostile bytes in a token, jobs of equal created_ms (their
// order is insertion order), chunks, open and closed ledger rows, and webhook deliveries of which
// the newest were deleted (the outbox's counter is above every id left).
void Fill(ControllerStore& s) {
  for (int i = 0; i < 3; ++i) {
    EndpointRecord e = Endpoint("ep-" + std::to_string(i) + "aaaaaaaaaaa", 1000 + i);
    if (i == 1) e.hf_token = std::string("hf_\0'\xff", 6);
    ASSERT_TRUE(s.PutEndpoint(e).ok());
  }
  ASSERT_TRUE(
      s.AddApiKey({.id = "key-aaaaaaaa", .name = "ci", .sha256 = std::string(64, '1')}).ok());
  ASSERT_TRUE(
      s.AddApiKey({.id = "key-bbbbbbbb", .name = "me", .sha256 = std::string(64, '2')}).ok());
  for (int i = 0; i < kJobs; ++i) {
    JobRecord j = Job("j-" + std::to_string(kJobs - i), "ep-0aaaaaaaaaaa",
                      i % 3 == 0 ? "COMPLETED" : "IN_QUEUE", 5000 + i / 4);  // 4 per ms
    j.output_json =
        i % 3 == 0 ? std::optional<std::string>("{\"n\":" + std::to_string(i) + "}") : std::nullopt;
    ASSERT_TRUE(s.PutJob(j).ok());
    for (int64_t seq = 0; seq < i % 4; ++seq) {
      ASSERT_TRUE(s.AppendChunk({.job_id = j.id, .seq = seq, .output_json = "\"c\""}).ok());
    }
  }
  for (int i = 0; i < 5; ++i) {
    const std::string w = "w-" + std::to_string(i);
    ASSERT_TRUE(s.PutWorker(Worker(w, "ep-1aaaaaaaaaaa", i < 3 ? "stopped" : "idle", i)).ok());
    auto id = s.AppendLedger(Ledger(w, "ep-1aaaaaaaaaaa", 100 + i));
    ASSERT_TRUE(id.ok());
    if (i < 3) {
      ASSERT_TRUE(s.CloseLedger(*id, 200 + i).ok());
    }
  }
  ASSERT_TRUE(
      s.PutHost({.id = "host-1", .document_json = "{\"gpus\":[0]}", .last_seen_ms = 9}).ok());
  std::vector<int64_t> deliveries;
  for (int i = 0; i < 4; ++i) {
    const JobRecord done = Job("j-hook-" + std::to_string(i), "ep-2aaaaaaaaaaa", "FAILED", 7000);
    deliveries.push_back(s.PutJobWithWebhook(done, Delivery(done, 7000 + i)).value());
  }
  ASSERT_TRUE(s.UpdateWebhook(deliveries[0], 2, 9000).ok());
  ASSERT_TRUE(s.DeleteWebhook(deliveries[2]).ok());
  ASSERT_TRUE(s.DeleteWebhook(deliveries[3]).ok());
}

// Every row of both, compared record by record (the sample is everything).
void ExpectSameContents(const ControllerStore& a, const ControllerStore& b) {
  const StoreContents x = ExportStore(a).value();
  const StoreContents y = ExportStore(b).value();
  EXPECT_THAT(y.endpoints, ElementsAreArray(x.endpoints));
  EXPECT_THAT(y.api_keys, ElementsAreArray(x.api_keys));
  EXPECT_THAT(y.jobs, ElementsAreArray(x.jobs));  // in the same order
  EXPECT_THAT(y.chunks, ElementsAreArray(x.chunks));
  EXPECT_THAT(y.workers, ElementsAreArray(x.workers));
  EXPECT_THAT(y.ledger, ElementsAreArray(x.ledger));
  EXPECT_THAT(y.hosts, ElementsAreArray(x.hosts));
  EXPECT_THAT(y.webhooks, ElementsAreArray(x.webhooks));
}

class MigrateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sqlite_ = MakeBackend(Backend::kSqlite);
    postgres_ = MakeBackend(Backend::kPostgres);
    ASSERT_NE(postgres_, nullptr);
    auto source = sqlite_->Open();
    ASSERT_TRUE(source.ok()) << source.status().ToString();
    ASSERT_NO_FATAL_FAILURE(Fill(**source));
  }

  std::unique_ptr<StoreBackend> sqlite_, postgres_;
};

TEST_F(MigrateStoreTest, ASqliteStoreMovesToPostgresWithNothingLostAndIdsStillIncreasing) {
  auto report = MigrateStore({.from = sqlite_->Db(), .to = postgres_->Db()});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->endpoints, 3);
  EXPECT_EQ(report->api_keys, 2);
  EXPECT_EQ(report->jobs, kJobs + 4);
  EXPECT_EQ(report->chunks, 60);  // job i has i % 4 chunks: 10 x (0 + 1 + 2 + 3)
  EXPECT_EQ(report->workers, 5);
  EXPECT_EQ(report->ledger, 5);
  EXPECT_EQ(report->hosts, 1);
  EXPECT_EQ(report->webhooks, 2);

  auto source = sqlite_->Open().value();
  auto target = postgres_->Open().value();
  ExpectSameContents(*source, *target);
  EXPECT_EQ(target->GetEndpoint("ep-1aaaaaaaaaaa").value()->hf_token,
            std::optional<std::string>(std::string("hf_\0'\xff", 6)));
  EXPECT_TRUE(*target->HasApiKeySha256(std::string(64, '2')));

  // The counters moved: new ids are above the source's, deleted deliveries' ids included.
  const IdCounters before = source->GetIdCounters().value();
  EXPECT_EQ(before.webhook_outbox, 4);
  EXPECT_GT(*target->AppendLedger(Ledger("w-9", "ep-1aaaaaaaaaaa", 1)), before.ledger);
  const JobRecord next = Job("j-next", "ep-2aaaaaaaaaaa", "COMPLETED", 8000);
  EXPECT_GT(*target->PutJobWithWebhook(next, Delivery(next, 8000)), before.webhook_outbox);
}

TEST_F(MigrateStoreTest, ATargetThatHoldsRowsIsRefusedUntouchedUnlessReplaceIsAsked) {
  {
    auto target = postgres_->Open().value();
    ASSERT_TRUE(target->PutHost({.id = "other", .document_json = "{}", .last_seen_ms = 1}).ok());
  }
  auto refused = MigrateStore({.from = sqlite_->Db(), .to = postgres_->Db()});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("--replace-target"));
  EXPECT_THAT(postgres_->Open().value()->ListHosts().value(), SizeIs(1));
  EXPECT_THAT(postgres_->Open().value()->ListJobs("", {}).value(), IsEmpty());

  auto replaced =
      MigrateStore({.from = sqlite_->Db(), .to = postgres_->Db(), .replace_target = true});
  ASSERT_TRUE(replaced.ok()) << replaced.status().ToString();
  ExpectSameContents(*sqlite_->Open().value(), *postgres_->Open().value());
}

TEST_F(MigrateStoreTest, PostgresMovesBackToANewSqliteFileTheSame) {
  ASSERT_TRUE(MigrateStore({.from = sqlite_->Db(), .to = postgres_->Db()}).ok());
  auto back = MakeBackend(Backend::kSqlite);
  auto report = MigrateStore({.from = postgres_->Db(), .to = back->Db()});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ExpectSameContents(*sqlite_->Open().value(), *back->Open().value());
  EXPECT_EQ(back->Open().value()->GetIdCounters().value().webhook_outbox, 4);
}

TEST_F(MigrateStoreTest, AMissingSourceFileIsNotFoundAndNoEmptyOneIsCreated) {
  const std::string missing = "/tmp/no-such-dir-for-migrate-store/controller.db";
  auto report = MigrateStore({.from = "sqlite:" + missing, .to = postgres_->Db()});
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(missing));
}

}  // namespace
}  // namespace mc::controller::store_test
