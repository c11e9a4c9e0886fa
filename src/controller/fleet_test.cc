// Fleet on a fake agent (fake_agent_client.h) and a FakeClock: the loop's pass (JobBoard::Tick,
// then Fleet::Tick, as controller.cc runs them) never waits on an agent or the upstream. A real
// SQLite store in a temp directory; no sockets, no sleeping for simulated time. The bound on a
// pass is real time (1 s): a pass that waited on the stalled agent would take until its release.
#include "controller/fleet.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "controller/fake_agent_client.h"
#include "controller/jobs.h"
#include "controller/store.h"
#include "mc/common/clock.h"
#include "mc/common/secret_box.h"

namespace mc::controller {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kCommit(40, 'a');
constexpr auto kPassLimit = 1s;  // real time

// A host's heartbeat: one GPU slot of `gpu_type`, room for anything, workers as processes.
std::string HostDoc(const std::string& id, const std::string& gpu_type) {
  return R"({"host_id":")" + id + R"(","url":"http://)" + id +
         R"(.invalid:1","gpu_type":")" + gpu_type +
         R"(","gpus":{"total":1,"free":1},"disk":{"capacity_bytes":1000000000000},)"
         R"("runtime":{"kind":"process","containers":false}})";
}

EndpointRecord Endpoint(const std::string& id, const std::string& gpu_type) {
  EndpointRecord e;
  e.id = id;
  e.repo = "org/tiny";
  e.revision = "main";
  e.commit = kCommit;
  e.command_json = R"(["python3", "worker.py"])";
  e.gpu_type = gpu_type;
  e.workers_max = 1;
  return e;
}

// Polls `pred` for up to 5 s of real time (an executor thread picking an action up).
template <typename Pred>
bool Eventually(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return pred();
}

class FleetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("mc_fleet_test_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    auto store = ControllerStore::Open(root_ / "controller.db");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    jobs_ = std::make_unique<JobBoard>(*store_, clock_, JobBoardOptions{},
                                       [](const JobRecord&, const WebhookDelivery*) {});
    agents_ = std::make_shared<FakeAgentClient>();
    FleetOptions o;
    o.public_url = "http://controller.invalid";
    o.secrets = std::make_shared<const SecretBox>(SecretBox::Random());
    o.agents = agents_;
    o.check_entitlement = [this](const EndpointRecord& e) { return CheckEntitlement(e); };
    fleet_ = std::make_unique<Fleet>(*store_, *jobs_, clock_, std::move(o));
    for (const auto& [id, gpu] : {std::pair{"stuck", "slow-gpu"}, std::pair{"good", "fast-gpu"}}) {
      ASSERT_TRUE(fleet_->Heartbeat(HostDoc(id, gpu)).ok());
    }
    fleet_->NoteModelFiles("org/tiny", kCommit, {{"etag-1", 1000}});
    endpoints_ = {Endpoint("ep-aaaaaaaaaaaa", "slow-gpu"), Endpoint("ep-bbbbbbbbbbbb", "fast-gpu")};
  }
  void TearDown() override {
    {
      std::lock_guard<std::mutex> lock(entitlement_mu_);
      entitlement_stalled_ = false;
    }
    entitlement_cv_.notify_all();
    agents_->ReleaseAll();
    fleet_.reset();
    jobs_.reset();
    store_.reset();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  Status CheckEntitlement(const EndpointRecord& e) {
    std::unique_lock<std::mutex> lock(entitlement_mu_);
    entitlement_cv_.wait(lock, [&] { return !entitlement_stalled_ || e.id != stalled_endpoint_; });
    return Status::Ok();
  }

  // One pass of the loop; fails the test (and lets the pass finish by releasing every stall) if
  // it takes longer than kPassLimit of real time.
  void Pass() {
    auto pass = std::async(std::launch::async, [this] {
      jobs_->Tick();
      fleet_->Tick(endpoints_);
    });
    if (pass.wait_for(kPassLimit) != std::future_status::ready) {
      ADD_FAILURE() << "a pass of the loop took longer than 1 s: it waits on a stalled agent";
      agents_->ReleaseAll();
      {
        std::lock_guard<std::mutex> lock(entitlement_mu_);
        entitlement_stalled_ = false;
      }
      entitlement_cv_.notify_all();
    }
    pass.get();
  }

  // Passes until `pred` holds (the first pass queues the entitlement checks; a later one places).
  template <typename Pred>
  bool PassUntil(Pred pred) {
    return Eventually([&] {
      Pass();
      return pred();
    });
  }

  std::string Submit(const EndpointRecord& e, SubmitRequest r) {
    r.input_json = "{}";
    auto j = jobs_->Submit(e, r);
    EXPECT_TRUE(j.ok()) << j.status().ToString();
    return j.ok() ? j->id : "";
  }

  std::vector<WorkerRecord> Workers(const std::string& endpoint_id) {
    return fleet_->Workers(endpoint_id);
  }

  fs::path root_;
  FakeClock clock_;
  std::unique_ptr<ControllerStore> store_;
  std::unique_ptr<JobBoard> jobs_;
  std::shared_ptr<FakeAgentClient> agents_;
  std::unique_ptr<Fleet> fleet_;
  std::vector<EndpointRecord> endpoints_;
  std::mutex entitlement_mu_;
  std::condition_variable entitlement_cv_;
  bool entitlement_stalled_ = false;
  std::string stalled_endpoint_;
};

// Issue 16's must-show at the unit level: host "stuck" accepts the start of endpoint A's worker
// and never answers; endpoint B's TTL and execution timeout still fire on the next pass, and no
// pass waits.
TEST_F(FleetTest, StalledAgentDelaysNoOtherEndpointsTtlOrExecutionTimeout) {
  const EndpointRecord& a = endpoints_[0];
  const EndpointRecord& b = endpoints_[1];
  agents_->Stall("stuck");
  Submit(a, {});
  SubmitRequest short_run;
  short_run.execution_timeout_ms = 1'000;
  SubmitRequest short_ttl;
  short_ttl.ttl_ms = 2'000;
  const std::string running = Submit(b, short_run);
  const std::string queued = Submit(b, short_ttl);

  // Places A's worker on "stuck" (its start hangs) and B's on "good".
  ASSERT_TRUE(PassUntil([&] { return agents_->Blocked("stuck") == 1 && Workers(b.id).size() == 1; }));
  const std::string worker = Workers(b.id)[0].id;
  EXPECT_EQ(Workers(b.id)[0].host_id, "good");
  ASSERT_TRUE(Eventually([&] { return agents_->Calls("start").size() == 2; }));

  auto taken = jobs_->Take(b.id, worker, 1, 0ms);
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].id, running);
  fleet_->OnTake(worker, 1);

  clock_.Advance(2'500ms);  // past the running job's execution timeout and the queued job's TTL
  Pass();
  auto timed_out = jobs_->Get(b.id, running);
  ASSERT_TRUE(timed_out.ok());
  EXPECT_EQ(timed_out->status, kTimedOut);
  EXPECT_FALSE(jobs_->Get(b.id, queued).ok()) << "the TTL deletes the queued job";

  // Stopping the stuck host's worker does not wait for its agent either.
  const auto before = std::chrono::steady_clock::now();
  fleet_->StopEndpoint(a.id);
  EXPECT_LT(std::chrono::steady_clock::now() - before, kPassLimit);
  Pass();
  EXPECT_EQ(agents_->Blocked("stuck"), 2) << "the start and the stop, both in flight";
}

// The hub side: an entitlement check that never answers holds back only its own endpoint.
TEST_F(FleetTest, StalledEntitlementCheckHoldsBackOnlyItsEndpoint) {
  {
    std::lock_guard<std::mutex> lock(entitlement_mu_);
    entitlement_stalled_ = true;
    stalled_endpoint_ = endpoints_[0].id;
  }
  Submit(endpoints_[0], {});
  Submit(endpoints_[1], {});
  ASSERT_TRUE(PassUntil([&] { return Workers(endpoints_[1].id).size() == 1; }));
  EXPECT_TRUE(Workers(endpoints_[0].id).empty()) << "placed before its entitlement was known";
}

// A worker stopped while its start is in flight gets its stop sent again once the agent answers
// the start (the first stop may have reached the agent before the start).
TEST_F(FleetTest, WorkerStoppedWhileItsStartIsInFlightIsStoppedAgainAfterTheStart) {
  agents_->Stall("stuck");
  Submit(endpoints_[0], {});
  ASSERT_TRUE(PassUntil([&] { return agents_->Blocked("stuck") == 1; }));
  fleet_->StopEndpoint(endpoints_[0].id);
  agents_->Release("stuck");
  fleet_->DrainActions();
  const auto calls = agents_->Calls();
  std::vector<std::string> order;
  for (const auto& c : calls) {
    if (c.host_id == "stuck" && c.method != "watch") order.push_back(c.method);
  }
  ASSERT_GE(order.size(), 3u);
  EXPECT_EQ(order[0], "start");
  EXPECT_EQ(order.back(), "stop");
  EXPECT_EQ(std::count(order.begin(), order.end(), "stop"), 2);
}

}  // namespace
}  // namespace mc::controller
