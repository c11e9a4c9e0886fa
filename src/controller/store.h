// ControllerStore: everything the controller must not lose across a restart. Two
// implementations: SQLite (store_sqlite.cc, the embedded default) and PostgreSQL
// (store_postgres*.cc, for controllers that share a database server); nothing outside them knows
// SQL, and both pass the same test suite (store_test.cc). Endpoints, API keys, jobs (with their
// stream chunks), workers, the billing ledger, the last document of each host and the webhook
// outbox.
//
// JSON-valued fields (job input/output, endpoint command and env, host documents) are stored as
// the JSON text the caller gives; the store never parses them. Times are Unix milliseconds.
// Secrets: the endpoint's HF token, its registry credentials, its secret env and host
// credentials are stored sealed (mc::SecretBox, by the controller: the store sees only the sealed
// text), never listed by the API; API keys are stored as SHA-256 hex only. The SQLite file is
// created 0600 (its WAL and shared-memory files inherit that), its directory 0700 when the store
// creates it, and deleted rows are overwritten (secure_delete), so that a secret sealed later
// leaves no clear copy.
//
// Tenants: endpoints, jobs, workers, ledger rows and API keys carry the tenant they belong to
// (kDefaultTenant for rows written before tenants existed); the store does not filter by it, the
// API does.
//
// SQLite: Open() creates the file and schema (WAL, synchronous=NORMAL, busy_timeout 5 s, foreign
// keys on; schema version in PRAGMA user_version, version 3: an older file is migrated in place,
// in one transaction, when it is opened). Unlike the agent's state, this database
// is the only copy of jobs and endpoints: a file that is not a database, is corrupt (PRAGMA
// quick_check), has a newer schema version or holds someone else's tables is an error
// (FailedPrecondition naming the file), never moved aside, and nothing is written to it.
// synchronous=NORMAL: a power loss may lose the last transactions but never corrupts the file;
// a crash of the controller process loses nothing committed.
//
// PostgreSQL: OpenPostgres() connects to an existing database and creates or migrates the schema
// in the connection's current schema (the first of its search_path), in one transaction, under
// an advisory lock (controllers starting together migrate one at a time); the version is the one
// row of table modelcache_schema (version 2). A newer version, or tables but no
// modelcache_schema, is FailedPrecondition naming the database, and nothing is written. Every
// string is a bytea column (PostgreSQL's text can hold neither NUL nor invalid UTF-8, and bytea
// sorts bytewise, as SQLite does). Durability is the server's (synchronous_commit).
//
// Errors (messages name the file or database and the operation, never a password): Unavailable
// when the file stayed locked past the busy timeout, or the server is unreachable, the connection
// was lost (the next call reconnects), a row lock was held past 5 s or a transaction hit a
// serialization failure or deadlock (retry); ResourceExhausted when the disk is full;
// FailedPrecondition if the file turns out corrupt while open, or the PostgreSQL schema was
// changed behind the store's back; PermissionDenied when PostgreSQL refuses the login or a
// privilege; NotFound, InvalidArgument and AlreadyExists only where a method says so. Text fields
// are stored as bytes: any string (quotes, NULs, non-UTF-8) round-trips unchanged. The schema
// (tables, keys, indexes, version) is kMigrations in store_sqlite.cc and
// store_postgres_schema.cc.
//
// Thread-safety: one connection behind a mutex; every method is one transaction and may be called
// from any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mc/common/status.h"

namespace mc::controller {

// The tenant of rows written before tenants existed, and of keys created without one.
inline constexpr const char* kDefaultTenant = "default";

struct EndpointRecord {
  std::string id;  // "ep-" + 12 lowercase alphanumerics
  std::string tenant = kDefaultTenant;
  std::string name;
  std::string model;     // as the user gave it ("https://huggingface.co/org/name:main")
  std::string repo;      // "org/name" (datasets/... for other types)
  std::string revision;  // as resolved from the model text ("main")
  std::string commit;    // pinned at creation / update
  std::optional<std::string> hf_token;  // write-only secret, sealed (SecretBox)
  std::string command_json = "[]";      // worker argv (or the image's ENTRYPOINT), JSON strings
  std::string env_json = "{}";          // worker env, JSON object of strings
  // Write-only worker env: a JSON object of strings, sealed (SecretBox); nullopt: none.
  std::optional<std::string> secret_env;
  std::string gpu_type;                 // "" = any
  int gpu_count = 1;
  int workers_min = 0;
  int workers_max = 3;
  int idle_timeout_s = 5;
  std::string scaler_type = "QUEUE_DELAY";  // or REQUEST_COUNT
  double scaler_value = 4;
  int64_t execution_timeout_ms = 600'000;
  int64_t ttl_ms = 86'400'000;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  // Container workers (schema: SQLite 3, PostgreSQL 2). image "" = a process worker (command).
  std::string image;                         // OCI reference, normalized (ImageRef::str())
  std::string args_json = "[]";              // the image's CMD replaced, JSON array of strings
  std::optional<std::string> registry_auth;  // write-only secret: {"username","password"} JSON
  // "[]": the one model above, whole. Else every model, the base first, as resolved:
  // [{"model", "repo", "revision", "commit", "include": [...], "exclude": [...]}].
  std::string models_json = "[]";
  std::string links_json = "[]";  // [{"dest", "file"?, "model"?}] as the agent takes them
  // Hosts of gpu_type that keep the commit complete (pinned "fleet") even at zero workers
  // (schema: SQLite 6, PostgreSQL 5; replicas.h).
  int cached_replicas = 0;
};

struct JobRecord {
  std::string id;
  std::string endpoint_id;
  std::string tenant = kDefaultTenant;  // the endpoint's
  std::string status;  // IN_QUEUE, IN_PROGRESS, COMPLETED, FAILED, CANCELLED, TIMED_OUT
  std::string input_json = "null";
  std::optional<std::string> output_json;
  std::optional<std::string> error;
  std::string extra_json = "{}";  // other top-level keys passed to the worker (s3Config, ...)
  std::string webhook;            // "" = none
  bool low_priority = false;
  int64_t execution_timeout_ms = 0;
  int64_t ttl_ms = 0;
  int64_t created_ms = 0;
  std::optional<int64_t> started_ms;    // taken by a worker
  std::optional<int64_t> completed_ms;  // final
  std::string worker_id;                // "" while queued
  int retries = 0;                      // requeues after a lost worker, and /retry
  int64_t stream_delivered = 0;         // chunks already returned by /stream (consume-on-read)
};

struct StreamChunk {
  std::string job_id;
  int64_t seq = 0;  // 0, 1, 2, ... per job
  std::string output_json;
};

struct WorkerRecord {
  std::string id;  // "w-" + 12 lowercase alphanumerics
  std::string endpoint_id;
  std::string tenant = kDefaultTenant;  // the endpoint's
  std::string host_id;
  std::string commit;      // the model commit it runs on
  std::string phase;       // initializing, starting, idle, running, stopping, stopped, failed
  std::string key_sha256;  // hash of its RUNPOD_AI_API_KEY
  std::string message;     // why it failed or stopped
  int64_t created_ms = 0;  // placed (cold start begins; also the queue time end)
  std::optional<int64_t> ready_ms;       // model complete on its host (download over)
  std::optional<int64_t> started_ms;     // process exec'd (billing starts)
  std::optional<int64_t> first_take_ms;  // first job-take request (cold start over)
  std::optional<int64_t> last_ping_ms;
  std::optional<int64_t> idle_since_ms;
  std::optional<int64_t> stopped_ms;  // process gone (billing ends)
  bool cache_hit = false;             // the host had the model complete when placed
  int64_t queue_ms = 0;               // cold start: oldest job's wait before placement
  // The two parallel parts of the unbilled initializing phase, as the agent measured them
  // (placed → image present, 0 on a hit; placed → last model complete). Unknown: nullopt.
  std::optional<int64_t> image_ms;
  std::optional<int64_t> download_ms;
  // The leadership epoch of the controller that last wrote the row (leadership.h; PostgreSQL
  // only, 0 on SQLite): PutWorker refuses to overwrite a row of a newer epoch
  // (FailedPrecondition), so a deposed leader's late write loses.
  int64_t epoch = 0;
};

struct LedgerRow {
  int64_t id = 0;  // assigned by Append
  std::string worker_id;
  std::string endpoint_id;
  std::string tenant = kDefaultTenant;  // the endpoint's
  std::string phase;  // initializing (unbilled), starting, idle, running
  int64_t start_ms = 0;
  std::optional<int64_t> end_ms;  // open while the phase lasts
  bool billed = false;
};

// A webhook delivery in the outbox (docs/controller.md, Webhooks). It is added in the same
// transaction as its job's final status and keeps its own copy of what it sends, so it outlives the
// job's row (result retention, endpoint deletion) and a later /retry of the job does not change
// it. It leaves the outbox when the receiver has answered 200 or its last try failed.
struct WebhookDelivery {
  int64_t id = 0;  // assigned by PutJobWithWebhook; increasing: the order jobs ended
  std::string job_id;
  std::string url;              // the job's webhook (it may carry a secret: never logged)
  std::string body_json;        // the job's final status object
  int tries = 0;                // tries made
  int64_t next_attempt_ms = 0;  // the next try is not before this
};

struct ApiKeyRecord {
  std::string id;  // "key-" + 8 alphanumerics
  std::string name;
  std::string sha256;  // hex of the key
  int64_t created_ms = 0;
  std::string tenant = kDefaultTenant;
  std::string role = "admin";  // admin, member or readonly (docs/controller.md, Tenants)
};

struct HostRecord {
  std::string id;
  std::string document_json;  // the agent's last heartbeat body
  int64_t last_seen_ms = 0;
};

// Worker time of one endpoint and billing kind, summed over every ledger row ever closed: kept
// up to date by AppendLedger and CloseLedger in their transactions, and not lowered when
// PruneHistory deletes old rows, so /metrics never reads the ledger itself.
struct LedgerTotal {
  std::string endpoint_id;
  bool billed = false;
  int64_t closed_ms = 0;  // sum of end_ms - start_ms
};

// The ledger as /metrics needs it: the totals of the closed rows, and the rows still open.
struct LedgerSummary {
  std::vector<LedgerTotal> totals;  // by endpoint id, then billed (false first)
  std::vector<LedgerRow> open;      // rows without end_ms, oldest first
};

// What PruneHistory deleted.
struct PrunedHistory {
  int64_t workers = 0;
  int64_t ledger_rows = 0;
};

// A host enrolled by an operator (modelcache hosts enroll): the credential its agent presents
// to register and heartbeat as host_id, and that the controller presents to that agent. Also the
// operator's scheduling state of the host.
struct HostEnrollment {
  std::string host_id;
  std::string credential;  // sealed (SecretBox)
  std::string schedule;    // "" (normal), "cordoned" (no new workers), "draining" (and stop idle)
  int64_t created_ms = 0;
};

// The highest id the ledger and the webhook outbox have handed out (0: none yet): their
// AUTOINCREMENT positions, at or above every row's id even after rows were deleted.
struct IdCounters {
  int64_t ledger = 0;
  int64_t webhook_outbox = 0;
};

// Everything in a store, for moving it to another one (modelcache controller migrate-store).
struct StoreContents {
  std::vector<EndpointRecord> endpoints;
  std::vector<ApiKeyRecord> api_keys;
  std::vector<JobRecord> jobs;  // oldest first, as ListJobs
  std::vector<StreamChunk> chunks;
  std::vector<WorkerRecord> workers;
  std::vector<LedgerRow> ledger;  // with their ids
  std::vector<HostRecord> hosts;
  std::vector<HostEnrollment> enrollments;
  std::vector<WebhookDelivery> webhooks;  // with their ids
  std::vector<LedgerTotal> ledger_totals;  // pruned rows' time included
  IdCounters counters;
};

class ControllerStore {
 public:
  // Opens or creates the SQLite file `path` (its directory must exist: NotFound otherwise).
  static StatusOr<std::unique_ptr<ControllerStore>> Open(const std::filesystem::path& path);
  // Connects to the PostgreSQL database a libpq URI names ("postgresql://[USER@]HOST[:PORT]/DB
  // [?PARAM=VALUE&...]", host=/socket/dir as a parameter for a Unix socket), and creates or
  // migrates the schema (above). The database must exist. `password`, if given, is used for the
  // login (read from a file by the caller); libpq's own PGPASSFILE and ~/.pgpass also work. A
  // URI that carries a password itself is InvalidArgument (it would be in argv, visible to every
  // user), and no message ever quotes the URI's secrets.
  static StatusOr<std::unique_ptr<ControllerStore>> OpenPostgres(
      const std::string& uri, const std::optional<std::string>& password = std::nullopt);
  // The store `db` names, as the --db flag gives it: "sqlite:PATH" (or "sqlite://PATH", or a
  // plain PATH) is Open(PATH), the file's directory created if missing; "postgresql://..." or
  // "postgres://..." is OpenPostgres(db, password). InvalidArgument for an empty path or another
  // scheme (the message says which forms are accepted).
  static StatusOr<std::unique_ptr<ControllerStore>> OpenDb(
      const std::string& db, const std::optional<std::string>& password = std::nullopt);
  virtual ~ControllerStore() = default;

  // ---- endpoints ----
  virtual Status PutEndpoint(const EndpointRecord& e) = 0;  // insert or replace by id
  virtual StatusOr<std::optional<EndpointRecord>> GetEndpoint(const std::string& id) const = 0;
  virtual StatusOr<std::vector<EndpointRecord>> ListEndpoints() const = 0;  // oldest first
  // Deletes the endpoint and its jobs and stream chunks, in one transaction (workers and ledger
  // rows stay: history; so do webhook deliveries, see WebhookDelivery). OK if there is no such
  // endpoint.
  virtual Status DeleteEndpoint(const std::string& id) = 0;

  // ---- jobs ----
  // Insert or replace by id; replacing keeps the job's stream chunks. Jobs are not checked
  // against endpoints (the caller's rule).
  virtual Status PutJob(const JobRecord& j) = 0;
  virtual StatusOr<std::optional<JobRecord>> GetJob(const std::string& id) const = 0;
  // Jobs of an endpoint (all endpoints if empty) whose status is one of `statuses` (all if
  // empty), oldest first (created_ms, then insertion order).
  virtual StatusOr<std::vector<JobRecord>> ListJobs(
      const std::string& endpoint_id, const std::vector<std::string>& statuses) const = 0;
  // And its chunks (not its webhook deliveries); OK if missing.
  virtual Status DeleteJob(const std::string& id) = 0;
  // Appends a chunk to an existing job. InvalidArgument unless c.seq is exactly the number of
  // chunks the job already has (0 first); NotFound if the job has no row.
  virtual Status AppendChunk(const StreamChunk& c) = 0;
  // Chunks with seq >= from_seq, in order.
  virtual StatusOr<std::vector<StreamChunk>> ListChunks(const std::string& job_id,
                                                        int64_t from_seq) const = 0;

  // ---- webhook outbox ----
  // PutJob(j) and the delivery `d` (d.id is ignored) in one transaction: both are written or
  // neither. Returns the delivery's id; ids only increase, across restarts too (AUTOINCREMENT).
  virtual StatusOr<int64_t> PutJobWithWebhook(const JobRecord& j, const WebhookDelivery& d) = 0;
  // Every delivery in the outbox, oldest (lowest id) first.
  virtual StatusOr<std::vector<WebhookDelivery>> ListWebhooks() const = 0;
  // Records a failed try. NotFound if the delivery is gone.
  virtual Status UpdateWebhook(int64_t id, int tries, int64_t next_attempt_ms) = 0;
  // The delivery is done or given up. OK if missing.
  virtual Status DeleteWebhook(int64_t id) = 0;

  // ---- workers and ledger ----
  virtual Status PutWorker(const WorkerRecord& w) = 0;  // insert or replace by id
  virtual StatusOr<std::optional<WorkerRecord>> GetWorker(const std::string& id) const = 0;
  // Workers of an endpoint (all if empty), oldest first; only those not stopped/failed when
  // live_only.
  virtual StatusOr<std::vector<WorkerRecord>> ListWorkers(const std::string& endpoint_id,
                                                          bool live_only) const = 0;
  // Appends a row and returns its id (row.id is ignored). Ids only increase, across restarts
  // too (AUTOINCREMENT), so "oldest first" is id order. A row given with its end_ms counts in
  // the totals at once.
  virtual StatusOr<int64_t> AppendLedger(const LedgerRow& row) = 0;
  // Sets end_ms of row `id` and moves its time into the totals (closing it again replaces its
  // earlier time there), in one transaction. NotFound if missing.
  virtual Status CloseLedger(int64_t id, int64_t end_ms) = 0;
  // Rows of an endpoint (all if empty), oldest first.
  virtual StatusOr<std::vector<LedgerRow>> ListLedger(const std::string& endpoint_id) const = 0;
  // The totals and the open rows: reads as many rows as there are endpoints and open phases
  // (an index on the open rows), never the closed ones.
  virtual StatusOr<LedgerSummary> SummarizeLedger() const = 0;
  // Retention: deletes the workers that ended (stopped or failed, stopped_ms set) before
  // `before_ms`, and the ledger rows closed (end_ms) before it, in one transaction. Live workers,
  // open rows and the totals stay. Both deletes use an index on the time.
  virtual StatusOr<PrunedHistory> PruneHistory(int64_t before_ms) = 0;

  // ---- API keys ----
  // AlreadyExists if the id or the sha256 is taken.
  virtual Status AddApiKey(const ApiKeyRecord& k) = 0;
  virtual StatusOr<std::vector<ApiKeyRecord>> ListApiKeys() const = 0;  // oldest first
  virtual Status DeleteApiKey(const std::string& id) = 0;               // NotFound if missing
  virtual StatusOr<bool> HasApiKeySha256(const std::string& sha256_hex) const = 0;
  // The key whose hash is `sha256_hex`, or nullopt.
  virtual StatusOr<std::optional<ApiKeyRecord>> FindApiKeySha256(
      const std::string& sha256_hex) const = 0;

  // ---- hosts ----
  virtual Status PutHost(const HostRecord& h) = 0;                  // insert or replace by id
  virtual StatusOr<std::vector<HostRecord>> ListHosts() const = 0;  // by id
  // Enrollments: insert or replace by host id; list by host id; delete (NotFound if missing).
  virtual Status PutHostEnrollment(const HostEnrollment& e) = 0;
  virtual StatusOr<std::optional<HostEnrollment>> GetHostEnrollment(
      const std::string& host_id) const = 0;
  virtual StatusOr<std::vector<HostEnrollment>> ListHostEnrollments() const = 0;
  virtual Status DeleteHostEnrollment(const std::string& host_id) = 0;

  // ---- moving a store (modelcache controller migrate-store) ----
  virtual StatusOr<IdCounters> GetIdCounters() const = 0;
  // True if no table has a row (the id counters may be anywhere).
  virtual StatusOr<bool> IsEmpty() const = 0;
  // Writes every row of `c` as it is, ids included, in one transaction, and moves each id
  // counter to at least c.counters (and never back), so that ids handed out afterwards are above
  // every id of both stores. Jobs are written in their order in c.jobs (equal created_ms keep
  // it). With `replace`, every row the store had is deleted first, in the same transaction;
  // without it a store that is not empty is FailedPrecondition and nothing is written.
  // AlreadyExists if `c` itself repeats a key.
  virtual Status Import(const StoreContents& c, bool replace) = 0;
};

// The SQLite file a --db string names (absolute), or nullopt for PostgreSQL or a malformed one.
std::optional<std::filesystem::path> SqlitePathOf(const std::string& db);

// Every row of `store`, read through its list methods (chunks job by job), and its id counters.
// Not one snapshot: stop the controllers that use the store first.
StatusOr<StoreContents> ExportStore(const ControllerStore& store);

}  // namespace mc::controller
