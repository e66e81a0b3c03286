// SPDX-License-Identifier: GPL-2.0-or-later
// The stay-local rules on real files and processes: the list file, setuid and plain programs,
// relative paths through the caller's cwd, inheritable and close-on-exec fds.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "spread/stay_local.hpp"

namespace osmo::spread {
namespace {

std::string temp_dir() {
  char tmpl[] = "/tmp/osmo-stay-local-XXXXXX";
  return ::mkdtemp(tmpl);
}

TEST(StayLocal, ProgramNameAndList) {
  EXPECT_EQ(program_name("/usr/bin/bc"), "bc");
  EXPECT_EQ(program_name("bc"), "bc");
  const auto def = default_stay_local_programs();
  EXPECT_TRUE(def.contains("sh") && def.contains("true") && def.contains("sed"));
  EXPECT_FALSE(def.contains("bc") || def.contains("cc") || def.contains("python3"));
  const std::string d = temp_dir();
  std::ofstream(d + "/list") << "# only these\n  bc \ncc # compilers too\n\n";
  const auto l = load_stay_local_programs(d + "/list");
  EXPECT_EQ(l, (std::set<std::string, std::less<>>{"bc", "cc"}));
  EXPECT_EQ(load_stay_local_programs(d + "/missing"), def);
  std::remove((d + "/list").c_str());
  ::rmdir(d.c_str());
}

TEST(StayLocal, Files) {
  const std::string d = temp_dir();
  const std::string plain = d + "/plain", suid = d + "/suid";
  std::ofstream(plain) << "#!/bin/sh\n";
  std::ofstream(suid) << "#!/bin/sh\n";
  ::chmod(plain.c_str(), 0755);
  ::chmod(suid.c_str(), 04755);
  std::string abs;
  EXPECT_EQ(file_stays(::getpid(), plain, &abs), std::nullopt);
  EXPECT_EQ(abs, plain);
  auto why = file_stays(::getpid(), suid, &abs);
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("is setuid"), std::string::npos) << *why;
  why = file_stays(::getpid(), d + "/missing", &abs);
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("cannot stat"), std::string::npos) << *why;
  why = file_stays(::getpid(), d, &abs);
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("not a regular file"), std::string::npos) << *why;
  // A relative path is the caller's cwd's.
  char cwd[4096];
  ASSERT_NE(::getcwd(cwd, sizeof cwd), nullptr);
  ASSERT_EQ(::chdir(d.c_str()), 0);
  EXPECT_EQ(file_stays(::getpid(), "plain", &abs), std::nullopt);
  EXPECT_EQ(abs, d + "/plain");
  ASSERT_EQ(::chdir(cwd), 0);
  std::remove(plain.c_str());
  std::remove(suid.c_str());
  ::rmdir(d.c_str());
}

TEST(StayLocal, Fds) {
  // A child with only 0-2 and close-on-exec fds moves; one with an inheritable fd 7 stays.
  int go[2];
  ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    for (int fd = 3; fd < 1024; ++fd)
      if (fd != go[0]) ::close(fd);
    // 0-2 on /dev/null: whatever ran the test (a terminal) is not what is checked here.
    const int null_fd = ::open("/dev/null", O_RDWR);
    for (int fd = 0; fd <= 2; ++fd) ::dup2(null_fd, fd);
    ::close(null_fd);
    ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    char c;
    (void)!::read(go[0], &c, 1);  // wait until checked once
    ::dup2(0, 7);                 // inheritable
    (void)!::read(go[0], &c, 1);
    ::_exit(0);
  }
  ::close(go[0]);
  ::usleep(100'000);
  EXPECT_EQ(fds_stay(pid), std::nullopt);
  ASSERT_EQ(::write(go[1], "x", 1), 1);
  ::usleep(100'000);
  auto why = fds_stay(pid);
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("fd 7"), std::string::npos) << *why;
  ASSERT_EQ(::write(go[1], "x", 1), 1);
  ::close(go[1]);
  int st = 0;
  ::waitpid(pid, &st, 0);
}

TEST(StayLocal, ProgramOnATerminalStays) {
  // stdout on a pty: the deputy would relay it as a pipe, so the program stays with its terminal.
  const int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(master, 0);
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  const std::string slave = ::ptsname(master);
  int go[2];
  ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int null_fd = ::open("/dev/null", O_RDWR);
    ::dup2(null_fd, 0);
    ::dup2(null_fd, 2);
    const int tty = ::open(slave.c_str(), O_RDWR | O_NOCTTY);
    ::dup2(tty, 1);
    for (int fd = 3; fd < 1024; ++fd)
      if (fd != go[0]) ::close(fd);
    char c;
    (void)!::read(go[0], &c, 1);
    ::_exit(0);
  }
  ::close(go[0]);
  ::usleep(100'000);
  auto why = fds_stay(pid);
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("fd 1 is a terminal (" + slave + ")"), std::string::npos) << *why;
  ASSERT_EQ(::write(go[1], "x", 1), 1);
  ::close(go[1]);
  ::waitpid(pid, nullptr, 0);
  ::close(master);
}

}  // namespace
}  // namespace osmo::spread
