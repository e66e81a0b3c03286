// SPDX-License-Identifier: GPL-2.0-or-later
// A temporary directory that tests fill with fake procfs/sysfs/cgroupfs files; removed with
// everything in it when the object goes away.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace osmo::testing {

class FakeTree {
 public:
  FakeTree() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "osmo-fake-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp " << tmpl;
    root_ = tmpl;
  }
  ~FakeTree() {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  FakeTree(const FakeTree&) = delete;
  FakeTree& operator=(const FakeTree&) = delete;

  // Writes `content` to ROOT/rel, creating parent directories.
  void write(const std::string& rel, const std::string& content) const {
    auto p = std::filesystem::path(root_) / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << content;
  }
  void mkdir(const std::string& rel) const {
    std::filesystem::create_directories(std::filesystem::path(root_) / rel);
  }
  void symlink(const std::string& target, const std::string& rel) const {
    auto p = std::filesystem::path(root_) / rel;
    std::filesystem::create_directories(p.parent_path());
    std::filesystem::create_symlink(target, p);
  }
  std::string path(const std::string& rel) const { return root_ + "/" + rel; }
  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

// A /proc/PID/stat line with the given state and start time (field 22).
inline std::string fake_pid_stat(int pid, char state, unsigned long long start = 1000) {
  std::string s = std::to_string(pid) + " (fake (task) x) " + state + " 1 1 1 0 -1 0";
  for (int field = 10; field <= 21; ++field) s += " 0";
  s += " " + std::to_string(start) + " 0 0\n";
  return s;
}

}  // namespace osmo::testing
