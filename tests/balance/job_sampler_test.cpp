// SPDX-License-Identifier: GPL-2.0-or-later
// The balancer's view of the jobs of a node (src/balance/job_sampler): residence from the first
// sighting, CPU share scaled by the node's contention, the spec's home/pin/terminal read once,
// guests counted for the drain, a job whose spec cannot be read treated as pinned.
#include "balance/job_sampler.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace osmo::balance {
namespace {

run::JobInfo listed(const std::string& id, const std::string& home, double cpu_s) {
  run::JobInfo j;
  j.rec.id = id;
  j.rec.home = home;
  j.rec.node = "me";
  j.rec.shepherd_pid = ::getpid();  // any readable /proc/PID/io
  j.rec.started_unix_ms = 1'000'000;
  j.rec.migrations = 1;
  j.state = "running";
  j.cpu_s = cpu_s;
  j.rss_mb = 12.4;
  return j;
}

TEST(JobSampler, TurnsTheJobTableIntoPolicyJobs) {
  int describes = 0;
  JobSampler s("me", [&](const std::string& id) -> Result<nlohmann::json> {
    ++describes;
    if (id == "00000000000c") return make_error("shepherd busy");
    nlohmann::json spec{{"home", id == "00000000000a" ? "h" : "me"}, {"no_migrate", id == "00000000000b"}};
    if (id == "00000000000a") spec["tty"] = nlohmann::json::object();
    return spec;
  }, [](const run::JobRecord& rec) { return rec.id != "00000000000d"; });
  std::vector<run::JobInfo> jobs = {listed("00000000000a", "h", 0), listed("00000000000b", "h", 0),
                                    listed("00000000000c", "h", 0), listed("not-an-id", "h", 0),
                                    listed("00000000000d", "h", 0)};
  auto out = s.update(jobs, 10'000, 1'060'000, /*runnable=*/4, /*cap=*/0.5);
  ASSERT_EQ(out.size(), 4u);  // the malformed id is not ours
  EXPECT_TRUE(out[3].info.pinned);    // the migration cannot move it (a tree, say): not offered
  EXPECT_EQ(out[0].info.id, 0xau);
  EXPECT_EQ(out[0].info.age_ms, 60'000);
  EXPECT_EQ(out[0].info.residence_ms, 0);
  EXPECT_EQ(out[0].info.mem_mb, 12u);
  EXPECT_EQ(out[0].info.migrations, 1);
  EXPECT_EQ(out[0].info.home, "h");
  EXPECT_TRUE(out[0].info.interactive);
  EXPECT_FALSE(out[0].info.pinned);
  EXPECT_TRUE(out[1].info.pinned);    // --no-migrate
  EXPECT_TRUE(out[2].info.pinned);    // spec unknown: left alone
  EXPECT_FALSE(out[2].described);
  EXPECT_EQ(s.guests_to_move(), 2u);  // a and c (its home from the record); b pinned, d unmovable
  // One second later, each job used 1/8 s of CPU: 4 runnable tasks on half a CPU get 1/8 each,
  // so each is a busy job (share 1) and the smoothed share stays at 1. The same from the rate
  // alone, when the job is not seen runnable at the sample.
  jobs[1].state = "sleeping";
  for (auto& j : jobs) j.cpu_s = 0.125;
  out = s.update(jobs, 11'000, 1'061'000, 4, 0.5);
  EXPECT_NEAR(out[0].info.cpu_share, 1.0, 1e-9);
  EXPECT_NEAR(out[1].info.cpu_share, 1.0, 1e-9);
  EXPECT_EQ(out[0].info.residence_ms, 1000);
  EXPECT_EQ(out[0].info.cpu_used_ms, 125);
  // A job that sleeps: no CPU for a second halves its share (smoothing weight 0.5).
  for (auto& j : jobs) j.state = "sleeping";
  out = s.update(jobs, 12'000, 1'062'000, 4, 0.5);
  EXPECT_NEAR(out[0].info.cpu_share, 0.5, 1e-9);
  // Specs are read once; the failing one is asked again.
  EXPECT_EQ(describes, 4 + 2);
  s.attempt_failed("00000000000a", 12'000);
  out = s.update(jobs, 13'000, 1'063'000, 4, 0.5);
  EXPECT_EQ(out[0].info.last_attempt_ms, 12'000);
  // A job that left is forgotten: seen again, it starts its residence anew.
  out = s.update(std::vector<run::JobInfo>{jobs[1]}, 14'000, 1'064'000, 4, 0.5);
  EXPECT_EQ(out.size(), 1u);
  out = s.update(jobs, 15'000, 1'065'000, 4, 0.5);
  EXPECT_EQ(out[0].info.residence_ms, 0);
}

TEST(JobSampler, ReadsAProcessIoCounters) {
  auto before = process_io_bytes(::getpid());
  ASSERT_TRUE(before.has_value());
  char buf[4096] = {};
  const int fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(::write(fd, buf, sizeof buf), static_cast<ssize_t>(sizeof buf));
  ::close(fd);
  auto after = process_io_bytes(::getpid());
  ASSERT_TRUE(after.has_value());
  EXPECT_GE(*after, *before + sizeof buf);
  EXPECT_FALSE(process_io_bytes(-1).has_value());
}

}  // namespace
}  // namespace osmo::balance
