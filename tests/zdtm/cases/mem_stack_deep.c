// SPDX-License-Identifier: GPL-2.0-or-later
/* mem_stack_deep: the checkpoint happens 8000 frames deep (about 3 MiB of stack); on the way
 * back up every frame checks its own local buffer and the return addresses must all be intact. */
#define _GNU_SOURCE
#include "zdtm.h"

enum { kDepth = 8000, kFrameBytes = 384 };

static int g_bad_frames;

static __attribute__((noinline)) int descend(int depth) {
  volatile unsigned char local[kFrameBytes];
  for (int i = 0; i < kFrameBytes; i++) local[i] = zdtm_pattern((size_t)i, (unsigned)depth);
  int below = 0;
  if (depth < kDepth) {
    below = descend(depth + 1);
  } else {
    zdtm_ready();
    zdtm_wait_go();
  }
  for (int i = 0; i < kFrameBytes; i++)
    if (local[i] != zdtm_pattern((size_t)i, (unsigned)depth)) {
      g_bad_frames++;
      break;
    }
  return below + 1; /* work after the call keeps it from being a tail call */
}

int main(int argc, char** argv) {
  zdtm_init(argc, argv, ZDTM_NAME);
  int frames = descend(1);
  ZDTM_CHECK(frames == kDepth, "returned through %d frames, want %d", frames, kDepth);
  ZDTM_CHECK(g_bad_frames == 0, "frame locals intact (%d bad)", g_bad_frames);
  return zdtm_finish();
}
