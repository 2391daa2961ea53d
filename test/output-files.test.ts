// Every file pageref writes (record's and import's captures, export's pprof
// and Perfetto files) is created 0600 whatever the umask, never overwrites
// an existing file without --force, and never writes through a symlink.

import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CaptureWriter } from '../src/capture/capture-writer';
import { EventType } from '../src/record/event-types';
import { lines, PAGEREF } from './helpers/cli';
import { tempPath, testHeader, writeCapture } from './helpers/capture';
import { rawRecord } from './helpers/records';

const FIXTURE = join(__dirname, '..', '..', 'test', 'fixtures', 'ftrace-seed.txt');

function capture(): string {
  const path = tempPath('in.pgref');
  writeCapture(path, [
    rawRecord({ type: EventType.PageRefMod, tsNs: 1_000_001_000n, pfn: 0x17ac9n, val: 1, count: 2, pid: 9018, tgid: 9018, comm: 'holder', stackId: 1 }),
    rawRecord({ type: EventType.TestPagesIsolated, tsNs: 1_000_002_000n, pfn: 0x17800n, word1: 0x17c00n, word2: 0x17ac9n, pid: 9131, tgid: 9131 }),
  ]);
  return path;
}

/** pageref under `umask`, so that the mode is pageref's doing and not the test runner's umask. */
function pagerefWithUmask(umask: string, args: string[]) {
  const run = spawnSync('sh', ['-c', `umask ${umask} && exec "$0" "$@"`, process.execPath, PAGEREF, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

const writers: [string, (out: string) => string[]][] = [
  ['import', (out) => ['import', FIXTURE, '-o', out]],
  ['export --perfetto', (out) => ['export', capture(), '--perfetto', out]],
  ['export --pprof', (out) => ['export', capture(), '--pprof', out]],
];

const mode = (path: string) => statSync(path).mode & 0o777;

for (const [name, argsFor] of writers) {
  test(`${name}: creates its file 0600 under any umask`, (t) => {
    for (const umask of ['000', '022', '277']) {
      const out = tempPath('new.out');
      const run = pagerefWithUmask(umask, argsFor(out));
      t.is(run.status, 0, run.stderr);
      t.is(mode(out), 0o600, `umask ${umask}`);
    }
  });

  test(`${name}: leaves an existing file alone without --force, and replaces it with a 0600 file with --force`, (t) => {
    const out = tempPath('old.out');
    writeFileSync(out, 'precious');
    chmodSync(out, 0o644);
    const refused = pagerefWithUmask('022', argsFor(out));
    t.is(refused.status, 2, refused.stderr);
    t.deepEqual(lines(refused.stderr), [`pageref: ${out} exists; pass --force to replace it`]);
    t.is(readFileSync(out, 'utf8'), 'precious');
    t.is(mode(out), 0o644);
    const forced = pagerefWithUmask('022', [...argsFor(out), '--force']);
    t.is(forced.status, 0, forced.stderr);
    t.not(readFileSync(out, 'utf8'), 'precious');
    t.is(mode(out), 0o600, 'the replaced file kept the old file\'s mode');
  });

  test(`${name}: never writes through a symlink, with or without --force`, (t) => {
    const target = tempPath('target');
    writeFileSync(target, 'precious');
    const link = tempPath('link.out');
    symlinkSync(target, link);
    const forced = pagerefWithUmask('022', [...argsFor(link), '--force']);
    t.is(forced.status, 1, forced.stderr);
    t.deepEqual(lines(forced.stderr), [`pageref: ${link} is not a regular file; pageref replaces only regular files`]);
    t.is(readFileSync(target, 'utf8'), 'precious');
    t.true(lstatSync(link).isSymbolicLink());
    // A dangling link does not "exist", but O_EXCL still refuses to create its target.
    const nowhere = tempPath('nowhere');
    const dangling = tempPath('dangling.out');
    symlinkSync(nowhere, dangling);
    const run = pagerefWithUmask('022', argsFor(dangling));
    t.is(run.status, 1, run.stderr);
    t.is(lines(run.stderr).length, 1, run.stderr);
    t.regex(run.stderr, /EEXIST/);
    t.false(existsSync(nowhere));
  });
}

// record cannot trace on this machine's kernel; its file is made by the same CaptureWriter.
test('record\'s writer: 0600 under a umask that would take more, an old 0644 file replaced by a 0600 one, never through a symlink', (t) => {
  const previous = process.umask(0o277);
  try {
    const path = tempPath('umask.pgref');
    const writer = new CaptureWriter(path);
    writer.header(testHeader());
    writer.end({});
    t.is(mode(path), 0o600);
  } finally {
    process.umask(previous);
  }
  const old = tempPath('old.pgref');
  writeFileSync(old, 'precious');
  chmodSync(old, 0o644);
  t.is((t.throws(() => new CaptureWriter(old)) as NodeJS.ErrnoException).code, 'EEXIST');
  t.is(readFileSync(old, 'utf8'), 'precious');
  const writer = new CaptureWriter(old, { force: true });
  writer.header(testHeader());
  writer.end({});
  t.is(mode(old), 0o600);
  const target = tempPath('target');
  writeFileSync(target, 'precious');
  const link = tempPath('link.pgref');
  symlinkSync(target, link);
  t.throws(() => new CaptureWriter(link, { force: true }), { message: `${link} is not a regular file; pageref replaces only regular files` });
  t.is(readFileSync(target, 'utf8'), 'precious');
});

test('a capture appears with its header in it, and nothing else is left in its folder; a file that appeared meanwhile is kept', (t) => {
  const path = tempPath('appears.pgref');
  const folder = dirname(path);
  const before = new Set(readdirSync(folder));
  const writer = new CaptureWriter(path);
  t.false(existsSync(path), 'the constructor creates nothing');
  writer.header(testHeader());
  // Before any further write the file is already a capture that reads back.
  t.is(readFileSync(path).subarray(0, 8).toString('latin1'), 'PAGEREF\n');
  t.true(writer.bytesWritten > 8 && statSync(path).size === writer.bytesWritten);
  writer.end({});
  t.deepEqual(readdirSync(folder).filter((name) => !before.has(name)), ['appears.pgref']);

  // Another file took the name between the check and the header: it stays, and no hidden file is left.
  const raced = tempPath('raced.pgref');
  const late = new CaptureWriter(raced);
  writeFileSync(raced, 'precious');
  t.is((t.throws(() => late.header(testHeader())) as NodeJS.ErrnoException).code, 'EEXIST');
  t.is(readFileSync(raced, 'utf8'), 'precious');
  t.deepEqual(readdirSync(dirname(raced)).filter((name) => name.includes('.partial')), []);
});
