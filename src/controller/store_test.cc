#include "controller/store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace mc::controller {

// Found by argument-dependent lookup, so in the records' namespace (not the unnamed one).
bool operator==(const EndpointRecord& a, const EndpointRecord& b) {
  return a.id == b.id && a.name == b.name && a.model == b.model && a.repo == b.repo &&
         a.revision == b.revision && a.commit == b.commit && a.hf_token == b.hf_token &&
         a.command_json == b.command_json && a.env_json == b.env_json && a.gpu_type == b.gpu_type &&
         a.gpu_count == b.gpu_count && a.workers_min == b.workers_min &&
         a.workers_max == b.workers_max && a.idle_timeout_s == b.idle_timeout_s &&
         a.scaler_type == b.scaler_type && a.scaler_value == b.scaler_value &&
         a.execution_timeout_ms == b.execution_timeout_ms && a.ttl_ms == b.ttl_ms &&
         a.created_ms == b.created_ms && a.updated_ms == b.updated_ms;
}
bool operator==(const JobRecord& a, const JobRecord& b) {
  return a.id == b.id && a.endpoint_id == b.endpoint_id && a.status == b.status &&
         a.input_json == b.input_json && a.output_json == b.output_json && a.error == b.error &&
         a.extra_json == b.extra_json && a.webhook == b.webhook &&
         a.low_priority == b.low_priority && a.execution_timeout_ms == b.execution_timeout_ms &&
         a.ttl_ms == b.ttl_ms && a.created_ms == b.created_ms && a.started_ms == b.started_ms &&
         a.completed_ms == b.completed_ms && a.worker_id == b.worker_id && a.retries == b.retries &&
         a.stream_delivered == b.stream_delivered;
}
bool operator==(const StreamChunk& a, const StreamChunk& b) {
  return a.job_id == b.job_id && a.seq == b.seq && a.output_json == b.output_json;
}
bool operator==(const WorkerRecord& a, const WorkerRecord& b) {
  return a.id == b.id && a.endpoint_id == b.endpoint_id && a.host_id == b.host_id &&
         a.commit == b.commit && a.phase == b.phase && a.key_sha256 == b.key_sha256 &&
         a.message == b.message && a.created_ms == b.created_ms && a.ready_ms == b.ready_ms &&
         a.started_ms == b.started_ms && a.first_take_ms == b.first_take_ms &&
         a.last_ping_ms == b.last_ping_ms && a.idle_since_ms == b.idle_since_ms &&
         a.stopped_ms == b.stopped_ms && a.cache_hit == b.cache_hit && a.queue_ms == b.queue_ms;
}
bool operator==(const LedgerRow& a, const LedgerRow& b) {
  return a.id == b.id && a.worker_id == b.worker_id && a.endpoint_id == b.endpoint_id &&
         a.phase == b.phase && a.start_ms == b.start_ms && a.end_ms == b.end_ms &&
         a.billed == b.billed;
}
bool operator==(const WebhookDelivery& a, const WebhookDelivery& b) {
  return a.id == b.id && a.job_id == b.job_id && a.url == b.url && a.body_json == b.body_json &&
         a.tries == b.tries && a.next_attempt_ms == b.next_attempt_ms;
}
bool operator==(const ApiKeyRecord& a, const ApiKeyRecord& b) {
  return a.id == b.id && a.name == b.name && a.sha256 == b.sha256 && a.created_ms == b.created_ms;
}
bool operator==(const HostRecord& a, const HostRecord& b) {
  return a.id == b.id && a.document_json == b.document_json && a.last_seen_ms == b.last_seen_ms;
}

namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Optional;
using ::testing::SizeIs;

constexpr char kCommit[] = "0123456789abcdef0123456789abcdef01234567";

EndpointRecord Endpoint(const std::string& id, int64_t created_ms) {
  EndpointRecord e;
  e.id = id;
  e.name = "name of " + id;
  e.model = "https://huggingface.co/org/model:main";
  e.repo = "org/model";
  e.revision = "main";
  e.commit = kCommit;
  e.command_json = R"(["python","handler.py"])";
  e.env_json = R"({"A":"1"})";
  e.gpu_type = "NVIDIA A100";
  e.gpu_count = 2;
  e.workers_min = 1;
  e.workers_max = 5;
  e.idle_timeout_s = 30;
  e.scaler_type = "REQUEST_COUNT";
  e.scaler_value = 2.5;
  e.execution_timeout_ms = 120'000;
  e.ttl_ms = 3'600'000;
  e.created_ms = created_ms;
  e.updated_ms = created_ms + 1;
  return e;
}

JobRecord Job(const std::string& id, const std::string& endpoint_id, const std::string& status,
              int64_t created_ms) {
  JobRecord j;
  j.id = id;
  j.endpoint_id = endpoint_id;
  j.status = status;
  j.input_json = R"({"prompt":"hi"})";
  j.execution_timeout_ms = 600'000;
  j.ttl_ms = 86'400'000;
  j.created_ms = created_ms;
  return j;
}

WorkerRecord Worker(const std::string& id, const std::string& endpoint_id, const std::string& phase,
                    int64_t created_ms) {
  WorkerRecord w;
  w.id = id;
  w.endpoint_id = endpoint_id;
  w.host_id = "host-1";
  w.commit = kCommit;
  w.phase = phase;
  w.key_sha256 = std::string(64, 'a');
  w.created_ms = created_ms;
  w.queue_ms = 250;
  return w;
}

WebhookDelivery Delivery(const JobRecord& job, int64_t next_attempt_ms) {
  WebhookDelivery d;
  d.job_id = job.id;
  d.url = "https://receiver.example/hook?token=t";
  d.body_json = R"({"id":")" + job.id + R"(","status":")" + job.status + R"("})";
  d.next_attempt_ms = next_attempt_ms;
  return d;
}

LedgerRow Ledger(const std::string& worker_id, const std::string& endpoint_id, int64_t start_ms) {
  LedgerRow r;
  r.worker_id = worker_id;
  r.endpoint_id = endpoint_id;
  r.phase = "running";
  r.start_ms = start_ms;
  r.billed = true;
  return r;
}

std::vector<std::string> JobIds(const std::vector<JobRecord>& jobs) {
  std::vector<std::string> ids;
  for (const JobRecord& j : jobs) ids.push_back(j.id);
  return ids;
}

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class ControllerStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "controller_store_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ / "controller.db";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::unique_ptr<ControllerStore> OpenStore() {
    auto store = ControllerStore::Open(path_);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  // Runs `sql` on the file with a plain connection (to forge what a test needs).
  void RawExec(const std::string& sql) {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &raw), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
        << sqlite3_errmsg(raw);
    sqlite3_close(raw);
  }

  fs::path dir_;
  fs::path path_;
};

// ---- endpoints ----

TEST_F(ControllerStoreTest, EndpointsArePutGotAndListedOldestFirst) {
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

TEST_F(ControllerStoreTest, PutEndpointReplacesById) {
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

TEST_F(ControllerStoreTest, DeleteEndpointRemovesItsJobsAndChunksButKeepsWorkersAndLedger) {
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

TEST_F(ControllerStoreTest, EndpointTokenRoundTripsAsNulloptOrValue) {
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

TEST_F(ControllerStoreTest, JobsArePutGotAndReplacedById) {
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

TEST_F(ControllerStoreTest, ReplacingAJobKeepsItsChunks) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  JobRecord j = Job("j-1", "ep-a", "IN_PROGRESS", 1000);
  ASSERT_TRUE(store->PutJob(j).ok());
  ASSERT_TRUE(store->AppendChunk({.job_id = "j-1", .seq = 0, .output_json = "\"a\""}).ok());
  j.stream_delivered = 1;
  ASSERT_TRUE(store->PutJob(j).ok());
  EXPECT_THAT(*store->ListChunks("j-1", 0), SizeIs(1));
}

TEST_F(ControllerStoreTest, JobOptionalFieldsRoundTrip) {
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

TEST_F(ControllerStoreTest, ListJobsFiltersByEndpointAndStatusesOldestFirst) {
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

TEST_F(ControllerStoreTest, DeleteJobRemovesItAndItsChunks) {
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

TEST_F(ControllerStoreTest, ChunksAppendInOrderAndListFromASeq) {
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

TEST_F(ControllerStoreTest, AChunkWithAnythingButTheNextSeqIsRefused) {
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

TEST_F(ControllerStoreTest, AChunkForAnUnknownJobIsNotFound) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  Status s = store->AppendChunk({.job_id = "j-none", .seq = 0, .output_json = "x"});
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
}

// ---- webhook outbox ----

TEST_F(ControllerStoreTest, JobWithWebhookIsPutWithItsDeliveryListedOldestFirst) {
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

TEST_F(ControllerStoreTest, FailedTriesAreRecordedAndDoneDeliveriesDeleted) {
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

TEST_F(ControllerStoreTest, JobAndDeliveryAreWrittenTogetherOrNotAtAll) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  JobRecord j = Job("j-1", "ep-a", "IN_PROGRESS", 1);
  ASSERT_TRUE(store->PutJob(j).ok());
  // The outbox refuses the row: the job's final status must not be written without it.
  RawExec(
      "CREATE TRIGGER refuse BEFORE INSERT ON webhook_outbox BEGIN SELECT RAISE(ABORT, 'no'); "
      "END");
  JobRecord ended = j;
  ended.status = "COMPLETED";
  ended.completed_ms = 5;
  auto id = store->PutJobWithWebhook(ended, Delivery(ended, 5));
  ASSERT_FALSE(id.ok());
  EXPECT_THAT(id.status().message(), ::testing::Not(HasSubstr("receiver.example")));
  EXPECT_THAT(*store->GetJob("j-1"), Optional(j));
  EXPECT_THAT(*store->ListWebhooks(), IsEmpty());
  RawExec("DROP TRIGGER refuse");
  ASSERT_TRUE(store->PutJobWithWebhook(ended, Delivery(ended, 5)).ok());
  EXPECT_THAT(*store->GetJob("j-1"), Optional(ended));
  EXPECT_THAT(*store->ListWebhooks(), SizeIs(1));
}

TEST_F(ControllerStoreTest, DeliveriesOutliveTheirJobAndItsEndpoint) {
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

TEST_F(ControllerStoreTest, WorkersArePutGotAndReplacedWithOptionalFields) {
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

TEST_F(ControllerStoreTest, ListWorkersFiltersByEndpointAndLiveOnly) {
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

TEST_F(ControllerStoreTest, AppendLedgerReturnsIncreasingIds) {
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

TEST_F(ControllerStoreTest, CloseLedgerSetsTheEnd) {
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

TEST_F(ControllerStoreTest, CloseLedgerOfAnUnknownRowIsNotFound) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->CloseLedger(12345, 1).code(), StatusCode::kNotFound);
}

TEST_F(ControllerStoreTest, ListLedgerFiltersByEndpointOldestFirst) {
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

TEST_F(ControllerStoreTest, ApiKeysAreAddedListedLookedUpAndDeleted) {
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

TEST_F(ControllerStoreTest, AnApiKeyWithATakenHashOrIdAlreadyExists) {
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

TEST_F(ControllerStoreTest, HostsArePutReplacedAndListed) {
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

// ---- the file ----

TEST_F(ControllerStoreTest, ReopeningKeepsEverything) {
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

// Schema version 1 as a build of that version created it (store_sqlite.cc, kMigrations[0]),
// frozen here: migrations must take such a file forward whatever the current schema is.
constexpr char kSchemaVersion1[] = R"sql(
CREATE TABLE endpoints (
  id TEXT NOT NULL PRIMARY KEY, name TEXT NOT NULL, model TEXT NOT NULL, repo TEXT NOT NULL,
  revision TEXT NOT NULL, "commit" TEXT NOT NULL, hf_token TEXT, command_json TEXT NOT NULL,
  env_json TEXT NOT NULL, gpu_type TEXT NOT NULL, gpu_count INTEGER NOT NULL,
  workers_min INTEGER NOT NULL, workers_max INTEGER NOT NULL, idle_timeout_s INTEGER NOT NULL,
  scaler_type TEXT NOT NULL, scaler_value REAL NOT NULL, execution_timeout_ms INTEGER NOT NULL,
  ttl_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL) STRICT;
CREATE TABLE jobs (
  id TEXT NOT NULL PRIMARY KEY, endpoint_id TEXT NOT NULL, status TEXT NOT NULL,
  input_json TEXT NOT NULL, output_json TEXT, error TEXT, extra_json TEXT NOT NULL,
  webhook TEXT NOT NULL, low_priority INTEGER NOT NULL CHECK (low_priority IN (0, 1)),
  execution_timeout_ms INTEGER NOT NULL, ttl_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL,
  started_ms INTEGER, completed_ms INTEGER, worker_id TEXT NOT NULL, retries INTEGER NOT NULL,
  stream_delivered INTEGER NOT NULL) STRICT;
CREATE INDEX jobs_by_endpoint_status ON jobs (endpoint_id, status, created_ms);
CREATE TABLE stream_chunks (
  job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE, seq INTEGER NOT NULL,
  output_json TEXT NOT NULL,
  PRIMARY KEY (job_id, seq)) STRICT, WITHOUT ROWID;
CREATE TABLE workers (
  id TEXT NOT NULL PRIMARY KEY, endpoint_id TEXT NOT NULL, host_id TEXT NOT NULL,
  "commit" TEXT NOT NULL, phase TEXT NOT NULL, key_sha256 TEXT NOT NULL, message TEXT NOT NULL,
  created_ms INTEGER NOT NULL, ready_ms INTEGER, started_ms INTEGER, first_take_ms INTEGER,
  last_ping_ms INTEGER, idle_since_ms INTEGER, stopped_ms INTEGER,
  cache_hit INTEGER NOT NULL CHECK (cache_hit IN (0, 1)), queue_ms INTEGER NOT NULL) STRICT;
CREATE INDEX workers_by_endpoint ON workers (endpoint_id);
CREATE TABLE ledger (
  id INTEGER PRIMARY KEY AUTOINCREMENT, worker_id TEXT NOT NULL, endpoint_id TEXT NOT NULL,
  phase TEXT NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER,
  billed INTEGER NOT NULL CHECK (billed IN (0, 1))) STRICT;
CREATE INDEX ledger_by_endpoint ON ledger (endpoint_id);
CREATE TABLE api_keys (
  id TEXT NOT NULL PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT NOT NULL UNIQUE,
  created_ms INTEGER NOT NULL) STRICT;
CREATE TABLE hosts (
  id TEXT NOT NULL PRIMARY KEY, document_json TEXT NOT NULL, last_seen_ms INTEGER NOT NULL) STRICT;
PRAGMA user_version = 1;
)sql";

TEST_F(ControllerStoreTest, AVersion1DatabaseGainsTheOutboxAndKeepsItsRows) {
  RawExec(kSchemaVersion1);
  RawExec(
      "INSERT INTO jobs VALUES ('j-old', 'ep-a', 'COMPLETED', 'null', '1', NULL, '{}', "
      "'https://receiver.example/hook', 0, 600000, 86400000, 1000, 1100, 1200, 'w-1', 0, 0);"
      "INSERT INTO api_keys VALUES ('key-aaaaaaaa', 'a', '" +
      std::string(64, '1') + "', 5)");

  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  const auto old = store->GetJob("j-old");
  ASSERT_TRUE(old.ok() && old->has_value()) << old.status().ToString();
  EXPECT_EQ((*old)->status, "COMPLETED");
  EXPECT_EQ((*old)->webhook, "https://receiver.example/hook");
  EXPECT_THAT(*store->ListApiKeys(), SizeIs(1));
  EXPECT_THAT(*store->ListWebhooks(), IsEmpty());  // version 1 recorded no deliveries
  const JobRecord j = Job("j-new", "ep-a", "COMPLETED", 2000);
  auto id = store->PutJobWithWebhook(j, Delivery(j, 2000));
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_THAT(*store->ListWebhooks(), SizeIs(1));
  store.reset();

  // The file is at the current version now, and opens again as it is.
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &raw), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "PRAGMA user_version", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int64(st, 0), 2);
  sqlite3_finalize(st);
  sqlite3_close(raw);
  store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(*store->ListWebhooks(), SizeIs(1));
}

TEST_F(ControllerStoreTest, AGarbageFileIsFailedPreconditionNamingItAndLeftUntouched) {
  const std::string garbage = "this is not a database, just some text that is long enough\n";
  std::ofstream(path_) << garbage;

  auto store = ControllerStore::Open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr(path_.string()));
  EXPECT_EQ(ReadAll(path_), garbage);
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir_)) files.push_back(entry.path());
  EXPECT_THAT(files, ElementsAre(path_));  // nothing moved aside, no -wal or -shm
}

TEST_F(ControllerStoreTest, ACorruptDatabaseIsFailedPreconditionAndLeftUntouched) {
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    for (int i = 0; i < 200; ++i) {
      ASSERT_TRUE(store->PutJob(Job("j-" + std::to_string(i), "ep-a", "IN_QUEUE", i)).ok());
    }
  }  // the last connection checkpoints the WAL into the file
  {
    std::fstream f(path_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096);  // page 2 onwards: the tables' b-trees, the header stays valid
    std::string junk(4 * 4096, '\xa5');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  const std::string before = ReadAll(path_);

  auto store = ControllerStore::Open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition) << store.status().ToString();
  EXPECT_THAT(store.status().message(), HasSubstr(path_.string()));
  EXPECT_EQ(ReadAll(path_), before);
}

TEST_F(ControllerStoreTest, ANewerSchemaVersionIsFailedPreconditionAndLeftUntouched) {
  RawExec("CREATE TABLE future (x); PRAGMA user_version = 99");
  const std::string before = ReadAll(path_);

  auto store = ControllerStore::Open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr(path_.string()));
  EXPECT_THAT(store.status().message(), HasSubstr("99"));
  EXPECT_EQ(ReadAll(path_), before);
}

TEST_F(ControllerStoreTest, ADatabaseOfSomethingElseIsFailedPrecondition) {
  RawExec("CREATE TABLE other (x)");  // tables, but user_version 0
  auto store = ControllerStore::Open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(ControllerStoreTest, AMissingDirectoryIsNotFound) {
  auto store = ControllerStore::Open(dir_ / "no-such-dir" / "controller.db");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kNotFound) << store.status().ToString();
}

TEST_F(ControllerStoreTest, ConcurrentWritersFromEightThreadsAllSucceed) {
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

TEST_F(ControllerStoreTest, HostileStringsRoundTripAsData) {
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
}  // namespace mc::controller
