#include "mc/hub/hub_config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace mc::hub {
namespace {

namespace fs = std::filesystem;
using Vars = std::map<std::string, std::string, std::less<>>;

Env MakeEnv(Vars vars) { return Env::FromMap(std::move(vars)); }

// A private directory under the test's temp dir, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "mc_hub_config_XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path Write(const std::string& name, const std::string& content) const {
    fs::path p = path_ / name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }

 private:
  fs::path path_;
};

// ---- Endpoint ----

TEST(ResolveEndpointTest, DefaultsToHuggingFaceCo) {
  EXPECT_EQ(ResolveEndpoint(MakeEnv({})).value().url(), "https://huggingface.co");
  EXPECT_EQ(ResolveEndpoint(MakeEnv({{"HF_ENDPOINT", ""}})).value().url(),
            "https://huggingface.co");
  EXPECT_EQ(ResolveEndpoint(MakeEnv({{"HF_ENDPOINT", "///"}})).value().url(),
            "https://huggingface.co");
}

TEST(ResolveEndpointTest, UsesHfEndpointWithoutTrailingSlashes) {
  Endpoint ep = ResolveEndpoint(MakeEnv({{"HF_ENDPOINT", "http://127.0.0.1:8080//"}})).value();
  EXPECT_EQ(ep.url(), "http://127.0.0.1:8080");
  EXPECT_EQ(ep.scheme(), "http");
  EXPECT_EQ(ep.host(), "127.0.0.1");
  EXPECT_EQ(ep.port(), 8080);
  EXPECT_EQ(ep.path(), "");
}

TEST(ResolveEndpointTest, KeepsAPathPrefix) {
  Endpoint ep = ResolveEndpoint(MakeEnv({{"HF_ENDPOINT", "https://Mirror.Example/hub/"}})).value();
  EXPECT_EQ(ep.url(), "https://mirror.example/hub");
  EXPECT_EQ(ep.port(), 443);
  EXPECT_EQ(ep.path(), "/hub");
}

TEST(ResolveEndpointTest, AcceptsIpv6Hosts) {
  Endpoint ep = Endpoint::Parse("http://[::1]:9000").value();
  EXPECT_EQ(ep.host(), "[::1]");
  EXPECT_EQ(ep.port(), 9000);
}

TEST(ResolveEndpointTest, RejectsMalformedEndpointsNamingTheVariable) {
  for (const char* bad :
       {"huggingface.co", "ftp://x", "https://", "https://:80", "https://user:pw@host",
        "https://host:0", "https://host:65536", "https://host:8o", "https://host:", "http://h/a?b",
        "http://h/#x", "http://h o", "http://h/../x", "http://h//x", "http://h\n", "http://[::1",
        "http://-h", "http://h\\x", "http://h..x"}) {
    SCOPED_TRACE(bad);
    Status s = ResolveEndpoint(MakeEnv({{"HF_ENDPOINT", bad}})).status();
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(s.message().rfind("HF_ENDPOINT: ", 0), 0u) << s.message();
  }
}

// ---- Expansion ----

TEST(ExpandUserAndVarsTest, ExpandsTildeAndVariablesLikePython) {
  Env env = MakeEnv({{"HOME", "/home/u/"}, {"A", "aa"}, {"B_1", "bb"}});
  EXPECT_EQ(ExpandUserAndVars("~", env).value(), "/home/u");
  EXPECT_EQ(ExpandUserAndVars("~/x", env).value(), "/home/u/x");
  EXPECT_EQ(ExpandUserAndVars("~other/x", env).value(), "~other/x");
  EXPECT_EQ(ExpandUserAndVars("/p/$A/${B_1}/q", env).value(), "/p/aa/bb/q");
  EXPECT_EQ(ExpandUserAndVars("$A$B_1", env).value(), "aabb");
  EXPECT_EQ(ExpandUserAndVars("/p/$UNSET/${UNSET}", env).value(), "/p/$UNSET/${UNSET}");
  EXPECT_EQ(ExpandUserAndVars("/p/$/${}/${A", env).value(), "/p/$/${}/${A");
  EXPECT_EQ(ExpandUserAndVars("x$", env).value(), "x$");
  EXPECT_EQ(ExpandUserAndVars("a/~/b", env).value(), "a/~/b");
}

TEST(ExpandUserAndVarsTest, DoesNotExpandRecursively) {
  Env env = MakeEnv({{"A", "$B"}, {"B", "no"}});
  EXPECT_EQ(ExpandUserAndVars("$A", env).value(), "$B");
}

TEST(ExpandUserAndVarsTest, TildeWithoutHomeIsFailedPrecondition) {
  EXPECT_EQ(ExpandUserAndVars("~/x", MakeEnv({})).status().code(), StatusCode::kFailedPrecondition);
}

TEST(ExpandUserAndVarsTest, RootHomeKeepsSlash) {
  EXPECT_EQ(ExpandUserAndVars("~", MakeEnv({{"HOME", "/"}})).value(), "/");
  EXPECT_EQ(ExpandUserAndVars("~/x", MakeEnv({{"HOME", "/"}})).value(), "/x");
}

// ---- Cache locations ----

TEST(ResolveHfHomeTest, FollowsHfHomeThenXdgThenHome) {
  EXPECT_EQ(ResolveHfHome(MakeEnv({{"HOME", "/h"}})).value(), "/h/.cache/huggingface");
  EXPECT_EQ(ResolveHfHome(MakeEnv({{"HOME", "/h"}, {"XDG_CACHE_HOME", "/x"}})).value(),
            "/x/huggingface");
  EXPECT_EQ(ResolveHfHome(MakeEnv({{"HOME", "/h"}, {"XDG_CACHE_HOME", "/x"}, {"HF_HOME", "/hf"}}))
                .value(),
            "/hf");
}

TEST(ResolveHfHomeTest, ExpandsTildeAndVariablesInHfHome) {
  Env env = MakeEnv({{"HOME", "/h"}, {"VOL", "/mnt/v"}, {"HF_HOME", "${VOL}/hf"}});
  EXPECT_EQ(ResolveHfHome(env).value(), "/mnt/v/hf");
  EXPECT_EQ(ResolveHfHome(MakeEnv({{"HOME", "/h"}, {"HF_HOME", "~/hf"}})).value(), "/h/hf");
  EXPECT_EQ(ResolveHfHome(MakeEnv({{"HOME", "/h"}, {"XDG_CACHE_HOME", "~/c"}})).value(),
            "/h/c/huggingface");
}

TEST(ResolveHfHomeTest, EmptyVariablesCountAsUnset) {
  Env env = MakeEnv({{"HOME", "/h"}, {"HF_HOME", ""}, {"XDG_CACHE_HOME", ""}});
  EXPECT_EQ(ResolveHfHome(env).value(), "/h/.cache/huggingface");
}

TEST(ResolveHfHomeTest, NoHomeAnywhereIsAnError) {
  EXPECT_EQ(ResolveHfHome(MakeEnv({})).status().code(), StatusCode::kFailedPrecondition);
}

TEST(ResolveHubCacheDirTest, FollowsHubCacheThenLegacyThenHfHome) {
  Vars v = {{"HOME", "/h"}};
  EXPECT_EQ(ResolveHubCacheDir(MakeEnv(v)).value(), "/h/.cache/huggingface/hub");
  v["HF_HOME"] = "/hf";
  EXPECT_EQ(ResolveHubCacheDir(MakeEnv(v)).value(), "/hf/hub");
  v["HUGGINGFACE_HUB_CACHE"] = "/legacy";
  EXPECT_EQ(ResolveHubCacheDir(MakeEnv(v)).value(), "/legacy");
  v["HF_HUB_CACHE"] = "~/new";
  EXPECT_EQ(ResolveHubCacheDir(MakeEnv(v)).value(), "/h/new");
}

TEST(ResolveTokenPathTest, FollowsTokenPathThenHfHome) {
  Vars v = {{"HOME", "/h"}, {"HF_HOME", "/hf"}};
  EXPECT_EQ(ResolveTokenPath(MakeEnv(v)).value(), "/hf/token");
  v["HF_TOKEN_PATH"] = "$HOME/tok";
  EXPECT_EQ(ResolveTokenPath(MakeEnv(v)).value(), "/h/tok");
}

// ---- Tokens ----

std::optional<std::string> RevealedToken(const Env& env,
                                         const std::optional<fs::path>& file = std::nullopt) {
  StatusOr<std::optional<HubToken>> t = ResolveToken(env, file);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  if (!t.ok() || !t->has_value()) return std::nullopt;
  return std::string((*t)->secret.Reveal());
}

TEST(ResolveTokenTest, PrefersHfTokenThenLegacyThenFile) {
  TempDir dir;
  dir.Write("token", "hf_file\n");
  Vars v = {{"HF_HOME", dir.path().string()}};
  EXPECT_EQ(RevealedToken(MakeEnv(v)), "hf_file");
  v["HUGGING_FACE_HUB_TOKEN"] = "hf_legacy";
  EXPECT_EQ(RevealedToken(MakeEnv(v)), "hf_legacy");
  v["HF_TOKEN"] = "hf_env";
  EXPECT_EQ(RevealedToken(MakeEnv(v)), "hf_env");
}

TEST(ResolveTokenTest, ExplicitFileWinsOverEverything) {
  TempDir dir;
  fs::path explicit_file = dir.Write("mine", "hf_explicit");
  Vars v = {{"HF_HOME", dir.path().string()}, {"HF_TOKEN", "hf_env"}};
  EXPECT_EQ(RevealedToken(MakeEnv(v), explicit_file), "hf_explicit");
}

TEST(ResolveTokenTest, MissingExplicitFileIsNotFound) {
  TempDir dir;
  auto t = ResolveToken(MakeEnv({{"HF_TOKEN", "hf_env"}}), dir.path() / "absent");
  EXPECT_EQ(t.status().code(), StatusCode::kNotFound);
}

TEST(ResolveTokenTest, MissingDefaultFileMeansNoToken) {
  TempDir dir;
  EXPECT_EQ(RevealedToken(MakeEnv({{"HF_HOME", dir.path().string()}})), std::nullopt);
}

TEST(ResolveTokenTest, StripsEveryCarriageReturnAndLineFeed) {
  TempDir dir;
  dir.Write("token", "hf_a\r\nb\n");
  EXPECT_EQ(RevealedToken(MakeEnv({{"HF_HOME", dir.path().string()}})), "hf_ab");
  EXPECT_EQ(RevealedToken(MakeEnv({{"HF_TOKEN", "\nhf_x\r\n"}})), "hf_x");
}

TEST(ResolveTokenTest, EmptyValuesFallThroughLikePython) {
  TempDir dir;
  dir.Write("token", "hf_file");
  // Empty HF_TOKEN: the legacy variable is consulted.
  Vars v = {{"HF_HOME", dir.path().string()}, {"HF_TOKEN", ""}, {"HUGGING_FACE_HUB_TOKEN", "hf_l"}};
  EXPECT_EQ(RevealedToken(MakeEnv(v)), "hf_l");
  // HF_TOKEN made only of newlines: non-empty, so the legacy one is skipped; cleans to "", so the
  // file is used.
  v["HF_TOKEN"] = "\n";
  EXPECT_EQ(RevealedToken(MakeEnv(v)), "hf_file");
  // An empty token file means no token at all.
  dir.Write("token", "\r\n");
  EXPECT_EQ(RevealedToken(MakeEnv({{"HF_HOME", dir.path().string()}})), std::nullopt);
}

TEST(ResolveTokenTest, ReportsTheSourceButNeverTheValue) {
  auto t = ResolveToken(MakeEnv({{"HF_TOKEN", "hf_supersecretvalue"}})).value();
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->source, "HF_TOKEN");
  EXPECT_EQ(t->source.find("supersecret"), std::string::npos);
}

TEST(ResolveTokenTest, RejectsControlCharactersWithoutShowingTheToken) {
  for (const char* bad : {"hf_abc\tdef", "hf_abc\x01", "hf_\xC3\xBC"}) {
    Status s = ResolveToken(MakeEnv({{"HF_TOKEN", bad}})).status();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(s.message().find("abc"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("HF_TOKEN"), std::string::npos) << s.message();
  }
}

TEST(ResolveTokenTest, RejectsHugeTokenFile) {
  TempDir dir;
  fs::path big = dir.Write("big", std::string(100 * 1024, 'a'));
  EXPECT_EQ(ResolveToken(MakeEnv({}), big).status().code(), StatusCode::kInvalidArgument);
}

TEST(ResolveTokenTest, TokenPathThatIsADirectoryIsAnError) {
  TempDir dir;
  fs::create_directory(dir.path() / "token");
  EXPECT_FALSE(ResolveToken(MakeEnv({{"HF_HOME", dir.path().string()}})).ok());
}

// ---- Secret ----

TEST(SecretTest, PrintingNeverRevealsTheValue) {
  Secret s("hf_abcdefghijklmnop");
  std::ostringstream os;
  os << s;
  EXPECT_EQ(os.str(), "hf_***");
  EXPECT_EQ(s.ToString(), "hf_***");
  EXPECT_EQ(Secret("ghp_xyz").ToString(), "***");
  EXPECT_EQ(Secret("").ToString(), "<empty>");
  EXPECT_EQ(testing::PrintToString(s), "hf_***");
}

TEST(SecretTest, MatchesComparesWholeValues) {
  Secret s("hf_demo_token");
  EXPECT_TRUE(s.Matches("hf_demo_token"));
  EXPECT_FALSE(s.Matches("hf_demo_toke"));
  EXPECT_FALSE(s.Matches("hf_demo_token2"));
  EXPECT_FALSE(s.Matches(""));
  EXPECT_TRUE(Secret("").Matches(""));
}

TEST(SecretTest, CopiesAndMovesKeepTheValue) {
  Secret a("hf_1");
  Secret b = a;
  Secret c = std::move(a);
  EXPECT_EQ(b.Reveal(), "hf_1");
  EXPECT_EQ(c.Reveal(), "hf_1");
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is wiped and empty
  b = c;
  c = Secret("hf_2");
  EXPECT_EQ(b.Reveal(), "hf_1");
  EXPECT_EQ(c.Reveal(), "hf_2");
}

// ---- Booleans and offline ----

TEST(IsEnvTrueTest, AcceptsPythonTrueValuesCaseInsensitively) {
  for (const char* v : {"1", "ON", "on", "Yes", "TRUE", "true"}) EXPECT_TRUE(IsEnvTrue(v)) << v;
  for (const char* v : {"", "0", "off", "no", "false", "2", " 1", "1 ", "y"}) {
    EXPECT_FALSE(IsEnvTrue(v)) << v;
  }
  EXPECT_FALSE(IsEnvTrue(std::nullopt));
}

TEST(IsOfflineTest, ReadsHfHubOfflineThenTransformersOffline) {
  EXPECT_FALSE(IsOffline(MakeEnv({})));
  EXPECT_TRUE(IsOffline(MakeEnv({{"HF_HUB_OFFLINE", "1"}})));
  EXPECT_TRUE(IsOffline(MakeEnv({{"TRANSFORMERS_OFFLINE", "yes"}})));
  EXPECT_TRUE(IsOffline(MakeEnv({{"HF_HUB_OFFLINE", ""}, {"TRANSFORMERS_OFFLINE", "1"}})));
  // Python's `HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE`: a set "0" hides TRANSFORMERS_OFFLINE.
  EXPECT_FALSE(IsOffline(MakeEnv({{"HF_HUB_OFFLINE", "0"}, {"TRANSFORMERS_OFFLINE", "1"}})));
}

// ---- Everything together ----

TEST(ResolveHubConfigTest, CombinesAllSettings) {
  TempDir dir;
  dir.Write("token", "hf_cfg");
  HubConfig cfg = ResolveHubConfig(MakeEnv({{"HF_HOME", dir.path().string()},
                                            {"HF_ENDPOINT", "http://localhost:1234/"},
                                            {"HF_HUB_OFFLINE", "true"}}))
                      .value();
  EXPECT_EQ(cfg.endpoint.url(), "http://localhost:1234");
  EXPECT_EQ(cfg.hub_cache_dir, dir.path() / "hub");
  EXPECT_EQ(cfg.token_path, dir.path() / "token");
  ASSERT_TRUE(cfg.token.has_value());
  EXPECT_EQ(cfg.token->secret.Reveal(), "hf_cfg");
  EXPECT_TRUE(cfg.offline);
}

TEST(EnvTest, RealEnvironmentReadsVariablesAndAlwaysKnowsHome) {
  Env env = Env::Real();
  EXPECT_EQ(env.get("MC_SURELY_UNSET_VARIABLE_1234"), std::nullopt);
  EXPECT_TRUE(env.get("HOME").has_value());
}

}  // namespace
}  // namespace mc::hub
