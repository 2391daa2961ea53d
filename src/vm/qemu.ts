// Boot a test kernel in QEMU and run one shell script in it (VM tests, `pageref demo`).
//
// The guest's root is the host's file system, read-only over 9p, so the script
// runs the host's node and this checkout; a second, writable 9p share brings
// files back. vm/guest-init.sh is PID 1 on the guest side; the recipe and its
// traps are in ../shared/vm/README.md.

import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { KernelImage, repoRoot } from './kernels';

export interface VmOptions {
  kernel: KernelImage;
  /** Shell script body, run by /bin/sh as root in the guest with cwd = the checkout. */
  script: string;
  /** Limit for the whole run, boot included; past it QEMU is killed and VmError thrown. */
  timeoutSec: number;
  /** Guest memory (default 512). */
  memoryMiB?: number;
  /** Guest CPUs (default 2). */
  cpus?: number;
  /** CMA area `reserved` to create with cma=N M (default 256; 0 for none). */
  cmaMiB?: number;
  /** Host folder shared as $PAGEREF_OUT (created if needed); default a fresh temporary folder. */
  outDir?: string;
  /** Extra kernel command-line arguments, e.g. "transparent_hugepage=never". */
  kernelArgs?: string[];
  /**
   * Guest time counts instructions (QEMU -icount shift=0: 1 ns each) instead
   * of following the host clock: timings in the guest then do not depend on
   * what else the host is doing. For benchmarks; slower.
   */
  instructionClock?: boolean;
}

export interface VmResult {
  /** The script's exit status. */
  exitCode: number;
  /** The script's stdout and stderr (job.log). */
  log: string;
  /** The serial console (kernel messages, guest-init lines), at most the last 256 KiB. */
  console: string;
  /** Host folder that was $PAGEREF_OUT in the guest. */
  outDir: string;
  /** Wall-clock seconds QEMU ran, boot included. */
  seconds: number;
  /**
   * What guest-init could not set up (a mount, the CMA debugfs files), one item
   * each; empty when all was there. The script still ran: callers that need an
   * item must check it here rather than trust a pass.
   */
  preconditions: string[];
}

/** The VM could not be run, or the script never completed in it. The message is one line. */
export class VmError extends Error {
  /** Serial console text so far, when the guest got that far. */
  readonly console: string;
  constructor(message: string, consoleText = '') {
    super(message);
    this.name = 'VmError';
    this.console = consoleText;
  }
}

/** Guest side of the out share, as $PAGEREF_OUT. */
export const GUEST_OUT = '/run/out';

const CONSOLE_LIMIT = 256 * 1024;
// The PATH guest-init gives the job; the host's node is added when it lives elsewhere.
const GUEST_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Runs `options.script` in a fresh VM; see VmOptions and VmResult for the contract. */
export async function runInVm(options: VmOptions): Promise<VmResult> {
  const { kernel, timeoutSec } = options;
  const memoryMiB = options.memoryMiB ?? 512;
  const cpus = options.cpus ?? 2;
  const cmaMiB = options.cmaMiB ?? 256;

  const qemu = findInPath('qemu-system-x86_64');
  if (!qemu) {
    throw new VmError('qemu-system-x86_64 not found in PATH: install the Debian package qemu-system-x86');
  }
  if (!isFile(kernel.bzImage)) throw new VmError(`kernel ${kernel.name}: no bzImage at ${kernel.bzImage}`);
  const init = path.join(repoRoot(), 'vm', 'guest-init.sh');
  if (!isFile(init)) throw new VmError(`guest init script missing: ${init}`);
  const repo = repoRoot();

  const outDir = options.outDir ? path.resolve(options.outDir) : fs.mkdtempSync(path.join(os.tmpdir(), 'pageref-vm-'));
  fs.mkdirSync(outDir, { recursive: true });
  // A job.rc left by an earlier run would pass for this one.
  for (const f of ['job.rc', 'job.log', 'preconditions.txt']) fs.rmSync(path.join(outDir, f), { force: true });
  fs.writeFileSync(path.join(outDir, 'job.sh'), jobScript(options.script));

  const cmdline = [
    'console=ttyS0',
    'quiet',
    'panic=-1', // a dying PID 1 reboots at once, and -no-reboot turns that into QEMU exiting
    // With KASLR the kernel lands at a random physical address, and in one boot
    // out of three or so on 6.1 no 256 MiB of 512 stayed contiguous: "cma: Failed
    // to reserve 256 MiB", and no cma/reserved in debugfs.
    'nokaslr',
    'root=hostroot',
    'rootfstype=9p',
    'rootflags=trans=virtio,version=9p2000.L,msize=262144,cache=loose',
    'ro',
    kernelArg('init', init),
    kernelArg('pageref_repo', repo), // no dot in the key, or init never sees it
    ...(cmaMiB > 0 ? [`cma=${cmaMiB}M`] : []),
    ...(options.kernelArgs ?? []),
  ].join(' ');

  const args = [
    // No nested KVM on the CI machines (-enable-kvm hangs), so TCG. One host
    // thread for all vCPUs: with multi-threaded TCG the guest sometimes died
    // with an invalid opcode inside a 5-byte nop in __schedule, as the kernel
    // rewrote its own code (static keys flipped as tracing started/stopped)
    // while another vCPU ran it.
    '-accel', 'tcg,thread=single', '-cpu', 'max',
    ...(options.instructionClock ? ['-icount', 'shift=0,sleep=off'] : []),
    '-m', `${memoryMiB}M`,
    '-smp', String(cpus),
    '-nographic',
    '-no-reboot',
    '-nic', 'none', // no NIC: skips the iPXE option ROM at boot
    '-kernel', kernel.bzImage,
    '-append', cmdline,
    // multidevs=remap: without it inodes of different host devices collide and
    // the guest's /proc and /sys go wrong.
    '-fsdev', `local,id=hostroot,path=${qemuOpt('/')},security_model=none,readonly=on,multidevs=remap`,
    '-device', 'virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot',
    '-fsdev', `local,id=out,path=${qemuOpt(outDir)},security_model=none`,
    '-device', 'virtio-9p-pci,fsdev=out,mount_tag=out',
  ];

  const started = Date.now();
  const { consoleText, timedOut, ended, spawnError } = await runQemu(qemu, args, timeoutSec);
  const seconds = (Date.now() - started) / 1000;
  const preconditions = readIfExists(path.join(outDir, 'preconditions.txt'))
    .split('\n')
    .filter((l) => l !== '');

  if (spawnError) throw new VmError(`cannot start ${qemu}: ${spawnError.message}`);
  if (timedOut) {
    throw new VmError(
      `kernel ${kernel.name}: guest did not finish within ${timeoutSec} s; console ends: ${tailLines(consoleText, 5)}`,
      consoleText,
    );
  }
  const rc = readIfExists(path.join(outDir, 'job.rc')).trim();
  if (rc === '') {
    const why = preconditions.length > 0 ? `missing: ${preconditions.join('; ')}; ` : '';
    throw new VmError(
      `kernel ${kernel.name}: guest never ran the job (no job.rc; QEMU ended with ${ended}); ${why}console ends: ${tailLines(consoleText, 5)}`,
      consoleText,
    );
  }
  return {
    exitCode: Number(rc),
    log: readIfExists(path.join(outDir, 'job.log')),
    console: consoleText,
    outDir,
    seconds,
    preconditions,
  };
}

interface QemuRun {
  consoleText: string;
  timedOut: boolean;
  /** How QEMU ended, e.g. "exit status 1" or "signal SIGTERM". */
  ended: string;
  spawnError?: Error;
}

function runQemu(qemu: string, args: string[], timeoutSec: number): Promise<QemuRun> {
  return new Promise((resolve) => {
    // coreutils timeout as well as our timer: it still stops QEMU if this
    // process dies without killing its child.
    const child = spawn('timeout', ['--kill-after=5', String(Math.ceil(timeoutSec) + 10), qemu, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    const take = (chunk: Buffer): void => {
      text += chunk.toString('latin1');
      if (text.length > 2 * CONSOLE_LIMIT) text = text.slice(-CONSOLE_LIMIT);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);

    let timedOut = false;
    let killer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM'); // timeout(1) passes it on to QEMU
      killer = setTimeout(() => child.kill('SIGKILL'), 3000);
    }, timeoutSec * 1000);

    let spawnError: Error | undefined;
    child.on('error', (err) => {
      spawnError = err;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (killer) clearTimeout(killer);
      // Exit 124 is timeout(1) firing before our timer (it should not, being later).
      resolve({
        consoleText: cleanConsole(text.slice(-CONSOLE_LIMIT)),
        timedOut: timedOut || code === 124,
        ended: howEnded(code, signal, text),
        spawnError,
      });
    });
  });
}

function howEnded(code: number | null, signal: NodeJS.Signals | null, consoleText: string): string {
  // QEMU exits with status 0 on SIGTERM and says so only on stderr: someone's
  // `pkill qemu` must not read as a clean exit.
  const said = /terminating on signal (\d+)(?: from pid \d+ \(([^)]*)\))?/.exec(consoleText);
  if (said) return `signal ${said[1]}${said[2] ? ` sent by ${said[2]}` : ''}`;
  if (signal) return `signal ${signal}`;
  // timeout(1) reports a child killed by signal N as status 128+N.
  return code !== null && code > 128 ? `signal ${code - 128}` : `exit status ${code}`;
}

/** job.sh: the caller's script, with the host's node reachable under its usual name. */
function jobScript(script: string): string {
  const nodeDir = path.dirname(process.execPath);
  const head = GUEST_PATH.includes(nodeDir) ? '' : `PATH=${shellQuote(nodeDir)}:"$PATH"; export PATH\n`;
  return `${head}${script}\n`;
}

/** key=value for the kernel command line; the kernel strips double quotes around a value. */
function kernelArg(key: string, value: string): string {
  if (/["\n\r\t]/.test(value) || /[^\x20-\x7e]/.test(value)) {
    throw new VmError(`cannot pass ${JSON.stringify(value)} on the kernel command line (quote or non-printable character)`);
  }
  return value.includes(' ') ? `${key}="${value}"` : `${key}=${value}`;
}

/** A value inside a QEMU option list, where a comma is written twice. */
function qemuOpt(value: string): string {
  return value.replace(/,/g, ',,');
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Drops the BIOS's terminal escapes and carriage returns so the text reads as lines. */
function cleanConsole(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b(\[[0-9;?]*[A-Za-z]|c)/g, '').replace(/\r/g, '');
}

function tailLines(s: string, n: number): string {
  const lines = s.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return lines.length === 0 ? '(nothing)' : lines.slice(-n).join(' | ');
}

function findInPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir) continue;
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not in this folder
    }
  }
  return undefined;
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function readIfExists(p: string): string {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}
