#!/bin/sh
# Compiles bpf/pageref.bpf.c and generates the skeleton the addon embeds.
# usage: bpf/build.sh OUTDIR   (called by binding.gyp)
# Writes OUTDIR/pageref.bpf.o and OUTDIR/pageref.skel.h; each is written
# under a temporary name and renamed, so a failed step leaves no half file.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=$1
mkdir -p "$out"
trap 'rm -f "$out/pageref.bpf.o.tmp" "$out/pageref.skel.h.tmp"' EXIT

# With -target bpf clang does not search the multiarch directory that holds
# <asm/types.h>; borrow the host compiler's system include list.
sys_includes=$(clang -v -E - </dev/null 2>&1 |
	sed -n '/<...> search starts here:/,/End of search list./{ s| \(/.*\)|-idirafter \1|p }')

# shellcheck disable=SC2086
clang -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall \
	-I"$here" $sys_includes \
	-c "$here/pageref.bpf.c" -o "$out/pageref.bpf.o.tmp"
mv "$out/pageref.bpf.o.tmp" "$out/pageref.bpf.o"

bpftool gen skeleton "$out/pageref.bpf.o" name pageref_bpf >"$out/pageref.skel.h.tmp"
mv "$out/pageref.skel.h.tmp" "$out/pageref.skel.h"
