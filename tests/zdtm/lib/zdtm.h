// SPDX-License-Identifier: GPL-2.0-or-later
/* zdtm.h: the protocol every ZDTM-style case program speaks with tests/zdtm/run_case.sh.
 *
 * A case is started as `case WORKDIR` with stdout and stderr redirected to regular files in
 * WORKDIR (so the engine has to carry those fds and their offsets too). It sets up one kind of
 * state, calls zdtm_ready() (creates WORKDIR/ready), then waits in zdtm_wait_go() until the harness
 * creates WORKDIR/go: by then it may have been checkpointed, killed and restored into a new
 * process. It then checks that its state survived with ZDTM_CHECK(), and returns zdtm_finish(),
 * which prints the final "RESULT PASS|FAIL" line and gives the exit code.
 *
 * Output goes through write(2) on fd 1, never through stdio buffers, so what the harness reads
 * is exactly what the process wrote and the file offset is the only state that matters.
 * The waiting loop opens no fds and allocates nothing, so the state at checkpoint time is only
 * what the case set up. */
#ifndef OSMO_TESTS_ZDTM_ZDTM_H
#define OSMO_TESTS_ZDTM_ZDTM_H

#include <stdbool.h>
#include <stddef.h>

/* Parses argv (WORKDIR), prints the "START <name> pid N" line. Exits 2 on a usage error. */
void zdtm_init(int argc, char** argv, const char* name);

/* WORKDIR/<file> in a static buffer (valid until the next call). */
const char* zdtm_path(const char* file);

/* Creates WORKDIR/ready: the state is set up and the process may be checkpointed. */
void zdtm_ready(void);

/* True once WORKDIR/go exists. Uses access(2) only: no fd, no allocation. */
bool zdtm_go(void);

/* Sleeps in 10 ms nanosleep(2) steps until zdtm_go(); gives up (exit 3) after 100 s of
 * CLOCK_REALTIME so an abandoned case cannot linger. EINTR (e.g. a nanosleep interrupted by the
 * checkpoint and not restarted) is fine: the loop just re-checks. */
void zdtm_wait_go(void);

/* The go file's path (for cases that poll it from inline assembly). */
const char* zdtm_go_path(void);

/* Bound for custom wait loops: true once 100 s passed since zdtm_ready(). */
bool zdtm_waited_too_long(void);

/* Records one check: prints "PASS: what" or "FAIL: what" (with the formatted detail). */
void zdtm_check(bool ok, const char* file, int line, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define ZDTM_CHECK(cond, ...) zdtm_check((cond), __FILE__, __LINE__, __VA_ARGS__)

/* A setup step failed before ready: prints "SETUP-FAIL ..." with errno text and exits 2. */
void zdtm_setup_fail(const char* fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
#define ZDTM_SETUP(cond, ...)           \
  do {                                  \
    if (!(cond)) zdtm_setup_fail(__VA_ARGS__); \
  } while (0)

/* Prints a free-form informational line ("INFO: ..."). */
void zdtm_info(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "RESULT PASS" (all checks passed and at least one ran) or "RESULT FAIL"; returns the
 * process exit code (0 or 1). */
int zdtm_finish(void);

/* Seconds (double) on a clock; a helper for timing checks. */
double zdtm_now(int clock_id);

/* Writes all of buf to fd (retrying short writes); returns false on error. */
bool zdtm_write_all(int fd, const void* buf, size_t len);

/* Deterministic pattern byte for position i with a seed, for filling and verifying memory. */
static inline unsigned char zdtm_pattern(size_t i, unsigned seed) {
  size_t x = (i + 1) * 2654435761u + seed * 40503u;
  return (unsigned char)(x ^ (x >> 13) ^ (x >> 7));
}
void zdtm_fill(void* p, size_t len, unsigned seed);
/* Returns the index of the first mismatching byte, or (size_t)-1 if all match. */
size_t zdtm_verify(const void* p, size_t len, unsigned seed);

/* --- /proc helpers (zdtm_proc.c); each opens and closes its own fd ------------------------- */

/* Reads a whole (small) file into buf (NUL-terminated); returns its length or -1. */
long zdtm_read_file(const char* path, char* buf, size_t size);

/* The permission string ("rw-p") of the mapping containing addr in /proc/self/maps, or "" if
 * addr is not mapped. */
void zdtm_map_perms(const void* addr, char perms[8]);

/* The VmFlags line of the mapping containing addr in /proc/self/smaps, or "" if none. */
void zdtm_vmflags(const void* addr, char* buf, size_t size);

/* True if the VmFlags string of the mapping containing addr contains the two-letter flag. */
bool zdtm_has_vmflag(const void* addr, const char* flag);

/* The value after "Key:" in /proc/self/status (trimmed), or "" if absent. */
void zdtm_status_field(const char* key, char* buf, size_t size);

#endif
