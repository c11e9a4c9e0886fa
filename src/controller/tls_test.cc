// TLS end to end (docs/security.md, "TLS"): a controller and an agent both serving HTTPS with
// certificates this test makes (openssl CLI) under its own CA, each trusting that CA (--ca-file)
// for its calls to the other: the agent registers and heartbeats over HTTPS, the controller
// calls the agent over HTTPS, and a client that trusts another CA is refused. And the Hub's
// metadata (repo info, tree, HEAD) from an upstream serving HTTPS under that CA.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "controller/hub_access.h"
#include "controller/test_cluster.h"
#include "mc/hub/hub_client.h"

namespace mc::controller {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

bool MakeCertificates(const fs::path& dir) {
  const std::string script =
      "set -e; cd '" + dir.string() + "'; "
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
      "  -subj /CN=mc-test-ca 2>/dev/null; "
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 2 "
      "  -subj /CN=mc-other-ca 2>/dev/null; "
      "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
      "  -subj /CN=127.0.0.1 2>/dev/null; "
      "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext; "
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
      "  -out server.pem -days 2 -extfile san.ext 2>/dev/null";
  return std::system(("sh -c \"" + script + "\"").c_str()) == 0;
}

TEST(TlsTest, ControllerAndAgentTalkHttpsAndAWrongCaIsRefused) {
  const fs::path certs =
      fs::temp_directory_path() / ("mc_tls_e2e_certs_" + std::to_string(::getpid()));
  fs::remove_all(certs);
  fs::create_directories(certs);
  ASSERT_TRUE(MakeCertificates(certs));
  SetSendCaFile(certs / "ca.pem");

  TestClusterOptions o;
  o.name = "tls_test";
  o.controller_options = [&](ControllerOptions& c) {
    c.tls_cert_file = certs / "server.pem";
    c.tls_key_file = certs / "server.key";
    c.ca_file = (certs / "ca.pem").string();
  };
  o.agent_options = [&](int, agent::AgentOptions& a) {
    a.tls_cert_file = certs / "server.pem";
    a.tls_key_file = certs / "server.key";
    a.ca_file = (certs / "ca.pem").string();
  };
  // Returns once the agent is listed: it registered over HTTPS.
  auto made = TestCluster::Create(std::move(o));
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  auto& cluster = *made;
  const std::string base = cluster->controller().base_url();
  EXPECT_TRUE(base.starts_with("https://")) << base;
  EXPECT_TRUE(cluster->agents()[0]->base_url().starts_with("https://"));

  // The controller calls the agent over HTTPS: an evict of a snapshot it does not have is the
  // agent's own answer (not a transport failure).
  Reply evict = cluster->Call(
      "POST", "/v1/hosts/" + std::string("host-1") + "/evict",
      json{{"model", "org/tiny"}, {"commit", std::string(40, 'a')}}.dump());
  EXPECT_NE(evict.status, 0) << evict.text;
  EXPECT_NE(evict.status, 502) << evict.text;
  EXPECT_NE(evict.status, 503) << evict.text;
  EXPECT_EQ(evict.text.find("SSL"), std::string::npos) << evict.text;

  // A client that trusts another CA gets no answer.
  SetSendCaFile(certs / "other.pem");
  Reply refused = Send("GET", base + "/health", {});
  EXPECT_EQ(refused.status, 0) << refused.text;
  SetSendCaFile(certs / "ca.pem");
  EXPECT_EQ(Send("GET", base + "/health", {}).status, 200);

  cluster.reset();
  SetSendCaFile("");
  fs::remove_all(certs);
}

// Hub metadata calls trust --ca-file as file downloads do: the controller reads a model's info
// and tree (endpoint creation, entitlement checks) and the agent resolves and lists it before
// fetching, all from an upstream serving HTTPS under the test's CA; trusting another CA, each
// metadata call fails and says it is the certificate.
TEST(TlsTest, HubMetadataCallsTrustTheCaFileAndAWrongCaIsRefused) {
  const fs::path certs =
      fs::temp_directory_path() / ("mc_tls_hub_certs_" + std::to_string(::getpid()));
  fs::remove_all(certs);
  fs::create_directories(certs);
  ASSERT_TRUE(MakeCertificates(certs));
  const std::string ca = (certs / "ca.pem").string(), other = (certs / "other.pem").string();

  TestClusterOptions o;
  o.name = "tls_hub_test";
  o.upstream_options = [&](mirror::MirrorOptions& m) {
    m.tls_cert_file = certs / "server.pem";
    m.tls_key_file = certs / "server.key";
  };
  o.controller_options = [&](ControllerOptions& c) { c.ca_file = ca; };
  o.agent_options = [&](int, agent::AgentOptions& a) {
    a.ca_file = ca;
    a.tuning.ca_file = ca;  // as `modelcache agent --ca-file` sets both
  };
  auto made = TestCluster::Create(std::move(o));
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  auto& cluster = *made;
  const hub::Endpoint upstream = *hub::Endpoint::Parse(cluster->upstream().base_url());
  ASSERT_EQ(upstream.scheme(), "https");

  // The controller: creating an endpoint reads the model's info and tree from the upstream.
  Reply created = cluster->Call(
      "POST", "/v1/endpoints",
      json{{"name", "tls-hub"}, {"model", "org/tiny"}, {"command", {"true"}}}.dump());
  EXPECT_EQ(created.status, 200) << created.text;
  // The agent: an ensure resolves the revision and lists the tree, then fetches the files.
  Reply ensured = Send("POST", cluster->agents()[0]->base_url() + "/v1/ensure?wait=60",
                       Bearer(cluster->key()), R"({"model": "org/tiny"})");
  EXPECT_EQ(ensured.status, 200) << ensured.text;

  const RepoId repo = *RepoId::Parse("org/tiny");
  const Revision main = *Revision::Parse("main");
  auto trusting = UpstreamClient(upstream, std::nullopt, ca);
  ASSERT_TRUE(trusting.ok());
  auto info = (*trusting)->GetRepoInfo(repo, main);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE((*trusting)->ListTree(repo, info->sha).ok());
  EXPECT_TRUE(
      (*trusting)->GetFileMetadata(repo, main, *RepoFilePath::Parse("config.json")).ok());

  auto wrong = UpstreamClient(upstream, std::nullopt, other);
  ASSERT_TRUE(wrong.ok());
  const Status refused[] = {
      (*wrong)->GetRepoInfo(repo, main).status(),
      (*wrong)->ListTree(repo, info->sha).status(),
      (*wrong)->GetFileMetadata(repo, main, *RepoFilePath::Parse("config.json")).status()};
  for (const Status& s : refused) {
    EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
    EXPECT_NE(s.message().find("certificate"), std::string::npos) << s.ToString();
  }

  cluster.reset();
  fs::remove_all(certs);
}

}  // namespace
}  // namespace mc::controller
