#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Generates a C project of N files (default 64) plus main.c and a Makefile in DIR, for the make
# case of bench/spread and tests/spread: each file has enough code that -O2 takes a noticeable
# time (a compiler run is the unit that spreading places). Deterministic: same input, same binary.
# Usage: gen_project.sh DIR [N]
set -eu
dir=$1
n=${2:-64}
mkdir -p "$dir"
i=0
: > "$dir/decls.h"
while [ "$i" -lt "$n" ]; do
  f="$dir/f$i.c"
  {
    echo "#include \"decls.h\""
    j=0
    while [ "$j" -lt 40 ]; do
      cat <<C
static unsigned long g${j}(unsigned long x, unsigned long k) {
  unsigned long a[16];
  for (int t = 0; t < 16; ++t) a[t] = x * (unsigned long)(t + $j) ^ (k >> (t % 7));
  for (int r = 0; r < 8; ++r)
    for (int t = 1; t < 16; ++t) a[t] = (a[t] << 3 | a[t - 1] >> 61) + a[(t * 5 + r) % 16] * 0x9e3779b97f4a7c15UL;
  unsigned long s = 0;
  for (int t = 0; t < 16; ++t) s ^= a[t] + (unsigned long)t * $i;
  switch (s % 5) { case 0: return s + $j; case 1: return s * 3; case 2: return s ^ k; case 3: return s - x; default: return ~s; }
}
C
      j=$((j + 1))
    done
    echo "unsigned long f$i(unsigned long x) {"
    echo "  unsigned long s = x;"
    j=0
    while [ "$j" -lt 40 ]; do echo "  s = g$j(s, $j);"; j=$((j + 1)); done
    echo "  return s;"
    echo "}"
  } > "$f"
  echo "unsigned long f$i(unsigned long x);" >> "$dir/decls.h"
  i=$((i + 1))
done
{
  echo "#include <stdio.h>"
  echo "#include \"decls.h\""
  echo "int main(void) {"
  echo "  unsigned long s = 1;"
  i=0
  while [ "$i" -lt "$n" ]; do echo "  s = f$i(s);"; i=$((i + 1)); done
  printf '  printf("%%lu\\n", s);\n'
  echo "  return 0;"
  echo "}"
} > "$dir/main.c"
cat > "$dir/Makefile" <<'MK'
CC = cc
CFLAGS = -O2
SRCS = $(sort $(wildcard f*.c)) main.c
OBJS = $(SRCS:.c=.o)
prog: $(OBJS)
	$(CC) -o $@ $(OBJS)
%.o: %.c decls.h
	$(CC) $(CFLAGS) -c $< -o $@
clean:
	rm -f $(OBJS) prog
MK
