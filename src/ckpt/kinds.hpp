// SPDX-License-Identifier: GPL-2.0-or-later
// The kinds of state the engine carries, one source file each, behind a small operations table.
// dump.cpp and restore.cpp only sequence these functions; they hold no kind-specific logic.
//
//   kind            file              section
//   task/misc       misc.cpp          kTask      (creds, capabilities, cwd, umask, rlimits,
//                                                personality, clocks, session/process group)
//   mm fields       mm.cpp            kMm
//   memory          mem.cpp           kVmas (+ kBlob, kPages streamed after the metadata)
//   registers       regs.cpp          kRegs
//   signals         signals.cpp       kSignals
//   fds             fds.cpp           kFds
//   timers          timers.cpp        kTimers
//   rseq/futex/tid  thread_misc.cpp   kThreadMisc
//   clocks          timens.cpp        (in kTask; the restored process's time namespace)
//   terminal        terminal.cpp      kTerminal  (a session leader's controlling pty)
//   process tree    tree.cpp          kTree, kProcess, kProcessPages (tree images only; shared
//                                     fds and pipes between processes: fds.cpp)
//
// What runs inside the processes a restore builds (init, placeholders, the new process before
// it is seized) lives apart in restorer/ (CRIU's pie/); restore.cpp only drives it.
#pragma once

#include <sys/types.h>

#include <array>
#include <algorithm>
#include <csignal>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "ckpt/ckpt.hpp"
#include "ckpt/image.hpp"
#include "ckpt/model.hpp"
#include "ckpt/proc.hpp"
#include "ckpt/ptrace.hpp"

namespace osmo::ckpt {

inline constexpr std::uint64_t kPageSize = 4096;

// What the dump side knows while it holds the process.
struct DumpContext {
  pid_t pid = -1;  // in the caller's pid namespace
  const CheckpointOptions* options = nullptr;
  Tracee* tracee = nullptr;
  std::uint64_t scratch = 0;  // our code page mapped in the process for injected syscalls
  std::uint64_t scratch_data() const { return scratch + 0x80; }  // kTrampDataOffset
  ProcStatus status;
  std::vector<MapsEntry> maps;  // read after the process was stopped
  std::vector<siginfo_t> stolen;  // signals taken off the thread while stopping it
  std::uint64_t original_sigmask = 0;  // before we blocked everything for injection
  user_regs_struct original_regs{};    // at the interrupt stop, before any injection
  std::vector<std::uint8_t> original_xstate;
  // SIGTRAP's disposition {handler, flags, restorer, mask}, read before our first int3 (which
  // may reset it, see ptrace.hpp) and put back by the release.
  std::array<std::uint64_t, 4> sigtrap_action{};
  bool sigtrap_saved = false;
  // Where each blob's content is read from (/proc/PID/fd/N or /proc/PID/map_files/A-B), and the
  // file identity -> blob index, so one memfd mapped and open is carried once.
  std::vector<std::string> blob_sources;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> blob_ids;  // {dev, ino}
  ProcessImage* img = nullptr;
};

// What the restore side knows while it builds the process.
struct RestoreContext {
  Tracee* tracee = nullptr;
  pid_t pid = -1;  // in the caller's pid namespace
  ProcessImage* img = nullptr;
  std::uint64_t tramp = 0;       // trampoline: `syscall; int3` then a data area
  std::uint64_t tramp_size = 0;
  std::uint64_t data = 0;        // tramp + kTrampDataOffset: scratch for syscall arguments
  std::vector<int> vma_fds;      // per image VMA: fd (in the new process) backing it, or -1
  int exe_fd = -1;               // the executable, opened in the new process
  int helper_fd_base = 0;        // every fd >= this in the new process is ours: closed at the end
  std::uint64_t pages_written = 0;
  // Anonymous memory is filled through a userfaultfd of the new process (UFFDIO_COPY allocates
  // and fills each page in one step, without zeroing it first; see mem.cpp). Invalid when the
  // kernel refused one (or use_uffd is off): every page then goes through process_vm_writev.
  bool use_uffd = true;
  UniqueFd uffd;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> uffd_ranges;  // registered [start, end), sorted
  // The registered range holding addr, or nullptr; with next_start, also where the next range
  // above addr begins (UINT64_MAX if none), which bounds a piece that is not registered.
  const std::pair<std::uint64_t, std::uint64_t>* uffd_range_at(std::uint64_t addr,
                                                               std::uint64_t* next_start = nullptr) const {
    auto it = std::upper_bound(uffd_ranges.begin(), uffd_ranges.end(), addr,
                               [](std::uint64_t a, const auto& r) { return a < r.first; });
    if (next_start != nullptr) *next_start = it == uffd_ranges.end() ? UINT64_MAX : it->first;
    return it != uffd_ranges.begin() && addr < std::prev(it)->second ? &*std::prev(it) : nullptr;
  }
  std::vector<PageRun> zero_runs;  // present at dump but all zero (not in the image): populated last
  // Post-copy (RestoreOptions::lazy_anonymous_pages): the lazy pages stay missing and the
  // userfaultfd goes here instead of being closed (page_stream.cpp).
  LazyPages* lazy = nullptr;
  // Pre-copy (RestoreOptions::page_store): pages the image leaves out come from here.
  const PageStore* page_store = nullptr;
};
// Layout of our code page in the process (dump: "scratch", restore: "trampoline"):
//   0x0000 injected_code() (gate + batch executor)   0x0080 data for single syscalls
//   0x0800 dump: 64 sigaction results                 0x1000 batch table (192 entries)
inline constexpr std::uint64_t kTrampSize = 4 * kPageSize;
inline constexpr std::uint64_t kTrampDataOffset = 0x80;
inline constexpr std::uint64_t kTrampSigOffset = 0x800;
inline constexpr std::uint64_t kTrampTableOffset = 0x1000;
inline constexpr std::size_t kTrampTableEntries = (kTrampSize - kTrampTableOffset) / 64;

struct KindOps {
  const char* name;
  SectionType section;
  Status (*dump)(DumpContext&);
  void (*encode)(const ProcessImage&, Encoder&);
  Status (*decode)(Decoder&, ProcessImage&);
  void (*describe)(const ProcessImage&, nlohmann::json&);
};
// In dump order (the order sections appear in the image).
const std::vector<KindOps>& kinds();

// A `syscall` instruction (0f 05) in an executable mapping of the stopped process ([vdso] first):
// the gate for injected system calls (dump.cpp).
class Tracee;
Result<std::uint64_t> find_syscall_insn(Tracee& t, const std::vector<MapsEntry>& maps);

// Preflight: reads /proc only; returns a refusal reason before anything is touched.
Status task_preflight(pid_t pid, const ProcStatus& st);
Status mem_preflight(pid_t pid, const std::vector<MapsEntry>& maps);
Status fds_preflight(pid_t pid, const CheckpointOptions& options);

// ---- per kind (see each file) ----
Status task_dump(DumpContext&);
void task_encode(const ProcessImage&, Encoder&);
Status task_decode(Decoder&, ProcessImage&);
void task_describe(const ProcessImage&, nlohmann::json&);
Status task_child_prepare(const ProcessImage&);  // runs in the new process, before it parks
Status task_restore_limits(RestoreContext&);     // prlimit from outside
Status task_restore_creds(RestoreContext&);      // injected: creds, capabilities, securebits, prctl
// In the caller, before any process exists: refuses an image holding capabilities we lack.
Status task_check_restorable(const ProcessImage&);

Status mm_dump(DumpContext&);
void mm_encode(const ProcessImage&, Encoder&);
Status mm_decode(Decoder&, ProcessImage&);
void mm_describe(const ProcessImage&, nlohmann::json&);
Status mm_restore(RestoreContext&);  // one PR_SET_MM_MAP

Status mem_dump(DumpContext&);
void mem_encode(const ProcessImage&, Encoder&);
Status mem_decode(Decoder&, ProcessImage&);
void mem_describe(const ProcessImage&, nlohmann::json&);
Status mem_write_blobs(DumpContext&, ImageWriter&);
Status mem_write_pages(DumpContext&, ImageWriter&, CheckpointStats*);
Status mem_verify_files(const ProcessImage&, bool verify_inode);
// Reads the BLOB sections following the metadata into memfds of the caller; `first` is the
// section header already read. Returns the header of the first non-blob section.
Result<SectionHeader> mem_read_blobs(ImageReader&, SectionHeader first, const ProcessImage&,
                                     std::vector<UniqueFd>* blob_fds);
// Opens (in the caller) the files the mappings need and the exe; verifies their identity.
// vma_fds[i] is an index into *files or -1; *exe is an index or -1.
Status mem_open_files(const ProcessImage&, const std::vector<UniqueFd>& blob_fds, bool verify_inode,
                      std::vector<UniqueFd>* files, std::vector<int>* vma_fds, int* exe);
// Addresses (best first) where the restore's trampoline fits in a gap of the image's layout.
std::vector<std::uint64_t> mem_trampoline_candidates(const ProcessImage&);
Status mem_restore_layout(RestoreContext&);
Result<SectionHeader> mem_restore_pages(RestoreContext&, ImageReader&, SectionHeader first);
Status mem_restore_protect(RestoreContext&);

Status regs_dump(DumpContext&);
void regs_encode(const ProcessImage&, Encoder&);
Status regs_decode(Decoder&, ProcessImage&);
void regs_describe(const ProcessImage&, nlohmann::json&);
Status regs_check_cpu(const ProcessImage&);
Status regs_check_xstate(RestoreContext&);  // the new process's xsave area is the image's size
std::uint64_t read_xcr0();

Status sig_dump(DumpContext&);
void sig_encode(const ProcessImage&, Encoder&);
Status sig_decode(Decoder&, ProcessImage&);
void sig_describe(const ProcessImage&, nlohmann::json&);
Status sig_child_prepare(const ProcessImage&);  // dispositions + sigaltstack, in the new process
Status sig_restore_pending(RestoreContext&);
// SIGTRAP's disposition, which our int3s may have reset: read before the first int3 / set again
// after the last one, through syscall stops (dump: the scratch page's `syscall`, restore: the
// trampoline's).
Status sig_save_sigtrap(DumpContext&);
Status sig_put_back_sigtrap(Tracee&, std::uint64_t scratch_data, const std::array<std::uint64_t, 4>& action);
Status sig_restore_sigtrap(RestoreContext&);
// PTRACE_PEEKSIGINFO of the thread's (shared = false) or the process's pending queue, appended.
Status sig_peek_pending(pid_t pid, bool shared, std::vector<SiginfoImage>* out);

Status fds_dump(DumpContext&);
void fds_encode(const ProcessImage&, Encoder&);
Status fds_decode(Decoder&, ProcessImage&);
void fds_describe(const ProcessImage&, nlohmann::json&);
// An fd plan computed by the caller before the new process exists: for each recorded fd, where
// its file comes from. `sources` are fds of the caller that the new process inherits.
struct FdPlanEntry {
  int target = -1;
  enum class How { kInherit, kOpen, kDup } how = How::kOpen;
  int source = -1;  // kInherit: fd of the caller; kDup: target fd to duplicate
  bool cloexec = false;
  std::string path;  // kOpen
  std::uint32_t flags = 0;
  std::uint64_t pos = 0;
  bool seek = false;
};
// What the fd plans of a tree's processes share: the pipes created so far (pipe id -> {read,
// write} fds of the caller, and whether their bytes went in), and the caller's fd behind each
// (image pid, fd), so that a kShared fd gets the very open file description of its owner.
struct FdTreeState {
  std::map<std::uint64_t, std::pair<int, int>> pipes;
  std::set<std::uint64_t> filled;
  std::map<std::pair<std::int32_t, std::int32_t>, int> described;
};
// The resolver's finish() is the caller's to call, once, with every recorded fd (of every process).
Result<std::vector<FdPlanEntry>> fds_plan(const ProcessImage&, FdResolver&, bool verify_inode,
                                          const std::vector<UniqueFd>& blob_fds,
                                          std::vector<UniqueFd>* owned, FdTreeState* tree);
// At a tree dump, once every process is collected: an fd that shares the open file description
// of an fd of an earlier process becomes kShared; a pipe whose read and write ends are both in
// the tree becomes kPipeInternal, with its buffered bytes. {host pid, image} in tree order.
// read_bytes: also read the bytes buffered in pipes between processes (the dump; preflight
// only needs to know which pipes they are).
Status fds_link_tree(const std::vector<std::pair<pid_t, ProcessImage*>>& procs, bool read_bytes);
// For preflight: the fds of a tree's live processes (host pids, with their image pids) that a
// restore would need a stand-in for above fd 2, once pipes between the processes are known
// ("fd 5 (pipe pipe:[1], write-only) of process 12"). /proc and kcmp only.
Result<std::vector<std::string>> tree_stand_ins_beyond_stdio(const std::vector<pid_t>& hosts,
                                                              const std::vector<std::int32_t>& image_pids,
                                                              const CheckpointOptions& options);
// In the new process: installs the plan. `keep` lists fds that must survive (moved above the
// targets; updated in place). Returns the first fd above every target.
Result<int> fds_child_install(const std::vector<FdPlanEntry>& plan, std::vector<int*> keep);

Status timers_dump(DumpContext&);
void timers_encode(const ProcessImage&, Encoder&);
Status timers_decode(Decoder&, ProcessImage&);
void timers_describe(const ProcessImage&, nlohmann::json&);
Status timers_restore(RestoreContext&);  // at the very end of the restore (timers.cpp)

Status thread_dump(DumpContext&);
void thread_encode(const ProcessImage&, Encoder&);
Status thread_decode(Decoder&, ProcessImage&);
void thread_describe(const ProcessImage&, nlohmann::json&);
Status thread_restore(RestoreContext&);
// The rseq area glibc registered in the new process (a clone of the restorer) goes before the
// memory it points into.
Status thread_unregister_inherited_rseq(RestoreContext&);

Status terminal_dump(DumpContext&);
void terminal_encode(const ProcessImage&, Encoder&);
Status terminal_decode(Decoder&, ProcessImage&);
void terminal_describe(const ProcessImage&, nlohmann::json&);
// In the caller, before any process exists: gives the fresh pty's slave (`slave`, from the
// FdResolver) the image's settings, window size, owner and mode.
Status terminal_apply(int slave, const TerminalImage&);
// Injected into the session leader once every process of the tree exists: the image's
// foreground process group (`fd`: the slave, as the leader now numbers it).
Status terminal_restore_foreground(RestoreContext&, int fd);

// Clocks and the time namespace (timens.cpp).
// CLOCK_MONOTONIC and CLOCK_BOOTTIME as pid sees them (its time namespace's offsets included).
void timens_read_clocks(pid_t pid, std::int64_t* monotonic_ns, std::int64_t* boottime_ns);
// The /proc/self/timens_offsets text that makes both clocks continue from the image's values.
std::string timens_offsets_for(const ProcessImage&);
// In init: a new time namespace (for its children) with these offsets.
Status timens_enter(const std::string& offsets);

// Session and process group of the restored process (session.cpp): which placeholder
// processes (pid = the leader's pid) recreate them in the new pid namespace, and what the
// process itself calls. Pure: from the image's pid, sid and pgid.
struct SessionPlan {
  bool init_setsid = false;       // sid == 1: our init (pid 1) becomes the session leader
  pid_t session_placeholder = 0;  // > 0: a placeholder with this pid calls setsid()
  pid_t group_placeholder = 0;    // > 0: a placeholder with this pid calls setpgid(0, 0)
  bool target_setsid = false;     // the process led its session: it calls setsid() itself
  bool target_setpgid = false;    // the process led its group: it calls setpgid(0, 0) itself
};
Result<SessionPlan> plan_session(pid_t pid, pid_t sid, pid_t pgid);

// Process trees (tree.cpp).
Status tree_preflight(pid_t root, const CheckpointOptions& options);
void tree_encode(const TreeImage&, Encoder&);
Status tree_decode(Decoder&, TreeImage&);
void tree_describe(const TreeImage&, nlohmann::json&);

// Helpers shared by kinds.
std::uint32_t add_blob(DumpContext& c, const std::string& name, const std::string& source,
                       const FileIdentity& id);
Result<FileIdentity> stat_identity(const std::string& path);
Status verify_identity(const std::string& what, const std::string& path, const FileIdentity& want,
                       bool verify_inode);
void encode_identity(Encoder& e, const FileIdentity& f);
Status decode_identity(Decoder& d, FileIdentity* f);
std::string hex(std::uint64_t v);

}  // namespace osmo::ckpt
