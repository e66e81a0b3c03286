// SPDX-License-Identifier: GPL-2.0-or-later
// File descriptors. At dump each fd is classified from /proc/PID/fd (link text + stat) and
// /proc/PID/fdinfo (flags, position); fds sharing one open file description are found with
// kcmp(KCMP_FILE) and recorded as duplicates. Portable kinds (regular files, directories,
// /dev/null-like devices) are reopened by path at restore; memfds and deleted files carry their
// content (a blob); pipes, ttys and (if allowed) sockets are recorded with their identity and need
// a stand-in at restore, supplied by an FdResolver. Everything else is refused at preflight.
//
// At restore the caller (not the new process) opens every file and positions it, so every
// failure happens before a process exists; the new process only inherits these fds and moves
// them to their numbers (fds_child_install).
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sys/types.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "ckpt/faults.hpp"
#include "ckpt/kinds.hpp"
#include "platform/linux/pidfd.hpp"

namespace osmo::ckpt {

const char* fd_kind_name(FdKind k) {
  switch (k) {
    case FdKind::kRegular: return "file";
    case FdKind::kDirectory: return "directory";
    case FdKind::kDevice: return "device";
    case FdKind::kBlob: return "memfd/deleted";
    case FdKind::kPipe: return "pipe";
    case FdKind::kTty: return "tty";
    case FdKind::kSocket: return "socket";
    case FdKind::kDup: return "dup";
    case FdKind::kPipeInternal: return "pipe (both ends held)";
    case FdKind::kShared: return "shared with another process";
  }
  return "?";
}

namespace {

const char* access_mode_name(std::uint32_t flags) {
  switch (flags & O_ACCMODE) {
    case O_RDONLY: return "read-only";
    case O_WRONLY: return "write-only";
    case O_RDWR: return "read-write";
  }
  return "no access";
}

bool is_portable_device(const std::string& path) {
  return path == "/dev/null" || path == "/dev/zero" || path == "/dev/full" || path == "/dev/random" ||
         path == "/dev/urandom";
}

bool is_tty_major(unsigned maj) {
  // 4: /dev/ttyN and serial, 5: /dev/tty /dev/console /dev/ptmx, 136-143: /dev/pts/N.
  return maj == 4 || maj == 5 || (maj >= 136 && maj <= 143);
}

bool ends_with_deleted(const std::string& s) {
  return s.size() > 10 && s.compare(s.size() - 10, 10, " (deleted)") == 0;
}

// Classifies one fd; returns a refusal for kinds we cannot carry.
Result<FdImage> classify(pid_t pid, int fd, const CheckpointOptions& opt) {
  FdImage f;
  f.fd = fd;
  std::string link_path = fmt::format("/proc/{}/fd/{}", pid, fd);
  OSMO_ASSIGN_OR_RETURN(f.path, read_link(link_path));
  const std::string& p = f.path;
  if (p.rfind("pipe:", 0) == 0) {
    if (!opt.accept_pipes) return make_error("fd {} is a pipe ({}) and pipes were not accepted", fd, p);
    f.kind = FdKind::kPipe;
    return f;
  }
  if (p.rfind("socket:", 0) == 0) {
    if (!opt.accept_sockets)
      return make_error("fd {} is a socket ({}) and no stand-in for sockets was requested", fd, p);
    f.kind = FdKind::kSocket;
    return f;
  }
  if (p.rfind("anon_inode:", 0) == 0)
    return make_error("fd {} is {} (eventfd, epoll, signalfd, timerfd, inotify, fanotify, io_uring, "
                      "pidfd are not supported)", fd, p);
  if (p.empty() || p[0] != '/') return make_error("fd {} is {} (not supported)", fd, p);
  struct stat st {};
  if (::stat(link_path.c_str(), &st) != 0) return errno_error("cannot stat fd {} ({})", fd, p);
  f.file = FileIdentity{st.st_dev, st.st_ino, static_cast<std::uint64_t>(st.st_size),
                        static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
                        st.st_mode};
  if (S_ISFIFO(st.st_mode)) {
    if (!opt.accept_pipes) return make_error("fd {} is a FIFO ({}) and pipes were not accepted", fd, p);
    f.kind = FdKind::kPipe;
  } else if (S_ISSOCK(st.st_mode)) {
    if (!opt.accept_sockets)
      return make_error("fd {} is a socket ({}) and no stand-in for sockets was requested", fd, p);
    f.kind = FdKind::kSocket;
  } else if (S_ISCHR(st.st_mode)) {
    if (is_portable_device(p)) f.kind = FdKind::kDevice;
    else if (is_tty_major(major(st.st_rdev))) {
      if (!opt.accept_ttys) return make_error("fd {} is a tty ({}) and ttys were not accepted", fd, p);
      f.kind = FdKind::kTty;
    } else {
      return make_error("fd {} is the character device {} ({}:{}), not supported", fd, p, major(st.st_rdev),
                        minor(st.st_rdev));
    }
  } else if (S_ISDIR(st.st_mode)) {
    if (ends_with_deleted(p)) return make_error("fd {} is a deleted directory ({})", fd, p);
    f.kind = FdKind::kDirectory;
  } else if (S_ISREG(st.st_mode)) {
    bool memfd = p.rfind("/memfd:", 0) == 0;
    if (memfd || ends_with_deleted(p) || st.st_nlink == 0) {
      if (st.st_size > (1ll << 30))
        return make_error("fd {} is a deleted file/memfd of {} bytes (limit 1 GiB)", fd, st.st_size);
      f.kind = FdKind::kBlob;
    } else {
      f.kind = FdKind::kRegular;
    }
  } else {
    return make_error("fd {} is {} (block device or unknown type, not supported)", fd, p);
  }
  return f;
}

// Pipes whose read and write ends are both in the process (a self-pipe, xz's and many event
// loops') need no stand-in: they are recreated at restore with their buffered bytes. Paired by
// the pipe's inode; only fds that are not duplicates of an earlier one count.
void mark_internal_pipes(std::vector<FdImage>* fds) {
  std::map<std::string, std::pair<int, int>> ends;  // path -> {read fd index, write fd index}
  for (std::size_t i = 0; i < fds->size(); i++) {
    FdImage& f = (*fds)[i];
    if (f.kind != FdKind::kPipe || f.path.rfind("pipe:", 0) != 0) continue;
    auto& e = ends.try_emplace(f.path, -1, -1).first->second;
    if ((f.flags & O_ACCMODE) == O_RDONLY) e.first = static_cast<int>(i);
    if ((f.flags & O_ACCMODE) == O_WRONLY) e.second = static_cast<int>(i);
  }
  for (auto& [path, e] : ends) {
    if (e.first < 0 || e.second < 0) continue;
    FdImage& r = (*fds)[static_cast<std::size_t>(e.first)];
    FdImage& w = (*fds)[static_cast<std::size_t>(e.second)];
    r.kind = w.kind = FdKind::kPipeInternal;
    r.pipe_id = w.pipe_id = std::stoull(path.substr(6));
  }
}

// Every fd of the process, classified (a refusal for kinds we cannot carry), with flags and
// position from fdinfo, duplicates of an earlier fd's open file description found with
// kcmp(KCMP_FILE), and internal pipes marked (without their bytes). Reads /proc and kcmp only:
// the process is not touched, so preflight can use it too.
Result<std::vector<FdImage>> survey_fds(pid_t pid, const CheckpointOptions& opt) {
  OSMO_ASSIGN_OR_RETURN(std::vector<int> fds, list_fds(pid));
  std::vector<FdImage> out;
  for (int fd : fds) {
    OSMO_ASSIGN_OR_RETURN(FdImage f, classify(pid, fd, opt));
    OSMO_ASSIGN_OR_RETURN(std::string info, read_text_file(fmt::format("/proc/{}/fdinfo/{}", pid, fd)));
    OSMO_ASSIGN_OR_RETURN(FdInfo fi, parse_fdinfo(info));
    f.pos = fi.pos;
    f.cloexec = (fi.flags & O_CLOEXEC) != 0;
    f.flags = fi.flags & ~static_cast<std::uint32_t>(O_CLOEXEC);
    // The same open file description behind an earlier fd (dup, inherited 1>&2 ...)?
    for (const FdImage& prev : out) {
      if (prev.kind == FdKind::kDup) continue;
      long same = ::syscall(SYS_kcmp, pid, pid, KCMP_FILE, prev.fd, fd);
      if (same == 0) {
        f.kind = FdKind::kDup;
        f.dup_of = prev.fd;
        break;
      }
    }
    out.push_back(std::move(f));
  }
  mark_internal_pipes(&out);
  return out;
}

// The bytes buffered in the pipe behind fd r.fd of pid (its read end), copied with tee() from a
// copy of the fd (taken with pidfd_getfd), which does not consume them; and the pipe's capacity.
Status read_pipe_bytes(int pidfd, pid_t pid, FdImage& r) {
  UniqueFd rd = platform::pidfd_getfd(pidfd, r.fd);
  if (!rd) return errno_error("cannot take a copy of pipe fd {} of pid {}", r.fd, pid);
  int cap = ::fcntl(rd.get(), F_GETPIPE_SZ);
  r.pipe_size = cap > 0 ? static_cast<std::uint32_t>(cap) : 0;
  int tmp[2];
  if (::pipe2(tmp, O_CLOEXEC | O_NONBLOCK) != 0) return errno_error("cannot create a pipe");
  UniqueFd tr(tmp[0]), tw(tmp[1]);
  ::fcntl(tw.get(), F_SETPIPE_SZ, 1 << 20);
  ssize_t n = ::tee(rd.get(), tw.get(), 1 << 20, SPLICE_F_NONBLOCK);
  if (n < 0 && errno != EAGAIN) return errno_error("cannot copy the bytes buffered in pipe fd {} of pid {}", r.fd, pid);
  r.data.clear();
  if (n > 0) {
    r.data.resize(static_cast<std::size_t>(n));
    if (::read(tr.get(), r.data.data(), r.data.size()) != n)
      return errno_error("cannot read the bytes buffered in pipe fd {} of pid {}", r.fd, pid);
  }
  return ok_status();
}

// The bytes buffered in each internal pipe of one process, and the pipe's capacity.
Status read_internal_pipes(pid_t pid, std::vector<FdImage>* fds) {
  UniqueFd pidfd;
  for (FdImage& r : *fds) {
    if (r.kind != FdKind::kPipeInternal || (r.flags & O_ACCMODE) != O_RDONLY) continue;
    if (!pidfd) {
      pidfd = platform::pidfd_open(pid);
      if (!pidfd) return errno_error("cannot open a pidfd for pid {}", pid);
    }
    OSMO_TRY(read_pipe_bytes(pidfd.get(), pid, r));
    for (FdImage& w : *fds)
      if (w.kind == FdKind::kPipeInternal && w.pipe_id == r.pipe_id) w.pipe_size = r.pipe_size;
  }
  return ok_status();
}

// The refusal for CheckpointOptions::refuse_stand_ins_beyond_stdio, or ok.
Status refuse_stand_ins_beyond_stdio(const std::vector<FdImage>& fds, const CheckpointOptions& options) {
  std::string list;
  for (const FdImage& f : fds) {
    if (!stand_in_beyond_stdio(f, options)) continue;
    if (!list.empty()) list += ", ";
    list += describe_fd(f);
  }
  if (list.empty()) return ok_status();
  return make_error("its restore would need a stand-in for {}, and a plain restore gives stand-ins only "
                    "for fds 0-2", list);
}

}  // namespace

bool needs_stand_in(const FdImage& f) {
  return f.kind == FdKind::kPipe || f.kind == FdKind::kTty || f.kind == FdKind::kSocket;
}

bool stand_in_beyond_stdio(const FdImage& f, const CheckpointOptions& options) {
  if (!needs_stand_in(f) || f.fd <= 2) return false;
  return !(options.terminals_travel && f.kind == FdKind::kTty && f.path.rfind("/dev/pts/", 0) == 0);
}

std::string describe_fd(const FdImage& f) {
  return fmt::format("fd {} ({} {}, {})", f.fd, fd_kind_name(f.kind), f.path, access_mode_name(f.flags));
}

Result<std::vector<FdImage>> stand_ins_needed(pid_t pid, const CheckpointOptions& options) {
  OSMO_ASSIGN_OR_RETURN(std::vector<FdImage> fds, survey_fds(pid, options));
  std::vector<FdImage> out;
  for (FdImage& f : fds)
    if (needs_stand_in(f)) out.push_back(std::move(f));
  return out;
}

Status fds_preflight(pid_t pid, const CheckpointOptions& options) {
  OSMO_ASSIGN_OR_RETURN(std::vector<int> fds, list_fds(pid));
  for (int fd : fds) OSMO_TRY(classify(pid, fd, options));
  if (options.refuse_stand_ins_beyond_stdio) {
    OSMO_ASSIGN_OR_RETURN(std::vector<FdImage> all, survey_fds(pid, options));
    OSMO_TRY(refuse_stand_ins_beyond_stdio(all, options));
  }
  return ok_status();
}

Status fds_dump(DumpContext& c) {
  OSMO_ASSIGN_OR_RETURN(c.img->fds, survey_fds(c.pid, *c.options));
  // Preflight checked this already; the process may have opened an fd since.
  if (c.options->refuse_stand_ins_beyond_stdio) OSMO_TRY(refuse_stand_ins_beyond_stdio(c.img->fds, *c.options));
  for (FdImage& f : c.img->fds)
    if (f.kind == FdKind::kBlob) f.blob = add_blob(c, f.path, fmt::format("/proc/{}/fd/{}", c.pid, f.fd), f.file);
  OSMO_TRY(read_internal_pipes(c.pid, &c.img->fds));
  return fault("dump.fds");
}

Status fds_link_tree(const std::vector<std::pair<pid_t, ProcessImage*>>& procs, bool read_bytes) {
  // 1. Open file descriptions shared with an earlier process (inherited fds: a shell's stdout,
  // a pipe end): the later process refers to the first holder's fd. kcmp across processes
  // answers; fds with different link text cannot be the same description.
  for (std::size_t i = 0; i < procs.size(); i++) {
    for (FdImage& f : procs[i].second->fds) {
      if (f.kind == FdKind::kDup) continue;
      bool found = false;
      for (std::size_t j = 0; j < i && !found; j++) {
        for (const FdImage& g : procs[j].second->fds) {
          if (g.kind == FdKind::kDup || g.kind == FdKind::kShared || g.path != f.path) continue;
          if (::syscall(SYS_kcmp, procs[i].first, procs[j].first, KCMP_FILE, f.fd, g.fd) != 0) continue;
          f.kind = FdKind::kShared;
          f.share_pid = procs[j].second->task.pid;
          f.dup_of = g.fd;
          f.data.clear();
          f.pipe_id = 0;
          found = true;
          break;
        }
      }
    }
  }
  // 2. Pipes between processes of the tree: a read end and a write end both held in the tree
  // (by first holders: the others are kShared now). Recreated at restore with their bytes; a
  // pipe with only one end in the tree (the job's stdio) keeps its stand-in.
  struct Ends {
    std::size_t rp = SIZE_MAX, rf = 0, wp = SIZE_MAX, wf = 0;
  };
  std::map<std::string, Ends> ends;
  for (std::size_t i = 0; i < procs.size(); i++) {
    auto& fds = procs[i].second->fds;
    for (std::size_t k = 0; k < fds.size(); k++) {
      const FdImage& f = fds[k];
      if (f.kind != FdKind::kPipe || f.path.rfind("pipe:", 0) != 0) continue;
      Ends& e = ends[f.path];
      if ((f.flags & O_ACCMODE) == O_RDONLY) e.rp = i, e.rf = k;
      if ((f.flags & O_ACCMODE) == O_WRONLY) e.wp = i, e.wf = k;
    }
  }
  for (auto& [path, e] : ends) {
    if (e.rp == SIZE_MAX || e.wp == SIZE_MAX) continue;
    FdImage& r = procs[e.rp].second->fds[e.rf];
    FdImage& w = procs[e.wp].second->fds[e.wf];
    r.kind = w.kind = FdKind::kPipeInternal;
    r.pipe_id = w.pipe_id = std::stoull(path.substr(6));
    if (!read_bytes) continue;
    pid_t host = procs[e.rp].first;
    UniqueFd pidfd = platform::pidfd_open(host);
    if (!pidfd) return errno_error("cannot open a pidfd for pid {}", host);
    OSMO_TRY(read_pipe_bytes(pidfd.get(), host, r));
    w.pipe_size = r.pipe_size;
  }
  return ok_status();
}

Result<std::vector<std::string>> tree_stand_ins_beyond_stdio(const std::vector<pid_t>& hosts,
                                                              const std::vector<std::int32_t>& image_pids,
                                                              const CheckpointOptions& options) {
  std::vector<ProcessImage> imgs(hosts.size());
  std::vector<std::pair<pid_t, ProcessImage*>> procs;
  for (std::size_t i = 0; i < hosts.size(); i++) {
    OSMO_ASSIGN_OR_RETURN(imgs[i].fds, survey_fds(hosts[i], options));
    imgs[i].task.pid = image_pids[i];
    procs.emplace_back(hosts[i], &imgs[i]);
  }
  OSMO_TRY(fds_link_tree(procs, false));
  std::vector<std::string> out;
  for (const ProcessImage& img : imgs)
    for (const FdImage& f : img.fds)
      if (stand_in_beyond_stdio(f, options)) out.push_back(fmt::format("{} of process {}", describe_fd(f), img.task.pid));
  return out;
}

void fds_encode(const ProcessImage& img, Encoder& e) {
  e.u32(static_cast<std::uint32_t>(img.fds.size()));
  for (const FdImage& f : img.fds) {
    e.u32(static_cast<std::uint32_t>(f.fd));
    e.u32(static_cast<std::uint32_t>(f.kind));
    e.str(f.path);
    encode_identity(e, f.file);
    e.u32(f.flags);
    e.u8(f.cloexec ? 1 : 0);
    e.u64(f.pos);
    e.u32(f.blob);
    e.u32(static_cast<std::uint32_t>(f.dup_of));
    e.u64(f.pipe_id);
    e.bytes(f.data);
    e.u32(f.pipe_size);
    e.u32(static_cast<std::uint32_t>(f.share_pid));
  }
}

Status fds_decode(Decoder& d, ProcessImage& img) {
  OSMO_ASSIGN_OR_RETURN(std::uint32_t n, d.count(40));
  img.fds.resize(n);
  for (FdImage& f : img.fds) {
    OSMO_ASSIGN_OR_RETURN(std::uint32_t fd, d.u32());
    f.fd = static_cast<std::int32_t>(fd);
    OSMO_ASSIGN_OR_RETURN(std::uint32_t kind, d.u32());
    if (kind < 1 || kind > 10) return make_error("image corrupted: fd {} has kind {}", fd, kind);
    f.kind = static_cast<FdKind>(kind);
    OSMO_ASSIGN_OR_RETURN(f.path, d.str());
    OSMO_TRY(decode_identity(d, &f.file));
    OSMO_ASSIGN_OR_RETURN(f.flags, d.u32());
    OSMO_ASSIGN_OR_RETURN(std::uint8_t ce, d.u8());
    f.cloexec = ce != 0;
    OSMO_ASSIGN_OR_RETURN(f.pos, d.u64());
    OSMO_ASSIGN_OR_RETURN(f.blob, d.u32());
    OSMO_ASSIGN_OR_RETURN(std::uint32_t dup, d.u32());
    f.dup_of = static_cast<std::int32_t>(dup);
    OSMO_ASSIGN_OR_RETURN(f.pipe_id, d.u64());
    OSMO_ASSIGN_OR_RETURN(f.data, d.bytes());
    OSMO_ASSIGN_OR_RETURN(f.pipe_size, d.u32());
    OSMO_ASSIGN_OR_RETURN(std::uint32_t share, d.u32());
    f.share_pid = static_cast<std::int32_t>(share);
    if (f.kind == FdKind::kShared && f.share_pid <= 0)
      return make_error("image corrupted: fd {} is shared with pid {}", f.fd, f.share_pid);
    if (f.fd < 0 || f.fd > (1 << 20)) return make_error("image corrupted: fd number {}", f.fd);
  }
  return d.finish();
}

void fds_describe(const ProcessImage& img, nlohmann::json& j) {
  auto& a = j["fds"];
  a = nlohmann::json::array();
  for (const FdImage& f : img.fds) {
    nlohmann::json o{{"fd", f.fd}, {"kind", fd_kind_name(f.kind)}, {"path", f.path},
                     {"flags", fmt::format("{:#o}", f.flags)}, {"cloexec", f.cloexec}, {"pos", f.pos}};
    if (f.kind == FdKind::kDup) o["dup_of"] = f.dup_of;
    if (f.kind == FdKind::kShared) o["shared_with"] = fmt::format("pid {} fd {}", f.share_pid, f.dup_of);
    if (f.kind == FdKind::kBlob) o["blob"] = f.blob;
    if (f.kind == FdKind::kPipeInternal) o["buffered_bytes"] = f.data.size();
    a.push_back(std::move(o));
  }
}

Result<std::vector<FdPlanEntry>> fds_plan(const ProcessImage& img, FdResolver& resolver, bool verify_inode,
                                          const std::vector<UniqueFd>& blob_fds,
                                          std::vector<UniqueFd>* owned, FdTreeState* tree) {
  std::vector<FdPlanEntry> plan;
  std::vector<FdPlanEntry> dups;
  FdTreeState alone;
  FdTreeState& ts = tree != nullptr ? *tree : alone;
  auto& pipes = ts.pipes;  // pipe id -> {read, write} in the caller
  const std::int32_t me = img.task.pid;
  for (const FdImage& f : img.fds) {
    FdPlanEntry e;
    e.target = f.fd;
    e.cloexec = f.cloexec;
    std::uint32_t oflags = (f.flags & ~static_cast<std::uint32_t>(O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY)) |
                           O_CLOEXEC;
    auto open_at = [&](const std::string& path, bool seek) -> Status {
      UniqueFd fd(::open(path.c_str(), static_cast<int>(oflags)));
      if (!fd) return errno_error("cannot reopen fd {} ({})", f.fd, f.path);
      if (seek && ::lseek(fd.get(), static_cast<off_t>(f.pos), SEEK_SET) < 0)
        return errno_error("cannot seek fd {} ({}) to {}", f.fd, f.path, f.pos);
      e.how = FdPlanEntry::How::kInherit;
      e.source = fd.get();
      owned->push_back(std::move(fd));
      return ok_status();
    };
    switch (f.kind) {
      case FdKind::kRegular:
        // A file the process writes (its log, its output) is expected to change after the
        // dump; only files it reads must be exactly as they were.
        if ((f.flags & O_ACCMODE) == O_RDONLY) {
          OSMO_TRY(verify_identity(fmt::format("file of fd {}", f.fd), f.path, f.file, verify_inode));
        } else {
          auto now = stat_identity(f.path);
          if (!now.ok()) return Error{now.error().code, fmt::format("file of fd {} {} is gone", f.fd, f.path)};
          if (verify_inode && (now->dev != f.file.dev || now->ino != f.file.ino))
            return make_error("file of fd {} {} is a different file than at checkpoint", f.fd, f.path);
        }
        OSMO_TRY(open_at(f.path, (f.flags & O_PATH) == 0));  // an O_PATH fd has no position
        break;
      case FdKind::kDirectory:
        oflags |= O_DIRECTORY;
        OSMO_TRY(open_at(f.path, false));
        break;
      case FdKind::kDevice:
        OSMO_TRY(open_at(f.path, false));
        break;
      case FdKind::kBlob:
        if (f.blob >= blob_fds.size()) return make_error("image corrupted: fd {} names blob {}", f.fd, f.blob);
        OSMO_TRY(open_at(fmt::format("/proc/self/fd/{}", blob_fds[f.blob].get()), true));
        break;
      case FdKind::kPipe:
      case FdKind::kTty:
      case FdKind::kSocket: {
        auto r = resolver.resolve(f);
        if (!r.ok()) return r.take_error();
        UniqueFd dup(::fcntl(*r, F_DUPFD_CLOEXEC, 3));
        if (!dup) return errno_error("cannot duplicate the stand-in for fd {}", f.fd);
        e.how = FdPlanEntry::How::kInherit;
        e.source = dup.get();
        owned->push_back(std::move(dup));
        break;
      }
      case FdKind::kPipeInternal: {
        auto it = pipes.find(f.pipe_id);
        if (it == pipes.end()) {
          int p[2];
          if (::pipe2(p, O_CLOEXEC) != 0) return errno_error("cannot create a pipe for fd {}", f.fd);
          it = pipes.emplace(f.pipe_id, std::make_pair(p[0], p[1])).first;
          owned->emplace_back(p[0]);
          owned->emplace_back(p[1]);
          if (f.pipe_size != 0 && ::fcntl(p[1], F_SETPIPE_SZ, static_cast<int>(f.pipe_size)) < 0)
            return errno_error("cannot set the capacity of pipe fd {} to {}", f.fd, f.pipe_size);
        }
        bool read_end = (f.flags & O_ACCMODE) == O_RDONLY;
        int mine = read_end ? it->second.first : it->second.second;
        if (!f.data.empty() && ts.filled.insert(f.pipe_id).second) {
          if (f.data.size() > 65536) ::fcntl(it->second.second, F_SETPIPE_SZ, static_cast<int>(f.data.size()));
          if (::write(it->second.second, f.data.data(), f.data.size()) != static_cast<ssize_t>(f.data.size()))
            return errno_error("cannot refill pipe of fd {} with {} bytes", f.fd, f.data.size());
        }
        if (::fcntl(mine, F_SETFL, static_cast<int>(f.flags & O_NONBLOCK)) != 0)
          return errno_error("cannot set the flags of pipe fd {}", f.fd);
        e.how = FdPlanEntry::How::kInherit;
        e.source = mine;
        break;
      }
      case FdKind::kDup: {
        e.how = FdPlanEntry::How::kDup;
        e.source = f.dup_of;
        dups.push_back(e);
        auto d = ts.described.find({me, f.dup_of});
        if (d != ts.described.end()) ts.described[{me, f.fd}] = d->second;
        continue;
      }
      case FdKind::kShared: {
        auto d = ts.described.find({f.share_pid, f.dup_of});
        if (d == ts.described.end())
          return make_error("image corrupted: fd {} of pid {} shares fd {} of pid {}, which is not restored before it",
                            f.fd, me, f.dup_of, f.share_pid);
        e.how = FdPlanEntry::How::kInherit;
        e.source = d->second;
        break;
      }
    }
    ts.described[{me, f.fd}] = e.source;
    plan.push_back(e);
  }
  plan.insert(plan.end(), dups.begin(), dups.end());  // duplicates after their originals
  return plan;
}

Result<int> fds_child_install(const std::vector<FdPlanEntry>& plan, std::vector<int*> keep) {
  // Move every source and kept fd above both the targets and every fd open now, then close all
  // below that line, then dup each source onto its target.
  int high = 0;
  for (auto& e : plan) high = std::max(high, e.target + 1);
  OSMO_ASSIGN_OR_RETURN(std::vector<int> open_now, list_fds(::getpid()));
  // /proc/self/fd listing includes the directory fd itself, already closed: harmless.
  for (int fd : open_now) high = std::max(high, fd + 1);
  std::map<int, int> moved;  // old -> new
  auto move_up = [&](int fd) -> Result<int> {
    auto it = moved.find(fd);
    if (it != moved.end()) return it->second;
    int n = ::fcntl(fd, F_DUPFD_CLOEXEC, high);
    if (n < 0) return errno_error("cannot move fd {} above {}", fd, high);
    moved[fd] = n;
    return n;
  };
  std::vector<int> sources(plan.size(), -1);
  for (std::size_t i = 0; i < plan.size(); i++)
    if (plan[i].how == FdPlanEntry::How::kInherit) {
      OSMO_ASSIGN_OR_RETURN(sources[i], move_up(plan[i].source));
    }
  for (int* k : keep) {
    OSMO_ASSIGN_OR_RETURN(*k, move_up(*k));
  }
  if (::syscall(SYS_close_range, 0u, static_cast<unsigned>(high - 1), 0u) != 0)
    return errno_error("cannot close fds below {}", high);
  for (std::size_t i = 0; i < plan.size(); i++) {
    const FdPlanEntry& e = plan[i];
    int src = e.how == FdPlanEntry::How::kInherit ? sources[i] : e.source;
    if (::dup3(src, e.target, e.cloexec ? O_CLOEXEC : 0) < 0)
      return errno_error("cannot install fd {} (from {})", e.target, src);
  }
  for (std::size_t i = 0; i < plan.size(); i++)
    if (sources[i] >= 0) {
      bool kept = false;
      for (int* k : keep) kept = kept || *k == sources[i];
      if (!kept) ::close(sources[i]);
    }
  int base = 0;
  for (auto& e : plan) base = std::max(base, e.target + 1);
  return base;
}

}  // namespace osmo::ckpt
