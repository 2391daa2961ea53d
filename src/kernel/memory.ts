// What the running kernel says about physical memory: the highest pfn (to
// size --aggregate's per-pfn slots) and the CMA areas (for --cma).

import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CmaArea } from '../capture/schema';

const DEBUGFS = '/sys/kernel/debug';

/** Why the CMA areas could not be read: a sentence for the user. */
export class CmaAreasError extends Error {
  override name = 'CmaAreasError';
}

/**
 * One past the highest pfn of any zone, from /proc/zoneinfo ("spanned" and
 * "start_pfn:" of each zone), or undefined if it cannot be read.
 */
export function pfnLimit(zoneinfo = readOrUndefined('/proc/zoneinfo')): number | undefined {
  if (zoneinfo === undefined) return undefined;
  let limit: number | undefined;
  let spanned: number | undefined;
  for (const line of zoneinfo.split('\n')) {
    const words = line.trim().split(/\s+/);
    if (words[0] === 'Node') spanned = undefined;
    else if (words[0] === 'spanned') spanned = Number(words[1]);
    else if (words[0] === 'start_pfn:' && spanned !== undefined) {
      const end = Number(words[1]) + spanned;
      if (Number.isSafeInteger(end) && (limit === undefined || end > limit)) limit = end;
    }
  }
  return limit;
}

/**
 * The CMA areas from debugfs (cma/NAME/base_pfn and count), mounting
 * debugfs first if it is not and we may. Throws CmaAreasError saying why
 * they cannot be read.
 */
export function readCmaAreas(debugfs = DEBUGFS, mountIfNeeded = true): CmaArea[] {
  const dir = join(debugfs, 'cma');
  if (!existsSync(dir) && mountIfNeeded && !existsSync(join(debugfs, 'tracing')) && process.getuid?.() === 0) {
    try {
      execFileSync('mount', ['-t', 'debugfs', 'none', debugfs], { stdio: 'ignore' });
    } catch {
      // reported below as not mounted
    }
  }
  if (!existsSync(dir)) {
    const mounted = existsSync(join(debugfs, 'tracing')) || readdirSafe(debugfs).length > 0;
    throw new CmaAreasError(
      mounted
        ? `${dir} does not exist: the kernel has no CMA areas, or was built without CONFIG_CMA_DEBUGFS`
        : `${debugfs} is not mounted (mount -t debugfs none ${debugfs}), so the CMA areas cannot be read`,
    );
  }
  const areas: CmaArea[] = [];
  for (const name of readdirSafe(dir).sort()) {
    const basePfn = Number(readOrUndefined(join(dir, name, 'base_pfn'))?.trim());
    const count = Number(readOrUndefined(join(dir, name, 'count'))?.trim());
    if (!Number.isSafeInteger(basePfn) || !Number.isSafeInteger(count)) {
      throw new CmaAreasError(`cannot read ${join(dir, name)}/base_pfn and count`);
    }
    if (count > 0) areas.push({ name, basePfn, count });
  }
  if (areas.length === 0) throw new CmaAreasError(`${dir} lists no CMA area with pages: the kernel reserved none (cma= on its command line)`);
  return areas;
}

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
