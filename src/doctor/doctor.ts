// `pageref doctor`: can this machine trace page references, and if not,
// exactly what is missing and what to do about it. `record`, live `top` and
// live `blame` run the same checks and refuse to start with this explanation,
// privileges first: without them nothing else can be fixed.

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { constants as osConstants, release } from 'node:os';
import { EVENT_NAMES, EventName } from '../record/event-types';
import { availableEvents, findTracefs, kernelConfigValue, tracefsMounts } from '../kernel/tracefs';
import { loadAddon } from '../native/load-addon';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  /** What to do when status is not ok. */
  remedy?: string;
}

export interface DoctorReport {
  /** True when `pageref record` can trace page_ref events here. */
  ok: boolean;
  kernel: string;
  checks: Check[];
  events: { present: EventName[]; missing: EventName[] };
  /** The value of CONFIG_DEBUG_PAGE_REF ("y", "n"), or null when the config is unreadable. */
  debugPageRef: string | null;
}

const CAP_SYS_ADMIN = 21;
const CAP_PERFMON = 38;
const CAP_BPF = 39;

export interface DoctorOptions {
  /** Mount tracefs when it is missing and this process may. */
  mountTracefs?: boolean;
  /** The ring buffer probe (the addon's probeRingBuffer: 1 yes, 0 no, -errno unknown); tests pass their own. */
  probeRingBuffer?: () => number;
}

export function runDoctor(options: DoctorOptions = {}): DoctorReport {
  const kernel = release();
  const checks: Check[] = [];

  const caps = effectiveCapabilities();
  const privileged = caps !== undefined && (hasCap(caps, CAP_SYS_ADMIN) || (hasCap(caps, CAP_BPF) && hasCap(caps, CAP_PERFMON)));
  const missing = privileged ? [] : missingCapabilities(caps);
  checks.push(
    privileged
      ? { name: 'privileges', status: 'ok', detail: process.getuid?.() === 0 ? 'running as root' : 'CAP_BPF and CAP_PERFMON are effective' }
      : {
          name: 'privileges',
          status: 'fail',
          detail: `missing ${missing.join(' and ')}`,
          remedy: `run as root, or grant ${missing.length === 1 ? 'it' : 'them'} to pageref's process: AmbientCapabilities=${missing.join(' ')} in a systemd unit`,
        },
  );

  checks.push(
    existsSync('/sys/kernel/btf/vmlinux')
      ? { name: 'btf', status: 'ok', detail: '/sys/kernel/btf/vmlinux is present' }
      : { name: 'btf', status: 'fail', detail: 'the kernel exposes no BTF (/sys/kernel/btf/vmlinux)', remedy: 'use a kernel built with CONFIG_DEBUG_INFO_BTF=y' },
  );

  checks.push(ringBufferCheck(options.probeRingBuffer ?? (() => loadAddon().probeRingBuffer())));

  let tracefs = findTracefs();
  // Mounted but unreadable: tracefs is root's alone (mode 0700) unless mounted otherwise.
  const unreadable = tracefs ? undefined : tracefsMounts()[0];
  let mounted = false;
  if (!tracefs && !unreadable && options.mountTracefs && privileged) {
    mounted = tryMountTracefs();
    tracefs = findTracefs();
  }
  checks.push(
    tracefs
      ? { name: 'tracefs', status: 'ok', detail: `${tracefs}${mounted ? ' (mounted by pageref)' : ''}` }
      : unreadable
        ? { name: 'tracefs', status: 'fail', detail: `${unreadable} is mounted, but this process cannot read it`, remedy: 'run as root, or grant CAP_DAC_READ_SEARCH as well' }
        : { name: 'tracefs', status: 'fail', detail: 'tracefs is not mounted', remedy: 'mount -t tracefs nodev /sys/kernel/tracing' },
  );

  const events = tracefs ? availableEvents(tracefs) : { present: [], missing: [...EVENT_NAMES] };
  const debugPageRef = kernelConfigValue('CONFIG_DEBUG_PAGE_REF', kernel) ?? null;
  const pageRefPresent = events.present.filter((name) => name.startsWith('page_ref_'));
  if (!tracefs) {
    checks.push({ name: 'page_ref events', status: 'fail', detail: `unknown: tracefs is not ${unreadable ? 'readable' : 'mounted'}`, remedy: `${unreadable ? 'make tracefs readable' : 'mount tracefs'}, then run pageref doctor again` });
  } else if (pageRefPresent.length === 0) {
    checks.push({
      name: 'page_ref events',
      status: 'fail',
      detail: `kernel ${kernel} has no page_ref tracepoints (CONFIG_DEBUG_PAGE_REF is ${debugPageRef === null ? 'unknown: no kernel config found' : debugPageRef === 'n' ? 'not set' : debugPageRef})`,
      remedy: 'boot a kernel built with CONFIG_DEBUG_PAGE_REF=y (vm/build-kernel.sh builds one), or run `pageref demo` to see pageref in a bundled test kernel',
    });
  } else {
    checks.push({ name: 'page_ref events', status: pageRefPresent.length === 7 ? 'ok' : 'warn', detail: `${pageRefPresent.length} of 7 present` });
  }
  if (tracefs) {
    const isolation = events.present.includes('test_pages_isolated');
    checks.push(
      isolation
        ? { name: 'isolation event', status: 'ok', detail: 'page_isolation:test_pages_isolated' }
        : { name: 'isolation event', status: 'warn', detail: 'page_isolation:test_pages_isolated is missing: isolation failures will not be seen', remedy: 'a kernel with CONFIG_MEMORY_ISOLATION=y' },
    );
    const cma = events.present.filter((name) => name.startsWith('cma_'));
    checks.push(
      cma.length > 0
        ? { name: 'cma events', status: 'ok', detail: cma.join(', ') }
        : { name: 'cma events', status: 'warn', detail: 'no cma events: CMA allocations will not be seen', remedy: 'a kernel with CONFIG_CMA=y' },
    );
  }

  return {
    ok: checks.every((check) => check.status !== 'fail'),
    kernel,
    checks,
    events,
    debugPageRef,
  };
}

/**
 * Every record reaches user space through a BPF ring buffer
 * (BPF_MAP_TYPE_RINGBUF, Linux 5.8): without it nothing can be traced.
 * The probe creates one, which needs the privileges checked before.
 */
export function ringBufferCheck(probe: () => number): Check {
  const name = 'ring buffer';
  let result: number;
  try {
    result = probe();
  } catch (error) {
    return { name, status: 'warn', detail: `unknown: ${(error as Error).message.split('\n')[0]}`, remedy: 'npm run build, then run pageref doctor again' };
  }
  if (result === 1) return { name, status: 'ok', detail: 'BPF_MAP_TYPE_RINGBUF is supported' };
  if (result === 0) {
    return {
      name,
      status: 'fail',
      detail: `kernel ${release()} has no BPF ring buffer (BPF_MAP_TYPE_RINGBUF, Linux 5.8 and later), through which pageref receives every record`,
      remedy: 'boot a kernel 5.8 or newer with CONFIG_BPF_SYSCALL=y, or run `pageref demo` to see pageref in a bundled test kernel',
    };
  }
  const errno = -result;
  const code = Object.entries(osConstants.errno).find(([, value]) => value === errno)?.[0] ?? `errno ${errno}`;
  return { name, status: 'warn', detail: `unknown: the probe failed (${code})`, remedy: code === 'EPERM' ? 'run pageref doctor with CAP_BPF, or as root' : 'run pageref doctor again' };
}

export function renderDoctor(report: DoctorReport): string {
  const mark: Record<CheckStatus, string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' };
  const lines = [`pageref doctor: kernel ${report.kernel}`];
  for (const check of report.checks) {
    lines.push(`  [${mark[check.status]}] ${check.name}: ${check.detail}`);
    if (check.status !== 'ok' && check.remedy) lines.push(`         remedy: ${check.remedy}`);
  }
  lines.push(report.ok ? 'pageref can record here.' : 'pageref cannot record here.');
  return lines.join('\n') + '\n';
}

/**
 * One line for a command that loads BPF to fail with: the first failed check
 * and its remedy. Privileges come first, as "missing CAP_BPF (run as root,
 * ...)", since every other check needs them to be fixed or even read.
 */
export function doctorFailureLine(report: DoctorReport): string {
  const failed = report.checks.find((check) => check.status === 'fail');
  if (!failed) return '';
  if (failed.name === 'privileges') return `${failed.detail} (${failed.remedy})`;
  return `${failed.name}: ${failed.detail}${failed.remedy ? `; remedy: ${failed.remedy}` : ''} (see pageref doctor)`;
}

function effectiveCapabilities(): bigint | undefined {
  try {
    const match = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return match ? BigInt(`0x${match[1]}`) : undefined;
  } catch {
    return undefined;
  }
}

function hasCap(caps: bigint, cap: number): boolean {
  return ((caps >> BigInt(cap)) & 1n) === 1n;
}

function missingCapabilities(caps: bigint | undefined): string[] {
  if (caps === undefined) return ['capabilities (cannot read /proc/self/status)'];
  const missing: string[] = [];
  if (!hasCap(caps, CAP_BPF)) missing.push('CAP_BPF');
  if (!hasCap(caps, CAP_PERFMON)) missing.push('CAP_PERFMON');
  return missing.length > 0 ? missing : ['CAP_SYS_ADMIN'];
}

function tryMountTracefs(): boolean {
  try {
    execFileSync('mount', ['-t', 'tracefs', 'nodev', '/sys/kernel/tracing'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
