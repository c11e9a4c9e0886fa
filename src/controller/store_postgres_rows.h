// The PostgreSQL store's rows: one column list per table (written once; the SELECT and the
// upsert are built from it), and how a record is added as parameters and read from a result in
// that same order. Internal to store_postgres*.cc.
#pragma once

#include "controller/store.h"
#include "postgres/pg_util.h"

namespace mc::controller::pg_rows {

// clang-format off
inline constexpr const char* kEndpointColumns[] = {
    "id", "name", "model", "repo", "revision", "commit", "hf_token", "command_json", "env_json",
    "gpu_type", "gpu_count", "workers_min", "workers_max", "idle_timeout_s", "scaler_type",
    "scaler_value", "execution_timeout_ms", "ttl_ms", "created_ms", "updated_ms", "image",
    "args_json", "registry_auth", "models_json", "links_json", "tenant", "secret_env",
    "cached_replicas"};
inline constexpr const char* kJobColumns[] = {
    "id", "endpoint_id", "status", "input_json", "output_json", "error", "extra_json", "webhook",
    "low_priority", "execution_timeout_ms", "ttl_ms", "created_ms", "started_ms", "completed_ms",
    "worker_id", "retries", "stream_delivered", "tenant"};
inline constexpr const char* kChunkColumns[] = {"job_id", "seq", "output_json"};
inline constexpr const char* kWebhookColumns[] = {
    "id", "job_id", "url", "body_json", "tries", "next_attempt_ms"};
inline constexpr const char* kWorkerColumns[] = {
    "id", "endpoint_id", "host_id", "commit", "phase", "key_sha256", "message", "created_ms",
    "ready_ms", "started_ms", "first_take_ms", "last_ping_ms", "idle_since_ms", "stopped_ms",
    "cache_hit", "queue_ms", "image_ms", "download_ms", "tenant", "epoch"};
inline constexpr const char* kLedgerColumns[] = {
    "id", "worker_id", "endpoint_id", "phase", "start_ms", "end_ms", "billed", "tenant"};
inline constexpr const char* kApiKeyColumns[] = {
    "id", "name", "sha256", "created_ms", "tenant", "role"};
inline constexpr const char* kHostColumns[] = {"id", "document_json", "last_seen_ms"};
inline constexpr const char* kEnrollmentColumns[] = {
    "host_id", "credential", "schedule", "created_ms"};
// clang-format on

// Every column, in the order above.
void AddEndpoint(postgres::Params& p, const EndpointRecord& e);
EndpointRecord ReadEndpoint(postgres::Cols& c);
void AddJob(postgres::Params& p, const JobRecord& j);
JobRecord ReadJob(postgres::Cols& c);
void AddChunk(postgres::Params& p, const StreamChunk& s);
StreamChunk ReadChunk(postgres::Cols& c);
void AddWebhook(postgres::Params& p, const WebhookDelivery& d);  // with its id
WebhookDelivery ReadWebhook(postgres::Cols& c);
void AddWorker(postgres::Params& p, const WorkerRecord& w);
WorkerRecord ReadWorker(postgres::Cols& c);
void AddLedger(postgres::Params& p, const LedgerRow& r);  // with its id
LedgerRow ReadLedger(postgres::Cols& c);
void AddApiKey(postgres::Params& p, const ApiKeyRecord& k);
ApiKeyRecord ReadApiKey(postgres::Cols& c);
void AddHost(postgres::Params& p, const HostRecord& h);
HostRecord ReadHost(postgres::Cols& c);
void AddEnrollment(postgres::Params& p, const HostEnrollment& e);
HostEnrollment ReadEnrollment(postgres::Cols& c);

}  // namespace mc::controller::pg_rows
