// `--db postgresql://...` and `controller migrate-store` through the real binary, against the test
// process's throwaway PostgreSQL cluster: passwords come from files and never show in output, a
// SQLite store moves to PostgreSQL and a controller started on it serves what was moved.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "mc/testing/modelcache_process.h"
#include "mc/net/http_client.h"
#include "postgres/postgres_for_test.h"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using mc::testing::ReadAll;
using mc::testing::RunResult;
using mc::testing::SpawnMc;
using mc::testing::WaitExit;
using mc::postgres::PostgresForTest;

constexpr char kPassword[] = "pw-only-in-a-file";

// Runs modelcache to its end; stdout and stderr through temp files.
RunResult RunMc(const std::vector<std::string>& args) {
  char out_name[] = "/tmp/mc-store-cli-out.XXXXXX";
  char err_name[] = "/tmp/mc-store-cli-err.XXXXXX";
  const int out = ::mkstemp(out_name), err = ::mkstemp(err_name);
  RunResult r;
  const pid_t pid = SpawnMc(args, nullptr, out, err);
  r.exit_code = pid > 0 ? WaitExit(pid, 60s) : -1;
  ::lseek(out, 0, SEEK_SET);
  ::lseek(err, 0, SEEK_SET);
  r.out = ReadAll(out);
  r.err = ReadAll(err);
  ::close(out);
  ::close(err);
  ::unlink(out_name);
  ::unlink(err_name);
  return r;
}

class StoreCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mc-store-cli.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto pg = PostgresForTest::Shared();
    ASSERT_TRUE(pg.ok()) << pg.status().ToString();
    pg_ = *pg;
    // A role that must log in with its password, owning a database of its own.
    static int roles = 0;  // the cluster is this process's: unique within it is enough
    role_ = "app_" + std::to_string(roles++);
    auto made = pg_->Exec("postgres", "CREATE ROLE " + role_ + " LOGIN PASSWORD '" +
                                          std::string(kPassword) + "'");
    ASSERT_TRUE(made.ok()) << made.ToString();
    auto db = pg_->CreateDatabase(role_);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    uri_ = pg_->Uri(*db, role_);
    password_file_ = (dir_ / "db-password").string();
    std::ofstream(password_file_) << kPassword << "\n";
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  PostgresForTest* pg_ = nullptr;
  std::string role_, uri_, password_file_;
};

TEST_F(StoreCliTest, KeysCreateOnPostgresTakesThePasswordFromAFileAndNeverPrintsIt) {
  auto created = RunMc({"keys", "create", "--db", uri_, "--db-password-file", password_file_});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_EQ(created.out.rfind("mc_", 0), 0u) << created.out;  // the key
  EXPECT_EQ(created.out.find(kPassword), std::string::npos);
  EXPECT_EQ(created.err.find(kPassword), std::string::npos);

  auto without = RunMc({"keys", "create", "--db", uri_});
  EXPECT_NE(without.exit_code, 0);
  EXPECT_NE(without.err.find("--db-password-file"), std::string::npos) << without.err;
}

TEST_F(StoreCliTest, APasswordInTheDbUriIsRefusedAndNotEchoed) {
  const std::string uri = "postgresql://" + role_ + ":" + kPassword + "@localhost/x";
  auto r = RunMc({"keys", "create", "--db", uri});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--db-password-file"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(kPassword), std::string::npos) << r.err;
}

TEST_F(StoreCliTest, MigrateStoreMovesASqliteStoreAndAControllerOnPostgresServesIt) {
  const std::string sqlite = "sqlite:" + (dir_ / "controller.db").string();
  auto key = RunMc({"keys", "create", "--db", sqlite, "--name", "moved"});
  ASSERT_EQ(key.exit_code, 0) << key.err;
  const std::string api_key = key.out.substr(0, key.out.find('\n'));

  auto moved = RunMc({"controller", "migrate-store", "--from", sqlite, "--to", uri_,
                    "--to-password-file", password_file_});
  ASSERT_EQ(moved.exit_code, 0) << moved.err;
  EXPECT_NE(moved.out.find("1 API keys"), std::string::npos) << moved.out;
  auto again = RunMc({"controller", "migrate-store", "--from", sqlite, "--to", uri_,
                    "--to-password-file", password_file_});
  EXPECT_NE(again.exit_code, 0);  // the target holds rows now
  EXPECT_NE(again.err.find("--replace-target"), std::string::npos) << again.err;

  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t controller =
      SpawnMc({"controller", "--db", uri_, "--db-password-file", password_file_, "--listen",
               "127.0.0.1:0", "--secret-key-file", (dir_ / "secret.key").string()},
              nullptr, fds[1], -1);
  ::close(fds[1]);
  std::string seen;
  char buf[256];
  for (ssize_t n; seen.find('\n') == std::string::npos && (n = ::read(fds[0], buf, 256)) > 0;) {
    seen.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  const std::string prefix = "controller listening on ";
  ASSERT_NE(seen.find(prefix), std::string::npos) << seen;
  const std::string url = seen.substr(prefix.size(), seen.find('\n') - prefix.size());

  mc::net::HttpClientRequest req;
  req.method = "GET";
  req.url = url + "/v1/keys";
  req.headers.Set("Authorization", "Bearer " + api_key);  // the key made on SQLite
  auto res = mc::net::HttpClient::Create()->Send(req);
  ::kill(controller, SIGTERM);
  EXPECT_EQ(WaitExit(controller, 30s), 0);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_NE(res->body.find("\"moved\""), std::string::npos) << res->body;
}

TEST_F(StoreCliTest, AControllerOnPostgresWithoutASecretKeyFileSaysToPassOne) {
  auto run = RunMc({"controller", "--db", uri_, "--db-password-file", password_file_, "--listen",
                    "127.0.0.1:0"});
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.err.find("--secret-key-file"), std::string::npos) << run.err;
}

// `hosts enroll` and `hosts cordon` through a running controller's API, with an admin key from a
// file; a member key is refused (hosts are the operators').
TEST_F(StoreCliTest, HostsEnrollAndCordonGoThroughTheControllerWithAnAdminKey) {
  const std::string db = "sqlite:" + (dir_ / "controller.db").string();
  auto admin = RunMc({"keys", "create", "--db", db, "--name", "ops"});
  ASSERT_EQ(admin.exit_code, 0) << admin.err;
  auto member = RunMc({"keys", "create", "--db", db, "--name", "team", "--tenant", "team-a",
                       "--role", "member"});
  ASSERT_EQ(member.exit_code, 0) << member.err;
  EXPECT_NE(member.err.find("member of tenant team-a"), std::string::npos) << member.err;
  const std::string admin_file = (dir_ / "admin-key").string();
  const std::string member_file = (dir_ / "member-key").string();
  std::ofstream(admin_file) << admin.out;
  std::ofstream(member_file) << member.out;

  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t controller =
      SpawnMc({"controller", "--db", db, "--listen", "127.0.0.1:0"}, nullptr, fds[1], -1);
  ::close(fds[1]);
  std::string seen;
  char buf[256];
  for (ssize_t n; seen.find('\n') == std::string::npos && (n = ::read(fds[0], buf, 256)) > 0;) {
    seen.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  const std::string prefix = "controller listening on ";
  const std::string url = seen.find(prefix) == std::string::npos
                              ? ""
                              : seen.substr(prefix.size(), seen.find('\n') - prefix.size());
  const std::string credential = (dir_ / "gpu-1.credential").string();
  auto enrolled = RunMc({"hosts", "enroll", "--host-id", "gpu-1", "--controller", url,
                         "--key-file", admin_file, "--credential-file", credential});
  auto cordoned =
      RunMc({"hosts", "cordon", "gpu-1", "--controller", url, "--key-file", admin_file});
  auto refused = RunMc({"hosts", "enroll", "--host-id", "gpu-2", "--controller", url,
                        "--key-file", member_file});
  ::kill(controller, SIGTERM);
  EXPECT_EQ(WaitExit(controller, 30s), 0);
  ASSERT_FALSE(url.empty()) << seen;
  EXPECT_EQ(enrolled.exit_code, 0) << enrolled.err;
  EXPECT_EQ(enrolled.out, "");  // the credential went to the file, not the terminal
  EXPECT_EQ(fs::status(credential).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  std::ifstream in(credential);
  std::string text;
  std::getline(in, text);
  EXPECT_TRUE(text.starts_with("mch_")) << text;
  EXPECT_EQ(cordoned.exit_code, 0) << cordoned.err;
  EXPECT_NE(cordoned.out.find("gpu-1: cordoned"), std::string::npos) << cordoned.out;
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("HTTP 403"), std::string::npos) << refused.err;
}

TEST_F(StoreCliTest, MigrateStoreHelpSaysWhatToDoBeforeAndAfter) {
  auto r = RunMc({"controller", "migrate-store", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* part : {"--from", "--to", "--replace-target", "--to-password-file", "Before:",
                           "After:", "Example:"}) {
    EXPECT_NE(r.out.find(part), std::string::npos) << part;
  }
}

}  // namespace
