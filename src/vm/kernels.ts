// The test kernels that VM tests and `pageref demo` boot.
//
// A kernel is a folder holding `bzImage`, and optionally `config` (its full
// .config), `vmlinux.btf` (raw BTF) and `System.map`; vm/build-kernel.sh writes
// exactly that. The folder's name is the kernel's name (e.g. "6.1.192").

import * as fs from 'fs';
import * as path from 'path';

export interface KernelImage {
  /** The folder's base name, e.g. "6.12.117". */
  name: string;
  /** Absolute path of the folder. */
  dir: string;
  /** Absolute path of the image to boot. */
  bzImage: string;
  /** The kernel's full .config, when the folder has one. */
  config?: string;
  /** The kernel's raw BTF (vmlinux.btf), when the folder has one. */
  btf?: string;
  /** System.map, when the folder has one. */
  systemMap?: string;
}

/** The checkout root: the nearest folder above this file holding pageref's package.json. */
export function repoRoot(): string {
  // Compiled, this file is dist/src/vm/kernels.js; run from source (ts-node)
  // it is src/vm/kernels.ts. Walking up finds the checkout either way.
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
      if (pkg.name === 'pageref') return dir;
    } catch {
      // No package.json here (or not readable): keep walking up.
    }
    if (path.dirname(dir) === dir) {
      throw new Error(`pageref: no package.json named "pageref" above ${__dirname}`);
    }
  }
}

/** Where kernels are looked for when PAGEREF_KERNELS is not set. */
export function defaultKernelsDir(): string {
  return path.resolve(repoRoot(), '..', 'shared', 'vm', 'kernels');
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** The kernel in `dir`, or undefined when the folder has no bzImage. */
export function kernelAt(dir: string): KernelImage | undefined {
  const abs = path.resolve(dir);
  const bzImage = path.join(abs, 'bzImage');
  if (!isFile(bzImage)) return undefined;
  const optional = (file: string): string | undefined => {
    const p = path.join(abs, file);
    return isFile(p) ? p : undefined;
  };
  const k: KernelImage = { name: path.basename(abs), dir: abs, bzImage };
  const config = optional('config');
  const btf = optional('vmlinux.btf');
  const systemMap = optional('System.map');
  if (config) k.config = config;
  if (btf) k.btf = btf;
  if (systemMap) k.systemMap = systemMap;
  return k;
}

/** A kernel folder, or a folder of kernel folders: every kernel found there. */
function kernelsIn(dir: string): KernelImage[] {
  const k = kernelAt(dir);
  if (k) return [k];
  if (!isDir(dir)) return [];
  return fs
    .readdirSync(dir)
    .map((entry) => kernelAt(path.join(dir, entry)))
    .filter((x): x is KernelImage => x !== undefined);
}

/**
 * Every test kernel, oldest version first (by folder name, numerically).
 *
 * PAGEREF_KERNELS, a colon-separated list whose entries are kernel folders or
 * folders of kernel folders, replaces the default `<repo>/../shared/vm/kernels`.
 * Entries that hold no kernel are ignored; an empty result is for the caller to
 * judge (a VM test fails on it, see test/vm-harness.test.ts).
 */
export function findKernels(env: NodeJS.ProcessEnv = process.env): KernelImage[] {
  const list = env.PAGEREF_KERNELS;
  const roots = list ? list.split(':').filter((s) => s !== '') : [defaultKernelsDir()];
  const seen = new Set<string>();
  const kernels: KernelImage[] = [];
  for (const root of roots) {
    for (const k of kernelsIn(root)) {
      if (seen.has(k.dir)) continue;
      seen.add(k.dir);
      kernels.push(k);
    }
  }
  return kernels.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
}

/**
 * Whether the kernel's config sets `option` (e.g. "CONFIG_DEBUG_PAGE_REF") to
 * anything but "n": y, m, or a value. Undefined when the kernel folder has no
 * config, so the answer is unknown.
 */
export function kernelHas(k: KernelImage, option: string): boolean | undefined {
  if (!k.config) return undefined;
  const name = option.startsWith('CONFIG_') ? option : `CONFIG_${option}`;
  const text = fs.readFileSync(k.config, 'utf8');
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '=')) continue;
    const value = line.slice(name.length + 1).trim();
    return value !== 'n' && value !== '';
  }
  // "# CONFIG_X is not set", or absent altogether.
  return false;
}
