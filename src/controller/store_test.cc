// The ControllerStore contract (store.h), the same tests against both stores: a SQLite file and
// a PostgreSQL database (a throwaway cluster of the test process's own, run as an unprivileged
// user). What only one store has is in store_sqlite_test.cc and store_postgres_test.cc.
#include "controller/store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "controller/store_test_util.h"

namespace mc::controller::store_test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Optional;
using ::testing::SizeIs;

class ControllerStoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    backend_ = MakeBackend(GetParam());
    ASSERT_NE(backend_, nullptr);
  }

  std::unique_ptr<ControllerStore> OpenStore() {
    auto store = backend_->Open();
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  std::unique_ptr<StoreBackend> backend_;
};

INSTANTIATE_TEST_SUITE_P(Stores, ControllerStoreTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const auto& info) { return BackendName(info.param); });

// ---- endpoints ----

TEST_P(ControllerStoreTest, EndpointsArePutGotAndListedOldestFirst) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EndpointRecord newer = Endpoint("ep-bbbbbbbbbbbb", 2000);
  EndpointRecord older = Endpoint("ep-aaaaaaaaaaaa", 1000);
  ASSERT_TRUE(store->PutEndpoint(newer).ok());
  ASSERT_TRUE(store->PutEndpoint(older).ok());

  EXPECT_THAT(*store->GetEndpoint(newer.id), Optional(newer));
  EXPECT_EQ(*store->GetEndpoint("ep-missing0000"), std::nullopt);
  EXPECT_THAT(*store->ListEndpoints(), ElementsAre(older, newer));
}

TEST_P(ControllerStoreTest, PutEndpointReplacesById) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EndpointRecord e = Endpoint("ep-aaaaaaaaaaaa", 1000);
  ASSERT_TRUE(store->PutEndpoint(e).ok());
  e.workers_max = 9;
  e.commit = std::string(40, 'f');
  e.updated_ms = 5000;
  ASSERT_TRUE(store->PutEndpoint(e).ok());

  EXPECT_THAT(*store->GetEndpoint(e.id), Optional(e));
  EXPECT_THAT(*store->ListEndpoints(), SizeIs(1));
}

TEST_P(ControllerStoreTest, DeleteEndpointRemovesItsJobsAndChunksButKeepsWorkersAndLedger) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->PutEndpoint(Endpoint("ep-gone0000000", 1000)).ok());
  ASSERT_TRUE(store->PutEndpoint(Endpoint("ep-kept0000000", 1000)).ok());
  ASSERT_TRUE(store->PutJob(Job("j-gone", "ep-gone0000000", "IN_PROGRESS", 1)).ok());
  ASSERT_TRUE(store->PutJob(Job("j-kept", "ep-kept0000000", "IN_PROGRESS", 1)).ok());
  ASSERT_TRUE(store->AppendChunk({.job_id = "j-gone", .seq = 0, .output_json = "1"}).ok());
  ASSERT_TRUE(store->AppendChunk({.job_id = "j-kept", .seq = 0, .output_json = "2"}).ok());
  ASSERT_TRUE(store->PutWorker(Worker("w-gone", "ep-gone0000000", "stopped", 1)).ok());
  ASSERT_TRUE(store->AppendLedger(Ledger("w-gone", "ep-gone0000000", 1)).ok());

  ASSERT_TRUE(store->DeleteEndpoint("ep-gone0000000").ok());

  EXPECT_EQ(*store->GetEndpoint("ep-gone0000000"), std::nullopt);
  EXPECT_EQ(*store->GetJob("j-gone"), std::nullopt);
  EXPECT_THAT(*store->ListChunks("j-gone", 0), IsEmpty());
  EXPECT_NE(*store->GetJob("j-kept"), std::nullopt);
  EXPECT_THAT(*store->ListChunks("j-kept", 0), SizeIs(1));
  EXPECT_NE(*store->GetWorker("w-gone"), std::nullopt);
  EXPECT_THAT(*store->ListLedger("ep-gone0000000"), SizeIs(1));
  // Deleting what is not there is not an error (idempotent).
  EXPECT_TRUE(store->DeleteEndpoint("ep-gone0000000").ok());
}

TEST_P(ControllerStoreTest, EndpointTokenRoundTripsAsNulloptOrValue) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EndpointRecord without = Endpoint("ep-notoken0000", 1000);
  EndpointRecord with_empty = Endpoint("ep-emptytoken0", 1000);
  with_empty.hf_token = "";  // a value, even empty, is not "no token"
  EndpointRecord with = Endpoint("ep-token000000", 1000);
  with.hf_token = "hf_secret";
  for (const auto& e : {without, with_empty, with}) ASSERT_TRUE(store->PutEndpoint(e).ok());

  EXPECT_EQ((*store->GetEndpoint(without.id))->hf_token, std::nullopt);
  EXPECT_EQ((*store->GetEndpoint(with_empty.id))->hf_token, std::optional<std::string>(""));
  EXPECT_EQ((*store->GetEndpoint(with.id))->hf_token, std::optional<std::string>("hf_secret"));
}

// ---- jobs ----

TEST_P(ControllerStoreTest, EndpointRegistryAuthRoundTripsAsNulloptOrValueAndImageFieldsKeepTheirText) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EndpointRecord process = Endpoint("ep-process0000", 1000);
  process.image.clear();  // a process worker: the defaults of a row before images
  process.args_json = process.models_json = process.links_json = "[]";
  EndpointRecord with = Endpoint("ep-auth0000000", 1000);
  with.registry_auth = R"({"username":"u","password":"p'\"\u0000x"})";
  for (const auto& e : {process, with}) ASSERT_TRUE(store->PutEndpoint(e).ok());

  EXPECT_THAT(*store->GetEndpoint(process.id), Optional(process));
  EXPECT_EQ((*store->GetEndpoint(process.id))->registry_auth, std::nullopt);
  EXPECT_THAT(*store->GetEndpoint(with.id), Optional(with));
  EXPECT_EQ((*store->GetEndpoint(with.id))->registry_auth, with.registry_auth);
}

TEST_P(ControllerStoreTest, WorkerColdStartPartsRoundTripAsNulloptOrValue) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  WorkerRecord unknown = Worker("w-unknown00000", "ep-a", "initializing", 1000);
  unknown.image_ms.reset();
  unknown.download_ms.reset();
  WorkerRecord hit = Worker("w-hit000000000", "ep-a", "idle", 1000);
  hit.image_ms = 0;
  for (const auto& w : {unknown, hit}) ASSERT_TRUE(store->PutWorker(w).ok());

  EXPECT_THAT(*store->GetWorker(unknown.id), Optional(unknown));
  EXPECT_THAT(*store->GetWorker(hit.id), Optional(hit));
  EXPECT_EQ((*store->GetWorker(hit.id))->image_ms, std::optional<int64_t>(0));
}

TEST_P(ControllerStoreTest, JobsArePutGotAndReplacedById) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  JobRecord j = Job("j-1", "ep-a", "IN_QUEUE", 1000);
  ASSERT_TRUE(store->PutJob(j).ok());
  EXPECT_THAT(*store->GetJob("j-1"), Optional(j));
  EXPECT_EQ(*store->GetJob("j-2"), std::nullopt);

  j.status = "IN_PROGRESS";
  j.worker_id = "w-1";
  j.started_ms = 1500;
  ASSERT_TRUE(store->PutJob(j).ok());
  EXPECT_THAT(*store->GetJob("j-1"), Optional(j));
  EXPECT_THAT(*store->ListJobs("", {}), SizeIs(1));
}

TEST_P(ControllerStoreTest, ReplacingAJobKeepsItsChunks) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  JobRecord j = Job("j-1", "ep-a", "IN_PROGRESS", 1000);
  ASSERT_TRUE(store->PutJob(j).ok());
  ASSERT_TRUE(store->AppendChunk({.job_id = "j-1", .seq = 0, .output_json = "\"a\""}).ok());
  j.stream_delivered = 1;
  ASSERT_TRUE(store->PutJob(j).ok());
  EXPECT_THAT(*store->ListChunks("j-1", 0), SizeIs(1));
}

TEST_P(ControllerStoreTest, JobOptionalFieldsRoundTrip) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  JobRecord unset = Job("j-unset", "ep-a", "IN_QUEUE", 1000);  // every optional nullopt
  JobRecord zero = Job("j-zero", "ep-a", "FAILED", 1000);      // set to zero / empty
  zero.output_json = "";
  zero.error = "";
  zero.started_ms = 0;
  zero.completed_ms = 0;
  JobRecord set = Job("j-set", "ep-a", "COMPLETED", 1000);
  set.output_json = R"({"text":"ok"})";
  set.error = "worker lost";
  set.started_ms = 1100;
  set.completed_ms = 1200;
  set.low_priority = true;
  set.webhook = "https://example.com/hook";
  set.extra_json = R"({"s3Config":{}})";
  set.retries = 2;
  set.stream_delivered = 7;
  for (const auto& j : {unset, zero, set}) ASSERT_TRUE(store->PutJob(j).ok());

  EXPECT_THAT(*store->GetJob(unset.id), Optional(unset));
  EXPECT_THAT(*store->GetJob(zero.id), Optional(zero));
  EXPECT_THAT(*store->GetJob(set.id), Optional(set));
}

TEST_P(ControllerStoreTest, ListJobsFiltersByEndpointAndStatusesOldestFirst) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->PutJob(Job("a3", "ep-a", "IN_QUEUE", 3000)).ok());
  ASSERT_TRUE(store->PutJob(Job("a1", "ep-a", "IN_QUEUE", 1000)).ok());
  ASSERT_TRUE(store->PutJob(Job("a2", "ep-a", "IN_PROGRESS", 2000)).ok());
  ASSERT_TRUE(store->PutJob(Job("a4", "ep-a", "COMPLETED", 500)).ok());
  ASSERT_TRUE(store->PutJob(Job("b1", "ep-b", "IN_QUEUE", 1500)).ok());

  EXPECT_THAT(JobIds(*store->ListJobs("ep-a", {})), ElementsAre("a4", "a1", "a2", "a3"));
  EXPECT_THAT(JobIds(*store->ListJobs("ep-a", {"IN_QUEUE"})), ElementsAre("a1", "a3"));
  EXPECT_THAT(JobIds(*store->ListJobs("ep-a", {"IN_QUEUE", "IN_PROGRESS"})),
              ElementsAre("a1", "a2", "a3"));
  EXPECT_THAT(JobIds(*store->ListJobs("", {"IN_QUEUE"})), ElementsAre("a1", "b1", "a3"));
  EXPECT_THAT(JobIds(*store->ListJobs("", {})), ElementsAre("a4", "a1", "b1", "a2", "a3"));
  EXPECT_THAT(*store->ListJobs("ep-none", {}), IsEmpty());
  EXPECT_THAT(*store->ListJobs("ep-a", {"CANCELLED"}), IsEmpty());
}

TEST_P(ControllerStoreTest, DeleteJobRemovesItAndItsChunks) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->PutJob(Job("j-1", "ep-a", "COMPLETED", 1)).ok());
  ASSERT_TRUE(store->AppendChunk({.job_id = "j-1", .seq = 0, .output_json = "1"}).ok());
  ASSERT_TRUE(store->DeleteJob("j-1").ok());
  EXPECT_EQ(*store->GetJob("j-1"), std::nullopt);
  EXPECT_THAT(*store->ListChunks("j-1", 0), IsEmpty());
  // A new job under the same id starts its stream at 0 again.
  ASSERT_TRUE(store->PutJob(Job("j-1", "ep-a", "IN_PROGRESS", 2)).ok());
  EXPECT_TRUE(store->AppendChunk({.job_id = "j-1", .seq = 0, .output_json = "1"}).ok());
}

// ---- stream chunks ----

TEST_P(ControllerStoreTest, ChunksAppendInOrderAndListFromASeq) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->PutJob(Job("j-1", "ep-a", "IN_PROGRESS", 1)).ok());
  std::vector<StreamChunk> chunks;
  for (int64_t seq = 0; seq < 4; ++seq) {
    chunks.push_back(
        {.job_id = "j-1", .seq = seq, .output_json = "\"c" + std::to_string(seq) + "\""});
    ASSERT_TRUE(store->AppendChunk(chunks.back()).ok());
  }
  EXPECT_THAT(*store->ListChunks("j-1", 0),
              ElementsAre(chunks[0], chunks[1], chunks[2], chunks[3]));
  EXPECT_THAT(*store->ListChunks("j-1", 2), ElementsAre(chunks[2], chunks[3]));
  EXPECT_THAT(*store->ListChunks("j-1", 4), IsEmpty());
  EXPECT_THAT(*store->ListChunks("j-other", 0), IsEmpty());
}

TEST_P(ControllerStoreTest, AChunkWithAnythingButTheNextSeqIsRefused) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->PutJob(Job("j-1", "ep-a", "IN_PROGRESS", 1)).ok());
  EXPECT_EQ(store->AppendChunk({.job_id = "j-1", .seq = 1, .output_json = "x"}).code(),
            StatusCode::kInvalidArgument);  // a gap at the start
  ASSERT_TRUE(store->AppendChunk({.job_id = "j-1", .seq = 0, .output_json = "a"}).ok());
  EXPECT_EQ(store->AppendChunk({.job_id = "j-1", .seq = 0, .output_json = "b"}).code(),
            StatusCode::kInvalidArgument);  // a repeat
  EXPECT_EQ(store->AppendChunk({.job_id = "j-1", .seq = 2, .output_json = "c"}).code(),
            StatusCode::kInvalidArgument);  // a gap
  EXPECT_EQ(store->AppendChunk({.job_id = "j-1", .seq = -1, .output_json = "d"}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_THAT(*store->ListChunks("j-1", 0),
              ElementsAre(StreamChunk{.job_id = "j-1", .seq = 0, .output_json = "a"}));
}

TEST_P(ControllerStoreTest, AChunkForAnUnknownJobIsNotFound) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Status s = store->AppendChunk({.job_id = "j-none", .seq = 0, .output_json = "x"});
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
}

// ---- webhook outbox ----

TEST_P(ControllerStoreTest, JobWithWebhookIsPutWithItsDeliveryListedOldestFirst) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  JobRecord first = Job("j-1", "ep-a", "COMPLETED", 1);
  first.webhook = "https://receiver.example/hook?token=t";
  JobRecord second = Job("j-2", "ep-a", "FAILED", 1);
  WebhookDelivery d2 = Delivery(second, 20);
  WebhookDelivery d1 = Delivery(first, 10);
  auto id2 = store->PutJobWithWebhook(second, d2);
  auto id1 = store->PutJobWithWebhook(first, d1);
  ASSERT_TRUE(id2.ok()) << id2.status().ToString();
  ASSERT_TRUE(id1.ok()) << id1.status().ToString();
  EXPECT_GT(*id1, *id2);  // the order jobs ended, not job ids or times
  d1.id = *id1;
  d2.id = *id2;
  EXPECT_THAT(*store->GetJob("j-1"), Optional(first));
  EXPECT_THAT(*store->GetJob("j-2"), Optional(second));
  EXPECT_THAT(*store->ListWebhooks(), ElementsAre(d2, d1));
}

TEST_P(ControllerStoreTest, FailedTriesAreRecordedAndDoneDeliveriesDeleted) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  const JobRecord j = Job("j-1", "ep-a", "COMPLETED", 1);
  WebhookDelivery d = Delivery(j, 10);
  d.id = store->PutJobWithWebhook(j, d).value();
  ASSERT_TRUE(store->UpdateWebhook(d.id, 2, 20'010).ok());
  d.tries = 2;
  d.next_attempt_ms = 20'010;
  EXPECT_THAT(*store->ListWebhooks(), ElementsAre(d));
  ASSERT_TRUE(store->DeleteWebhook(d.id).ok());
  EXPECT_THAT(*store->ListWebhooks(), IsEmpty());
  EXPECT_TRUE(store->DeleteWebhook(d.id).ok());  // idempotent
  EXPECT_EQ(store->UpdateWebhook(d.id, 3, 0).code(), StatusCode::kNotFound);
  EXPECT_NE(*store->GetJob("j-1"), std::nullopt);  // the job is not the delivery's to delete
}

TEST_P(ControllerStoreTest, JobAndDeliveryAreWrittenTogetherOrNotAtAll) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  JobRecord j = Job("j-1", "ep-a", "IN_PROGRESS", 1);
  ASSERT_TRUE(store->PutJob(j).ok());
  // The outbox refuses the row: the job's final status must not be written without it.
  backend_->RefuseWebhookInserts(true);
  JobRecord ended = j;
  ended.status = "COMPLETED";
  ended.completed_ms = 5;
  auto id = store->PutJobWithWebhook(ended, Delivery(ended, 5));
  ASSERT_FALSE(id.ok());
  EXPECT_THAT(id.status().message(), ::testing::Not(HasSubstr("receiver.example")));
  EXPECT_THAT(*store->GetJob("j-1"), Optional(j));
  EXPECT_THAT(*store->ListWebhooks(), IsEmpty());
  backend_->RefuseWebhookInserts(false);
  ASSERT_TRUE(store->PutJobWithWebhook(ended, Delivery(ended, 5)).ok());
  EXPECT_THAT(*store->GetJob("j-1"), Optional(ended));
  EXPECT_THAT(*store->ListWebhooks(), SizeIs(1));
}

TEST_P(ControllerStoreTest, DeliveriesOutliveTheirJobAndItsEndpoint) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->PutEndpoint(Endpoint("ep-gone0000000", 1)).ok());
  const JobRecord retained = Job("j-retained", "ep-a", "COMPLETED", 1);
  const JobRecord of_endpoint = Job("j-endpoint", "ep-gone0000000", "CANCELLED", 1);
  ASSERT_TRUE(store->PutJobWithWebhook(retained, Delivery(retained, 1)).ok());
  ASSERT_TRUE(store->PutJobWithWebhook(of_endpoint, Delivery(of_endpoint, 1)).ok());
  ASSERT_TRUE(store->DeleteJob(retained.id).ok());  // the end of its result retention
  ASSERT_TRUE(store->DeleteEndpoint("ep-gone0000000").ok());
  EXPECT_EQ(*store->GetJob(of_endpoint.id), std::nullopt);
  const auto left = store->ListWebhooks().value();
  ASSERT_THAT(left, SizeIs(2));
  EXPECT_EQ(left[0].job_id, retained.id);
  EXPECT_EQ(left[0].body_json, Delivery(retained, 1).body_json);
  EXPECT_EQ(left[1].job_id, of_endpoint.id);
}

// ---- workers and ledger ----

TEST_P(ControllerStoreTest, WorkersArePutGotAndReplacedWithOptionalFields) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  WorkerRecord unset = Worker("w-unset", "ep-a", "initializing", 1000);
  WorkerRecord set = Worker("w-set", "ep-a", "idle", 2000);
  set.ready_ms = 0;  // zero must not read back as unset
  set.started_ms = 2100;
  set.first_take_ms = 2200;
  set.last_ping_ms = 2300;
  set.idle_since_ms = 2400;
  set.stopped_ms = 2500;
  set.cache_hit = true;
  set.message = "ok";
  ASSERT_TRUE(store->PutWorker(unset).ok());
  ASSERT_TRUE(store->PutWorker(set).ok());
  EXPECT_THAT(*store->GetWorker(unset.id), Optional(unset));
  EXPECT_THAT(*store->GetWorker(set.id), Optional(set));
  EXPECT_EQ(*store->GetWorker("w-none"), std::nullopt);

  unset.phase = "starting";
  unset.started_ms = 1500;
  ASSERT_TRUE(store->PutWorker(unset).ok());
  EXPECT_THAT(*store->GetWorker(unset.id), Optional(unset));
}

TEST_P(ControllerStoreTest, ListWorkersFiltersByEndpointAndLiveOnly) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  const std::vector<WorkerRecord> workers = {
      Worker("w-a-idle", "ep-a", "idle", 1000), Worker("w-a-stopped", "ep-a", "stopped", 2000),
      Worker("w-a-failed", "ep-a", "failed", 3000), Worker("w-a-running", "ep-a", "running", 4000),
      Worker("w-b-starting", "ep-b", "starting", 500)};
  for (const auto& w : workers) ASSERT_TRUE(store->PutWorker(w).ok());
  auto ids = [](const StatusOr<std::vector<WorkerRecord>>& ws) {
    std::vector<std::string> out;
    for (const auto& w : *ws) out.push_back(w.id);
    return out;
  };
  EXPECT_THAT(ids(store->ListWorkers("ep-a", false)),
              ElementsAre("w-a-idle", "w-a-stopped", "w-a-failed", "w-a-running"));
  EXPECT_THAT(ids(store->ListWorkers("ep-a", true)), ElementsAre("w-a-idle", "w-a-running"));
  EXPECT_THAT(ids(store->ListWorkers("", true)),
              ElementsAre("w-b-starting", "w-a-idle", "w-a-running"));
  EXPECT_THAT(ids(store->ListWorkers("", false)), SizeIs(5));
}

TEST_P(ControllerStoreTest, AppendLedgerReturnsIncreasingIds) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  int64_t last = 0;
  for (int i = 0; i < 5; ++i) {
    auto id = store->AppendLedger(Ledger("w-1", "ep-a", 1000 + i));
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    EXPECT_GT(*id, last);
    last = *id;
  }
}

TEST_P(ControllerStoreTest, CloseLedgerSetsTheEnd) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  LedgerRow row = Ledger("w-1", "ep-a", 1000);
  row.billed = false;
  row.phase = "initializing";
  auto id = store->AppendLedger(row);
  ASSERT_TRUE(id.ok());
  row.id = *id;
  EXPECT_THAT(*store->ListLedger("ep-a"), ElementsAre(row));  // open: no end

  ASSERT_TRUE(store->CloseLedger(*id, 4000).ok());
  row.end_ms = 4000;
  EXPECT_THAT(*store->ListLedger("ep-a"), ElementsAre(row));
}

TEST_P(ControllerStoreTest, CloseLedgerOfAnUnknownRowIsNotFound) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->CloseLedger(12345, 1).code(), StatusCode::kNotFound);
}

TEST_P(ControllerStoreTest, ListLedgerFiltersByEndpointOldestFirst) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  int64_t a1 = *store->AppendLedger(Ledger("w-1", "ep-a", 1000));
  int64_t b1 = *store->AppendLedger(Ledger("w-2", "ep-b", 1100));
  int64_t a2 = *store->AppendLedger(Ledger("w-1", "ep-a", 1200));
  auto ids = [](const StatusOr<std::vector<LedgerRow>>& rows) {
    std::vector<int64_t> out;
    for (const auto& r : *rows) out.push_back(r.id);
    return out;
  };
  EXPECT_THAT(ids(store->ListLedger("ep-a")), ElementsAre(a1, a2));
  EXPECT_THAT(ids(store->ListLedger("ep-b")), ElementsAre(b1));
  EXPECT_THAT(ids(store->ListLedger("")), ElementsAre(a1, b1, a2));
}

// ---- API keys ----

TEST_P(ControllerStoreTest, ApiKeysAreAddedListedLookedUpAndDeleted) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ApiKeyRecord k1{
      .id = "key-aaaaaaaa", .name = "ci", .sha256 = std::string(64, '1'), .created_ms = 1000};
  ApiKeyRecord k2{
      .id = "key-bbbbbbbb", .name = "me", .sha256 = std::string(64, '2'), .created_ms = 2000};
  ASSERT_TRUE(store->AddApiKey(k2).ok());
  ASSERT_TRUE(store->AddApiKey(k1).ok());
  EXPECT_THAT(*store->ListApiKeys(), ElementsAre(k1, k2));
  EXPECT_TRUE(*store->HasApiKeySha256(k1.sha256));
  EXPECT_FALSE(*store->HasApiKeySha256(std::string(64, '3')));

  ASSERT_TRUE(store->DeleteApiKey(k1.id).ok());
  EXPECT_FALSE(*store->HasApiKeySha256(k1.sha256));
  EXPECT_THAT(*store->ListApiKeys(), ElementsAre(k2));
  EXPECT_EQ(store->DeleteApiKey(k1.id).code(), StatusCode::kNotFound);
}

TEST_P(ControllerStoreTest, AnApiKeyWithATakenHashOrIdAlreadyExists) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ApiKeyRecord k{.id = "key-aaaaaaaa", .name = "a", .sha256 = std::string(64, '1')};
  ASSERT_TRUE(store->AddApiKey(k).ok());
  ApiKeyRecord same_hash{.id = "key-bbbbbbbb", .name = "b", .sha256 = k.sha256};
  EXPECT_EQ(store->AddApiKey(same_hash).code(), StatusCode::kAlreadyExists);
  ApiKeyRecord same_id{.id = k.id, .name = "c", .sha256 = std::string(64, '2')};
  EXPECT_EQ(store->AddApiKey(same_id).code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(*store->ListApiKeys(), ElementsAre(k));
}

// ---- hosts ----

TEST_P(ControllerStoreTest, HostsArePutReplacedAndListed) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  HostRecord h2{.id = "host-2", .document_json = R"({"gpus":[]})", .last_seen_ms = 1000};
  HostRecord h1{.id = "host-1", .document_json = R"({"gpus":[0]})", .last_seen_ms = 1000};
  ASSERT_TRUE(store->PutHost(h2).ok());
  ASSERT_TRUE(store->PutHost(h1).ok());
  h1.document_json = R"({"gpus":[0,1]})";
  h1.last_seen_ms = 2000;
  ASSERT_TRUE(store->PutHost(h1).ok());
  EXPECT_THAT(*store->ListHosts(), ElementsAre(h1, h2));
}

TEST_P(ControllerStoreTest, TenantsRolesAndSecretEnvRoundTrip) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EndpointRecord e = Endpoint("ep-aaaaaaaaaaaa", 1000);
  e.tenant = "alpha";
  e.secret_env = "mcsb1:sealed";
  JobRecord j = Job("j-1", e.id, "IN_QUEUE", 1000);
  j.tenant = "alpha";
  WorkerRecord w = Worker("w-1", e.id, "idle", 1000);
  w.tenant = "alpha";
  LedgerRow l = Ledger("w-1", e.id, 1000);
  l.tenant = "alpha";
  ApiKeyRecord k{.id = "key-aaaaaaaa", .name = "a", .sha256 = std::string(64, '1'),
                 .created_ms = 1, .tenant = "alpha", .role = "readonly"};
  ASSERT_TRUE(store->PutEndpoint(e).ok());
  ASSERT_TRUE(store->PutJob(j).ok());
  ASSERT_TRUE(store->PutWorker(w).ok());
  auto id = store->AppendLedger(l);
  ASSERT_TRUE(id.ok());
  l.id = *id;
  ASSERT_TRUE(store->AddApiKey(k).ok());
  EXPECT_EQ(**store->GetEndpoint(e.id), e);
  EXPECT_EQ(**store->GetJob("j-1"), j);
  EXPECT_EQ(**store->GetWorker("w-1"), w);
  EXPECT_THAT(*store->ListLedger(""), ElementsAre(l));
  EXPECT_THAT(*store->ListApiKeys(), ElementsAre(k));
  EXPECT_EQ(**store->FindApiKeySha256(std::string(64, '1')), k);
  EXPECT_FALSE(store->FindApiKeySha256(std::string(64, '2'))->has_value());
}

TEST_P(ControllerStoreTest, HostEnrollmentsArePutReplacedListedAndDeleted) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  HostEnrollment b{.host_id = "host-b", .credential = "mcsb1:b", .schedule = "", .created_ms = 1};
  HostEnrollment a{.host_id = "host-a", .credential = "mcsb1:a", .schedule = "", .created_ms = 2};
  ASSERT_TRUE(store->PutHostEnrollment(b).ok());
  ASSERT_TRUE(store->PutHostEnrollment(a).ok());
  a.schedule = "draining";
  ASSERT_TRUE(store->PutHostEnrollment(a).ok());
  EXPECT_THAT(*store->ListHostEnrollments(), ElementsAre(a, b));
  EXPECT_EQ(**store->GetHostEnrollment("host-a"), a);
  EXPECT_FALSE(store->GetHostEnrollment("host-c")->has_value());
  ASSERT_TRUE(store->DeleteHostEnrollment("host-b").ok());
  EXPECT_EQ(store->DeleteHostEnrollment("host-b").code(), StatusCode::kNotFound);
  EXPECT_THAT(*store->ListHostEnrollments(), ElementsAre(a));
}

// ---- the file or database ----

TEST_P(ControllerStoreTest, ReopeningKeepsEverything) {
  EndpointRecord e = Endpoint("ep-aaaaaaaaaaaa", 1000);
  e.hf_token = "hf_x";
  JobRecord j = Job("j-1", e.id, "IN_PROGRESS", 1000);
  StreamChunk c{.job_id = "j-1", .seq = 0, .output_json = "\"x\""};
  WorkerRecord w = Worker("w-1", e.id, "running", 1000);
  LedgerRow l = Ledger("w-1", e.id, 1000);
  ApiKeyRecord k{.id = "key-aaaaaaaa", .name = "a", .sha256 = std::string(64, '1')};
  HostRecord h{.id = "host-1", .document_json = "{}", .last_seen_ms = 5};
  JobRecord done = Job("j-done", e.id, "COMPLETED", 1000);
  WebhookDelivery d = Delivery(done, 1000);
  d.tries = 1;
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->PutEndpoint(e).ok());
    ASSERT_TRUE(store->PutJob(j).ok());
    ASSERT_TRUE(store->AppendChunk(c).ok());
    ASSERT_TRUE(store->PutWorker(w).ok());
    auto id = store->AppendLedger(l);
    ASSERT_TRUE(id.ok());
    l.id = *id;
    ASSERT_TRUE(store->AddApiKey(k).ok());
    ASSERT_TRUE(store->PutHost(h).ok());
    auto did = store->PutJobWithWebhook(done, d);
    ASSERT_TRUE(did.ok());
    d.id = *did;
  }
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(*store->ListEndpoints(), ElementsAre(e));
  EXPECT_THAT(*store->ListJobs("", {}), ElementsAre(j, done));
  EXPECT_THAT(*store->ListWebhooks(), ElementsAre(d));
  EXPECT_THAT(*store->ListChunks("j-1", 0), ElementsAre(c));
  EXPECT_THAT(*store->ListWorkers("", false), ElementsAre(w));
  EXPECT_THAT(*store->ListLedger(""), ElementsAre(l));
  EXPECT_THAT(*store->ListApiKeys(), ElementsAre(k));
  EXPECT_THAT(*store->ListHosts(), ElementsAre(h));
  // Ledger ids keep increasing across a restart.
  auto next = store->AppendLedger(l);
  ASSERT_TRUE(next.ok());
  EXPECT_GT(*next, l.id);
  // So do delivery ids, even once the outbox is empty.
  ASSERT_TRUE(store->DeleteWebhook(d.id).ok());
  auto next_delivery = store->PutJobWithWebhook(done, d);
  ASSERT_TRUE(next_delivery.ok());
  EXPECT_GT(*next_delivery, d.id);
}

TEST_P(ControllerStoreTest, ANewerSchemaVersionIsFailedPreconditionAndLeftUntouched) {
  backend_->ForgeSchemaVersion(99);
  const std::string before = backend_->Fingerprint();

  auto store = backend_->Open();
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr(backend_->Name()));
  EXPECT_THAT(store.status().message(), HasSubstr("99"));
  EXPECT_EQ(backend_->Fingerprint(), before);
}

TEST_P(ControllerStoreTest, ADatabaseOfSomethingElseIsFailedPrecondition) {
  backend_->ForgeForeignTable();  // tables, but no schema version
  const std::string before = backend_->Fingerprint();
  auto store = backend_->Open();
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr(backend_->Name()));
  EXPECT_EQ(backend_->Fingerprint(), before);
}

TEST_P(ControllerStoreTest, ConcurrentWritersFromEightThreadsAllSucceed) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  constexpr int kThreads = 8;
  constexpr int kJobsPerThread = 25;
  std::vector<std::thread> threads;
  std::vector<std::vector<int64_t>> ledger_ids(kThreads);
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string ep = "ep-" + std::to_string(t);
      for (int i = 0; i < kJobsPerThread; ++i) {
        const std::string id = "j-" + std::to_string(t) + "-" + std::to_string(i);
        if (!store->PutJob(Job(id, ep, "IN_PROGRESS", i)).ok()) ++failures[t];
        for (int64_t seq = 0; seq < 3; ++seq) {
          if (!store->AppendChunk({.job_id = id, .seq = seq, .output_json = "0"}).ok()) {
            ++failures[t];
          }
        }
        auto lid = store->AppendLedger(Ledger("w-" + std::to_string(t), ep, i));
        if (lid.ok()) {
          ledger_ids[t].push_back(*lid);
        } else {
          ++failures[t];
        }
        if (!store->ListJobs(ep, {"IN_PROGRESS"}).ok()) ++failures[t];
      }
    });
  }
  for (auto& th : threads) th.join();

  EXPECT_THAT(failures, ::testing::Each(0));
  EXPECT_THAT(*store->ListJobs("", {}), SizeIs(kThreads * kJobsPerThread));
  std::set<int64_t> distinct;
  for (const auto& ids : ledger_ids) distinct.insert(ids.begin(), ids.end());
  EXPECT_THAT(distinct, SizeIs(kThreads * kJobsPerThread));
  EXPECT_THAT(*store->ListChunks("j-7-24", 0), SizeIs(3));
}

TEST_P(ControllerStoreTest, HostileStringsRoundTripAsData) {
  const std::vector<std::string> hostile = {
      "'; DROP TABLE jobs; --",
      "\" OR 1=1 --",
      std::string("nul\0inside", 10),
      "\xff\xfe not utf-8 \xc3",
      "emoji 🚀 and ünïcödé",
      "%s %n {}\n\r\t\\",
      "?1 ?2 :name @x $y",
      "",
  };
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  for (size_t i = 0; i < hostile.size(); ++i) {
    const std::string& s = hostile[i];
    SCOPED_TRACE(i);
    EndpointRecord e = Endpoint("ep-" + std::to_string(i), 1);
    e.name = s;
    e.hf_token = s;
    e.env_json = s;
    ASSERT_TRUE(store->PutEndpoint(e).ok());
    EXPECT_THAT(*store->GetEndpoint(e.id), Optional(e));

    JobRecord j = Job(s + "#" + std::to_string(i), s, s, 1);  // id, endpoint and status too
    j.input_json = s;
    j.error = s;
    ASSERT_TRUE(store->PutJob(j).ok());
    EXPECT_THAT(*store->GetJob(j.id), Optional(j));
    EXPECT_THAT(*store->ListJobs(s, {s}), ElementsAre(j));

    StreamChunk c{.job_id = j.id, .seq = 0, .output_json = s};
    ASSERT_TRUE(store->AppendChunk(c).ok());
    EXPECT_THAT(*store->ListChunks(j.id, 0), ElementsAre(c));
  }
  EXPECT_THAT(*store->ListEndpoints(), SizeIs(hostile.size()));
  EXPECT_THAT(*store->ListJobs("", {}), SizeIs(hostile.size()));
}

}  // namespace
}  // namespace mc::controller::store_test
