// SPDX-License-Identifier: GPL-2.0-or-later
// The job spec's terminal part (issue 12) as it travels in JSON, strict on what a peer sends, and
// the job record's verdict on moving a job with a terminal.
#include "run/job_spec.hpp"

#include <gtest/gtest.h>
#include <termios.h>

#include "run/job_table.hpp"

namespace osmo::run {
namespace {

JobSpec base() {
  JobSpec s;
  s.argv = {"python3"};
  s.uid = 1000;
  s.gid = 1000;
  return s;
}

TEST(JobSpecTty, RoundTrip) {
  JobSpec s = base();
  TtySpec t;
  t.in = true;
  t.out = true;
  t.iflag = ICRNL;
  t.oflag = OPOST | ONLCR;
  t.cflag = CS8 | CREAD;
  t.lflag = ICANON | ECHO | ISIG;
  t.cc.assign(NCCS, 0);
  t.cc[VINTR] = 3;
  t.ispeed = t.ospeed = B38400;
  t.rows = 40;
  t.cols = 132;
  s.tty = t;
  auto back = job_spec_from_json(nlohmann::json::parse(to_json(s).dump()));
  ASSERT_TRUE(back.ok()) << back.error().str();
  ASSERT_TRUE(back->tty.has_value());
  EXPECT_TRUE(back->tty->in && back->tty->out && !back->tty->err);
  EXPECT_EQ(back->tty->lflag, t.lflag);
  EXPECT_EQ(back->tty->cc, t.cc);
  EXPECT_EQ(back->tty->rows, 40);
  EXPECT_EQ(back->tty->cols, 132);
  EXPECT_EQ(back->tty->ospeed, static_cast<std::uint32_t>(B38400));
  // No terminal: no "tty" key, and none comes back.
  auto plain = job_spec_from_json(nlohmann::json::parse(to_json(base()).dump()));
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->tty.has_value());
  EXPECT_FALSE(to_json(base()).contains("tty"));
}

TEST(JobSpecTty, MalformedIsRefused) {
  JobSpec s = base();
  s.tty = TtySpec{};
  s.tty->in = true;
  nlohmann::json j = to_json(s);
  {
    auto k = j;
    k["tty"].erase("lflag");
    EXPECT_FALSE(job_spec_from_json(k).ok());
  }
  {
    auto k = j;
    k["tty"]["rows"] = "many";
    EXPECT_FALSE(job_spec_from_json(k).ok());
  }
  {
    auto k = j;
    k["tty"]["cc"] = std::vector<int>(NCCS + 1, 0);
    auto r = job_spec_from_json(k);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("control characters"), std::string::npos) << r.error().message;
  }
  {
    auto k = j;
    k["tty"]["in"] = false;
    auto r = job_spec_from_json(k);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("none of stdin"), std::string::npos) << r.error().message;
  }
}

TEST(JobRecordTty, AJobWithATerminalIsInteractiveAndMovable) {
  JobRecord r;
  EXPECT_FALSE(r.interactive());
  EXPECT_TRUE(record_movable(r).ok());
  r.tty = "pts/3";
  EXPECT_TRUE(r.interactive());
  EXPECT_TRUE(record_movable(r).ok()) << "its pty moves with it";
  JobInfo info;
  info.rec = r;
  const auto j = to_json(info);
  EXPECT_EQ(j["interactive"], true);
  EXPECT_EQ(j["tty"], "pts/3");
}

TEST(JobRecordPinned, ANoMigrateJobIsListedAsPinned) {
  JobInfo info;
  EXPECT_EQ(to_json(info)["pinned"], false);
  info.rec.no_migrate = true;  // the shepherd copies it from the spec (osmo run --no-migrate)
  EXPECT_EQ(to_json(info)["pinned"], true);
}

}  // namespace
}  // namespace osmo::run
