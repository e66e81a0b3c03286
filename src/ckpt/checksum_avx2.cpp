// SPDX-License-Identifier: GPL-2.0-or-later
// The AVX2 build of the image checksum (compiled with -mavx2; used only when the CPU has AVX2).
#define OSMO_CHECKSUM_IMPL kAvx2
#include "ckpt/checksum_xxh3.inc"
