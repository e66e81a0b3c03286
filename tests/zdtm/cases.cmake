# SPDX-License-Identifier: GPL-2.0-or-later
# The case list: one zdtm_case() per program in cases/ (see CMakeLists.txt for the arguments).
# Kinds other than restore expect the engine to refuse; REASON is an extended regex the refusal
# reason must match (case-insensitively).

# Memory.
zdtm_case(mem_anon_small)
zdtm_case(mem_anon_small_static SOURCE mem_anon_small.c STATIC)
zdtm_case(mem_anon_big)
zdtm_case(mem_shared_anon)
zdtm_case(mem_file_private)
zdtm_case(mem_file_shared)
zdtm_case(mem_mprotect)
zdtm_case(mem_brk_malloc)
zdtm_case(mem_stack_deep)
zdtm_case(mem_mremap)
zdtm_case(mem_growsdown)
zdtm_case(mem_vmflags)
zdtm_case(maps_identical)

# Time and the vDSO.
zdtm_case(vdso_time)
zdtm_case(vdso_time_static SOURCE vdso_time.c STATIC)
zdtm_case(clock_monotonic)

# Registers and thread pointers.
zdtm_case(regs_gp)
zdtm_case(regs_gp_static SOURCE regs_gp.c STATIC)
zdtm_case(regs_fpu)
zdtm_case(regs_avx)
zdtm_case(regs_avx512)
zdtm_case(tls_fs)
zdtm_case(tls_fs_static SOURCE tls_fs.c STATIC)
zdtm_case(gs_base)

# Signals and per-thread kernel registrations.
zdtm_case(sig_handlers)
zdtm_case(sig_handlers_static SOURCE sig_handlers.c STATIC)
zdtm_case(sig_mask)
zdtm_case(sig_pending)
zdtm_case(sig_altstack)
zdtm_case(sig_trap_handler SOURCE sig_trap.c DEFINES SIG_TRAP_MODE=1)
zdtm_case(sig_trap_ignored SOURCE sig_trap.c DEFINES SIG_TRAP_MODE=2)
zdtm_case(sys_sigsuspend)
zdtm_case(rseq)
zdtm_case(robust_list)
zdtm_case(clear_tid)

# Blocked in a system call at checkpoint time.
zdtm_case(sys_read_pipe)
zdtm_case(sys_nanosleep_abs)
zdtm_case(sys_nanosleep_rel)
zdtm_case(sys_pause)
zdtm_case(sys_futex)
zdtm_case(sys_poll)

# Process attributes.
zdtm_case(cwd)
zdtm_case(umask)
zdtm_case(rlimits)
zdtm_case(personality)
zdtm_case(creds)
zdtm_case(caps)
zdtm_case(caps_nonroot)
zdtm_case(prctl_misc)
zdtm_case(proc_name)
zdtm_case(proc_cmdline_env)
zdtm_case(mm_layout)
zdtm_case(itimers)
zdtm_case(ids)
zdtm_case(ids_static SOURCE ids.c STATIC)
zdtm_case(ids_session)
zdtm_case(ids_pgrp SOURCE ids_pgrp.c DEFINES IDS_PGRP_MODE=1)
zdtm_case(ids_pgrp_member SOURCE ids_pgrp.c DEFINES IDS_PGRP_MODE=2)

# File descriptors.
zdtm_case(fd_file)
zdtm_case(fd_dir)
zdtm_case(fd_devices)
zdtm_case(fd_dup)
zdtm_case(fd_pipe)
zdtm_case(fd_memfd)
zdtm_case(fd_unlinked)
zdtm_case(fd_opath)
zdtm_case(fd_many)

# Refusals: the engine must say no before touching the process, which then completes normally.
# The REASON patterns follow the engine's wording (docs/engine.md, "Refused").
zdtm_case(refuse_thread KIND refuse-dump REASON "has 2 threads" LIBS Threads::Threads)
zdtm_case(refuse_tcp KIND refuse-dump REASON "fd [0-9]+ is a socket")
zdtm_case(refuse_udp KIND refuse-dump REASON "fd [0-9]+ is a socket")
zdtm_case(refuse_unix KIND refuse-dump REASON "fd [0-9]+ is a socket")
zdtm_case(refuse_sysv_shm KIND refuse-dump REASON "SysV shared memory")
zdtm_case(refuse_io_uring KIND refuse-dump REASON "io_uring")
zdtm_case(refuse_inotify KIND refuse-dump REASON "fd [0-9]+ is anon_inode:inotify")
zdtm_case(refuse_eventfd SOURCE refuse_anon_inode.c DEFINES REFUSE_KIND=1 KIND refuse-dump REASON "anon_inode:\\[?eventfd")
zdtm_case(refuse_epoll SOURCE refuse_anon_inode.c DEFINES REFUSE_KIND=2 KIND refuse-dump REASON "anon_inode:\\[?eventpoll")
zdtm_case(refuse_signalfd SOURCE refuse_anon_inode.c DEFINES REFUSE_KIND=3 KIND refuse-dump REASON "anon_inode:\\[?signalfd")
zdtm_case(refuse_timerfd SOURCE refuse_anon_inode.c DEFINES REFUSE_KIND=4 KIND refuse-dump REASON "anon_inode:\\[?timerfd")
zdtm_case(refuse_pidfd SOURCE refuse_anon_inode.c DEFINES REFUSE_KIND=5 KIND refuse-dump REASON "anon_inode:\\[?pidfd|pidfd")
zdtm_case(refuse_deleted_cwd KIND refuse-dump REASON "cwd|working directory")
zdtm_case(refuse_ptraced KIND refuse-dump REASON "already traced by pid [0-9]+" HOOK tracer)
# POSIX timers are refused (docs/engine.md); the timer must keep firing afterwards.
zdtm_case(posix_timers KIND refuse-dump REASON "POSIX timers")
# Refused at restore: a file the image refers to changed after the checkpoint.
zdtm_case(refuse_file_changed KIND refuse-restore REASON "changed since the checkpoint" HOOK change-file)

# Stdio that cannot move: pipes to the outside get stand-ins from the restoring command.
zdtm_case(stdio_pipes HOOK stdio-pipes)

# Process trees (checkpoint --tree): pipes between processes, parents and children, zombies,
# sessions and groups over several processes, shared open files. refuse_tree_thread: a tree is
# refused when one of its processes is (the refusal names the process).
zdtm_case(tree_pipeline TREE)
zdtm_case(tree_children TREE)
zdtm_case(tree_zombie TREE)
zdtm_case(tree_session TREE)
zdtm_case(tree_shared_offset TREE)
zdtm_case(tree_pgrp_orphaned TREE)
zdtm_case(refuse_tree_thread TREE KIND refuse-dump REASON "process [0-9]+ \\(refuse_tree_thr.*has 2 threads" LIBS Threads::Threads)
