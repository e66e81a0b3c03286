// SPDX-License-Identifier: GPL-2.0-or-later
// The in-memory model of a checkpointed process: everything the image carries except page and
// blob contents, which are streamed. Each kind file (mem.cpp, regs.cpp, ...) fills its part at
// dump, encodes/decodes its own section, and applies it at restore.
#pragma once

#include <sys/types.h>
#include <sys/user.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace osmo::ckpt {

// Identity of a file the image refers to by path; verified at restore so a changed file is
// refused instead of silently mapped.
struct FileIdentity {
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::uint32_t mode = 0;
};

// ---- task (misc.cpp) ----
struct TaskImage {
  std::int32_t pid = 0;  // in the process's own (innermost) pid namespace
  std::string comm;
  std::string exe_path;
  FileIdentity exe_id;
  std::string cwd;
  std::uint32_t umask = 022;
  std::uint32_t personality = 0;
  std::array<std::uint32_t, 3> uid{}, gid{};  // real, effective, saved
  std::vector<std::uint32_t> groups;
  std::vector<std::array<std::uint64_t, 2>> rlimits;  // RLIM_NLIMITS entries {cur, max}
  // CLOCK_MONOTONIC / CLOCK_BOOTTIME as the process saw them at dump (ns), for the time namespace.
  std::int64_t monotonic_ns = 0;
  std::int64_t boottime_ns = 0;
  // prctl settings, read by injected PR_GET_* calls.
  std::uint32_t no_new_privs = 0, dumpable = 1, child_subreaper = 0, thp_disable = 0;
  std::uint32_t mce_kill = 2;  // PR_MCE_KILL_DEFAULT
  std::uint64_t timer_slack_ns = 50000;
  // Session and process group in the process's own pid namespace; 0 when their leader's pid is
  // not visible there (then the restored process keeps the restorer's, invisible, as before).
  std::int32_t sid = 0, pgid = 0;
  // Capability sets (bit N = capability N) and securebits (PR_GET_SECUREBITS).
  std::uint64_t cap_inh = 0, cap_prm = 0, cap_eff = 0, cap_bnd = 0, cap_amb = 0;
  std::uint32_t securebits = 0;
};

// ---- mm fields (mm.cpp) ----
struct MmImage {
  std::uint64_t start_code = 0, end_code = 0, start_data = 0, end_data = 0;
  std::uint64_t start_brk = 0, brk = 0, start_stack = 0;
  std::uint64_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
  std::vector<std::uint64_t> auxv;
};

// ---- mappings (mem.cpp) ----
enum class VmaKind : std::uint32_t {
  kAnonPrivate = 1,  // heap, stack, anonymous mmap: pages carried
  kFilePrivate = 2,  // private file mapping: the file by path, plus pages written since (anon)
  kFileShared = 3,   // shared file mapping: the file by path, no pages (they live in the file)
  kBlobPrivate = 4,  // private mapping of a carried blob (deleted file, memfd)
  kBlobShared = 5,   // shared mapping of a carried blob (memfd, deleted file, shared anonymous)
  kVdso = 6,         // [vdso]
  kVvar = 7,         // [vvar]
  kVvarVclock = 8,   // [vvar_vclock]
};

// From /proc/PID/smaps VmFlags; restored with MAP_GROWSDOWN, madvise() and mlock().
enum VmaFlags : std::uint32_t {
  kVmaGrowsDown = 1u << 0,    // gd
  kVmaHugepage = 1u << 1,     // hg  MADV_HUGEPAGE
  kVmaNoHugepage = 1u << 2,   // nh  MADV_NOHUGEPAGE
  kVmaDontFork = 1u << 3,     // dc  MADV_DONTFORK
  kVmaDontDump = 1u << 4,     // dd  MADV_DONTDUMP
  kVmaWipeOnFork = 1u << 5,   // wf  MADV_WIPEONFORK
  kVmaSeqRead = 1u << 6,      // sr  MADV_SEQUENTIAL
  kVmaRandRead = 1u << 7,     // rr  MADV_RANDOM
  kVmaLocked = 1u << 8,       // lo  mlock
};

struct VmaImage {
  std::uint64_t start = 0, end = 0;
  std::uint32_t prot = 0;  // PROT_*
  std::uint32_t flags = 0;  // VmaFlags
  VmaKind kind = VmaKind::kAnonPrivate;
  std::uint64_t pgoff = 0;  // file offset in bytes
  std::string path;         // file path, or the maps name ([heap], [stack], ...)
  FileIdentity file;        // for kFile*
  std::uint32_t blob = 0;   // for kBlob*: index into MemImage::blobs
  std::uint64_t pages_carried = 0;
};

struct PageRun {
  std::uint64_t vaddr = 0;
  std::uint64_t pages = 0;
};

// A file whose content travels in the image (memfd, deleted file, shared anonymous memory).
struct BlobImage {
  std::string name;  // memfd name or former path, for humans and memfd_create
  std::uint64_t size = 0;
  std::uint32_t seals = 0;  // memfd F_SEAL_* (F_GET_SEALS)
};

struct MemImage {
  std::vector<VmaImage> vmas;
  std::vector<PageRun> runs;    // pages present at dump (populate plan), sorted by address
  std::vector<BlobImage> blobs;
  std::vector<std::uint8_t> vdso_bytes;  // contents of [vdso], compared at restore
  std::uint64_t pages_written = 0;       // non-zero pages in PAGES sections
};

// ---- registers (regs.cpp) ----
struct RegsImage {
  user_regs_struct gp{};
  std::vector<std::uint8_t> xstate;  // PTRACE_GETREGSET(NT_X86_XSTATE)
  std::uint64_t xcr0 = 0;            // enabled xsave features of the CPU that made the image
};

// ---- signals (signals.cpp) ----
struct SigactionImage {
  std::uint64_t handler = 0, flags = 0, restorer = 0, mask = 0;
};
struct SiginfoImage {
  std::array<std::uint8_t, 128> bytes{};
  bool shared = false;  // process-wide pending queue, else the thread's
};
struct SignalsImage {
  std::array<SigactionImage, 64> actions{};  // index = signo - 1
  std::uint64_t blocked = 0;
  std::vector<SiginfoImage> pending;
  std::uint64_t altstack_sp = 0, altstack_size = 0;
  std::uint32_t altstack_flags = 0;
};

// ---- fds (fds.cpp) ----
enum class FdKind : std::uint32_t {
  kRegular = 1,
  kDirectory = 2,
  kDevice = 3,   // /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom: reopened by path
  kBlob = 4,     // memfd or deleted file: content carried (MemImage::blobs)
  kPipe = 5,     // needs a stand-in at restore
  kTty = 6,      // needs a stand-in at restore
  kSocket = 7,   // needs a stand-in at restore (dump refuses unless allowed)
  kDup = 8,      // shares the open file description of another fd (dup_of)
  kPipeInternal = 9,  // one end of a pipe whose both ends the process (or its tree) holds: recreated, data carried
  kShared = 10,       // shares the open file description of fd dup_of of another process of the tree
                      // (share_pid): a shell's fds inherited by its children, with one offset
};
const char* fd_kind_name(FdKind k);

struct FdImage {
  std::int32_t fd = -1;
  FdKind kind = FdKind::kRegular;
  std::string path;  // readlink of /proc/PID/fd/N
  FileIdentity file;
  std::uint32_t flags = 0;  // open flags (O_ACCMODE, O_APPEND, O_NONBLOCK, ...), without O_CLOEXEC
  bool cloexec = false;
  std::uint64_t pos = 0;
  std::uint32_t blob = 0;    // kBlob
  std::int32_t dup_of = -1;  // kDup
  std::uint64_t pipe_id = 0;         // kPipeInternal: the pipe's inode (pairs the two ends)
  std::vector<std::uint8_t> data;    // kPipeInternal read end: bytes buffered in the pipe
  std::uint32_t pipe_size = 0;       // kPipeInternal: capacity (F_GETPIPE_SZ)
  std::int32_t share_pid = 0;        // kShared: the process (image pid) holding the description first
};

// ---- timers (timers.cpp) ----
struct TimersImage {
  // ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF: {interval_us, value_us}
  std::array<std::array<std::int64_t, 2>, 3> itimers{};
};

// ---- rseq / futex (thread_misc.cpp) ----
struct ThreadMiscImage {
  std::uint64_t rseq_addr = 0;
  std::uint32_t rseq_len = 0;
  std::uint32_t rseq_sig = 0;
  std::uint64_t robust_list = 0, robust_len = 0;
  std::uint64_t clear_tid = 0;
};

// ---- controlling terminal (terminal.cpp) ----
// The pseudo-terminal a session leader has as its controlling terminal: what a new pty pair must
// be given at restore for the session to find its terminal as it was. Carried by the leader's
// image only (a terminal belongs to one session); fds of any process of the tree that are open on
// the same /dev/pts/N are given the new pty's slave.
struct TerminalImage {
  bool present = false;
  std::int32_t index = -1;  // /dev/pts/<index> at dump (fds with that path are this terminal)
  // termios as tcgetattr(3) returns it (c_cc: NCCS bytes).
  std::uint32_t iflag = 0, oflag = 0, cflag = 0, lflag = 0;
  std::uint8_t line = 0;
  std::vector<std::uint8_t> cc;
  std::uint32_t ispeed = 0, ospeed = 0;
  std::uint16_t rows = 0, cols = 0, xpixel = 0, ypixel = 0;
  // The foreground process group, in the process's own pid namespace (0: the leader's own).
  std::int32_t fg_pgrp = 0;
  std::uint32_t exclusive = 0;  // TIOCEXCL
  std::uint32_t uid = 0, gid = 0, mode = 0;  // owner and permission bits of the slave
};

// ---- process tree (tree.cpp) ----
// One process of a checkpointed tree. Pids are in the tree's own (innermost) pid namespace.
struct TreeProcess {
  std::int32_t pid = 0;
  std::int32_t ppid = 0;   // 0: not in the tree (the restore's init becomes its parent)
  std::int32_t sid = 0, pgid = 0;  // 0: leader not visible in the namespace
  bool zombie = false;     // exited, not yet reaped by its parent: no process image follows
  std::int32_t exit_status = 0;  // zombie: its wait status as waitpid(2) reports it
};
struct TreeImage {
  // procs[0] is the main process (the root; the job's first process): its exit status is the
  // restore's. Parents come before their children. Live processes have a ProcessImage each, in
  // this order.
  std::vector<TreeProcess> procs;
};

struct ProcessImage {
  TaskImage task;
  MmImage mm;
  MemImage mem;
  RegsImage regs;
  SignalsImage sig;
  std::vector<FdImage> fds;
  TimersImage timers;
  ThreadMiscImage thread;
  TerminalImage terminal;
};

}  // namespace osmo::ckpt
