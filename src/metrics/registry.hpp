// SPDX-License-Identifier: GPL-2.0-or-later
// The daemon's metrics in Prometheus' text exposition format (version 0.0.4): counters, gauges and
// histograms with labels, registered once by the part that owns them and updated lock-free
// (atomics) from any thread; gauges that are cheaper to read than to keep current are sampled by a
// callback at scrape time. Names follow Prometheus' conventions: `osmo_` prefix, base units
// (seconds, bytes), `_total` for counters (checked at registration).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "base/result.hpp"

namespace osmo::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void add(double v = 1.0);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double v);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Cumulative buckets with fixed upper bounds (the +Inf bucket is implicit), sum and count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double v);
  struct Snapshot {
    std::vector<double> bounds;
    std::vector<std::uint64_t> cumulative;  // per bound, then +Inf
    double sum = 0;
    std::uint64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // per bound, then +Inf; not cumulative
  std::atomic<double> sum_{0.0};
  std::atomic<std::uint64_t> count_{0};
};

// Bucket bounds for durations from 1 ms to ~30 s (exponential, x2).
std::vector<double> duration_buckets();

class Registry {
 public:
  // Each family (name) has one type and help text; a second call with the same name and labels
  // returns the same metric. Errors: a bad name, a counter not ending in _total, a name registered
  // with another type, a bad label name.
  Result<Counter*> counter(const std::string& name, const std::string& help, const Labels& labels = {});
  Result<Gauge*> gauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Result<Histogram*> histogram(const std::string& name, const std::string& help, std::vector<double> bounds,
                               const Labels& labels = {});
  // A gauge family computed at scrape time: the callback returns its samples (labels, value).
  Status gauge_callback(const std::string& name, const std::string& help,
                        std::function<std::vector<std::pair<Labels, double>>()> collect);
  // The same for a counter kept elsewhere (e.g. the gossip node's own counters, read under its
  // lock): the callback returns its current totals.
  Status counter_callback(const std::string& name, const std::string& help,
                          std::function<std::vector<std::pair<Labels, double>>()> collect);

  // The text exposition of everything, families sorted by name.
  std::string expose() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    Type type;
    std::string help;
    std::map<Labels, std::unique_ptr<Counter>> counters;
    std::map<Labels, std::unique_ptr<Gauge>> gauges;
    std::map<Labels, std::unique_ptr<Histogram>> histograms;
    std::function<std::vector<std::pair<Labels, double>>()> collect;
  };
  Result<Family*> family(const std::string& name, const std::string& help, Type type, const Labels& labels);
  Status callback_family(const std::string& name, const std::string& help, Type type,
                         std::function<std::vector<std::pair<Labels, double>>()> collect);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
};

}  // namespace osmo::metrics
