// SPDX-License-Identifier: GPL-2.0-or-later
// Parsers for procfs/cgroupfs text formats (see proc_parse.hpp).
#include "platform/linux/proc_parse.hpp"

#include <cctype>
#include <charconv>

#include "platform/linux/sysfs_io.hpp"

namespace osmo::platform {
namespace {

// Splits on `sep`, keeping empty pieces.
std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    auto pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

// Whitespace-separated fields.
std::vector<std::string_view> fields(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    std::size_t b = i;
    while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    if (i > b) out.push_back(s.substr(b, i - b));
  }
  return out;
}

// Calls f(word) for each whitespace-separated word; allocates nothing (unlike fields()).
template <typename F>
void for_each_word(std::string_view s, F f) {
  std::size_t i = 0;
  for (;;) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    if (i >= s.size()) return;
    const std::size_t b = i;
    while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    f(s.substr(b, i - b));
  }
}

// Calls f(line) for each line; stops early when f returns true.
template <typename F>
void for_each_line(std::string_view text, F f) {
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (f(line)) return;
    if (nl == std::string_view::npos) return;
    text.remove_prefix(nl + 1);
  }
}

// The rest of `line` if it starts with `key` followed by ':' or whitespace.
std::optional<std::string_view> after_key(std::string_view line, std::string_view key) {
  if (line.size() <= key.size() || line.substr(0, key.size()) != key) return std::nullopt;
  char c = line[key.size()];
  if (c == ':') return line.substr(key.size() + 1);
  if (c == ' ' || c == '\t') return line.substr(key.size());
  return std::nullopt;
}

}  // namespace

Result<std::vector<int>> parse_cpu_list(std::string_view text) {
  std::vector<int> cpus;
  text = trim(text);
  if (text.empty()) return cpus;
  for (std::string_view part : split(text, ',')) {
    part = trim(part);
    auto dash = part.find('-');
    std::uint64_t lo = 0, hi = 0;
    bool ok = dash == std::string_view::npos
                  ? (parse_u64(part, &lo) && (hi = lo, true))
                  : (parse_u64(part.substr(0, dash), &lo) && parse_u64(part.substr(dash + 1), &hi));
    if (!ok || hi < lo || hi > 65535) return make_error("bad CPU list '{}' at '{}'", text, part);
    for (auto c = lo; c <= hi; ++c) cpus.push_back(static_cast<int>(c));
  }
  return cpus;
}

std::optional<std::uint64_t> find_keyed_u64(std::string_view text, std::string_view key) {
  std::optional<std::uint64_t> found;
  for_each_line(text, [&](std::string_view line) {
    auto rest = after_key(line, key);
    if (!rest) return false;
    auto f = fields(*rest);
    std::uint64_t v = 0;
    if (!f.empty() && parse_u64(f[0], &v)) found = v;
    return true;
  });
  return found;
}

std::optional<std::string> find_keyed_text(std::string_view text, std::string_view key) {
  std::optional<std::string> found;
  for_each_line(text, [&](std::string_view line) {
    if (line.size() <= key.size() || line.substr(0, key.size()) != key || line[key.size()] != ':')
      return false;
    found = std::string(trim(line.substr(key.size() + 1)));
    return true;
  });
  return found;
}

Result<ProcStat> parse_proc_stat(std::string_view text) {
  ProcStat st;
  bool have_cpu = false, have_running = false;
  for_each_line(text, [&](std::string_view line) {
    auto f = fields(line);
    if (f.empty()) return false;
    if (f[0] == "cpu" && f.size() >= 8) {
      // cpu user nice system idle iowait irq softirq [steal guest guest_nice]
      std::uint64_t v[7] = {};
      for (int i = 0; i < 7; ++i)
        if (!parse_u64(f[static_cast<std::size_t>(i) + 1], &v[i])) return false;
      st.busy_ticks = v[0] + v[1] + v[2] + v[5] + v[6];
      have_cpu = true;
    } else if (f[0] == "procs_running" && f.size() >= 2) {
      have_running = parse_u64(f[1], &st.procs_running);
    }
    return false;
  });
  if (!have_cpu) return make_error("/proc/stat: no aggregate 'cpu' line");
  if (!have_running) return make_error("/proc/stat: no 'procs_running' line");
  return st;
}

Result<std::vector<CgroupMembership>> parse_proc_cgroup(std::string_view text) {
  std::vector<CgroupMembership> out;
  std::optional<Error> err;
  for_each_line(text, [&](std::string_view line) {
    if (trim(line).empty()) return false;
    // The path may itself contain ':', so split only on the first two.
    auto c1 = line.find(':');
    auto c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
    std::uint64_t id = 0;
    if (c2 == std::string_view::npos || !parse_u64(line.substr(0, c1), &id)) {
      err = make_error("bad /proc/PID/cgroup line '{}'", line);
      return true;
    }
    CgroupMembership m;
    m.hierarchy_id = static_cast<int>(id);
    std::string_view ctrls = line.substr(c1 + 1, c2 - c1 - 1);
    if (!ctrls.empty())
      for (auto c : split(ctrls, ',')) m.controllers.emplace_back(c);
    m.path = std::string(line.substr(c2 + 1));
    out.push_back(std::move(m));
    return false;
  });
  if (err) return *err;
  return out;
}

std::size_t split_pid_stat(std::string_view text, std::span<std::string_view> out) {
  for (auto& f : out) f = {};
  const auto open = text.find('(');
  const auto close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open || out.size() < 3)
    return 0;
  out[1] = trim(text.substr(0, open));
  out[2] = text.substr(open + 1, close - open - 1);
  std::size_t n = 2, i = close + 1;
  while (n + 1 < out.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i >= text.size()) break;
    const std::size_t b = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    out[++n] = text.substr(b, i - b);
  }
  return n;
}

Result<PidStat> parse_pid_stat(std::string_view text) {
  std::array<std::string_view, 25> f;  // up to field 24 (rss)
  const std::size_t n = split_pid_stat(text, f);
  if (n == 0) return make_error("bad /proc/PID/stat: no ')'");
  if (n < 24 || f[3].size() != 1) return make_error("bad /proc/PID/stat: too few fields");
  PidStat st;
  st.state = f[3][0];
  if (!parse_u64(f[22], &st.start_ticks)) return make_error("bad /proc/PID/stat: start time '{}'", f[22]);
  std::uint64_t* const times[] = {&st.utime, &st.stime, &st.cutime, &st.cstime};
  for (std::size_t k = 0; k < 4; ++k)
    if (!parse_u64(f[14 + k], times[k])) return make_error("bad /proc/PID/stat: field {} '{}'", 14 + k, f[14 + k]);
  if (!parse_i64(f[24], &st.rss_pages)) return make_error("bad /proc/PID/stat: rss '{}'", f[24]);
  return st;
}

namespace {

// Calls add(token) for each whitespace-separated number of `value` parsed in `base`; false on a
// token that is not one, or one that does not fit T.
// Allocates nothing (parse_pid_list is on the job start path).
template <typename T, typename Add>
bool for_each_number(std::string_view value, int base, Add add) {
  bool ok = true;
  for_each_word(value, [&](std::string_view w) {
    if (!ok) return;
    T v{};
    auto [p, ec] = std::from_chars(w.data(), w.data() + w.size(), v, base);
    ok = ec == std::errc() && p == w.data() + w.size();
    if (ok) add(v);
  });
  return ok;
}

template <typename T>
bool list_of(std::string_view value, std::vector<T>* out) {
  return for_each_number<T>(value, 10, [&](T v) { out->push_back(v); });
}

template <typename T>
bool one_number(std::string_view value, int base, T* out) {
  int n = 0;
  return for_each_number<T>(value, base, [&](T v) {
    *out = v;
    ++n;
  }) && n == 1;
}

}  // namespace

Result<PidStatus> parse_pid_status(std::string_view text) {
  PidStatus s;
  std::optional<Error> err;
  for_each_line(text, [&](std::string_view line) {
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) return false;
    const std::string_view key = line.substr(0, colon), value = line.substr(colon + 1);
    bool ok = true;
    if (key == "State") {
      const std::string_view st = trim(value);
      s.state = st.empty() ? '?' : st[0];
    } else if (key == "Threads") {
      ok = one_number(value, 10, &s.threads);
    } else if (key == "TracerPid") {
      ok = one_number(value, 10, &s.tracer_pid);
    } else if (key == "Uid" || key == "Gid") {
      auto& ids = key == "Uid" ? s.uid : s.gid;
      std::size_t k = 0;
      ok = for_each_number<std::uint32_t>(value, 10, [&](std::uint32_t v) {
             if (k < ids.size()) ids[k] = v;
             ++k;
           }) && k == ids.size();
      (key == "Uid" ? s.has_uid : s.has_gid) = ok;
    } else if (key == "Groups") {
      ok = s.has_groups = list_of(value, &s.groups);
    } else if (key == "Umask") {
      ok = one_number(value, 8, &s.umask);
    } else if (key == "NSpid" || key == "NSpgid" || key == "NSsid") {
      ok = list_of(value, key == "NSpid" ? &s.nspid : key == "NSpgid" ? &s.nspgid : &s.nssid);
    } else if (key == "CapInh" || key == "CapPrm" || key == "CapEff" || key == "CapBnd" || key == "CapAmb") {
      ok = one_number(value, 16,
                      &(key == "CapInh"   ? s.cap_inh
                        : key == "CapPrm" ? s.cap_prm
                        : key == "CapEff" ? s.cap_eff
                        : key == "CapBnd" ? s.cap_bnd
                                          : s.cap_amb));
    }
    if (!ok) err = make_error("malformed /proc status line '{}'", line);
    return !ok;
  });
  if (err) return *err;
  return s;
}

Result<std::vector<SmapsVma>> parse_smaps(std::string_view text) {
  std::vector<SmapsVma> out;
  std::optional<Error> err;
  for_each_line(text, [&](std::string_view line) {
    if (auto flags = after_key(line, "VmFlags")) {
      if (!out.empty()) out.back().vm_flags = std::string(trim(*flags));
      return false;
    }
    // A mapping's first line, "start-end perms offset dev inode [path]"; the others are
    // "Key:   value" lines, whose key never holds '-' before its first space.
    const auto dash = line.find('-'), space = line.find(' ');
    if (line.empty() || !std::isxdigit(static_cast<unsigned char>(line[0])) || dash == std::string_view::npos ||
        space == std::string_view::npos || dash > space)
      return false;
    SmapsVma v;
    const char* const e1 = line.data() + dash;
    const char* const e2 = line.data() + space;
    auto [p1, ec1] = std::from_chars(line.data(), e1, v.start, 16);
    auto [p2, ec2] = std::from_chars(e1 + 1, e2, v.end, 16);
    if (ec1 != std::errc() || p1 != e1 || ec2 != std::errc() || p2 != e2 || v.end < v.start) {
      err = make_error("malformed smaps line '{}'", line);
      return true;
    }
    out.push_back(std::move(v));
    return false;
  });
  if (err) return *err;
  return out;
}

bool has_vm_flag(std::string_view vm_flags, std::string_view name) {
  bool found = false;
  for_each_word(vm_flags, [&](std::string_view w) { found = found || w == name; });
  return found;
}

std::optional<std::size_t> parse_pid_list(std::string_view text, std::span<pid_t> out) {
  std::size_t n = 0;
  const bool ok = for_each_number<pid_t>(text, 10, [&](pid_t p) {
    if (n < out.size()) out[n] = p;
    ++n;
  });
  if (!ok) return std::nullopt;
  return n;
}

Result<std::optional<double>> parse_cpu_max(std::string_view text) {
  auto f = fields(text);
  if (f.size() != 2) return make_error("bad cpu.max '{}'", trim(text));
  std::uint64_t period = 0;
  if (!parse_u64(f[1], &period) || period == 0) return make_error("bad cpu.max '{}'", trim(text));
  if (f[0] == "max") return std::optional<double>{};
  std::uint64_t quota = 0;
  if (!parse_u64(f[0], &quota)) return make_error("bad cpu.max '{}'", trim(text));
  return std::optional<double>(static_cast<double>(quota) / static_cast<double>(period));
}

Result<std::optional<double>> parse_cfs_quota(std::string_view quota_text,
                                              std::string_view period_text) {
  std::int64_t quota = 0;
  std::uint64_t period = 0;
  if (!parse_i64(trim(quota_text), &quota))
    return make_error("bad cpu.cfs_quota_us '{}'", trim(quota_text));
  if (quota < 0) return std::optional<double>{};
  if (!parse_u64(trim(period_text), &period) || period == 0)
    return make_error("bad cpu.cfs_period_us '{}'", trim(period_text));
  return std::optional<double>(static_cast<double>(quota) / static_cast<double>(period));
}

Result<std::optional<std::uint64_t>> parse_memory_limit(std::string_view text) {
  text = trim(text);
  if (text == "max") return std::optional<std::uint64_t>{};
  std::uint64_t v = 0;
  if (!parse_u64(text, &v)) return make_error("bad memory limit '{}'", text);
  if (v >= (std::uint64_t{1} << 62)) return std::optional<std::uint64_t>{};
  return std::optional<std::uint64_t>(v);
}

}  // namespace osmo::platform
