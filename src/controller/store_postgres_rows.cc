#include "controller/store_postgres_rows.h"

namespace mc::controller::pg_rows {

using postgres::Cols;
using postgres::Params;

void AddEndpoint(Params& p, const EndpointRecord& e) {
  p.Add(e.id).Add(e.name).Add(e.model).Add(e.repo).Add(e.revision);
  p.Add(e.commit).Add(e.hf_token).Add(e.command_json).Add(e.env_json).Add(e.gpu_type);
  p.Add(e.gpu_count).Add(e.workers_min).Add(e.workers_max).Add(e.idle_timeout_s);
  p.Add(e.scaler_type).Add(e.scaler_value).Add(e.execution_timeout_ms).Add(e.ttl_ms);
  p.Add(e.created_ms).Add(e.updated_ms).Add(e.image).Add(e.args_json).Add(e.registry_auth);
  p.Add(e.models_json).Add(e.links_json);
  p.Add(e.tenant).Add(e.secret_env).Add(e.cached_replicas);
}

EndpointRecord ReadEndpoint(Cols& c) {
  EndpointRecord e;
  e.id = c.Bytes();
  e.name = c.Bytes();
  e.model = c.Bytes();
  e.repo = c.Bytes();
  e.revision = c.Bytes();
  e.commit = c.Bytes();
  e.hf_token = c.OptBytes();
  e.command_json = c.Bytes();
  e.env_json = c.Bytes();
  e.gpu_type = c.Bytes();
  e.gpu_count = c.IntNarrow();
  e.workers_min = c.IntNarrow();
  e.workers_max = c.IntNarrow();
  e.idle_timeout_s = c.IntNarrow();
  e.scaler_type = c.Bytes();
  e.scaler_value = c.Double();
  e.execution_timeout_ms = c.Int();
  e.ttl_ms = c.Int();
  e.created_ms = c.Int();
  e.updated_ms = c.Int();
  e.image = c.Bytes();
  e.args_json = c.Bytes();
  e.registry_auth = c.OptBytes();
  e.models_json = c.Bytes();
  e.links_json = c.Bytes();
  e.tenant = c.Bytes();
  e.secret_env = c.OptBytes();
  e.cached_replicas = c.IntNarrow();
  return e;
}

void AddJob(Params& p, const JobRecord& j) {
  p.Add(j.id).Add(j.endpoint_id).Add(j.status).Add(j.input_json).Add(j.output_json);
  p.Add(j.error).Add(j.extra_json).Add(j.webhook).Add(j.low_priority);
  p.Add(j.execution_timeout_ms).Add(j.ttl_ms).Add(j.created_ms).Add(j.started_ms);
  p.Add(j.completed_ms).Add(j.worker_id).Add(j.retries).Add(j.stream_delivered).Add(j.tenant);
}

JobRecord ReadJob(Cols& c) {
  JobRecord j;
  j.id = c.Bytes();
  j.endpoint_id = c.Bytes();
  j.status = c.Bytes();
  j.input_json = c.Bytes();
  j.output_json = c.OptBytes();
  j.error = c.OptBytes();
  j.extra_json = c.Bytes();
  j.webhook = c.Bytes();
  j.low_priority = c.Bool();
  j.execution_timeout_ms = c.Int();
  j.ttl_ms = c.Int();
  j.created_ms = c.Int();
  j.started_ms = c.OptInt();
  j.completed_ms = c.OptInt();
  j.worker_id = c.Bytes();
  j.retries = c.IntNarrow();
  j.stream_delivered = c.Int();
  j.tenant = c.Bytes();
  return j;
}

void AddChunk(Params& p, const StreamChunk& s) { p.Add(s.job_id).Add(s.seq).Add(s.output_json); }

StreamChunk ReadChunk(Cols& c) {
  StreamChunk s;
  s.job_id = c.Bytes();
  s.seq = c.Int();
  s.output_json = c.Bytes();
  return s;
}

void AddWebhook(Params& p, const WebhookDelivery& d) {
  p.Add(d.id).Add(d.job_id).Add(d.url).Add(d.body_json).Add(d.tries).Add(d.next_attempt_ms);
}

WebhookDelivery ReadWebhook(Cols& c) {
  WebhookDelivery d;
  d.id = c.Int();
  d.job_id = c.Bytes();
  d.url = c.Bytes();
  d.body_json = c.Bytes();
  d.tries = c.IntNarrow();
  d.next_attempt_ms = c.Int();
  return d;
}

void AddWorker(Params& p, const WorkerRecord& w) {
  p.Add(w.id).Add(w.endpoint_id).Add(w.host_id).Add(w.commit).Add(w.phase);
  p.Add(w.key_sha256).Add(w.message).Add(w.created_ms).Add(w.ready_ms).Add(w.started_ms);
  p.Add(w.first_take_ms).Add(w.last_ping_ms).Add(w.idle_since_ms).Add(w.stopped_ms);
  p.Add(w.cache_hit).Add(w.queue_ms).Add(w.image_ms).Add(w.download_ms);
  p.Add(w.tenant).Add(w.epoch);
}

WorkerRecord ReadWorker(Cols& c) {
  WorkerRecord w;
  w.id = c.Bytes();
  w.endpoint_id = c.Bytes();
  w.host_id = c.Bytes();
  w.commit = c.Bytes();
  w.phase = c.Bytes();
  w.key_sha256 = c.Bytes();
  w.message = c.Bytes();
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
  w.tenant = c.Bytes();
  w.epoch = c.Int();
  return w;
}

void AddLedger(Params& p, const LedgerRow& r) {
  p.Add(r.id).Add(r.worker_id).Add(r.endpoint_id).Add(r.phase).Add(r.start_ms).Add(r.end_ms);
  p.Add(r.billed).Add(r.tenant);
}

LedgerRow ReadLedger(Cols& c) {
  LedgerRow r;
  r.id = c.Int();
  r.worker_id = c.Bytes();
  r.endpoint_id = c.Bytes();
  r.phase = c.Bytes();
  r.start_ms = c.Int();
  r.end_ms = c.OptInt();
  r.billed = c.Bool();
  r.tenant = c.Bytes();
  return r;
}

void AddApiKey(Params& p, const ApiKeyRecord& k) {
  p.Add(k.id).Add(k.name).Add(k.sha256).Add(k.created_ms).Add(k.tenant).Add(k.role);
}

ApiKeyRecord ReadApiKey(Cols& c) {
  ApiKeyRecord k;
  k.id = c.Bytes();
  k.name = c.Bytes();
  k.sha256 = c.Bytes();
  k.created_ms = c.Int();
  k.tenant = c.Bytes();
  k.role = c.Bytes();
  return k;
}

void AddHost(Params& p, const HostRecord& h) {
  p.Add(h.id).Add(h.document_json).Add(h.last_seen_ms);
}

HostRecord ReadHost(Cols& c) {
  HostRecord h;
  h.id = c.Bytes();
  h.document_json = c.Bytes();
  h.last_seen_ms = c.Int();
  return h;
}

void AddEnrollment(Params& p, const HostEnrollment& e) {
  p.Add(e.host_id).Add(e.credential).Add(e.schedule).Add(e.created_ms);
}

HostEnrollment ReadEnrollment(Cols& c) {
  HostEnrollment e;
  e.host_id = c.Bytes();
  e.credential = c.Bytes();
  e.schedule = c.Bytes();
  e.created_ms = c.Int();
  return e;
}

}  // namespace mc::controller::pg_rows
