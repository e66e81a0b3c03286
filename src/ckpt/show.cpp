// SPDX-License-Identifier: GPL-2.0-or-later
// `osmo image show`: reads a whole image, verifying every checksum, and describes it (JSON, and
// a text rendering of that JSON for humans).
#include <sys/mman.h>

#include <map>

#include "ckpt/ckpt.hpp"
#include "ckpt/kinds.hpp"

namespace osmo::ckpt {

Result<nlohmann::json> show_image(int in_fd) {
  ImageReader r(in_fd);
  OSMO_ASSIGN_OR_RETURN(std::uint32_t version, r.read_header());
  nlohmann::json j;
  j["format"] = {{"magic", "OSMOCKPT"}, {"version", version}};
  ProcessImage img;
  nlohmann::json proc;  // the kinds of the process being read (a tree image: one per process)
  bool tree = false;
  auto flush = [&] {
    if (proc.is_null()) return;
    if (tree) j["processes"].push_back(std::move(proc));
    else j.update(proc);
    proc = nlohmann::json();
    img = ProcessImage{};
  };
  std::vector<std::uint8_t> payload;
  std::map<std::string, std::array<std::uint64_t, 4>> per_type;  // count, stored, raw, lz4 sections
  std::uint64_t page_bytes = 0;
  for (;;) {
    OSMO_ASSIGN_OR_RETURN(SectionHeader h, r.next());
    OSMO_TRY(r.read_payload(&payload));
    auto& t = per_type[section_name(h.type)];
    t[0]++;
    t[1] += h.length;
    t[2] += h.raw_length;
    if (h.flags & kSectionLz4) t[3]++;
    if (h.type == SectionType::kEnd) break;
    if (h.type == SectionType::kTree) {
      TreeImage ti;
      Decoder d(payload.data(), payload.size(), "tree");
      OSMO_TRY(tree_decode(d, ti));
      tree_describe(ti, j);
      tree = true;
      j["processes"] = nlohmann::json::array();
      continue;
    }
    if (h.type == SectionType::kProcess || h.type == SectionType::kProcessPages) {
      flush();
      continue;
    }
    if (h.type == SectionType::kPages) {
      std::uint32_t n = 0;
      if (payload.size() >= 4) std::memcpy(&n, payload.data(), 4);
      page_bytes += payload.size() - 4 - std::min<std::size_t>(payload.size() - 4, n * 16ull);
      continue;
    }
    for (const KindOps& k : kinds())
      if (k.section == h.type) {
        Decoder d(payload.data(), payload.size(), k.name);
        OSMO_TRY(k.decode(d, img));
        k.describe(img, proc);
      }
  }
  flush();
  auto& s = j["sections"];
  s = nlohmann::json::object();
  for (auto& [name, t] : per_type)
    s[name] = {{"count", t[0]}, {"stored_bytes", t[1]}, {"raw_bytes", t[2]}, {"lz4_sections", t[3]}};
  j["pages"]["pages_in_image"] = page_bytes / kPageSize;
  j["size"] = {{"stored_bytes", r.totals().stored_bytes + kImageHeaderSize},
               {"raw_payload_bytes", r.totals().raw_payload_bytes}};
  j["checksums"] = fmt::format("all {} section checksums verified (XXH3-64)", r.totals().sections);
  return j;
}

namespace {

void render(const nlohmann::json& j, const std::string& indent, std::string* out) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    const auto& v = it.value();
    std::string key = j.is_object() ? it.key() : "-";
    if (v.is_object()) {
      *out += fmt::format("{}{}:\n", indent, key);
      render(v, indent + "  ", out);
    } else if (v.is_array() && !v.empty() && v[0].is_object()) {
      *out += fmt::format("{}{}: ({})\n", indent, key, v.size());
      for (const auto& e : v) {
        std::string line;
        for (auto f = e.begin(); f != e.end(); ++f)
          line += fmt::format("{}={} ", f.key(), f.value().is_string() ? f.value().get<std::string>() : f.value().dump());
        *out += fmt::format("{}  {}\n", indent, line);
      }
    } else {
      *out += fmt::format("{}{}: {}\n", indent, key, v.is_string() ? v.get<std::string>() : v.dump());
    }
  }
}

}  // namespace

std::string render_image_text(const nlohmann::json& j) {
  std::string out;
  render(j, "", &out);
  return out;
}

}  // namespace osmo::ckpt
