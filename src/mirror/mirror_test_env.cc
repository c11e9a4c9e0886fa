#include "mirror/mirror_test_env.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "mc/cache/blob_hasher.h"
#include "mc/testing/model_fixture.h"

namespace mc::mirror::testenv {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void Die(const std::string& what, const Status& status) {
  std::fprintf(stderr, "mirror test env: %s: %s\n", what.c_str(), status.ToString().c_str());
  std::abort();
}

template <typename T>
T Must(StatusOr<T> value, const std::string& what) {
  if (!value.ok()) Die(what, value.status());
  return std::move(*value);
}

void Write(const fs::path& file, const std::string& content) {
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << content;
}

cache::ImportResult Import(cache::CacheStore& store, const fs::path& dir, const std::string& id,
                           RepoType type, const std::string& rev) {
  RepoId repo = Must(RepoId::Parse(id, type), id);
  return Must(cache::ImportFolder(store, dir, repo, *Revision::Parse(rev)), "import " + id);
}

void WriteSources(const fs::path& src) {
  testing::ModelFixtureOptions fixture;
  Must(testing::WriteModelFixture(src / "model", fixture), "fixture");
  Write(src / "model" / "empty.txt", "");
  Write(src / "model" / "onnx" / "my model+v2.onnx", std::string(3000, 'x'));
  Write(src / "model" / "a" / "b" / "c.txt", "deep\n");
  fs::copy(src / "model", src / "model_pr", fs::copy_options::recursive);
  Write(src / "model_pr" / "config.json", "{\"pr\": 1}\n");
  Write(src / "data" / "train.csv", "a,b\n1,2\n");
  Write(src / "data" / "sub" / "test.json", "{}\n");
  for (int d = 0; d < 3; ++d) {
    for (int f = 0; f < 10; ++f) {
      Write(src / "many" / ("d" + std::to_string(d)) / ("f" + std::to_string(f) + ".txt"),
            std::to_string(d * 10 + f));
    }
  }
  Write(src / "small" / "config.json", "{\"small\": true}\n");
  Write(src / "small" / "weights.bin", std::string(2048, '\1'));
}

void WriteAccessConfig(const fs::path& file) {
  Write(file, std::string(R"({"repos": {
    "org/gated": {"gated": "manual", "tokens": [")") +
                  kGatedToken + R"("]},
    "datasets/org/secret": {"private": true, "tokens": ["sha256:)" +
                  cache::Sha256Hex(kPrivateToken) + R"("]},
    "org/off": {"disabled": true}}})");
}

std::unique_ptr<Env> Build() {
  auto env = std::make_unique<Env>();
  env->root = fs::temp_directory_path() / ("mc_mirror_test_" + std::to_string(::getpid()));
  fs::remove_all(env->root);
  env->cache_dir = env->root / "cache";
  const fs::path src = env->root / "src";
  WriteSources(src);
  auto store = Must(cache::CacheStore::Open({env->cache_dir, true, true}), "open cache");
  env->model = Import(*store, src / "model", "org/model", RepoType::kModel, "main");
  env->model_pr = Import(*store, src / "model_pr", "org/model", RepoType::kModel, "refs/pr/1");
  env->dataset = Import(*store, src / "data", "org/data", RepoType::kDataset, "main");
  env->many = Import(*store, src / "many", "org/many", RepoType::kModel, "main");
  Import(*store, src / "small", "org/gated", RepoType::kModel, "main");
  Import(*store, src / "small", "org/secret", RepoType::kDataset, "main");
  Import(*store, src / "small", "org/off", RepoType::kModel, "main");
  auto copying = Must(cache::CacheStore::Open({env->cache_dir, false, false}), "open no-symlink");
  env->copied = Import(*copying, src / "model", "org/copied", RepoType::kModel, "main");
  WriteAccessConfig(env->root / "access.json");

  MirrorOptions options;
  options.cache_dir = env->cache_dir;
  options.access_config = env->root / "access.json";
  env->server = Must(MirrorServer::Create(options), "create mirror");
  Status started = env->server->Start();
  if (!started.ok()) Die("start mirror", started);
  return env;
}

}  // namespace

Env::~Env() {
  if (server) server->Stop();
  std::error_code ec;
  fs::remove_all(root, ec);
}

std::string Env::Source(const std::string& repo_dir, const std::string& path) const {
  std::ifstream in(root / "src" / repo_dir / path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

const cache::ImportedFile& Env::File(const cache::ImportResult& r, const std::string& path) const {
  if (const cache::ImportedFile* f = r.Find(path)) return *f;
  std::fprintf(stderr, "mirror test env: no imported file %s\n", path.c_str());
  std::abort();
}

Env& Get() {
  static std::unique_ptr<Env> env = Build();
  return *env;
}

net::HttpClientResponse Send(const std::string& method, const std::string& url,
                             const std::string& token, const std::string& range) {
  thread_local std::unique_ptr<net::HttpClient> client = net::HttpClient::Create();
  net::HttpClientRequest req;
  req.method = method;
  req.url = url;
  if (!token.empty()) req.headers.Add("Authorization", "Bearer " + token);
  if (!range.empty()) req.range = range;
  StatusOr<net::HttpClientResponse> res = client->Send(req);
  if (!res.ok()) Die(method + " " + url, res.status());
  return std::move(*res);
}

}  // namespace mc::mirror::testenv
