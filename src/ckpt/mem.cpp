// SPDX-License-Identifier: GPL-2.0-or-later
// Memory: the mappings, the vdso, carried blobs and the restore-side layout. The page contents
// themselves stream through page_stream.cpp.
//
// Dump: the mappings come from /proc/PID/maps (read while the process is stopped). Which pages to
// carry comes from /proc/PID/pagemap: for anonymous mappings every present or swapped page; for
// private file mappings only pages that are no longer the file's (PM_FILE clear: written, COW'd);
// shared file mappings carry nothing (the file holds them). Shared anonymous memory, memfds and
// deleted files travel as blobs (their whole content, read through map_files / fd).
//
// Restore: the new process's own mappings are removed (except our trampoline and the vdso), the
// vdso/vvar pieces are moved to where the image had them, every image mapping is created with
// MAP_FIXED, the page runs are pre-faulted in bulk with MADV_POPULATE_WRITE (a fault costs ~12 µs
// here; one per page would dominate) while page_stream.cpp writes the pages, and finally
// protections are set to the image's.
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <future>
#include <string_view>
#include <cstring>
#include <map>

#include "ckpt/faults.hpp"
#include "ckpt/kinds.hpp"
#include "ckpt/page_buffer.hpp"
#include "platform/linux/pidfd.hpp"
#include "platform/linux/proc_files.hpp"

namespace osmo::ckpt {
namespace {

constexpr std::size_t kBlobChunk = 8u << 20;
constexpr std::uint64_t kPmPresent = 1ull << 63;
constexpr std::uint64_t kPmSwapped = 1ull << 62;
constexpr std::uint64_t kPmFile = 1ull << 61;
constexpr std::uint64_t kPopulateGapPages = 16;    // runs closer than this are populated together
constexpr std::uint64_t kPopulatePiece = 8u << 20;  // one madvise per piece (see mem_restore_layout)

bool is_special(VmaKind k) { return k == VmaKind::kVdso || k == VmaKind::kVvar || k == VmaKind::kVvarVclock; }
bool carries_pages(VmaKind k) {
  return k == VmaKind::kAnonPrivate || k == VmaKind::kFilePrivate || k == VmaKind::kBlobPrivate;
}

const char* vma_kind_name(VmaKind k) {
  switch (k) {
    case VmaKind::kAnonPrivate: return "anon";
    case VmaKind::kFilePrivate: return "file-private";
    case VmaKind::kFileShared: return "file-shared";
    case VmaKind::kBlobPrivate: return "blob-private";
    case VmaKind::kBlobShared: return "blob-shared";
    case VmaKind::kVdso: return "vdso";
    case VmaKind::kVvar: return "vvar";
    case VmaKind::kVvarVclock: return "vvar_vclock";
  }
  return "?";
}

}  // namespace

Status mem_preflight(pid_t, const std::vector<MapsEntry>& maps) {
  for (const MapsEntry& m : maps) {
    const std::string& n = m.name;
    if (n.rfind("/SYSV", 0) == 0)
      return make_error("SysV shared memory is attached at {:#x} (not supported)", m.start);
    if (n.rfind("anon_inode:", 0) == 0 || n == "[io_uring]" || n == "[uprobes]")
      return make_error("mapping {} at {:#x} is not supported", n, m.start);
    if (n.rfind("/dev/", 0) == 0 && n != "/dev/zero" && n != "/dev/zero (deleted)")
      return make_error("device mapping {} at {:#x} is not supported", n, m.start);
  }
  return ok_status();
}

std::uint32_t add_blob(DumpContext& c, const std::string& name, const std::string& source,
                       const FileIdentity& id) {
  for (std::size_t i = 0; i < c.blob_ids.size(); i++)
    if (c.blob_ids[i].first == id.dev && c.blob_ids[i].second == id.ino) return static_cast<std::uint32_t>(i);
  c.blob_ids.push_back({id.dev, id.ino});
  c.blob_sources.push_back(source);
  std::uint32_t seals = 0;
  UniqueFd fd(::open(source.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd) {
    int sl = ::fcntl(fd.get(), F_GET_SEALS);
    if (sl > 0) seals = static_cast<std::uint32_t>(sl);
  }
  c.img->mem.blobs.push_back(BlobImage{name, id.size, seals});
  return static_cast<std::uint32_t>(c.img->mem.blobs.size() - 1);
}

namespace {

// Appends the runs of pages to carry in [v.start, v.end) to *runs; returns how many pages.
Result<std::uint64_t> scan_pagemap(int pagemap_fd, const VmaImage& v, std::vector<PageRun>* runs) {
  bool anon = v.kind == VmaKind::kAnonPrivate;
  std::vector<std::uint64_t> ents(64 * 1024);
  std::uint64_t total = 0;
  for (std::uint64_t a = v.start; a < v.end;) {
    std::uint64_t npages = std::min<std::uint64_t>((v.end - a) / kPageSize, ents.size());
    ssize_t r = ::pread(pagemap_fd, ents.data(), npages * 8, static_cast<off_t>(a / kPageSize * 8));
    if (r < 0) return errno_error("cannot read pagemap at {:#x}", a);
    std::uint64_t got = static_cast<std::uint64_t>(r) / 8;
    if (got == 0) return make_error("short pagemap read at {:#x}", a);
    for (std::uint64_t i = 0; i < got; i++) {
      std::uint64_t e = ents[i];
      bool take = anon ? (e & (kPmPresent | kPmSwapped)) != 0
                       : ((e & kPmPresent) != 0 && (e & kPmFile) == 0) || (e & kPmSwapped) != 0;
      if (!take) continue;
      std::uint64_t addr = a + i * kPageSize;
      if (!runs->empty() && runs->back().vaddr + runs->back().pages * kPageSize == addr &&
          runs->back().vaddr >= v.start)
        runs->back().pages++;
      else
        runs->push_back(PageRun{addr, 1});
      total++;
    }
    a += got * kPageSize;
  }
  return total;
}

// VmFlags of every mapping, by start address, from /proc/PID/smaps.
Result<std::map<std::uint64_t, std::uint32_t>> read_vm_flags(pid_t pid) {
  OSMO_ASSIGN_OR_RETURN(auto vmas, platform::read_smaps(pid));
  static const std::pair<const char*, std::uint32_t> kNames[] = {
      {"gd", kVmaGrowsDown}, {"hg", kVmaHugepage}, {"nh", kVmaNoHugepage}, {"dc", kVmaDontFork},
      {"dd", kVmaDontDump},  {"wf", kVmaWipeOnFork}, {"sr", kVmaSeqRead}, {"rr", kVmaRandRead},
      {"lo", kVmaLocked}};
  std::map<std::uint64_t, std::uint32_t> out;
  for (const platform::SmapsVma& v : vmas) {
    std::uint32_t f = 0;
    for (auto& [name, bit] : kNames)
      if (platform::has_vm_flag(v.vm_flags, name)) f |= bit;
    out[v.start] = f;
  }
  return out;
}

}  // namespace

Status mem_dump(DumpContext& c) {
  MemImage& m = c.img->mem;
  m.vmas.clear();
  m.runs.clear();
  // /proc/PID/smaps walks every page table to count (~40 ms per GiB mapped), as the pagemap scan
  // below does: they run side by side, the flags are filled in at the end.
  auto vm_flags_later = std::async(std::launch::async, [pid = c.pid] { return read_vm_flags(pid); });
  UniqueFd pagemap(::open(fmt::format("/proc/{}/pagemap", c.pid).c_str(), O_RDONLY | O_CLOEXEC));
  if (!pagemap) return errno_error("cannot open /proc/{}/pagemap", c.pid);
  for (const MapsEntry& e : c.maps) {
    if (e.name == "[vsyscall]") continue;
    VmaImage v;
    v.start = e.start;
    v.end = e.end;
    v.prot = (e.r ? PROT_READ : 0) | (e.w ? PROT_WRITE : 0) | (e.x ? PROT_EXEC : 0);
    v.pgoff = e.offset;
    v.path = e.name;
    std::string map_files = fmt::format("/proc/{}/map_files/{:x}-{:x}", c.pid, e.start, e.end);
    if (e.name == "[vdso]") {
      v.kind = VmaKind::kVdso;
      m.vdso_bytes.resize(e.end - e.start);
      OSMO_TRY(c.tracee->read_mem(e.start, m.vdso_bytes.data(), m.vdso_bytes.size()));
    } else if (e.name == "[vvar]") {
      v.kind = VmaKind::kVvar;
    } else if (e.name == "[vvar_vclock]") {
      v.kind = VmaKind::kVvarVclock;
    } else if (e.name.empty() || e.name[0] == '[' || (e.name == "/dev/zero" && !e.shared)) {
      if (e.shared) {
        // Shared anonymous memory shows as "/dev/zero (deleted)"; an unnamed shared one would
        // be a kernel we do not know.
        return make_error("shared anonymous mapping {} at {:#x} of unknown kind", e.name, e.start);
      }
      v.kind = VmaKind::kAnonPrivate;
    } else if (e.deleted() || e.name.rfind("/memfd:", 0) == 0) {
      struct stat st {};
      if (::stat(map_files.c_str(), &st) != 0) return errno_error("cannot stat {} ({})", map_files, e.name);
      FileIdentity id{st.st_dev, st.st_ino, static_cast<std::uint64_t>(st.st_size), 0, st.st_mode};
      v.kind = e.shared ? VmaKind::kBlobShared : VmaKind::kBlobPrivate;
      v.blob = add_blob(c, e.name, map_files, id);
    } else {
      OSMO_ASSIGN_OR_RETURN(v.file, stat_identity(map_files));
      v.kind = e.shared ? VmaKind::kFileShared : VmaKind::kFilePrivate;
    }
    if (carries_pages(v.kind)) {
      OSMO_ASSIGN_OR_RETURN(v.pages_carried, scan_pagemap(pagemap.get(), v, &m.runs));
    }
    m.vmas.push_back(std::move(v));
  }
  OSMO_ASSIGN_OR_RETURN(auto vm_flags, vm_flags_later.get());
  for (VmaImage& v : m.vmas)
    if (auto it = vm_flags.find(v.start); it != vm_flags.end()) v.flags = it->second;
  return ok_status();
}

void mem_encode(const ProcessImage& img, Encoder& e) {
  const MemImage& m = img.mem;
  e.u32(static_cast<std::uint32_t>(m.vmas.size()));
  for (const VmaImage& v : m.vmas) {
    e.u64(v.start);
    e.u64(v.end);
    e.u32(v.prot);
    e.u32(v.flags);
    e.u32(static_cast<std::uint32_t>(v.kind));
    e.u64(v.pgoff);
    e.str(v.path);
    encode_identity(e, v.file);
    e.u32(v.blob);
    e.u64(v.pages_carried);
  }
  e.u32(static_cast<std::uint32_t>(m.runs.size()));
  for (const PageRun& r : m.runs) {
    e.u64(r.vaddr);
    e.u64(r.pages);
  }
  e.u32(static_cast<std::uint32_t>(m.blobs.size()));
  for (const BlobImage& b : m.blobs) {
    e.str(b.name);
    e.u64(b.size);
    e.u32(b.seals);
  }
  e.bytes(m.vdso_bytes);
}

Status mem_decode(Decoder& d, ProcessImage& img) {
  MemImage& m = img.mem;
  OSMO_ASSIGN_OR_RETURN(std::uint32_t nv, d.count(64));
  m.vmas.resize(nv);
  std::uint64_t prev_end = 0;
  for (VmaImage& v : m.vmas) {
    OSMO_ASSIGN_OR_RETURN(v.start, d.u64());
    OSMO_ASSIGN_OR_RETURN(v.end, d.u64());
    OSMO_ASSIGN_OR_RETURN(v.prot, d.u32());
    OSMO_ASSIGN_OR_RETURN(v.flags, d.u32());
    OSMO_ASSIGN_OR_RETURN(std::uint32_t kind, d.u32());
    if (kind < 1 || kind > 8) return make_error("image corrupted: mapping kind {}", kind);
    v.kind = static_cast<VmaKind>(kind);
    OSMO_ASSIGN_OR_RETURN(v.pgoff, d.u64());
    OSMO_ASSIGN_OR_RETURN(v.path, d.str());
    OSMO_TRY(decode_identity(d, &v.file));
    OSMO_ASSIGN_OR_RETURN(v.blob, d.u32());
    OSMO_ASSIGN_OR_RETURN(v.pages_carried, d.u64());
    if (v.start >= v.end || v.start % kPageSize != 0 || v.end % kPageSize != 0 || v.start < prev_end)
      return make_error("image corrupted: mapping {:#x}-{:#x} is malformed or out of order", v.start, v.end);
    prev_end = v.end;
  }
  OSMO_ASSIGN_OR_RETURN(std::uint32_t nr, d.count(16));
  m.runs.resize(nr);
  for (PageRun& r : m.runs) {
    OSMO_ASSIGN_OR_RETURN(r.vaddr, d.u64());
    OSMO_ASSIGN_OR_RETURN(r.pages, d.u64());
  }
  OSMO_ASSIGN_OR_RETURN(std::uint32_t nb, d.count(12));
  m.blobs.resize(nb);
  for (BlobImage& b : m.blobs) {
    OSMO_ASSIGN_OR_RETURN(b.name, d.str());
    OSMO_ASSIGN_OR_RETURN(b.size, d.u64());
    OSMO_ASSIGN_OR_RETURN(b.seals, d.u32());
  }
  for (const VmaImage& v : m.vmas)
    if ((v.kind == VmaKind::kBlobPrivate || v.kind == VmaKind::kBlobShared) && v.blob >= nb)
      return make_error("image corrupted: mapping {:#x} names blob {} of {}", v.start, v.blob, nb);
  OSMO_ASSIGN_OR_RETURN(m.vdso_bytes, d.bytes());
  return d.finish();
}

void mem_describe(const ProcessImage& img, nlohmann::json& j) {
  const MemImage& m = img.mem;
  auto& a = j["mappings"];
  a = nlohmann::json::array();
  std::uint64_t carried = 0;
  for (const VmaImage& v : m.vmas) {
    std::string prot = fmt::format("{}{}{}", (v.prot & PROT_READ) ? 'r' : '-', (v.prot & PROT_WRITE) ? 'w' : '-',
                                   (v.prot & PROT_EXEC) ? 'x' : '-');
    nlohmann::json o{{"start", hex(v.start)},       {"end", hex(v.end)},
                     {"size", v.end - v.start},     {"prot", prot},
                     {"kind", vma_kind_name(v.kind)}, {"pages_carried", v.pages_carried}};
    if (!v.path.empty()) o["path"] = v.path;
    if (v.pgoff != 0) o["offset"] = hex(v.pgoff);
    if (v.flags & kVmaGrowsDown) o["growsdown"] = true;
    if (v.flags & ~static_cast<std::uint32_t>(kVmaGrowsDown)) o["vm_flags"] = hex(v.flags);
    if (v.kind == VmaKind::kBlobPrivate || v.kind == VmaKind::kBlobShared) o["blob"] = v.blob;
    carried += v.pages_carried;
    a.push_back(std::move(o));
  }
  j["pages"] = {{"runs", m.runs.size()}, {"present_pages", carried}};
  auto& b = j["blobs"];
  b = nlohmann::json::array();
  for (const BlobImage& bl : m.blobs) b.push_back({{"name", bl.name}, {"size", bl.size}, {"seals", hex(bl.seals)}});
  j["vdso_bytes"] = m.vdso_bytes.size();
}

// ---- dump: streaming ----
Status mem_write_blobs(DumpContext& c, ImageWriter& w) {
  if (c.blob_sources.empty()) return ok_status();
  PageBuffer buf(kBlobChunk);
  if (buf.p == nullptr) return errno_error("cannot allocate the blob buffer");
  for (std::size_t i = 0; i < c.blob_sources.size(); i++) {
    UniqueFd fd(::open(c.blob_sources[i].c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return errno_error("cannot open {} to carry its content", c.blob_sources[i]);
    std::uint64_t size = c.img->mem.blobs[i].size;
    for (std::uint64_t off = 0; off < size;) {
      std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.n, size - off));
      ssize_t r = ::pread(fd.get(), buf.p, want, static_cast<off_t>(off));
      if (r < 0) return errno_error("cannot read {} at {}", c.blob_sources[i], off);
      if (r == 0) return make_error("{} shrank to {} bytes while being read", c.blob_sources[i], off);
      std::uint8_t hdr[12];
      auto idx = static_cast<std::uint32_t>(i);
      std::memcpy(hdr, &idx, 4);
      std::memcpy(hdr + 4, &off, 8);
      OSMO_TRY(w.write_section(SectionType::kBlob, {{hdr, sizeof hdr}, {buf.p, static_cast<std::size_t>(r)}},
                               true));
      off += static_cast<std::uint64_t>(r);
    }
  }
  return ok_status();
}

// ---- restore ----
Status mem_verify_files(const ProcessImage& img, bool verify_inode) {
  for (const VmaImage& v : img.mem.vmas)
    if (v.kind == VmaKind::kFilePrivate || v.kind == VmaKind::kFileShared)
      OSMO_TRY(verify_identity(fmt::format("mapped file (at {:#x})", v.start), v.path, v.file, verify_inode));
  return ok_status();
}

Result<SectionHeader> mem_read_blobs(ImageReader& r, SectionHeader h, const ProcessImage& img,
                                     std::vector<UniqueFd>* blob_fds) {
  for (const BlobImage& b : img.mem.blobs) {
    std::string name = b.name.substr(0, 200);
    if (name.rfind("/memfd:", 0) == 0) name = name.substr(7);
    UniqueFd fd(static_cast<int>(::syscall(SYS_memfd_create, name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING)));
    if (!fd) return errno_error("cannot create a memfd for blob {}", b.name);
    if (::ftruncate(fd.get(), static_cast<off_t>(b.size)) != 0)
      return errno_error("cannot size the memfd for blob {} to {}", b.name, b.size);
    blob_fds->push_back(std::move(fd));
  }
  std::vector<std::uint8_t> payload;
  while (h.type == SectionType::kBlob) {
    OSMO_TRY(r.read_payload(&payload));
    Decoder d(payload.data(), payload.size(), "blob");
    OSMO_ASSIGN_OR_RETURN(std::uint32_t idx, d.u32());
    OSMO_ASSIGN_OR_RETURN(std::uint64_t off, d.u64());
    if (idx >= blob_fds->size() || off + d.remaining() > img.mem.blobs[idx].size)
      return make_error("image corrupted: blob chunk {}@{} out of range", idx, off);
    const std::uint8_t* data = payload.data() + 12;
    std::size_t n = d.remaining();
    while (n > 0) {
      ssize_t w = ::pwrite((*blob_fds)[idx].get(), data, n, static_cast<off_t>(off));
      if (w < 0) return errno_error("cannot write blob {} content", idx);
      data += w;
      off += static_cast<std::uint64_t>(w);
      n -= static_cast<std::size_t>(w);
    }
    OSMO_ASSIGN_OR_RETURN(h, r.next());
  }
  // Seals last: they may forbid the writes that filled the content.
  for (std::size_t i = 0; i < img.mem.blobs.size(); i++)
    if (img.mem.blobs[i].seals != 0 &&
        ::fcntl((*blob_fds)[i].get(), F_ADD_SEALS, static_cast<int>(img.mem.blobs[i].seals)) != 0)
      return errno_error("cannot seal blob {} ({}) with {:#x}", i, img.mem.blobs[i].name, img.mem.blobs[i].seals);
  return h;
}

Status mem_open_files(const ProcessImage& img, const std::vector<UniqueFd>& blob_fds, bool verify_inode,
                      std::vector<UniqueFd>* files, std::vector<int>* vma_fds, int* exe) {
  std::map<std::string, int> by_key;
  vma_fds->assign(img.mem.vmas.size(), -1);
  for (std::size_t i = 0; i < img.mem.vmas.size(); i++) {
    const VmaImage& v = img.mem.vmas[i];
    if (v.kind == VmaKind::kFilePrivate || v.kind == VmaKind::kFileShared) {
      bool rw = v.kind == VmaKind::kFileShared && (v.prot & PROT_WRITE);
      std::string key = (rw ? "w:" : "r:") + v.path;
      auto it = by_key.find(key);
      if (it == by_key.end()) {
        OSMO_TRY(verify_identity(fmt::format("mapped file (at {:#x})", v.start), v.path, v.file, verify_inode));
        UniqueFd fd(::open(v.path.c_str(), (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC));
        if (!fd) return errno_error("cannot open mapped file {}", v.path);
        files->push_back(std::move(fd));
        it = by_key.emplace(key, static_cast<int>(files->size() - 1)).first;
      }
      (*vma_fds)[i] = it->second;
    } else if (v.kind == VmaKind::kBlobPrivate || v.kind == VmaKind::kBlobShared) {
      std::string key = fmt::format("blob:{}", v.blob);
      auto it = by_key.find(key);
      if (it == by_key.end()) {
        UniqueFd fd(::fcntl(blob_fds[v.blob].get(), F_DUPFD_CLOEXEC, 3));
        if (!fd) return errno_error("cannot duplicate blob {}", v.blob);
        files->push_back(std::move(fd));
        it = by_key.emplace(key, static_cast<int>(files->size() - 1)).first;
      }
      (*vma_fds)[i] = it->second;
    }
  }
  *exe = -1;
  const TaskImage& t = img.task;
  // The new process starts as a copy of us, so its exe is already ours; if that is the image's
  // exe too, leave it: the kernel refuses (EBUSY) to replace an exe that is still mapped.
  auto own = stat_identity("/proc/self/exe");
  bool same_as_ours = own.ok() && own->dev == t.exe_id.dev && own->ino == t.exe_id.ino;
  if (!t.exe_path.empty() && t.exe_path.find(" (deleted)") == std::string::npos && !same_as_ours) {
    OSMO_TRY(verify_identity("executable", t.exe_path, t.exe_id, verify_inode));
    UniqueFd fd(::open(t.exe_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return errno_error("cannot open the executable {}", t.exe_path);
    files->push_back(std::move(fd));
    *exe = static_cast<int>(files->size() - 1);
  }
  return ok_status();
}

namespace {

SyscallReq req(long nr, const char* what, std::uint64_t a1 = 0, std::uint64_t a2 = 0, std::uint64_t a3 = 0,
               std::uint64_t a4 = 0, std::uint64_t a5 = 0, std::uint64_t a6 = 0) {
  SyscallReq q;
  q.nr = nr;
  q.what = what;
  q.a[0] = a1;
  q.a[1] = a2;
  q.a[2] = a3;
  q.a[3] = a4;
  q.a[4] = a5;
  q.a[5] = a6;
  return q;
}

bool overlaps(std::uint64_t a0, std::uint64_t a1, std::uint64_t b0, std::uint64_t b1) { return a0 < b1 && b0 < a1; }

}  // namespace

namespace {

// MADV_POPULATE_WRITE requests for the given (sorted) runs: runs close together are merged, never
// across a mapping (populating across mappings could fail), and cut in kPopulatePiece pieces.
std::vector<SyscallReq> populate_requests(const MemImage& m, const std::vector<PageRun>& runs) {
  std::vector<SyscallReq> reqs;
  for (std::size_t i = 0; i < runs.size();) {
    std::uint64_t start = runs[i].vaddr, end = runs[i].vaddr + runs[i].pages * kPageSize;
    std::uint64_t vma_end = end;
    for (const VmaImage& v : m.vmas)
      if (v.start <= start && start < v.end) vma_end = v.end;
    std::size_t j = i + 1;
    while (j < runs.size() && runs[j].vaddr < vma_end && runs[j].vaddr <= end + kPopulateGapPages * kPageSize) {
      end = runs[j].vaddr + runs[j].pages * kPageSize;
      j++;
    }
    for (std::uint64_t a = start; a < end; a += kPopulatePiece)
      reqs.push_back(req(SYS_madvise, "madvise(MADV_POPULATE_WRITE)", a, std::min(kPopulatePiece, end - a),
                         MADV_POPULATE_WRITE));
    i = j;
  }
  return reqs;
}

// Creates a userfaultfd in the new process (its mm is the one the fd acts on), takes it over with
// pidfd_getfd, and registers every anonymous mapping that has pages to fill. A kernel or policy
// that refuses userfaultfd (vm.unprivileged_userfaultfd, seccomp) is not an error: the pages then
// take the process_vm_writev path.
Status open_uffd(RestoreContext& c) {
  Tracee& t = *c.tracee;
  // USER_MODE_ONLY: a kernel access to a registered page that is not filled yet fails (EFAULT)
  // instead of waiting for us; nothing but our UFFDIO_COPY should touch these pages meanwhile.
  // Post-copy is the exception: the process runs before every page is in, and a system call
  // that touches a missing page (a read() into the heap) must wait for it, not fail.
  if (!c.use_uffd) return ok_status();
  const bool lazy = c.lazy != nullptr;
  OSMO_ASSIGN_OR_RETURN(long tfd, t.syscall(SYS_userfaultfd, O_CLOEXEC | (lazy ? O_NONBLOCK : UFFD_USER_MODE_ONLY)));
  if (tfd < 0 && lazy)
    return Error{static_cast<int>(-tfd), fmt::format("post-copy needs a userfaultfd in restored pid {}", c.pid)};
  if (tfd < 0) return ok_status();
  UniqueFd ufd = platform::take_fd(c.pid, static_cast<int>(tfd));
  const int getfd_errno = errno;
  OSMO_TRY(t.syscall_ok("close (userfaultfd)", SYS_close, static_cast<std::uint64_t>(tfd)));
  if (!ufd) {
    errno = getfd_errno;
    return errno_error("cannot take the userfaultfd of restored pid {}", c.pid);
  }
  uffdio_api api{};
  api.api = UFFD_API;
  // Post-copy: what the process does to its memory while pages are missing (a fork, mremap,
  // MADV_DONTNEED, munmap) is reported, so the pages still to come land where they belong
  // (lazy_pages.hpp). None of these happen during the restore itself.
  if (lazy)
    api.features = UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE |
                   UFFD_FEATURE_EVENT_UNMAP;
  if (::ioctl(ufd.get(), UFFDIO_API, &api) != 0) {
    if (lazy) return errno_error("post-copy: the userfaultfd of restored pid {} refuses its API handshake", c.pid);
    return ok_status();
  }
  for (const VmaImage& v : c.img->mem.vmas) {
    if (v.kind != VmaKind::kAnonPrivate || v.pages_carried == 0) continue;
    uffdio_register reg{};
    reg.range = {v.start, v.end - v.start};
    reg.mode = UFFDIO_REGISTER_MODE_MISSING;
    if (::ioctl(ufd.get(), UFFDIO_REGISTER, &reg) != 0)
      return errno_error("cannot register {:#x}-{:#x} of restored pid {} with its userfaultfd", v.start, v.end,
                         c.pid);
    c.uffd_ranges.push_back({v.start, v.end});
  }
  c.uffd = std::move(ufd);
  return ok_status();
}

}  // namespace

std::vector<std::uint64_t> mem_trampoline_candidates(const ProcessImage& img) {
  // The trampoline must not collide with any image mapping, so it goes into a gap of the
  // image's layout (at least a page clear on both sides), lowest first, above 1 MiB.
  std::vector<std::uint64_t> out;
  std::uint64_t prev = 1ull << 20;
  auto consider = [&](std::uint64_t gap_start, std::uint64_t gap_end) {
    if (gap_end > gap_start && gap_end - gap_start >= kTrampSize + 2 * kPageSize && out.size() < 64)
      out.push_back(gap_start + kPageSize);
  };
  for (const VmaImage& v : img.mem.vmas) {
    consider(prev, v.start);
    prev = std::max(prev, v.end);
  }
  consider(prev, 0x7ff000000000ull);
  return out;
}

Status mem_restore_layout(RestoreContext& c) {
  Tracee& t = *c.tracee;
  const MemImage& m = c.img->mem;
  OSMO_ASSIGN_OR_RETURN(std::vector<MapsEntry> own, read_maps(c.pid));
  std::vector<SyscallReq> reqs;
  // 1. Remove everything of the new process except the trampoline and the vdso pieces.
  std::map<std::string, MapsEntry> special;
  for (const MapsEntry& e : own) {
    if (e.name == "[vsyscall]") continue;
    if (e.name == "[vdso]" || e.name == "[vvar]" || e.name == "[vvar_vclock]") {
      special[e.name] = e;
      continue;
    }
    if (overlaps(e.start, e.end, c.tramp, c.tramp + c.tramp_size)) continue;
    reqs.push_back(req(SYS_munmap, "munmap (own mapping)", e.start, e.end - e.start));
  }
  OSMO_TRY(t.syscall_batch(reqs));
  reqs.clear();
  OSMO_TRY(fault("restore.unmap"));

  // 2. The vdso pieces go where the image had them. Same kernel build required: compare bytes.
  std::vector<const VmaImage*> want;
  for (const VmaImage& v : m.vmas)
    if (is_special(v.kind)) want.push_back(&v);
  auto name_of = [](VmaKind k) {
    return k == VmaKind::kVdso ? std::string("[vdso]") : k == VmaKind::kVvar ? std::string("[vvar]") : std::string("[vvar_vclock]");
  };
  for (const VmaImage* v : want) {
    auto it = special.find(name_of(v->kind));
    if (it == special.end())
      return make_error("this kernel has no {} mapping but the image has one", name_of(v->kind));
    if (it->second.end - it->second.start != v->end - v->start)
      return make_error("{} is {} bytes on this kernel, {} in the image (different vdso layout)", name_of(v->kind),
                        it->second.end - it->second.start, v->end - v->start);
  }
  if (auto it = special.find("[vdso]"); it != special.end() && !m.vdso_bytes.empty()) {
    std::vector<std::uint8_t> here(it->second.end - it->second.start);
    OSMO_TRY(t.read_mem(it->second.start, here.data(), here.size()));
    if (here != m.vdso_bytes)
      return make_error("the [vdso] of this kernel differs from the image's (a different kernel build)");
  }
  // Park all pieces in a free area first, so no move collides with a piece not yet moved.
  std::uint64_t total = 0;
  for (auto& [n, e] : special) total += e.end - e.start;
  std::uint64_t park = 0;
  for (std::uint64_t cand = 1ull << 32; cand < (1ull << 46); cand += 1ull << 30) {
    bool ok = !overlaps(cand, cand + total, c.tramp, c.tramp + c.tramp_size);
    for (const VmaImage& v : m.vmas) ok = ok && !overlaps(cand, cand + total, v.start, v.end);
    for (auto& [n, e] : special) ok = ok && !overlaps(cand, cand + total, e.start, e.end);
    if (ok) {
      park = cand;
      break;
    }
  }
  if (park == 0) return make_error("no free address range to move the vdso through");
  std::map<std::string, std::uint64_t> parked;
  std::uint64_t off = 0;
  for (auto& [n, e] : special) {
    std::uint64_t len = e.end - e.start;
    reqs.push_back(req(SYS_mremap, "mremap (park vdso)", e.start, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, park + off));
    parked[n] = park + off;
    off += len;
  }
  for (const VmaImage* v : want) {
    std::string n = name_of(v->kind);
    std::uint64_t len = v->end - v->start;
    reqs.push_back(req(SYS_mremap, "mremap (place vdso)", parked[n], len, len, MREMAP_MAYMOVE | MREMAP_FIXED, v->start));
    parked.erase(n);
  }
  for (auto& [n, addr] : parked)  // pieces the image does not have (the process had unmapped them)
    reqs.push_back(req(SYS_munmap, "munmap (vdso piece)", addr, special[n].end - special[n].start));
  OSMO_TRY(t.syscall_batch(reqs));  // in order: every piece is parked before any is placed
  reqs.clear();
  OSMO_TRY(fault("restore.vdso"));

  // 3. Create every mapping; writable for now where pages will be written.
  std::vector<std::string> what;
  for (std::size_t i = 0; i < m.vmas.size(); i++) {
    const VmaImage& v = m.vmas[i];
    if (is_special(v.kind)) continue;
    std::uint64_t prot = v.prot | (v.pages_carried > 0 ? PROT_WRITE : 0);
    std::uint64_t flags = MAP_FIXED;
    std::int64_t fd = -1;
    switch (v.kind) {
      case VmaKind::kAnonPrivate: flags |= MAP_PRIVATE | MAP_ANONYMOUS; break;
      case VmaKind::kFilePrivate:
      case VmaKind::kBlobPrivate: flags |= MAP_PRIVATE; fd = c.vma_fds[i]; break;
      case VmaKind::kFileShared:
      case VmaKind::kBlobShared: flags |= MAP_SHARED; fd = c.vma_fds[i]; break;
      default: break;
    }
    if (v.flags & kVmaGrowsDown) flags |= MAP_GROWSDOWN;
    if (fd < 0 && (flags & MAP_ANONYMOUS) == 0)
      return make_error("internal: no fd for mapping {:#x} ({})", v.start, v.path);
    what.push_back(fmt::format("mmap of {:#x}-{:#x} ({} {})", v.start, v.end, vma_kind_name(v.kind), v.path));
    reqs.push_back(req(SYS_mmap, "", v.start, v.end - v.start, prot, flags, static_cast<std::uint64_t>(fd), v.pgoff));
  }
  for (std::size_t i = 0; i < reqs.size(); i++) reqs[i].what = what[i].c_str();
  OSMO_ASSIGN_OR_RETURN(auto mapped, t.syscall_batch(reqs));
  for (std::size_t i = 0; i < mapped.size(); i++)
    if (static_cast<std::uint64_t>(mapped[i]) != reqs[i].a[0])
      return make_error("{} landed at {:#x}", what[i], mapped[i]);
  reqs.clear();
  OSMO_TRY(fault("restore.mm"));

  // 4. Anonymous mappings are registered with a userfaultfd of the new process, so that
  //    mem_restore_pages fills them with UFFDIO_COPY: each page is allocated and filled in one
  //    step (no zeroing, no separate populate pass; ~2x faster than populate + copy here).
  OSMO_TRY(open_uffd(c));
  OSMO_TRY(fault("restore.uffd"));

  // 5. The other pages to write (private file and blob mappings, or everything without a
  //    userfaultfd) are pre-faulted in bulk (see the file comment). The process does this itself,
  //    asynchronously, from the top down in 8 MiB pieces, while we stream pages in roughly from the
  //    bottom up (a few sections at a time, one per filler thread) with process_vm_writev: page
  //    allocation dominates a restore here, and this spreads it over the CPUs. Where they meet,
  //    each page is faulted once by whichever comes first.
  std::vector<PageRun> runs;
  for (const PageRun& r : m.runs)
    if (c.uffd_range_at(r.vaddr) == nullptr) runs.push_back(r);
  reqs = populate_requests(m, runs);
  std::reverse(reqs.begin(), reqs.end());
  if (!reqs.empty() && reqs.size() <= kTrampTableEntries) return t.start_batch(reqs);
  OSMO_TRY(t.syscall_batch(reqs));
  return ok_status();
}

Status mem_restore_protect(RestoreContext& c) {
  // Pages that were present but all zero at dump are not in the image; make them present again
  // (as the original had them) before protections may forbid writing.
  std::vector<SyscallReq> reqs = populate_requests(c.img->mem, c.zero_runs);
  for (const VmaImage& v : c.img->mem.vmas) {
    if (is_special(v.kind) || v.pages_carried == 0 || (v.prot & PROT_WRITE)) continue;
    reqs.push_back(req(SYS_mprotect, "mprotect", v.start, v.end - v.start, v.prot));
  }
  static const std::pair<std::uint32_t, int> kAdvice[] = {
      {kVmaHugepage, MADV_HUGEPAGE},   {kVmaNoHugepage, MADV_NOHUGEPAGE}, {kVmaDontFork, MADV_DONTFORK},
      {kVmaDontDump, MADV_DONTDUMP},   {kVmaWipeOnFork, MADV_WIPEONFORK}, {kVmaSeqRead, MADV_SEQUENTIAL},
      {kVmaRandRead, MADV_RANDOM}};
  for (const VmaImage& v : c.img->mem.vmas) {
    if (is_special(v.kind)) continue;
    for (auto& [bit, advice] : kAdvice)
      if (v.flags & bit)
        reqs.push_back(req(SYS_madvise, "madvise (restore VmFlags)", v.start, v.end - v.start,
                           static_cast<std::uint64_t>(advice)));
    if (v.flags & kVmaLocked) reqs.push_back(req(SYS_mlock, "mlock", v.start, v.end - v.start));
  }
  OSMO_TRY(c.tracee->syscall_batch(reqs));
  return ok_status();
}

}  // namespace osmo::ckpt
