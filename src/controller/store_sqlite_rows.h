// The SQLite store's rows: one column list per table (written once; the SELECT and the upsert
// are built from it), and how a record is bound to a statement and read from a row in that same
// order. Internal to store_sqlite*.cc.
#pragma once

#include "controller/store.h"
#include "sqlite/sqlite_util.h"

namespace mc::controller::sqlite_rows {

using sqlite::Cols;
using sqlite::Statement;

// ---- endpoints ----

// clang-format off
inline constexpr const char* kEndpointColumns[] = {
    "id", "name", "model", "repo", "revision", "commit", "hf_token", "command_json", "env_json",
    "gpu_type", "gpu_count", "workers_min", "workers_max", "idle_timeout_s", "scaler_type",
    "scaler_value", "execution_timeout_ms", "ttl_ms", "created_ms", "updated_ms", "image",
    "args_json", "registry_auth", "models_json", "links_json", "tenant", "secret_env",
    "cached_replicas"};
// clang-format on

inline void BindEndpoint(Statement& st, const EndpointRecord& e) {
  st.Bind(e.id).Bind(e.name).Bind(e.model).Bind(e.repo).Bind(e.revision);
  st.Bind(e.commit).Bind(e.hf_token).Bind(e.command_json).Bind(e.env_json).Bind(e.gpu_type);
  st.Bind(e.gpu_count).Bind(e.workers_min).Bind(e.workers_max).Bind(e.idle_timeout_s);
  st.Bind(e.scaler_type).Bind(e.scaler_value).Bind(e.execution_timeout_ms).Bind(e.ttl_ms);
  st.Bind(e.created_ms).Bind(e.updated_ms).Bind(e.image).Bind(e.args_json).Bind(e.registry_auth);
  st.Bind(e.models_json).Bind(e.links_json).Bind(e.tenant).Bind(e.secret_env);
  st.Bind(e.cached_replicas);
}

inline EndpointRecord ReadEndpoint(const Statement& st) {
  Cols c(st);
  EndpointRecord e;
  e.id = c.Text();
  e.name = c.Text();
  e.model = c.Text();
  e.repo = c.Text();
  e.revision = c.Text();
  e.commit = c.Text();
  e.hf_token = c.OptText();
  e.command_json = c.Text();
  e.env_json = c.Text();
  e.gpu_type = c.Text();
  e.gpu_count = c.IntNarrow();
  e.workers_min = c.IntNarrow();
  e.workers_max = c.IntNarrow();
  e.idle_timeout_s = c.IntNarrow();
  e.scaler_type = c.Text();
  e.scaler_value = c.Real();
  e.execution_timeout_ms = c.Int();
  e.ttl_ms = c.Int();
  e.created_ms = c.Int();
  e.updated_ms = c.Int();
  e.image = c.Text();
  e.args_json = c.Text();
  e.registry_auth = c.OptText();
  e.models_json = c.Text();
  e.links_json = c.Text();
  e.tenant = c.Text();
  e.secret_env = c.OptText();
  e.cached_replicas = c.IntNarrow();
  return e;
}

// ---- jobs and chunks ----

// clang-format off
inline constexpr const char* kJobColumns[] = {
    "id", "endpoint_id", "status", "input_json", "output_json", "error", "extra_json", "webhook",
    "low_priority", "execution_timeout_ms", "ttl_ms", "created_ms", "started_ms", "completed_ms",
    "worker_id", "retries", "stream_delivered", "tenant"};
// clang-format on

inline void BindJob(Statement& st, const JobRecord& j) {
  st.Bind(j.id).Bind(j.endpoint_id).Bind(j.status).Bind(j.input_json).Bind(j.output_json);
  st.Bind(j.error).Bind(j.extra_json).Bind(j.webhook).Bind(j.low_priority);
  st.Bind(j.execution_timeout_ms).Bind(j.ttl_ms).Bind(j.created_ms).Bind(j.started_ms);
  st.Bind(j.completed_ms).Bind(j.worker_id).Bind(j.retries).Bind(j.stream_delivered);
  st.Bind(j.tenant);
}

inline JobRecord ReadJob(const Statement& st) {
  Cols c(st);
  JobRecord j;
  j.id = c.Text();
  j.endpoint_id = c.Text();
  j.status = c.Text();
  j.input_json = c.Text();
  j.output_json = c.OptText();
  j.error = c.OptText();
  j.extra_json = c.Text();
  j.webhook = c.Text();
  j.low_priority = c.Bool();
  j.execution_timeout_ms = c.Int();
  j.ttl_ms = c.Int();
  j.created_ms = c.Int();
  j.started_ms = c.OptInt();
  j.completed_ms = c.OptInt();
  j.worker_id = c.Text();
  j.retries = c.IntNarrow();
  j.stream_delivered = c.Int();
  j.tenant = c.Text();
  return j;
}

// ---- webhook outbox ----

inline constexpr const char* kWebhookColumns[] = {"id",        "job_id", "url",
                                                  "body_json", "tries",  "next_attempt_ms"};

inline WebhookDelivery ReadWebhook(const Statement& st) {
  Cols c(st);
  WebhookDelivery d;
  d.id = c.Int();
  d.job_id = c.Text();
  d.url = c.Text();
  d.body_json = c.Text();
  d.tries = c.IntNarrow();
  d.next_attempt_ms = c.Int();
  return d;
}

// ---- workers and ledger ----

// clang-format off
inline constexpr const char* kWorkerColumns[] = {
    "id", "endpoint_id", "host_id", "commit", "phase", "key_sha256", "message", "created_ms",
    "ready_ms", "started_ms", "first_take_ms", "last_ping_ms", "idle_since_ms", "stopped_ms",
    "cache_hit", "queue_ms", "image_ms", "download_ms", "tenant"};
// clang-format on

inline void BindWorker(Statement& st, const WorkerRecord& w) {
  st.Bind(w.id).Bind(w.endpoint_id).Bind(w.host_id).Bind(w.commit).Bind(w.phase);
  st.Bind(w.key_sha256).Bind(w.message).Bind(w.created_ms).Bind(w.ready_ms).Bind(w.started_ms);
  st.Bind(w.first_take_ms).Bind(w.last_ping_ms).Bind(w.idle_since_ms).Bind(w.stopped_ms);
  st.Bind(w.cache_hit).Bind(w.queue_ms).Bind(w.image_ms).Bind(w.download_ms);
  st.Bind(w.tenant);
}

inline WorkerRecord ReadWorker(const Statement& st) {
  Cols c(st);
  WorkerRecord w;
  w.id = c.Text();
  w.endpoint_id = c.Text();
  w.host_id = c.Text();
  w.commit = c.Text();
  w.phase = c.Text();
  w.key_sha256 = c.Text();
  w.message = c.Text();
  w.created_ms = c.Int();
  w.ready_ms = c.OptInt();
  w.started_ms = c.OptInt();
  w.first_take_ms = c.OptInt();
  w.last_ping_ms = c.OptInt();
  w.idle_since_ms = c.OptInt();
  w.stopped_ms = c.OptInt();
  w.cache_hit = c.Bool();
  w.queue_ms = c.Int();
  w.image_ms = c.OptInt();
  w.download_ms = c.OptInt();
  w.tenant = c.Text();
  return w;
}

inline constexpr const char* kLedgerColumns[] = {"id",       "worker_id", "endpoint_id",
                                                 "phase",    "start_ms",  "end_ms",
                                                 "billed",   "tenant"};

inline LedgerRow ReadLedger(const Statement& st) {
  Cols c(st);
  LedgerRow r;
  r.id = c.Int();
  r.worker_id = c.Text();
  r.endpoint_id = c.Text();
  r.phase = c.Text();
  r.start_ms = c.Int();
  r.end_ms = c.OptInt();
  r.billed = c.Bool();
  r.tenant = c.Text();
  return r;
}

// ---- API keys and hosts ----

inline constexpr const char* kApiKeyColumns[] = {"id",         "name",   "sha256",
                                                 "created_ms", "tenant", "role"};

inline ApiKeyRecord ReadApiKey(const Statement& st) {
  Cols c(st);
  ApiKeyRecord k;
  k.id = c.Text();
  k.name = c.Text();
  k.sha256 = c.Text();
  k.created_ms = c.Int();
  k.tenant = c.Text();
  k.role = c.Text();
  return k;
}

inline constexpr const char* kHostColumns[] = {"id", "document_json", "last_seen_ms"};

inline HostRecord ReadHost(const Statement& st) {
  Cols c(st);
  HostRecord h;
  h.id = c.Text();
  h.document_json = c.Text();
  h.last_seen_ms = c.Int();
  return h;
}

inline constexpr const char* kEnrollmentColumns[] = {"host_id", "credential", "schedule",
                                                     "created_ms"};

inline HostEnrollment ReadEnrollment(const Statement& st) {
  Cols c(st);
  HostEnrollment e;
  e.host_id = c.Text();
  e.credential = c.Text();
  e.schedule = c.Text();
  e.created_ms = c.Int();
  return e;
}

}  // namespace mc::controller::sqlite_rows
