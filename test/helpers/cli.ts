import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export const PAGEREF = join(__dirname, '..', '..', '..', 'bin', 'pageref.js');

export function pageref(args: string[], options: { timeoutMs?: number } = {}) {
  const run = spawnSync(process.execPath, [PAGEREF, ...args], { encoding: 'utf8', timeout: options.timeoutMs ?? 60_000 });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** The stderr lines, without empty ones. */
export function lines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim() !== '');
}
