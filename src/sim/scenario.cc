#include "mc/sim/scenario.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "mc/common/byte_count.h"
#include "sim/random.h"

namespace mc::sim {
namespace {

using json = nlohmann::json;

constexpr double kGB = 1e9;

// One JSON object read strictly: every getter names the field's path in its error, the first
// error wins (later getters do nothing), and Finish() refuses fields nobody asked for.
class Fields {
 public:
  Fields(const json& j, std::string path, Status& status)
      : j_(j), path_(std::move(path)), status_(status) {
    if (status_.ok() && !j_.is_object()) Fail("", "must be an object");
  }

  std::string Path(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }
  bool Has(std::string_view key) {
    seen_.insert(std::string(key));
    return status_.ok() && j_.is_object() && j_.contains(key);
  }
  const json& Get(std::string_view key) { return j_.at(std::string(key)); }

  void Fail(std::string_view key, const std::string& why) {
    if (status_.ok()) {
      status_ = InvalidArgumentError((key.empty() ? path_ : Path(key)) + ": " + why);
    }
  }

  void Number(std::string_view key, double& out, double min, double max) {
    if (!Has(key)) return;
    const json& v = Get(key);
    if (!v.is_number()) return Fail(key, "must be a number, got " + v.dump());
    const double d = v.get<double>();
    if (!(d >= min && d <= max)) {
      std::ostringstream msg;
      msg << "must be between " << min << " and " << max << ", got " << d;
      return Fail(key, msg.str());
    }
    out = d;
  }
  void Count(std::string_view key, uint32_t& out, uint32_t min, uint32_t max) {
    if (!Has(key)) return;
    const json& v = Get(key);
    if (!v.is_number_integer()) return Fail(key, "must be a whole number, got " + v.dump());
    const int64_t n = v.get<int64_t>();
    if (n < min || n > max) {
      return Fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                           ", got " + std::to_string(n));
    }
    out = static_cast<uint32_t>(n);
  }
  void Seed(std::string_view key, uint64_t& out) {
    if (!Has(key)) return;
    const json& v = Get(key);
    if (!v.is_number_integer() || (v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() < 0)) {
      return Fail(key, "must be a whole number >= 0, got " + v.dump());
    }
    out = v.is_number_unsigned() ? v.get<uint64_t>() : static_cast<uint64_t>(v.get<int64_t>());
  }
  void Text(std::string_view key, std::string& out) {
    if (!Has(key)) return;
    const json& v = Get(key);
    if (!v.is_string()) return Fail(key, "must be a string, got " + v.dump());
    out = v.get<std::string>();
  }
  void Flag(std::string_view key, bool& out) {
    if (!Has(key)) return;
    const json& v = Get(key);
    if (!v.is_boolean()) return Fail(key, "must be true or false, got " + v.dump());
    out = v.get<bool>();
  }
  // Bytes: a number of bytes or a string with a unit ("14GB", "1.5TiB").
  void Bytes(std::string_view key, uint64_t& out) {
    if (!Has(key)) return;
    const json& v = Get(key);
    if (v.is_number()) {
      const double d = v.get<double>();
      if (!(d >= 0) || d > 1.8e19) {
        return Fail(key, "must be a size >= 0 (bytes, or a string like \"14GB\"), got " + v.dump());
      }
      out = static_cast<uint64_t>(d);
      return;
    }
    if (!v.is_string()) return Fail(key, "must be a size like \"14GB\", got " + v.dump());
    auto parsed = ByteCount::Parse(v.get<std::string>());
    if (!parsed.ok()) {
      return Fail(key, "must be a size >= 0 like \"14GB\": " + std::string(parsed.status().message()));
    }
    out = parsed->bytes();
  }
  // A rate: bytes per second, as Bytes, with an optional "/s" ("10GB/s").
  void Rate(std::string_view key, double& out) {
    if (!Has(key)) return;
    json v = Get(key);
    if (v.is_string()) {
      std::string s = v.get<std::string>();
      if (s.size() > 2 && s.substr(s.size() - 2) == "/s") v = s.substr(0, s.size() - 2);
    }
    json wrapper = {{std::string(key), v}};
    uint64_t bytes = 0;
    Fields inner(wrapper, path_, status_);
    inner.Bytes(key, bytes);
    if (status_.ok()) out = static_cast<double>(bytes);
  }
  void Choice(std::string_view key, std::string& out, const std::vector<std::string>& allowed) {
    Text(key, out);
    if (!status_.ok() || !Has(key)) return;
    if (std::find(allowed.begin(), allowed.end(), out) == allowed.end()) {
      std::string list;
      for (const std::string& a : allowed) list += (list.empty() ? "" : ", ") + a;
      Fail(key, "must be one of " + list + ", got \"" + out + "\"");
    }
  }

  // Refuses the fields no getter asked for (typos included).
  void Finish() {
    if (!status_.ok() || !j_.is_object()) return;
    for (const auto& [key, value] : j_.items()) {
      if (seen_.contains(key)) continue;
      std::string known;
      for (const std::string& k : seen_) known += (known.empty() ? "" : ", ") + k;
      Fail(key, "unknown field (the fields here are: " + known + ")");
      return;
    }
  }

  Status& status() { return status_; }

 private:
  const json& j_;
  std::string path_;
  Status& status_;
  std::set<std::string> seen_;
};

std::string Human(uint64_t bytes) { return ByteCount(bytes).ToHuman(); }

// A model's blobs: shards of at most shard_bytes plus one small blob (config, tokenizer).
std::vector<uint64_t> Shards(uint64_t bytes, uint64_t shard_bytes) {
  constexpr uint64_t kSmall = 20'000'000;
  std::vector<uint64_t> blobs;
  if (bytes <= kSmall) return {std::max<uint64_t>(bytes, 1)};
  const uint64_t weights = bytes - kSmall;
  const uint64_t n = std::max<uint64_t>(1, (weights + shard_bytes - 1) / shard_bytes);
  for (uint64_t i = 0; i < n; ++i) blobs.push_back(weights / n + (i < weights % n ? 1 : 0));
  blobs.push_back(kSmall);
  return blobs;
}

// Adds a model with `revisions` revisions: revision 0 is its blobs, each later one replaces
// `changed` shards (chosen by rng) and the small blob with new blobs of the same sizes.
void AddModel(Catalogue& cat, const std::string& id, uint64_t bytes, uint32_t revisions,
              uint64_t shard_bytes, uint32_t changed, Rng& rng) {
  Model model;
  model.id = id;
  std::vector<uint32_t> current;
  for (uint64_t size : Shards(bytes, shard_bytes)) {
    current.push_back(static_cast<uint32_t>(cat.blob_bytes.size()));
    cat.blob_bytes.push_back(size);
  }
  for (uint32_t r = 0; r < revisions; ++r) {
    if (r > 0) {
      auto replace = [&](size_t i) {
        const uint64_t size = cat.blob_bytes[current[i]];
        current[i] = static_cast<uint32_t>(cat.blob_bytes.size());
        cat.blob_bytes.push_back(size);
      };
      replace(current.size() - 1);
      if (current.size() > 1) {
        for (uint32_t c = 0; c < changed; ++c) replace(rng.Below(current.size() - 1));
      }
    }
    Revision rev;
    rev.id = id + "@" + std::to_string(r);
    rev.blobs = current;
    std::sort(rev.blobs.begin(), rev.blobs.end());
    rev.blobs.erase(std::unique(rev.blobs.begin(), rev.blobs.end()), rev.blobs.end());
    for (uint32_t b : rev.blobs) rev.bytes += cat.blob_bytes[b];
    model.revisions.push_back(static_cast<uint32_t>(cat.revisions.size()));
    cat.revisions.push_back(std::move(rev));
  }
  cat.models.push_back(std::move(model));
}

// The size of a generated model: most between min and max around the median (lognormal), a
// tail_share between max and tail_max (log-uniform).
uint64_t GeneratedSize(Rng& rng, double min, double median, double max, double tail_share,
                       double tail_max) {
  if (rng.Uniform() < tail_share && tail_max > max) {
    return static_cast<uint64_t>(max * std::exp(rng.Uniform() * std::log(tail_max / max)));
  }
  const double size = median * std::exp(0.8 * rng.Normal());
  return static_cast<uint64_t>(std::clamp(size, min, max));
}

void ParseCatalogue(Fields& f, Catalogue& cat, Rng& rng) {
  Status& st = f.status();
  if (f.Has("generate") == f.Has("models")) {
    return f.Fail("", "give either \"models\" (a list) or \"generate\" (a generator)");
  }
  if (f.Has("generate")) {
    Fields g(f.Get("generate"), f.Path("generate"), st);
    uint32_t models = 100, revisions = 1, changed = 1;
    uint64_t min = 1 * kGB, median = 5 * kGB, max = 20 * kGB, tail_max = 150 * kGB,
             shard = 5 * kGB;
    double tail_share = 0.1;
    g.Count("models", models, 1, 1'000'000);
    g.Count("revisions", revisions, 1, 100);
    g.Count("changed_shards", changed, 0, 1000);
    g.Bytes("min_bytes", min);
    g.Bytes("median_bytes", median);
    g.Bytes("max_bytes", max);
    g.Bytes("tail_max_bytes", tail_max);
    g.Bytes("shard_bytes", shard);
    g.Number("tail_share", tail_share, 0, 1);
    g.Finish();
    if (!st.ok()) return;
    if (min == 0 || !(min <= median && median <= max)) {
      return g.Fail("", "sizes must satisfy 0 < min_bytes <= median_bytes <= max_bytes");
    }
    if (shard == 0) return g.Fail("shard_bytes", "must be more than 0");
    for (uint32_t m = 0; m < models; ++m) {
      const uint64_t size = GeneratedSize(rng, double(min), double(median), double(max),
                                          tail_share, double(tail_max));
      AddModel(cat, "gen/model-" + std::to_string(m), size, revisions, shard, changed, rng);
    }
    return;
  }
  const json& list = f.Get("models");
  if (!list.is_array() || list.empty()) return f.Fail("models", "must be a non-empty list");
  std::set<std::string> ids;
  for (size_t i = 0; i < list.size() && st.ok(); ++i) {
    Fields m(list[i], f.Path("models") + "[" + std::to_string(i) + "]", st);
    std::string id;
    uint64_t bytes = 0, shard = 5 * kGB;
    uint32_t revisions = 1, changed = 1;
    m.Text("id", id);
    m.Bytes("bytes", bytes);
    m.Count("revisions", revisions, 1, 100);
    m.Count("changed_shards", changed, 0, 1000);
    m.Bytes("shard_bytes", shard);
    m.Finish();
    if (!st.ok()) return;
    if (id.empty()) return m.Fail("id", "is required (e.g. \"Qwen/Qwen3-8B\")");
    if (!ids.insert(id).second) return m.Fail("id", "\"" + id + "\" appears twice");
    if (bytes == 0) return m.Fail("bytes", "is required and must be more than 0");
    if (shard == 0) return m.Fail("shard_bytes", "must be more than 0");
    AddModel(cat, id, bytes, revisions, shard, changed, rng);
  }
}

void ParseDistribution(Fields& f, Distribution& d) {
  std::string kind = "fixed";
  f.Choice("distribution", kind, {"fixed", "exponential", "lognormal"});
  if (kind == "fixed") {
    d.kind = Distribution::kFixed;
    f.Number("seconds", d.a, 0, 1e7);
  } else if (kind == "exponential") {
    d.kind = Distribution::kExponential;
    f.Number("mean_seconds", d.a, 0, 1e7);
  } else {
    d.kind = Distribution::kLognormal;
    d.a = 1;
    d.b = 10;
    f.Number("median_seconds", d.a, 1e-6, 1e7);
    f.Number("p99_seconds", d.b, 1e-6, 1e7);
    if (f.status().ok() && d.b < d.a) f.Fail("p99_seconds", "must be >= median_seconds");
  }
  f.Finish();
}

// The endpoint settings shared by an explicit endpoint and the generator's template.
void ParseEndpointSettings(Fields& f, Endpoint& e) {
  f.Text("gpu_type", e.gpu_type);
  f.Count("gpus", e.gpus, 1, 64);
  f.Count("workers_min", e.scaler.workers_min, 0, 100000);
  f.Count("workers_max", e.scaler.workers_max, 0, 100000);
  std::string type = "QUEUE_DELAY";
  f.Choice("scaler_type", type, {"QUEUE_DELAY", "REQUEST_COUNT"});
  e.scaler.scaler_type =
      type == "QUEUE_DELAY" ? scheduler::ScalerType::kQueueDelay : scheduler::ScalerType::kRequestCount;
  f.Number("scaler_value", e.scaler.scaler_value, 0, 1e6);
  f.Number("idle_timeout_seconds", e.scaler.idle_timeout_seconds, 0, 1e7);
  if (f.Has("execution")) {
    Fields x(f.Get("execution"), f.Path("execution"), f.status());
    ParseDistribution(x, e.execution);
  }
  if (f.status().ok() && e.scaler.workers_min > e.scaler.workers_max) {
    f.Fail("workers_min", "must be <= workers_max");
  }
  if (f.status().ok() && e.scaler.scaler_type == scheduler::ScalerType::kRequestCount &&
      e.scaler.scaler_value <= 0) {
    f.Fail("scaler_value", "must be more than 0 for REQUEST_COUNT");
  }
}

void ParseEndpoints(Fields& f, Scenario& sc, Rng& rng) {
  Status& st = f.status();
  if (f.Has("generate") == f.Has("list")) {
    return f.Fail("", "give either \"list\" (endpoints) or \"generate\" (one per model revision)");
  }
  if (f.Has("generate")) {
    Fields g(f.Get("generate"), f.Path("generate"), st);
    Endpoint tmpl;
    ParseEndpointSettings(g, tmpl);
    g.Finish();
    if (!st.ok()) return;
    for (uint32_t r = 0; r < sc.catalogue.revisions.size(); ++r) {
      Endpoint e = tmpl;
      e.id = "ep-" + std::to_string(r);
      e.revision = r;
      sc.endpoints.push_back(std::move(e));
    }
    // Popularity ranks in a seeded random order, so that popularity and size are independent.
    for (size_t i = sc.endpoints.size(); i > 1; --i) {
      std::swap(sc.endpoints[i - 1], sc.endpoints[rng.Below(i)]);
    }
    return;
  }
  const json& list = f.Get("list");
  if (!list.is_array() || list.empty()) return f.Fail("list", "must be a non-empty list");
  std::map<std::string, const Model*> models;
  for (const Model& m : sc.catalogue.models) models[m.id] = &m;
  std::set<std::string> ids;
  for (size_t i = 0; i < list.size() && st.ok(); ++i) {
    Fields ef(list[i], f.Path("list") + "[" + std::to_string(i) + "]", st);
    Endpoint e;
    std::string model;
    uint32_t revision = 0;
    ef.Text("id", e.id);
    ef.Text("model", model);
    ef.Count("revision", revision, 0, 1000);
    ef.Number("weight", e.weight, 0, 1e12);
    ParseEndpointSettings(ef, e);
    ef.Finish();
    if (!st.ok()) return;
    if (e.id.empty()) e.id = "ep-" + std::to_string(i);
    if (!ids.insert(e.id).second) return ef.Fail("id", "\"" + e.id + "\" appears twice");
    auto it = models.find(model);
    if (it == models.end()) {
      return ef.Fail("model", "\"" + model + "\" is not in the catalogue");
    }
    if (revision >= it->second->revisions.size()) {
      return ef.Fail("revision", "model " + model + " has only " +
                                     std::to_string(it->second->revisions.size()) + " revisions");
    }
    e.revision = it->second->revisions[revision];
    sc.endpoints.push_back(std::move(e));
  }
}

// A listed workload: {"type": "jobs", "jobs": [{"at": s, "endpoint": id, "seconds": s}, ...]},
// "at" not decreasing; "seconds" optional (the endpoint's execution distribution).
void ParseJobList(Fields& f, const std::vector<Endpoint>& endpoints, Workload& w) {
  if (!f.Has("jobs")) return f.Fail("jobs", "is required: a list of {at, endpoint, seconds}");
  const json& list = f.Get("jobs");
  if (!list.is_array()) return f.Fail("jobs", "must be a list");
  for (size_t i = 0; i < list.size() && f.status().ok(); ++i) {
    Fields j(list[i], f.Path("jobs") + "[" + std::to_string(i) + "]", f.status());
    ListedJob job;
    std::string endpoint;
    j.Number("at", job.seconds, 0, 1e9);
    j.Text("endpoint", endpoint);
    j.Number("seconds", job.exec_seconds, 0, 1e9);
    j.Finish();
    if (!f.status().ok()) return;
    auto it = std::find_if(endpoints.begin(), endpoints.end(),
                           [&](const Endpoint& e) { return e.id == endpoint; });
    if (it == endpoints.end()) return j.Fail("endpoint", "no endpoint '" + endpoint + "'");
    if (!w.jobs.empty() && job.seconds < w.jobs.back().seconds) {
      return j.Fail("at", "must not be earlier than the job before it");
    }
    job.endpoint = static_cast<uint32_t>(it - endpoints.begin());
    w.jobs.push_back(job);
  }
}

void ParseWorkload(Fields& f, Workload& w, const std::vector<Endpoint>& endpoints,
                   const std::filesystem::path& base_dir) {
  std::string type = "zipf";
  f.Choice("type", type, {"zipf", "azure", "jobs"});
  if (type == "jobs") {
    w.kind = Workload::kJobs;
    ParseJobList(f, endpoints, w);
  } else if (type == "zipf") {
    w.kind = Workload::kZipf;
    f.Number("jobs_per_second", w.jobs_per_second, 1e-9, 1e9);
    f.Number("exponent", w.zipf_exponent, 0, 10);
    if (f.Has("diurnal")) {
      Fields d(f.Get("diurnal"), f.Path("diurnal"), f.status());
      d.Number("amplitude", w.diurnal_amplitude, 0, 1);
      d.Number("peak_hour", w.diurnal_peak_hour, 0, 24);
      d.Finish();
    }
    if (f.Has("bursts")) {
      const json& list = f.Get("bursts");
      if (!list.is_array()) return f.Fail("bursts", "must be a list");
      for (size_t i = 0; i < list.size() && f.status().ok(); ++i) {
        Fields b(list[i], f.Path("bursts") + "[" + std::to_string(i) + "]", f.status());
        Burst burst;
        b.Number("start_hour", burst.start_hour, 0, 1e6);
        b.Number("minutes", burst.minutes, 0, 1e6);
        b.Number("factor", burst.factor, 0, 1e6);
        b.Finish();
        w.bursts.push_back(burst);
      }
    }
  } else {
    w.kind = Workload::kAzure;
    std::string inv, dur;
    f.Text("invocations", inv);
    f.Text("durations", dur);
    f.Number("scale", w.azure_scale, 0, 1e6);
    if (f.status().ok() && inv.empty()) {
      return f.Fail("invocations", "is required: the per-minute invocation counts file");
    }
    if (!inv.empty()) w.invocations = base_dir / inv;
    if (!dur.empty()) w.durations = base_dir / dur;
  }
  f.Finish();
}

void ParseHosts(Fields& f, Scenario& sc) {
  const json& list = f.Get("hosts");
  if (!list.is_array() || list.empty()) return f.Fail("hosts", "must be a non-empty list");
  std::set<std::string> names;
  for (size_t i = 0; i < list.size() && f.status().ok(); ++i) {
    Fields h(list[i], "hosts[" + std::to_string(i) + "]", f.status());
    HostGroup g;
    g.name = "host" + std::to_string(i);
    h.Text("name", g.name);
    h.Count("count", g.count, 1, 1'000'000);
    h.Text("gpu_type", g.gpu_type);
    h.Count("gpus", g.gpus, 0, 1024);
    h.Bytes("cache_capacity", g.cache_capacity);
    h.Number("cache_fraction", g.cache_fraction, 0, 1000);
    h.Number("high_watermark", g.high_watermark, 0, 1);
    h.Number("low_watermark", g.low_watermark, 0, 1);
    h.Rate("download_bandwidth", g.download_bandwidth);
    h.Rate("peer_bandwidth", g.peer_bandwidth);
    h.Finish();
    if (!f.status().ok()) return;
    if (!names.insert(g.name).second) return h.Fail("name", "\"" + g.name + "\" appears twice");
    if ((g.cache_capacity > 0) == (g.cache_fraction > 0)) {
      return h.Fail("cache_capacity", "give either cache_capacity (bytes) or cache_fraction "
                                      "(of the catalogue), more than 0");
    }
    if (!(0 < g.low_watermark && g.low_watermark <= g.high_watermark)) {
      return h.Fail("low_watermark", "watermarks must satisfy 0 < low <= high <= 1");
    }
    sc.hosts.push_back(std::move(g));
  }
}

// Cross-field checks once everything is read: capacities, models that fit no disk, GPU types.
Status CheckFleet(Scenario& sc) {
  for (HostGroup& g : sc.hosts) {
    if (g.cache_fraction > 0) {
      g.cache_capacity = static_cast<uint64_t>(g.cache_fraction *
                                               static_cast<double>(sc.catalogue.distinct_bytes));
    }
  }
  uint64_t largest = 0;
  for (const HostGroup& g : sc.hosts) largest = std::max(largest, g.cache_capacity);
  const bool generated = sc.catalogue.models.front().id.rfind("gen/", 0) == 0;
  for (size_t m = 0; m < sc.catalogue.models.size(); ++m) {
    for (uint32_t r : sc.catalogue.models[m].revisions) {
      const Revision& rev = sc.catalogue.revisions[r];
      if (rev.bytes > largest) {
        return InvalidArgumentError(
            (generated ? std::string("catalogue.generate") : "catalogue.models[" + std::to_string(m) + "].bytes") +
            ": model " + rev.id + " (" + Human(rev.bytes) + ") is larger than every host's cache "
            "(the largest holds " + Human(largest) + "); give the hosts more cache_capacity or "
            "the model fewer bytes");
      }
    }
  }
  for (size_t i = 0; i < sc.endpoints.size(); ++i) {
    const Endpoint& e = sc.endpoints[i];
    bool ok = false;
    for (const HostGroup& g : sc.hosts) {
      ok = ok || ((e.gpu_type.empty() || e.gpu_type == g.gpu_type) && g.gpus >= e.gpus);
    }
    if (!ok) {
      return InvalidArgumentError("endpoints: endpoint " + e.id + " needs " +
                                  std::to_string(e.gpus) + " GPUs of type " +
                                  (e.gpu_type.empty() ? "any" : e.gpu_type) +
                                  " but no host group has them");
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<Scenario> ParseScenario(std::string_view json_text, const std::filesystem::path& base_dir) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::parse_error& e) {
    return InvalidArgumentError(std::string("scenario is not valid JSON: ") + e.what());
  }
  Scenario sc;
  Status st;
  Fields f(root, "", st);
  f.Seed("seed", sc.seed);
  double hours = 0;
  f.Number("duration_hours", hours, 0, 1e5);
  if (hours > 0) sc.duration_seconds = hours * 3600;
  f.Number("duration_seconds", sc.duration_seconds, 1, 1e9);
  f.Number("worker_start_seconds", sc.worker_start_seconds, 0, 1e6);
  f.Rate("origin_bandwidth", sc.origin_bandwidth);
  f.Number("sample_seconds", sc.sample_seconds, 1, 1e9);
  if (st.ok() && !f.Has("hosts")) f.Fail("hosts", "is required");
  if (st.ok()) ParseHosts(f, sc);
  Rng rng(sc.seed ^ 0x5ca1ab1e);
  if (st.ok() && !f.Has("catalogue")) f.Fail("catalogue", "is required");
  if (st.ok()) {
    Fields c(f.Get("catalogue"), "catalogue", st);
    ParseCatalogue(c, sc.catalogue, rng);
    c.Finish();
  }
  if (st.ok()) {
    for (uint64_t bytes : sc.catalogue.blob_bytes) sc.catalogue.distinct_bytes += bytes;
  }
  if (st.ok() && !f.Has("endpoints")) f.Fail("endpoints", "is required");
  if (st.ok()) {
    Fields e(f.Get("endpoints"), "endpoints", st);
    ParseEndpoints(e, sc, rng);
    e.Finish();
  }
  if (st.ok() && !f.Has("workload")) f.Fail("workload", "is required");
  if (st.ok()) {
    Fields w(f.Get("workload"), "workload", st);
    ParseWorkload(w, sc.workload, sc.endpoints, base_dir);
  }
  if (st.ok() && f.Has("policies")) {
    Fields p(f.Get("policies"), "policies", st);
    std::string eviction = "lru", placement = "ttr";
    p.Choice("eviction", eviction, {"lru", "gdsf", "s3fifo"});
    p.Choice("placement", placement, {"ttr", "least-loaded", "random"});
    p.Count("replicas", sc.policies.replicas, 0, 1000);
    p.Flag("peers", sc.policies.peers);
    p.Number("gdsf_fixed_cost_bytes", sc.policies.gdsf_fixed_cost_bytes, 0, 1e15);
    p.Finish();
    if (st.ok()) {
      sc.policies.eviction = *scheduler::ParseEvictionPolicy(eviction);
      sc.policies.placement = *scheduler::ParsePlacementPolicy(placement);
    }
  }
  if (st.ok() && f.Has("prices")) {
    Fields p(f.Get("prices"), "prices", st);
    if (p.Has("gpu_hour")) {
      const json& table = p.Get("gpu_hour");
      if (!table.is_object()) p.Fail("gpu_hour", "must be an object like {\"A100\": 1.89}");
      for (auto it = table.begin(); st.ok() && table.is_object() && it != table.end(); ++it) {
        if (!it->is_number() || it->get<double>() < 0) {
          p.Fail("gpu_hour", it.key() + " must be a price >= 0, got " + it->dump());
        } else {
          sc.prices.gpu_hour.emplace_back(it.key(), it->get<double>());
        }
      }
    }
    p.Number("origin_per_gb", sc.prices.origin_per_gb, 0, 1e6);
    p.Finish();
  }
  f.Finish();
  if (!st.ok()) return st;
  MC_RETURN_IF_ERROR(CheckFleet(sc));
  return sc;
}

StatusOr<Scenario> LoadScenario(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return NotFoundError("cannot read scenario " + file.string());
  std::stringstream text;
  text << in.rdbuf();
  return ParseScenario(text.str(), file.parent_path());
}

StatusOr<std::string> ApplyOverrides(std::string_view json_text,
                                     const std::vector<std::string>& overrides) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::parse_error& e) {
    return InvalidArgumentError(std::string("scenario is not valid JSON: ") + e.what());
  }
  for (const std::string& o : overrides) {
    const size_t eq = o.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidArgumentError("--set " + o + ": write PATH=VALUE, e.g. policies.eviction=gdsf");
    }
    const std::string path = o.substr(0, eq), text = o.substr(eq + 1);
    json value;
    try {
      value = json::parse(text);
    } catch (const json::parse_error&) {
      value = text;  // a bare word is a string
    }
    json* node = &root;
    std::stringstream segments(path);
    std::string seg;
    while (std::getline(segments, seg, '.')) {
      std::string key = seg;
      std::vector<size_t> indices;
      while (!key.empty() && key.back() == ']') {
        const size_t open = key.rfind('[');
        if (open == std::string::npos) return InvalidArgumentError("--set " + o + ": bad index");
        const std::string digits = key.substr(open + 1, key.size() - open - 2);
        if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) {
          return InvalidArgumentError("--set " + o + ": [" + digits + "] is not an index");
        }
        indices.insert(indices.begin(), std::stoul(digits));
        key = key.substr(0, open);
      }
      if (node->is_null()) *node = json::object();  // a section the scenario leaves out
      if (!node->is_object()) return InvalidArgumentError("--set " + o + ": " + key + " is not in an object");
      node = &(*node)[key];
      for (size_t i : indices) {
        if (!node->is_array() || i >= node->size()) {
          return InvalidArgumentError("--set " + o + ": no element " + std::to_string(i) + " in " + key);
        }
        node = &(*node)[i];
      }
    }
    *node = value;
  }
  return root.dump();
}

}  // namespace mc::sim
