// SPDX-License-Identifier: GPL-2.0-or-later
// osmo's checkpoint/restore engine: the public API (the library osmo_ckpt).
//
//   checkpoint(pid, out_fd, options)  -> writes an image stream of a running process
//   restore(in_fd, options)           -> builds a new process from an image stream
//   show_image(in_fd)                 -> decodes an image for humans / JSON
// and the building blocks of a migration's transaction:
//   preflight(pid, options)           -> checkpoint()'s refusals alone, /proc only
//   checkpoint_and_hold(...)          -> the image is written, the original kept stopped
//                                        (HeldProcess: resume() or kill())
//   restore_held(in_fd, options)      -> restored but not yet running (PendingRestore: commit()
//                                        or abort())
//
// Scope: single-threaded x86_64 processes. Whatever the engine cannot carry is refused with a
// precise message before the process is disturbed (docs/engine.md lists the supported state).
// Fds that cannot travel (pipes, ttys, sockets) are recorded with their identity at dump; at
// restore an FdResolver supplies a stand-in fd for each of them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "ckpt/model.hpp"

namespace osmo::ckpt {

class ImageSink;    // image.hpp
class ImageSource;
struct LazyPages;   // lazy_pages.hpp

// ---- pre-copy ----
// What a pre-copy receiver already holds of one process (CheckpointOptions::precopied).
struct PrecopiedPages {
  std::vector<PageRun> held;   // every page it holds a copy of (sorted, coalesced)
  std::vector<PageRun> clean;  // of those, the ones unchanged since the copy (sorted, coalesced)
};

// Pages a restore takes from elsewhere than the image (RestoreOptions::page_store): a pre-copy
// target's copies of the pages the image leaves out, by the pid the image records.
class PageStore {
 public:
  virtual ~PageStore() = default;
  // The pages held for process image_pid (sorted, coalesced).
  virtual std::vector<PageRun> runs(std::int32_t image_pid) const = 0;
  // The 4096 bytes held for the page at addr (one of runs()).
  virtual const std::uint8_t* page(std::int32_t image_pid, std::uint64_t addr) const = 0;
};

// ---- checkpoint ----
enum class AfterDump {
  kResume,  // the original continues (default)
  kKill,    // the original is killed once a complete image has been written (migration)
};

// What a checkpoint takes: one process, or a whole process tree as one unit (docs/engine.md,
// "Process trees"). A tree image is restored as a tree: parents clone their children, pipes
// between the processes are recreated with their bytes, zombies stay zombies of their parents.
enum class TreeScope {
  kProcess,    // the process alone (its children, if any, are not in the image)
  kTree,       // the process and all its descendants
  kNamespace,  // every process of the process's PID namespace except that namespace's PID 1
               // (a job of `osmo run`: pid is the job's first process, a child of the job's init)
};

struct CheckpointOptions {
  AfterDump after = AfterDump::kResume;
  TreeScope scope = TreeScope::kProcess;
  bool compress = false;  // LZ4 on page and blob sections
  // Which non-portable fd kinds are accepted at dump (recorded for a stand-in at restore).
  // Pipes and ttys by default; sockets only when the caller will supply stand-ins for them.
  bool accept_pipes = true;
  bool accept_ttys = true;
  bool accept_sockets = false;
  // Refuse, before the process is touched, a process whose restore would need a stand-in for an
  // fd other than 0-2 (a pipe to another process, a tty, a socket), which a plain restore
  // (InheritStdioResolver) cannot give: the refusal names every such fd. `osmo checkpoint --kill`
  // sets it (unless --stand-ins-ok), so that a checkpoint that kills only succeeds for an image
  // that `osmo restore` alone can bring back. Checked again once the process is stopped, in case
  // it opened such an fd in between (it is then released unchanged).
  bool refuse_stand_ins_beyond_stdio = false;
  // The restore will give the session's pseudo-terminal a new pty (FdResolver::resolve_terminal;
  // a migration's target does): fds open on /dev/pts/N (a shell's fd 255, `/dev/tty` reopened)
  // need no stand-in then, whatever their number.
  bool terminals_travel = false;
  // Once the process is stopped, fsync every regular file it has open for writing, before the
  // image is written: a migration's target reopens those files by path (on a shared file system,
  // from another machine), and must find everything the process wrote up to the freeze.
  bool sync_written_files = false;
  // Where the image goes instead of out_fd (which is then ignored; pass -1): e.g. a migration's
  // sealing sink, which seals chunks straight from the engine's buffers onto the socket. A
  // failing sink fails the checkpoint at once (the process is resumed, or not held).
  ImageSink* sink = nullptr;
  // Post-copy: leave the lazy pages (lazy_pages.hpp: the anonymous memory but for what the
  // kernel touches during a restore) out of the image. The holder of the original sends them
  // afterwards (lazy_read_held); CheckpointStats::lazy_runs lists them.
  bool lazy_anonymous_pages = false;
  // Pre-copy (docs/migration.md): asked once per process, while it is stopped and before its
  // pages are written, with its pid (the caller's view); the pages the answer calls clean are
  // left out of the image (the receiver holds them), and every page the receiver holds a copy
  // of is carried even when it is all zero now (so a stale copy is never used). Unset, or an
  // empty answer: every page is carried as usual. An error fails the checkpoint.
  std::function<Result<PrecopiedPages>(pid_t pid)> precopied;
};

struct CheckpointStats {
  std::uint64_t pages_scanned = 0;   // pages present in the populate plan
  std::uint64_t pages_written = 0;   // non-zero pages carried
  std::uint64_t image_bytes = 0;
  double freeze_ms = 0;              // seize .. resume/kill
  double total_ms = 0;
  std::vector<FdImage> stand_ins;    // the recorded fds a restore must give stand-ins for
  std::vector<PageRun> lazy_runs;    // lazy_anonymous_pages: the pages left out (sorted)
  std::int32_t image_pid = 0;        // the pid the image records (names the process in a post-copy)
  std::uint64_t pages_precopied = 0; // precopied: pages left out because the receiver holds them
};

// The process is untouched when a refusal is returned. On any later failure it is resumed
// (never left stopped or traced) and the image is incomplete (no END section). Errors read
// "cannot checkpoint pid N: <reason>". out_fd may be a file, a pipe or a blocking stream socket
// (short writes are resumed; a socket is written with MSG_NOSIGNAL, so a peer that goes away is
// an error, not a SIGPIPE); nothing is written after END.
Status checkpoint(pid_t pid, int out_fd, const CheckpointOptions& options,
                  CheckpointStats* stats = nullptr);

// The refusal checks of checkpoint() alone: reads /proc only (and kcmp, to tell duplicate fds),
// never ptrace, cheap (used by `osmo migrate --check` and the `movable`/`why_not` columns of
// `osmo ps`). The error is the bare reason ("it has 2 threads (only single-threaded processes
// are supported)"); checkpoint() reports the same reason as "cannot checkpoint pid N: <reason>".
// A process that passes can still be refused by checkpoint() if it changes in between (a new
// thread, a new fd): checkpoint() checks again once it is stopped.
// With options.scope a tree, every process of the tree is checked and a refusal names the
// process ("process 12 (worker): it has 2 threads ...").
Status preflight(pid_t pid, const CheckpointOptions& options);

// checkpoint() that keeps the original seized and stopped after END is written, exactly as it
// was when seized (nothing of ours left in it), until the holder decides. Move-only. A thread of
// its own holds it (ptrace binds a tracee to one thread), so resume()/kill() may be called from
// any thread; if the whole calling process dies, the kernel detaches the original and it
// continues as if resumed. While held, the original is in a ptrace stop (state 't').
class HeldProcess {
 public:
  HeldProcess(HeldProcess&&) noexcept;
  HeldProcess& operator=(HeldProcess&&) noexcept;  // resumes what this one held first
  HeldProcess(const HeldProcess&) = delete;
  HeldProcess& operator=(const HeldProcess&) = delete;
  ~HeldProcess();  // resume() if neither was called

  pid_t pid() const;
  // Every process held (the main one first); one for a single-process checkpoint.
  std::vector<pid_t> pids() const;
  // The original continues exactly as if never checkpointed (as kResume): registers, mask and
  // signals that arrived meanwhile are delivered. Once only; an error if already released.
  Status resume();
  // SIGKILL while still stopped: it never runs another instruction. The caller's pid namespace
  // sees it exit by SIGKILL (if the caller is its parent, the tracer's wait has reaped it).
  Status kill();

 private:
  struct State;
  explicit HeldProcess(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
  friend Result<HeldProcess> checkpoint_and_hold(pid_t, int, const CheckpointOptions&, CheckpointStats*);
};
// options.after is not used (the holder decides). stats->freeze_ms is the time from the seize to
// the hold (the freeze goes on until resume()/kill()). Refusals and failures as checkpoint():
// nothing is held, the process runs.
Result<HeldProcess> checkpoint_and_hold(pid_t pid, int out_fd, const CheckpointOptions& options,
                                        CheckpointStats* stats = nullptr);

// ---- stand-ins ----
// True for the fds a restore must be given a stand-in for: pipes whose other end is not in the
// process, ttys, sockets.
bool needs_stand_in(const FdImage& f);
// An fd above 2 that a plain restore cannot give a stand-in for (refuse_stand_ins_beyond_stdio);
// with options.terminals_travel, fds on a pseudo-terminal are not.
bool stand_in_beyond_stdio(const FdImage& f, const CheckpointOptions& options);
// "fd 251 (pipe pipe:[1234], write-only)": how messages name an fd.
std::string describe_fd(const FdImage& f);
// The fds of a running process that its restore would need stand-ins for. Like preflight, reads
// /proc (and kcmp, to tell duplicates) only; refuses what checkpoint() would refuse.
Result<std::vector<FdImage>> stand_ins_needed(pid_t pid, const CheckpointOptions& options);

// ---- restore ----
// Supplies stand-ins for fds that could not travel. resolve() returns an fd that the engine
// duplicates into the restored process (the caller keeps ownership of the one it returns), or an
// error: the restore is then refused before any process is created.
class FdResolver {
 public:
  virtual ~FdResolver() = default;
  virtual Result<int> resolve(const FdImage& recorded) = 0;
  // A session leader's controlling pseudo-terminal (TerminalImage, terminal.cpp): the slave of a
  // fresh pty pair whose master the resolver keeps (it stays open until the restore returns).
  // The engine gives it the image's settings, window size, owner and foreground group, makes it
  // the leader's controlling terminal and gives it to every fd that was open on the old
  // /dev/pts/<index>. -1 (the default): the terminal is not carried; the restored session has
  // none and its fds on it are resolved by resolve() as before.
  virtual Result<int> resolve_terminal(const TerminalImage& terminal) {
    (void)terminal;
    return -1;
  }
  // Called once every recorded fd was resolved, with all of them, before any process exists:
  // may refuse (e.g. a stand-in given for an fd that needs none).
  virtual Status finish(const std::vector<FdImage>& recorded) {
    (void)recorded;
    return ok_status();
  }
};

// The CLI default: a pipe/tty/socket recorded at fd 0, 1 or 2 is replaced by the restoring
// command's own fd with that number; anything else is refused.
class InheritStdioResolver final : public FdResolver {
 public:
  Result<int> resolve(const FdImage& recorded) override;
};

// A stand-in named by the user: `osmo restore --fd N=PATH` or `--fd N=null`.
struct StandInSpec {
  int fd = -1;
  std::string path;  // opened with the access mode the fd had; "/dev/null" for `null`
  std::string text;  // as given ("251=null"), for messages
};
// Parses "N=PATH" / "N=null" (a file named null: ./null). Errors name the spec.
Result<StandInSpec> parse_stand_in_spec(const std::string& text);

// Gives each fd named by a spec the file opened with the recorded fd's access mode (created if
// missing and appended to when writable, never truncated); other fds as InheritStdioResolver.
// Refuses an fd given twice (make) and, once every fd is resolved, a spec for an fd that the
// image does not have or that needs no stand-in (finish).
class StandInResolver final : public FdResolver {
 public:
  static Result<StandInResolver> make(std::vector<StandInSpec> specs);
  Result<int> resolve(const FdImage& recorded) override;
  Status finish(const std::vector<FdImage>& recorded) override;

 private:
  struct Given {
    StandInSpec spec;
    UniqueFd file;  // opened by resolve()
    bool used = false;
  };
  std::vector<Given> given_;
  InheritStdioResolver stdio_;
};

struct RestoreOptions {
  FdResolver* resolver = nullptr;  // nullptr: InheritStdioResolver
  bool verify_inode = true;        // files must also keep their device+inode, not only size+mtime
  std::string netns_path;          // if set, the restored process joins this network namespace
  bool hide_clock_jump = true;     // time namespace offsets continue CLOCK_MONOTONIC/BOOTTIME
  // Anonymous memory is filled with UFFDIO_COPY through a userfaultfd of the new process (the
  // fast path); off, or where the kernel refuses userfaultfd, it is pre-faulted and written with
  // process_vm_writev. The result is the same.
  bool fill_with_userfaultfd = true;
  // Where the image comes from instead of in_fd (then ignored; pass -1): e.g. a migration's
  // opening source, which reads sealed chunks from the socket straight into the restore's
  // buffers. Its errors end the restore at once.
  ImageSource* source = nullptr;
  // Post-copy: the lazy pages (lazy_pages.hpp) are left missing, registered with the restored
  // process's userfaultfd, and that fd is handed over here (one LazyProcess per restored
  // process) for the caller to fill while the process runs. The image must come from a
  // checkpoint with lazy_anonymous_pages. Needs userfaultfd (an error otherwise).
  LazyPages* lazy_anonymous_pages = nullptr;
  // Pre-copy: pages of the populate plan that the image does not fill are taken from here when
  // the store holds them (the image's own pages always win: it carries every page that changed
  // since the store got it). Not with lazy_anonymous_pages.
  const PageStore* page_store = nullptr;
};

struct RestoredProcess {
  pid_t pid = -1;       // the restored process, as seen from the caller's pid namespace
  pid_t init_pid = -1;  // our init (PID 1 of the new pid namespace), a child of the caller
  int pidfd = -1;       // pidfd of the restored process, owned by the caller
  std::int32_t image_pid = 0;  // the pid it has inside its namespace (= the original's)
  std::size_t processes = 1;   // a tree image: how many processes were restored (live ones)
  double total_ms = 0;
  std::uint64_t pages_written = 0;
};

// Creates init (PID 1 of new pid+mount+time namespaces, a child of the caller) and the restored
// process inside it. When it returns, the process runs and nothing of it depends on the caller
// any more (the caller may exit at once: `osmo restore --detach`). On failure nothing is left
// behind. Errors read "cannot restore: <reason>".
//
// in_fd may be a file, a pipe or a blocking stream socket (short reads are resumed). The restore
// reads exactly the image's bytes, up to and including END and never further, so the caller can
// go on reading what the sender wrote after it (a migration's own messages on the same socket).
//
// Exit status: init exits with the restored process's exit code, or 128+N when it was killed by
// signal N (a PID 1 cannot die of a signal it raises itself), so init's status alone cannot tell
// `exit(130)` from death by SIGINT. restored_wait_status() can.
Result<RestoredProcess> restore(int in_fd, const RestoreOptions& options);

// restore() that stops short of letting the process run: fully restored (memory, registers,
// fds, credentials...) but still stopped (traced: state 't'), and init waits. Move-only. A
// thread of its own holds it (the tracer and init's parent are that thread), so commit()/abort()
// may be called from any thread; if the calling process dies first, init and the process die
// with it and the process never ran.
class PendingRestore {
 public:
  PendingRestore(PendingRestore&&) noexcept;
  PendingRestore& operator=(PendingRestore&&) noexcept;  // aborts what this one held first
  PendingRestore(const PendingRestore&) = delete;
  PendingRestore& operator=(const PendingRestore&) = delete;
  ~PendingRestore();  // abort() unless committed

  // pid, init_pid, image_pid, figures. process().pidfd stays owned by the PendingRestore until
  // commit() succeeds (then it is the caller's to close, as from restore()); abort() closes it.
  const RestoredProcess& process() const;
  // The process runs; afterwards the tree does not depend on the caller. On failure everything
  // is aborted (nothing left) and the error says why. Once only.
  Status commit();
  // Kills init and the process; nothing is left behind (init reaped). Idempotent; a no-op
  // after a successful commit().
  void abort();

 private:
  struct State;
  explicit PendingRestore(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
  friend Result<PendingRestore> restore_held(int, const RestoreOptions&);
};
Result<PendingRestore> restore_held(int in_fd, const RestoreOptions& options);

// The restored process's wait status (as waitpid(2) gives it: WIFEXITED/WEXITSTATUS or
// WIFSIGNALED/WTERMSIG), from its pidfd (RestoredProcess::pidfd, still open), once it has ended
// and been reaped, i.e. once init has exited. Needs Linux 6.15 (PIDFD_INFO_EXIT); on an older
// kernel, or before the process was reaped, an error says so.
Result<int> restored_wait_status(int pidfd);

// ---- inspection ----
// Reads a whole image (verifying every checksum) and describes it.
Result<nlohmann::json> show_image(int in_fd);
std::string render_image_text(const nlohmann::json& j);

// ---- fault points ----
// Named points where the engine fails on purpose when OSMO_FAULT=<name>[,<name>...] is set.
const std::vector<std::pair<std::string, std::string>>& fault_points();  // {name, description}

}  // namespace osmo::ckpt
