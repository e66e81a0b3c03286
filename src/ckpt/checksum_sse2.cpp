// SPDX-License-Identifier: GPL-2.0-or-later
// The baseline x86-64 (SSE2) build of the image checksum, for CPUs without AVX2.
#define OSMO_CHECKSUM_IMPL kSse2
#include "ckpt/checksum_xxh3.inc"
