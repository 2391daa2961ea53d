// Commands that load BPF refuse, before anything else, to run without the
// capabilities it needs, and name the missing ones: tested for real, as an
// unprivileged user and as root with capabilities taken away (setpriv).

import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { lines, PAGEREF } from './helpers/cli';

const NOBODY = 65534;
const ROOT = process.getuid?.() === 0;

const made: string[] = [];
// The copy of the checkout alone is 65 MB.
test.after.always(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** A folder the unprivileged user owns: a file it could create there shows the refusal wrote nothing. */
function nobodyDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pageref-nobody-'));
  made.push(dir);
  if (ROOT) chownSync(dir, NOBODY, NOBODY);
  return dir;
}

/** `setpriv` switches to nobody: an unprivileged process whatever runs the tests. */
const AS_NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];

/**
 * bin/pageref.js as nobody can read it: this checkout if nobody can, else a
 * copy of what the CLI loads (a checkout under a private home is common).
 */
const nobodyPageref = (() => {
  let cached: string | undefined;
  return (): string => {
    if (cached) return cached;
    const root = dirname(dirname(PAGEREF));
    const probe = spawnSync('setpriv', [...AS_NOBODY, process.execPath, '-e', `require(${JSON.stringify(join(root, 'dist', 'src', 'cli', 'main.js'))})`], { encoding: 'utf8' });
    if (probe.status === 0) return (cached = PAGEREF);
    const copy = nobodyDir();
    for (const part of ['bin', 'dist', 'proto', 'package.json', 'node_modules', join('build', 'Release', 'pageref.node')]) {
      mkdirSync(dirname(join(copy, part)), { recursive: true });
      cpSync(join(root, part), join(copy, part), { recursive: true, dereference: true });
    }
    const chown = spawnSync('chown', ['-R', `${NOBODY}:${NOBODY}`, copy]);
    if (chown.status !== 0) throw new Error(`chown -R ${copy} failed: ${chown.stderr}`);
    return (cached = join(copy, 'bin', 'pageref.js'));
  };
})();

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** pageref as nobody; a test run by a user other than root is unprivileged already. */
function pagerefAsNobody(args: string[], cwd: string): Run {
  const run = ROOT
    ? spawnSync('setpriv', [...AS_NOBODY, process.execPath, nobodyPageref(), ...args], { cwd, encoding: 'utf8', timeout: 60_000 })
    : spawnSync(process.execPath, [PAGEREF, ...args], { cwd, encoding: 'utf8', timeout: 60_000 });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** pageref as root without `caps` (setpriv names: bpf, perfmon, sys_admin), from the bounding set too, so exec cannot regain them. */
function pagerefWithout(caps: string[], args: string[], extra: string[] = []): Run {
  const drop = caps.map((cap) => `-${cap}`).join(',');
  const run = spawnSync('setpriv', [`--inh-caps=${drop}`, `--bounding-set=${drop}`, ...extra, process.execPath, PAGEREF, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

const REMEDY = /\(run as root, or grant (it|them) to pageref's process: AmbientCapabilities=/;

for (const command of [
  ['record', '-o', 'never.pgref', '--duration', '1'],
  ['top', '--batch'],
  ['blame', '--duration', '1'],
  ['serve', '--listen', '127.0.0.1:0'],
]) {
  test(`as an unprivileged user, ${command[0]} says it lacks CAP_BPF and CAP_PERFMON, exits 1 and writes nothing`, (t) => {
    const dir = nobodyDir();
    const run = pagerefAsNobody(command, dir);
    t.is(run.status, 1, run.stderr);
    t.deepEqual(lines(run.stderr).length, 1, run.stderr);
    // serve's lines are log lines: an ISO 8601 time comes first.
    const line = command[0] === 'serve' ? run.stderr.replace(/^\d{4}-\d\d-\d\dT[\d:.]+Z /, '') : run.stderr;
    t.true(line.startsWith(`pageref ${command[0]}: missing CAP_BPF and CAP_PERFMON (run as root`), run.stderr);
    t.regex(run.stderr, REMEDY);
    t.is(run.stdout, '');
    t.false(existsSync(join(dir, 'never.pgref')));
  });
}

test('doctor as an unprivileged user names both capabilities, and that tracefs is mounted but unreadable rather than missing', (t) => {
  const run = pagerefAsNobody(['doctor', '--json'], nobodyDir());
  t.is(run.status, 1, run.stderr);
  const report = JSON.parse(run.stdout);
  const privileges = report.checks.find((c: { name: string }) => c.name === 'privileges');
  t.is(privileges.status, 'fail');
  t.is(privileges.detail, 'missing CAP_BPF and CAP_PERFMON');
  const tracefs = report.checks.find((c: { name: string }) => c.name === 'tracefs');
  const mounted = readFileSync('/proc/self/mounts', 'utf8').split('\n').some((line) => line.split(' ')[2] === 'tracefs');
  if (!mounted) t.is(tracefs.detail, 'tracefs is not mounted');
  else if (tracefs.status === 'fail') t.regex(tracefs.detail, /is mounted, but this process cannot read it$/);
  else t.is(tracefs.status, 'ok', 'a tracefs mounted readable for everyone');
  const text = pagerefAsNobody(['doctor'], nobodyDir());
  t.regex(text.stdout, /\[FAIL\] privileges: missing CAP_BPF and CAP_PERFMON\n +remedy: run as root/);
});

const rootOnly = ROOT ? test : test.skip;

rootOnly('as root without CAP_BPF (and CAP_SYS_ADMIN, which stands in for it), record names CAP_BPF alone', (t) => {
  const run = pagerefWithout(['bpf', 'sys_admin'], ['record', '-o', join(nobodyDir(), 'never.pgref'), '--duration', '1']);
  t.is(run.status, 1, run.stderr);
  t.is(lines(run.stderr).length, 1, run.stderr);
  t.true(run.stderr.startsWith('pageref record: missing CAP_BPF (run as root, or grant it'), run.stderr);
  t.notRegex(run.stderr, /PERFMON/);
  const doctor = JSON.parse(pagerefWithout(['bpf', 'sys_admin'], ['doctor', '--json']).stdout);
  t.is(doctor.checks[0].detail, 'missing CAP_BPF');
});

rootOnly('as root without CAP_PERFMON (and CAP_SYS_ADMIN), top and blame name CAP_PERFMON alone', (t) => {
  for (const args of [['top', '--batch'], ['blame', '--duration', '1']]) {
    const run = pagerefWithout(['perfmon', 'sys_admin'], args);
    t.is(run.status, 1, run.stderr);
    t.is(lines(run.stderr).length, 1, run.stderr);
    t.true(run.stderr.startsWith(`pageref ${args[0]}: missing CAP_PERFMON (run as root, or grant it`), run.stderr);
    t.notRegex(run.stderr, /CAP_BPF/);
  }
});

rootOnly('as root without CAP_BPF but with CAP_SYS_ADMIN, the privileges check passes, as the kernel lets CAP_SYS_ADMIN load BPF', (t) => {
  const doctor = JSON.parse(pagerefWithout(['bpf'], ['doctor', '--json']).stdout);
  t.is(doctor.checks[0].name, 'privileges');
  t.is(doctor.checks[0].status, 'ok');
});

rootOnly('an unprivileged user granted CAP_BPF and CAP_PERFMON passes the privileges check: capabilities are read, not the uid', (t) => {
  const granted = ['--inh-caps=+bpf,+perfmon', '--ambient-caps=+bpf,+perfmon'];
  const run = spawnSync('setpriv', [...AS_NOBODY, ...granted, process.execPath, nobodyPageref(), 'doctor', '--json'], { cwd: nobodyDir(), encoding: 'utf8' });
  const doctor = JSON.parse(run.stdout);
  t.deepEqual(doctor.checks[0], { name: 'privileges', status: 'ok', detail: 'CAP_BPF and CAP_PERFMON are effective' });
  // record then fails on the next thing nobody lacks, not on privileges.
  const record = spawnSync('setpriv', [...AS_NOBODY, ...granted, process.execPath, nobodyPageref(), 'record', '-o', 'never.pgref', '--duration', '1'], { cwd: nobodyDir(), encoding: 'utf8' });
  t.is(record.status, 1, record.stderr);
  t.notRegex(record.stderr, /missing CAP_/);
});

rootOnly('with privileges, on this machine\'s kernel (no page_ref tracepoints) record, top and blame fail with the doctor\'s explanation and remedy', (t) => {
  for (const args of [['record', '-o', join(nobodyDir(), 'never.pgref'), '--duration', '1'], ['top', '--batch'], ['blame', '--duration', '1']]) {
    const run = spawnSync(process.execPath, [PAGEREF, ...args], { encoding: 'utf8', timeout: 60_000 });
    t.is(run.status, 1, run.stderr);
    t.is(lines(run.stderr).length, 1, run.stderr);
    t.regex(run.stderr, new RegExp(`^pageref ${args[0]}: page_ref events: kernel .* has no page_ref tracepoints \\(CONFIG_DEBUG_PAGE_REF is .*\\); remedy: boot a kernel built with CONFIG_DEBUG_PAGE_REF=y`));
    t.is(run.stdout, '');
  }
});
