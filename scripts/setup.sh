#!/usr/bin/env bash
# Everything pageref needs on a fresh Debian machine of this kind, then the
# build: Debian packages (when missing), npm packages (when the lock file
# changed), the addon, the BPF object, the VM workloads and the TypeScript.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
need_command() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need_pkgconfig() { pkg-config --exists "$1" 2>/dev/null || missing+=("$2"); }

need_command clang clang
need_command llvm-strip llvm
need_command bpftool bpftool
need_command pkg-config pkg-config
need_command make make
need_command g++ g++
need_command qemu-system-x86_64 qemu-system-x86
need_command busybox busybox-static
need_command bpftrace bpftrace
need_command tmux tmux
need_command go golang-go
need_command prometheus prometheus
if command -v pkg-config >/dev/null 2>&1; then
  need_pkgconfig libbpf libbpf-dev
  need_pkgconfig libelf libelf-dev
  need_pkgconfig zlib zlib1g-dev
else
  missing+=(libbpf-dev libelf-dev zlib1g-dev)
fi
# busybox-static provides /bin/busybox; the dynamic busybox would do too, but
# only the static one is certain to run as the guest's poweroff.
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "pageref setup: missing Debian packages: ${missing[*]}; install them as root (apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "pageref setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci only when node_modules does not match the lock file.
if ! cmp -s package-lock.json node_modules/.package-lock.json.pageref 2>/dev/null; then
  # --ignore-scripts: the build below is the one build (binding.gyp would trigger a second).
  npm ci --no-audit --no-fund --ignore-scripts
  cp package-lock.json node_modules/.package-lock.json.pageref
fi

npm run build --silent
