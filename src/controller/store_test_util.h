// What the controller store's tests share: record equality, record builders, and the two stores
// under test behind one StoreBackend (a SQLite file in a temp dir; a database of its own in the
// test process's throwaway PostgreSQL cluster, postgres/postgres_for_test.h).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "controller/store.h"

namespace mc::controller {

// Found by argument-dependent lookup, so in the records' namespace.
inline bool operator==(const EndpointRecord& a, const EndpointRecord& b) {
  return a.id == b.id && a.name == b.name && a.model == b.model && a.repo == b.repo &&
         a.revision == b.revision && a.commit == b.commit && a.hf_token == b.hf_token &&
         a.command_json == b.command_json && a.env_json == b.env_json && a.gpu_type == b.gpu_type &&
         a.gpu_count == b.gpu_count && a.workers_min == b.workers_min &&
         a.workers_max == b.workers_max && a.idle_timeout_s == b.idle_timeout_s &&
         a.scaler_type == b.scaler_type && a.scaler_value == b.scaler_value &&
         a.execution_timeout_ms == b.execution_timeout_ms && a.ttl_ms == b.ttl_ms &&
         a.created_ms == b.created_ms && a.updated_ms == b.updated_ms && a.image == b.image &&
         a.args_json == b.args_json && a.registry_auth == b.registry_auth &&
         a.models_json == b.models_json && a.links_json == b.links_json && a.tenant == b.tenant &&
         a.secret_env == b.secret_env && a.cached_replicas == b.cached_replicas;
}
inline bool operator==(const JobRecord& a, const JobRecord& b) {
  return a.id == b.id && a.endpoint_id == b.endpoint_id && a.status == b.status &&
         a.input_json == b.input_json && a.output_json == b.output_json && a.error == b.error &&
         a.extra_json == b.extra_json && a.webhook == b.webhook &&
         a.low_priority == b.low_priority && a.execution_timeout_ms == b.execution_timeout_ms &&
         a.ttl_ms == b.ttl_ms && a.created_ms == b.created_ms && a.started_ms == b.started_ms &&
         a.completed_ms == b.completed_ms && a.worker_id == b.worker_id && a.retries == b.retries &&
         a.stream_delivered == b.stream_delivered && a.tenant == b.tenant;
}
inline bool operator==(const StreamChunk& a, const StreamChunk& b) {
  return a.job_id == b.job_id && a.seq == b.seq && a.output_json == b.output_json;
}
inline bool operator==(const WorkerRecord& a, const WorkerRecord& b) {
  return a.id == b.id && a.endpoint_id == b.endpoint_id && a.host_id == b.host_id &&
         a.commit == b.commit && a.phase == b.phase && a.key_sha256 == b.key_sha256 &&
         a.message == b.message && a.created_ms == b.created_ms && a.ready_ms == b.ready_ms &&
         a.started_ms == b.started_ms && a.first_take_ms == b.first_take_ms &&
         a.last_ping_ms == b.last_ping_ms && a.idle_since_ms == b.idle_since_ms &&
         a.stopped_ms == b.stopped_ms && a.cache_hit == b.cache_hit && a.queue_ms == b.queue_ms &&
         a.image_ms == b.image_ms && a.download_ms == b.download_ms && a.tenant == b.tenant;
}
inline bool operator==(const LedgerRow& a, const LedgerRow& b) {
  return a.id == b.id && a.worker_id == b.worker_id && a.endpoint_id == b.endpoint_id &&
         a.phase == b.phase && a.start_ms == b.start_ms && a.end_ms == b.end_ms &&
         a.billed == b.billed && a.tenant == b.tenant;
}
inline bool operator==(const WebhookDelivery& a, const WebhookDelivery& b) {
  return a.id == b.id && a.job_id == b.job_id && a.url == b.url && a.body_json == b.body_json &&
         a.tries == b.tries && a.next_attempt_ms == b.next_attempt_ms;
}
inline bool operator==(const ApiKeyRecord& a, const ApiKeyRecord& b) {
  return a.id == b.id && a.name == b.name && a.sha256 == b.sha256 &&
         a.created_ms == b.created_ms && a.tenant == b.tenant && a.role == b.role;
}
inline bool operator==(const HostEnrollment& a, const HostEnrollment& b) {
  return a.host_id == b.host_id && a.credential == b.credential && a.schedule == b.schedule &&
         a.created_ms == b.created_ms;
}
inline bool operator==(const HostRecord& a, const HostRecord& b) {
  return a.id == b.id && a.document_json == b.document_json && a.last_seen_ms == b.last_seen_ms;
}

namespace store_test {

inline constexpr char kCommit[] = "0123456789abcdef0123456789abcdef01234567";

inline EndpointRecord Endpoint(const std::string& id, int64_t created_ms) {
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
  e.cached_replicas = 2;
  e.idle_timeout_s = 30;
  e.scaler_type = "REQUEST_COUNT";
  e.scaler_value = 2.5;
  e.execution_timeout_ms = 120'000;
  e.ttl_ms = 3'600'000;
  e.created_ms = created_ms;
  e.updated_ms = created_ms + 1;
  e.image = "registry.example:5000/org/worker:1";
  e.args_json = R"(["--port","8000"])";
  e.models_json = R"([{"model":"org/model","repo":"org/model","revision":"main","commit":")" +
                  std::string(kCommit) + R"(","include":["*.gguf"],"exclude":[]}])";
  e.links_json = R"([{"dest":"/app/models/m.gguf","file":"m.gguf"}])";
  return e;
}

inline JobRecord Job(const std::string& id, const std::string& endpoint_id,
                     const std::string& status, int64_t created_ms) {
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

inline WorkerRecord Worker(const std::string& id, const std::string& endpoint_id,
                           const std::string& phase, int64_t created_ms) {
  WorkerRecord w;
  w.id = id;
  w.endpoint_id = endpoint_id;
  w.host_id = "host-1";
  w.commit = kCommit;
  w.phase = phase;
  w.key_sha256 = std::string(64, 'a');
  w.created_ms = created_ms;
  w.queue_ms = 250;
  w.image_ms = 1200;
  w.download_ms = 800;
  return w;
}

inline WebhookDelivery Delivery(const JobRecord& job, int64_t next_attempt_ms) {
  WebhookDelivery d;
  d.job_id = job.id;
  d.url = "https://receiver.example/hook?token=t";
  d.body_json = R"({"id":")" + job.id + R"(","status":")" + job.status + R"("})";
  d.next_attempt_ms = next_attempt_ms;
  return d;
}

inline LedgerRow Ledger(const std::string& worker_id, const std::string& endpoint_id,
                        int64_t start_ms) {
  LedgerRow r;
  r.worker_id = worker_id;
  r.endpoint_id = endpoint_id;
  r.phase = "running";
  r.start_ms = start_ms;
  r.billed = true;
  return r;
}

inline std::vector<std::string> JobIds(const std::vector<JobRecord>& jobs) {
  std::vector<std::string> ids;
  for (const JobRecord& j : jobs) ids.push_back(j.id);
  return ids;
}

inline std::string ReadAll(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// One store under test, and the forging its tests need. Open() opens the same file or database
// each time (a reopen is a restart).
class StoreBackend {
 public:
  virtual ~StoreBackend() = default;
  virtual StatusOr<std::unique_ptr<ControllerStore>> Open() = 0;
  // The --db string of the store (what migrate-store takes).
  virtual std::string Db() const = 0;
  // What error messages about the store must name: the file's path, or the database's name.
  virtual std::string Name() const = 0;
  // A trigger makes the webhook outbox refuse every insert; false drops it.
  virtual void RefuseWebhookInserts(bool refuse) = 0;
  // Forges a schema version newer than any build's, with a table of that future version.
  virtual void ForgeSchemaVersion(int version) = 0;
  // Forges someone else's table in a store that has no schema version.
  virtual void ForgeForeignTable() = 0;
  // Everything about the store that a refused open must leave as it was (file bytes; the
  // PostgreSQL schema's relations and version rows).
  virtual std::string Fingerprint() = 0;
  // Runs SQL of the store's own dialect with a connection of its own (a failure fails the test).
  virtual void RawExec(const std::string& sql) = 0;
};

enum class Backend { kSqlite, kPostgres };
std::string BackendName(Backend b);  // "Sqlite", "Postgres"
inline void PrintTo(Backend b, std::ostream* os) { *os << BackendName(b); }
// A new empty store of that kind. A PostgreSQL one fails the test (never skips) when the
// cluster cannot start: the message says what to install.
std::unique_ptr<StoreBackend> MakeBackend(Backend b);

}  // namespace store_test
}  // namespace mc::controller
