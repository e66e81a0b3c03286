// SPDX-License-Identifier: GPL-2.0-or-later
// Metrics and their text exposition (see registry.hpp).
#include "metrics/registry.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace osmo::metrics {

namespace {

bool valid_name(const std::string& n, bool label) {
  if (n.empty()) return false;
  for (std::size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!label && c == ':');
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return !(label && n.rfind("__", 0) == 0);
}

void atomic_add(std::atomic<double>& a, double v) {
  double cur = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

// A sample value as the format wants it: integers without a fraction, +Inf/-Inf/NaN spelled out.
std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<long long>(v));
  return fmt::format("{}", v);
}

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string escape_help(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string label_text(const Labels& labels, const std::pair<std::string, std::string>* extra = nullptr) {
  if (labels.empty() && extra == nullptr) return "";
  std::string s = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    s += fmt::format("{}{}=\"{}\"", first ? "" : ",", k, escape_label(v));
    first = false;
  }
  if (extra != nullptr) s += fmt::format("{}{}=\"{}\"", first ? "" : ",", extra->first, extra->second);
  return s + "}";
}

}  // namespace

void Counter::add(double v) {
  if (v > 0) atomic_add(value_, v);  // counters only go up
}

void Gauge::add(double v) { atomic_add(value_, v); }

Histogram::Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)) {
  std::sort(bounds_.begin(), bounds_.end());
  bounds_.erase(std::unique(bounds_.begin(), bounds_.end()), bounds_.end());
  buckets_ = std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1);
  for (std::size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::observe(double v) {
  const auto i = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  atomic_add(sum_, v);
  count_.fetch_add(1, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.bounds = bounds_;
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  // The count is the +Inf bucket, so that a scrape racing with observe() stays consistent.
  s.count = running;
  return s;
}

std::vector<double> duration_buckets() {
  std::vector<double> b;
  for (double v = 0.001; v < 40.0; v *= 2) b.push_back(v);
  return b;
}

Result<Registry::Family*> Registry::family(const std::string& name, const std::string& help, Type type,
                                           const Labels& labels) {
  if (!valid_name(name, false) || name.rfind("osmo_", 0) != 0)
    return make_error("metric name '{}': must match [a-zA-Z_:][a-zA-Z0-9_:]* and start with osmo_", name);
  if (type == Type::kCounter && (name.size() < 6 || name.compare(name.size() - 6, 6, "_total") != 0))
    return make_error("counter '{}': a counter's name ends in _total", name);
  for (const auto& [k, v] : labels)
    if (!valid_name(k, true) || (type == Type::kHistogram && k == "le"))
      return make_error("metric '{}': bad label name '{}'", name, k);
  auto [it, inserted] = families_.try_emplace(name);
  if (inserted) {
    it->second.type = type;
    it->second.help = help;
  } else if (it->second.type != type || it->second.collect) {
    return make_error("metric '{}' is already registered as another kind", name);
  }
  return &it->second;
}

Result<Counter*> Registry::counter(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lk(mu_);
  OSMO_ASSIGN_OR_RETURN(Family * f, family(name, help, Type::kCounter, labels));
  auto& slot = f->counters[labels];
  if (!slot) slot = std::make_unique<Counter>();
  return slot.get();
}

Result<Gauge*> Registry::gauge(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lk(mu_);
  OSMO_ASSIGN_OR_RETURN(Family * f, family(name, help, Type::kGauge, labels));
  auto& slot = f->gauges[labels];
  if (!slot) slot = std::make_unique<Gauge>();
  return slot.get();
}

Result<Histogram*> Registry::histogram(const std::string& name, const std::string& help, std::vector<double> bounds,
                                       const Labels& labels) {
  std::lock_guard lk(mu_);
  OSMO_ASSIGN_OR_RETURN(Family * f, family(name, help, Type::kHistogram, labels));
  auto& slot = f->histograms[labels];
  if (!slot) slot = std::make_unique<Histogram>(std::move(bounds));
  return slot.get();
}

Status Registry::callback_family(const std::string& name, const std::string& help, Type type,
                                 std::function<std::vector<std::pair<Labels, double>>()> collect) {
  std::lock_guard lk(mu_);
  if (families_.count(name) != 0) return make_error("metric '{}' is already registered", name);
  OSMO_ASSIGN_OR_RETURN(Family * f, family(name, help, type, {}));
  f->collect = std::move(collect);
  return ok_status();
}

Status Registry::gauge_callback(const std::string& name, const std::string& help,
                                std::function<std::vector<std::pair<Labels, double>>()> collect) {
  return callback_family(name, help, Type::kGauge, std::move(collect));
}

Status Registry::counter_callback(const std::string& name, const std::string& help,
                                  std::function<std::vector<std::pair<Labels, double>>()> collect) {
  return callback_family(name, help, Type::kCounter, std::move(collect));
}

std::string Registry::expose() const {
  std::lock_guard lk(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    const char* type = f.type == Type::kCounter ? "counter" : f.type == Type::kGauge ? "gauge" : "histogram";
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, escape_help(f.help), name, type);
    for (const auto& [labels, c] : f.counters) out += fmt::format("{}{} {}\n", name, label_text(labels), number(c->value()));
    for (const auto& [labels, g] : f.gauges) out += fmt::format("{}{} {}\n", name, label_text(labels), number(g->value()));
    if (f.collect) {
      auto samples = f.collect();
      std::sort(samples.begin(), samples.end());
      for (const auto& [labels, v] : samples) out += fmt::format("{}{} {}\n", name, label_text(labels), number(v));
    }
    for (const auto& [labels, h] : f.histograms) {
      const auto s = h->snapshot();
      for (std::size_t i = 0; i < s.bounds.size(); ++i) {
        const std::pair<std::string, std::string> le{"le", number(s.bounds[i])};
        out += fmt::format("{}_bucket{} {}\n", name, label_text(labels, &le), s.cumulative[i]);
      }
      const std::pair<std::string, std::string> inf{"le", "+Inf"};
      out += fmt::format("{}_bucket{} {}\n", name, label_text(labels, &inf), s.cumulative.back());
      out += fmt::format("{}_sum{} {}\n", name, label_text(labels), number(s.sum));
      out += fmt::format("{}_count{} {}\n", name, label_text(labels), s.count);
    }
  }
  return out;
}

}  // namespace osmo::metrics
