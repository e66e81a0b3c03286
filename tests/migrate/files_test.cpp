// SPDX-License-Identifier: GPL-2.0-or-later
// The pre-freeze file check of a migration: the source lists what the job will reopen, the target
// refuses a list it cannot honour, naming the file (the testbed's nodes share one file system, so
// a file that differs between nodes is only testable here).
#include "migrate/files.hpp"

#include <fcntl.h>
#include <algorithm>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace osmo::migrate {
namespace {

// A job is its process tree: a file only a child opened is listed too, and the walk finds
// grandchildren.
TEST(MigrateFiles, EveryProcessOfTheJobIsListed) {
  const auto path = std::filesystem::temp_directory_path() / ("osmo-files-child-" + std::to_string(::getpid()));
  std::ofstream(path) << "child's";
  int go[2];
  ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child opens the file, starts a grandchild, and waits to be killed (bounded: 30 s).
    if (::open(path.c_str(), O_RDONLY) < 0) ::_exit(1);
    const pid_t grandchild = ::fork();
    if (grandchild == 0) {
      ::sleep(30);
      ::_exit(0);
    }
    char c = 'x';
    (void)!::write(go[1], &c, 1);
    ::sleep(30);
    ::_exit(0);
  }
  ::close(go[1]);
  char c;
  ASSERT_EQ(::read(go[0], &c, 1), 1);
  ::close(go[0]);
  const auto procs = job_processes(::getpid());
  EXPECT_NE(std::find(procs.begin(), procs.end(), child), procs.end());
  EXPECT_GE(procs.size(), 2u);  // the child and its grandchild (and nothing of ours but them)
  auto files = job_files(procs);
  ASSERT_TRUE(files.ok()) << files.error().str();
  bool saw = false;
  for (const auto& f : *files) saw = saw || f["path"] == path.string();
  EXPECT_TRUE(saw) << files->dump();
  for (pid_t p : procs) ::kill(p, SIGKILL);
  int st = 0;
  ::waitpid(child, &st, 0);
  std::filesystem::remove(path);
}

TEST(MigrateFiles, ListsExecutableOpenFilesAndMappingsWithWhatTheyMayDo) {
  const auto dir = std::filesystem::temp_directory_path() / ("osmo-files-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string ro = (dir / "ro").string(), rw = (dir / "rw").string();
  std::ofstream(ro) << "read only";
  std::ofstream(rw) << "written";
  const int a = ::open(ro.c_str(), O_RDONLY | O_CLOEXEC), b = ::open(rw.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  auto files = job_files({::getpid()});
  ASSERT_TRUE(files.ok()) << files.error().str();
  bool saw_ro = false, saw_rw = false, saw_exe = false;
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
  for (const auto& f : *files) {
    if (f["path"] == ro) saw_ro = !f["writable"].get<bool>() && f["size"] == 9;
    if (f["path"] == rw) saw_rw = f["writable"].get<bool>();
    if (f["path"] == exe) saw_exe = true;
  }
  EXPECT_TRUE(saw_ro && saw_rw && saw_exe) << files->dump();
  // Here, where the files are what the list says, the check passes.
  EXPECT_TRUE(check_files_here(*files).ok());

  // A read-only file that changed is refused with its name; a written one only has to exist.
  nlohmann::json changed = *files;
  for (auto& f : changed)
    if (f["path"] == ro) f["size"] = 10;
  auto r = check_files_here(changed);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(ro + " differs here"), std::string::npos) << r.error().message;
  nlohmann::json grown = *files;
  for (auto& f : grown)
    if (f["path"] == rw) f["size"] = 1000;
  EXPECT_TRUE(check_files_here(grown).ok());
  nlohmann::json missing = *files;
  missing.push_back({{"path", (dir / "nope").string()}, {"size", 1}, {"mtime_ns", 0}, {"writable", true}});
  r = check_files_here(missing);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("nope cannot be opened here"), std::string::npos) << r.error().message;
  ::close(a);
  ::close(b);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace osmo::migrate
