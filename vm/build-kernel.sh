#!/bin/bash
# Rebuild a pageref test kernel from Debian's kernel source package.
#
# usage: vm/build-kernel.sh VERSION_SERIES OUTDIR      e.g. vm/build-kernel.sh 6.1 out/6.1
#
# Writes OUTDIR/{bzImage,config,System.map,vmlinux.btf,source}, the folder
# layout src/vm/kernels.ts looks for. The kernel is Debian's linux-source-X.Y
# configured as defconfig + kvm_guest.config + vm/pageref.config (page_ref
# tracepoints, BTF, CMA debugfs, 9p root). About 11 minutes on 2 cores; needs
# root for apt-get when packages are missing, and ~5 GB in the work folder
# ($WORKDIR, default a fresh folder under /var/tmp, removed afterwards unless
# KEEP_WORK=1).

set -euo pipefail

die() { echo "build-kernel: $*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: build-kernel.sh VERSION_SERIES OUTDIR   (e.g. 6.1 kernels/6.1)"
series=$1
outdir=$2
[[ $series =~ ^[0-9]+\.[0-9]+$ ]] || die "VERSION_SERIES is like 6.1 or 6.12, not '$series'"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fragment=$here/pageref.config
[ -r "$fragment" ] || die "missing $fragment"
pkg=linux-source-$series
tarball=/usr/src/$pkg.tar.xz

# dwarves gives pahole, which CONFIG_DEBUG_INFO_BTF runs at link time.
needed=()
for p in "$pkg" flex bison bc libelf-dev libssl-dev dwarves build-essential; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || needed+=("$p")
done
if [ ${#needed[@]} -gt 0 ]; then
	echo "build-kernel: installing ${needed[*]}"
	apt-get install -y --no-install-recommends "${needed[@]}" ||
		die "apt-get install ${needed[*]} failed (run apt-get update first? is $pkg in your sources?)"
fi
[ -r "$tarball" ] || die "$pkg is installed but $tarball is missing"

work=${WORKDIR:-$(mktemp -d /var/tmp/pageref-kernel.XXXXXX)}
mkdir -p "$work"
if [ "${KEEP_WORK:-0}" != 1 ]; then
	trap 'rm -rf "$work"' EXIT
	# bash skips the EXIT trap when a signal kills it: turn them into exits.
	trap 'exit 130' INT
	trap 'exit 143' TERM
fi
echo "build-kernel: unpacking $tarball into $work"
tar -C "$work" -xf "$tarball"
src=$work/$pkg
[ -d "$src" ] || die "$tarball did not unpack to $src"

cd "$src"
make defconfig
make kvm_guest.config
scripts/kconfig/merge_config.sh -m .config "$fragment"
make olddefconfig

# merge_config only warns when a requested value does not survive olddefconfig
# (an unmet dependency). Some losses are expected: on 6.1, KPROBES and BPF_JIT
# still depend on MODULES, which the fragment turns off, so the 6.1 test kernel
# has neither (BPF runs interpreted there). A kernel without what pageref
# itself needs would boot and fail every test confusingly: stop on those.
required=' CONFIG_DEBUG_PAGE_REF CONFIG_BPF_SYSCALL CONFIG_BPF_EVENTS CONFIG_DEBUG_INFO_BTF CONFIG_TRACEPOINTS CONFIG_CMA CONFIG_CMA_DEBUGFS CONFIG_MEMORY_ISOLATION CONFIG_DEBUG_FS CONFIG_9P_FS CONFIG_NET_9P_VIRTIO CONFIG_VIRTIO_PCI CONFIG_SERIAL_8250_CONSOLE '
lost_required=''
while IFS= read -r line; do
	opt=${line%%=*}
	case $line in
	CONFIG_*=n) grep -q "^$opt=[ym]" .config || continue ;;
	CONFIG_*=*) ! grep -qx "$line" .config || continue ;;
	*) continue ;;
	esac
	echo "build-kernel: wanted $line, got: $(grep "^$opt=\|^# $opt " .config || echo absent)" >&2
	case $required in *" $opt "*) lost_required="$lost_required $opt" ;; esac
done <"$fragment"
[ -z "$lost_required" ] || die "the configuration lost options pageref needs:$lost_required"

make -j"$(($(nproc) + 1))" bzImage

mkdir -p "$outdir"
cp arch/x86/boot/bzImage "$outdir/bzImage"
cp .config "$outdir/config"
cp System.map "$outdir/System.map"
# The raw .BTF section: what bpftool reads with `btf dump file vmlinux.btf`.
# (bpftool's own "format raw" prints text, not this.)
objcopy --dump-section .BTF="$outdir/vmlinux.btf" vmlinux
[ "$(od -An -tx1 -N2 "$outdir/vmlinux.btf" | tr -d ' ')" = 9feb ] || die "vmlinux.btf does not start with the BTF magic"
dpkg-query -W -f='${Package} ${Version}\n' "$pkg" >"$outdir/source"
echo "build-kernel: $(cat "$outdir/source") -> $outdir"
