#!/bin/sh
# PID 1 of the test guest (see src/vm/qemu.ts, which boots it).
#
# The root file system is the host's, read-only over 9p, so the guest runs the
# host's node, the checkout and anything installed there. This script mounts the
# pseudo file systems, runs /run/out/job.sh (written by the host into the
# writable `out` share) from the checkout, leaves job.log, job.rc and
# preconditions.txt in the share, and powers off.
#
# The checkout path arrives as the environment variable pageref_repo: the kernel
# hands unknown `key=value` boot parameters to init's environment, but only when
# the key has no dot (dotted keys are taken as parameters of a module).

PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

OUT=/run/out
# Filled before the out share exists; copied into it once it is mounted.
MISSING=''

say() {
	echo "pageref-init: $*" >/dev/console 2>/dev/null || echo "pageref-init: $*"
}

missing() {
	say "missing: $*"
	MISSING="${MISSING}$*
"
}

# mount_fs TYPE DIR [OPTIONS]: mount, and record it as missing if that fails.
mount_fs() {
	mkdir -p "$2" 2>/dev/null
	if [ -n "$3" ]; then
		err=$(mount -t "$1" -o "$3" "$1" "$2" 2>&1)
	else
		err=$(mount -t "$1" "$1" "$2" 2>&1)
	fi
	[ $? -eq 0 ] || missing "$1 on $2 (mount: $err)"
}

power_off() {
	sync
	busybox poweroff -f 2>/dev/null
	echo o >/proc/sysrq-trigger 2>/dev/null
	# Neither worked: exiting PID 1 panics, and panic=-1 plus QEMU's
	# -no-reboot turn that panic into QEMU exiting.
	sleep 5
	exit 1
}

mount_fs proc /proc
mount_fs sysfs /sys
# devtmpfs is usually mounted by the kernel already (CONFIG_DEVTMPFS_MOUNT).
[ -e /dev/null ] || mount_fs devtmpfs /dev
# No tmpfs on /tmp: the checkout may live under the host's /tmp and must stay
# visible (read-only, like the rest of the host).
mount_fs tmpfs /run mode=0755
mount_fs tracefs /sys/kernel/tracing
mount_fs debugfs /sys/kernel/debug
mount -t bpf bpf /sys/fs/bpf 2>/dev/null

mkdir -p "$OUT"
if ! err=$(mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 out "$OUT" 2>&1); then
	# Nothing can reach the host; it reports "no job.rc" with this console line.
	say "cannot mount the out share: $err"
	power_off
fi

# cma= may fail to reserve (no contiguous range left: KASLR placed the kernel
# in the middle on some boots, hence nokaslr); say so rather than let a job
# find the debugfs files absent. The files themselves come from a late
# initcall, so give them a moment.
if grep -q 'cma=' /proc/cmdline 2>/dev/null; then
	if grep -q '^CmaTotal: *0 kB' /proc/meminfo 2>/dev/null; then
		missing "CMA area from cma= (kernel: $(dmesg 2>/dev/null | grep 'cma:' | tail -n 1 | sed 's/^\[[^]]*\] //'))"
	else
		tries=0
		while [ ! -e /sys/kernel/debug/cma/reserved/alloc ] && [ $tries -lt 50 ]; do
			sleep 0.1
			tries=$((tries + 1))
		done
		[ -e /sys/kernel/debug/cma/reserved/alloc ] ||
			missing "/sys/kernel/debug/cma/reserved/alloc (waited 5 s)"
	fi
fi

mkdir -p /run/tmp /run/home
export TMPDIR=/run/tmp HOME=/run/home PAGEREF_OUT="$OUT"

in_repo=no
if [ -z "$pageref_repo" ]; then
	missing "pageref_repo= on the kernel command line"
elif cd "$pageref_repo" 2>/dev/null; then
	in_repo=yes
else
	missing "checkout $pageref_repo (cd failed)"
fi
printf '%s' "$MISSING" >"$OUT/preconditions.txt"
export PAGEREF_MISSING="$MISSING"

if [ ! -r "$OUT/job.sh" ]; then
	say "no $OUT/job.sh"
elif [ $in_repo = yes ]; then
	say "running job"
	/bin/sh "$OUT/job.sh" >"$OUT/job.log" 2>&1 </dev/null
	echo $? >"$OUT/job.rc"
	say "job exited $(cat "$OUT/job.rc")"
fi
power_off
