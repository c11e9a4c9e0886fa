// PostgresForTest: a real server as an unprivileged user, stopped by its pid with nothing left
// behind, also when the test process dies without stopping it.
#include "postgres/postgres_for_test.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace mc::postgres {
namespace {

namespace fs = std::filesystem;

// A field of /proc/PID/status ("Uid", "PPid"): its first number, or -1.
long ProcStatus(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(field + ":")) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

// Every process whose command line mentions `text`.
std::vector<pid_t> ProcessesMentioning(const std::string& text) {
  std::vector<pid_t> out;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const pid_t pid = std::atoi(entry.path().filename().c_str());
    if (pid <= 0) continue;
    std::ifstream in(entry.path() / "cmdline", std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmdline.find(text) != std::string::npos) out.push_back(pid);
  }
  return out;
}

// Waits (at most 60 s: a bound for a broken build, not a timing assumption) for `pid` to exit.
bool WaitGone(pid_t pid) {
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errno == ESRCH;  // already gone
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  const bool gone = ::poll(&p, 1, 60'000) > 0;
  ::close(fd);
  return gone;
}

TEST(PostgresForTestTest, ServesAsAnUnprivilegedUserAndStopLeavesNoProcessOrFile) {
  auto pg = PostgresForTest::Start();
  ASSERT_TRUE(pg.ok()) << pg.status().ToString();
  const pid_t pid = (*pg)->pid();
  const fs::path dir = (*pg)->dir();
  const long uid = ProcStatus(pid, "Uid");
  if (::geteuid() == 0) {
    EXPECT_NE(uid, 0) << "PostgreSQL runs as root";
  } else {
    EXPECT_EQ(uid, static_cast<long>(::geteuid()));
  }
  auto db = (*pg)->CreateDatabase();
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  Status s = (*pg)->Exec(*db, "CREATE TABLE t (x int); INSERT INTO t VALUES (1)");
  ASSERT_TRUE(s.ok()) << s.ToString();
  const std::vector<pid_t> server = ProcessesMentioning(dir.string());
  EXPECT_GE(server.size(), 1u);  // the postmaster; its children say "postgres: ..." only

  s = (*pg)->Stop();
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(::kill(pid, 0), -1);  // reaped: no such process
  EXPECT_TRUE(ProcessesMentioning(dir.string()).empty());
  EXPECT_FALSE(fs::exists(dir));
}

TEST(PostgresForTestTest, AServerWhoseTestProcessDiesIsStoppedByTheKernel) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // a test process that starts a cluster and dies without stopping it
    ::close(fds[0]);
    auto pg = PostgresForTest::Start();
    const std::string msg = pg.ok() ? std::to_string((*pg)->pid()) + " " + (*pg)->dir().string()
                                    : "0 " + pg.status().ToString();
    (void)!::write(fds[1], msg.data(), msg.size());
    ::_exit(0);  // no destructor runs
  }
  ::close(fds[1]);
  std::string msg;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) msg.append(buf, n);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  const pid_t server = std::atoi(msg.c_str());
  ASSERT_GT(server, 0) << msg;
  const fs::path dir = msg.substr(msg.find(' ') + 1);

  EXPECT_TRUE(WaitGone(server)) << "the server outlived its test process";
  std::error_code ec;
  fs::remove_all(dir, ec);  // what a dead test cannot clean up
}

}  // namespace
}  // namespace mc::postgres
