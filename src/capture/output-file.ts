// Captures and exports hold what the kernel did: they are created 0600, and
// an existing file is replaced only when asked (--force).

import { accessSync, closeSync, constants, existsSync, fchmodSync, linkSync, lstatSync, openSync, renameSync, Stats, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

/**
 * Opens `path` for writing as a new file, mode 0600, and returns its
 * descriptor. An existing file is an error (EEXIST) unless `force`; then a
 * regular file is unlinked first, so the new one is 0600 whatever the old
 * one's mode, and nothing else is written through or deleted: a symlink,
 * device or pipe at `path` is an error.
 */
export function createOutputFile(path: string, force: boolean): number {
  if (force) {
    const existing = lstatOrUndefined(path);
    if (existing && !existing.isFile()) throw notRegularFile(path);
    if (existing) unlinkSync(path);
  }
  // O_EXCL: never through a symlink, and never over a file made since the check.
  const fd = openSync(path, 'wx', 0o600);
  // A umask such as 0277 would leave 0400: the promise is 0600 exactly.
  fchmodSync(fd, 0o600);
  return fd;
}

/**
 * createOutputFile, but the file appears at `path` with `contents` already
 * in it: they are written under a hidden name in the same folder, which is
 * then linked to `path` (failing, as O_EXCL does, if `path` exists) or, with
 * `force`, renamed over it. A process killed meanwhile leaves no file at
 * `path`, never an empty one; at most the hidden one, if killed between its
 * creation and its link. Returns the descriptor, open for appending.
 */
export function createOutputFileWith(path: string, force: boolean, contents: Uint8Array): number {
  const existing = force ? lstatOrUndefined(path) : undefined;
  if (existing && !existing.isFile()) throw notRegularFile(path);
  const hidden = join(dirname(path), `.${basename(path)}.${process.pid}.partial`);
  const fd = openSync(hidden, 'wx', 0o600);
  try {
    fchmodSync(fd, 0o600);
    for (let done = 0; done < contents.length; ) done += writeSync(fd, contents, done);
    if (force) renameSync(hidden, path);
    else publishWithoutReplacing(hidden, path);
  } catch (error) {
    closeSync(fd);
    if (existsSync(hidden)) unlinkSync(hidden);
    throw error;
  }
  return fd;
}

/** Gives `hidden` the name `path` unless a file has it: a hard link where the file system has them. */
function publishWithoutReplacing(hidden: string, path: string): void {
  try {
    linkSync(hidden, path);
    unlinkSync(hidden);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw error;
    // No hard links here: a rename, after a check that only a race can beat.
    if (lstatOrUndefined(path)) throw alreadyExists(path);
    renameSync(hidden, path);
  }
}

/**
 * What createOutputFile would refuse, checked without creating anything, for
 * a writer that creates its file later (a capture appears with its header):
 * an existing file (a dangling symlink too) without `force`, anything but a
 * regular file with it, and a folder that cannot take a new file.
 */
export function checkOutputFile(path: string, force: boolean): void {
  const existing = lstatOrUndefined(path);
  if (existing && !force) throw alreadyExists(path);
  if (existing && !existing.isFile()) throw notRegularFile(path);
  accessSync(dirname(path), constants.W_OK | constants.X_OK);
}

/**
 * Whether two paths name one file: the same path once resolved, or one
 * existing file reached two ways (a link). An output that is the input, or
 * another output of the same command, would destroy what it is made from.
 */
export function sameFile(a: string, b: string): boolean {
  if (resolve(a) === resolve(b)) return true;
  try {
    const [sa, sb] = [statSync(a), statSync(b)];
    return sa.dev === sb.dev && sa.ino === sb.ino;
  } catch {
    return false;
  }
}

/** The error openSync(path, 'wx') throws for an existing file, for the checks made without it. */
function alreadyExists(path: string): Error {
  return Object.assign(new Error(`EEXIST: file already exists, open '${path}'`), { code: 'EEXIST', syscall: 'open', path });
}

function notRegularFile(path: string): Error {
  return Object.assign(new Error(`${path} is not a regular file; pageref replaces only regular files`), { code: 'EEXIST', syscall: 'open' });
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
