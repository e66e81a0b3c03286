// SPDX-License-Identifier: GPL-2.0-or-later
// The testbed record as JSON (see state.hpp).
#include "testbed/state.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "base/unique_fd.hpp"
#include "platform/linux/sysfs_io.hpp"

namespace osmo::testbed {
namespace {

using Json = nlohmann::json;
constexpr int kStateVersion = 1;

Json dirs_to_json(const platform::CgroupDirs& d) {
  return Json{{"cpu", d.cpu}, {"cpuacct", d.cpuacct}, {"cpuset", d.cpuset}, {"memory", d.memory}};
}

platform::CgroupDirs dirs_from_json(const Json& j) {
  platform::CgroupDirs d;
  d.cpu = j.value("cpu", "");
  d.cpuacct = j.value("cpuacct", "");
  d.cpuset = j.value("cpuset", "");
  d.memory = j.value("memory", "");
  return d;
}

}  // namespace

const NodeRecord* TestbedState::find(const std::string& name) const {
  for (const auto& n : nodes)
    if (n.name == name) return &n;
  return nullptr;
}

std::string encode_state(const TestbedState& s) {
  Json nodes = Json::array();
  for (const auto& n : s.nodes)
    nodes.push_back({{"name", n.name},
                     {"address", n.address},
                     {"port", n.port},
                     {"netns", n.netns},
                     {"cgroup", dirs_to_json(n.cgroup)}});
  Json j{{"version", kStateVersion},
         {"instance", s.instance},
         {"subnet", s.subnet},
         {"mode", s.loopback ? "loopback" : "netns"},
         {"base_port", s.base_port},
         {"cpus_per_node", s.cpus_per_node ? Json(*s.cpus_per_node) : Json(nullptr)},
         {"daemon_override", s.daemon_override},
         {"cgroup_parent", dirs_to_json(s.cgroup_parent)},
         {"nodes", nodes}};
  return j.dump(2) + "\n";
}

Result<TestbedState> decode_state(const std::string& text) {
  try {
    Json j = Json::parse(text);
    if (j.value("version", 0) != kStateVersion)
      return make_error("testbed state version {} (this osmo understands {})",
                        j.value("version", 0), kStateVersion);
    TestbedState s;
    std::string mode = j.at("mode").get<std::string>();
    if (mode != "loopback" && mode != "netns")
      return make_error("testbed state: bad mode '{}'", mode);
    s.loopback = mode == "loopback";
    // Records from before instances existed are the default instance's.
    s.instance = j.value("instance", "");
    s.subnet = j.value("subnet", 0);
    s.base_port = j.at("base_port").get<std::uint16_t>();
    if (!j.at("cpus_per_node").is_null()) s.cpus_per_node = j.at("cpus_per_node").get<double>();
    s.daemon_override = j.value("daemon_override", "");
    s.cgroup_parent = dirs_from_json(j.value("cgroup_parent", Json::object()));
    for (const auto& n : j.at("nodes")) {
      NodeRecord r;
      r.name = n.at("name").get<std::string>();
      r.address = n.at("address").get<std::string>();
      r.port = n.at("port").get<std::uint16_t>();
      r.netns = n.value("netns", "");
      r.cgroup = dirs_from_json(n.value("cgroup", Json::object()));
      s.nodes.push_back(std::move(r));
    }
    return s;
  } catch (const Json::exception& e) {
    return make_error("testbed state: {}", e.what());
  }
}

Status save_state(const std::string& path, const TestbedState& state) {
  std::string tmp = path + ".tmp";
  std::string text = encode_state(state);
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) return errno_error("create {}", tmp);
    if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
      return errno_error("write {}", tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return errno_error("rename {} to {}", tmp, path);
  return ok_status();
}

Result<TestbedState> load_state(const std::string& path) {
  OSMO_ASSIGN_OR_RETURN(std::string text, platform::read_text_file(path));
  auto s = decode_state(text);
  if (!s.ok()) return make_error("{}: {}", path, s.error().message);
  return std::move(s).value();
}

}  // namespace osmo::testbed
