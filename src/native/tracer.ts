// The TypeScript face of the native tracer: validates options before they
// reach C++, and turns the addon's errors into BpfError.

import type { AttachMode, NativeTracer, NativeTracerOptions } from './addon';
import { loadAddon } from './load-addon';
import { EVENT_NAMES } from '../record/event-types';
import { MAX_PFN_RANGES } from '../record/layout';

export { MAX_PFN_RANGES };

export type { AttachMode, NativeTracer, NativeCounters, PfnRange, StacksMode } from './addon';
/**
 * As the addon takes them, but attach may also be "auto": BTF where the
 * kernel loads it, else the perf tracepoint; and the tracer's own process is
 * always this one.
 */
export type TracerOptions = Omit<NativeTracerOptions, 'attach' | 'selfTgid'> & { attach: AttachMode | 'auto' };

/** A tracer, and how its page_ref programs were attached. */
export type OpenedTracer = NativeTracer & {
  readonly attachedBy: AttachMode;
  /** The process whose page_ref events are not traced: this one. */
  readonly selfTgid: number;
  /** attach "auto": why BTF attachment failed, when it fell back to the tracepoint. */
  readonly btfProblem?: string;
};

/** libbpf or the kernel refused: errno, what libbpf said, and the verifier's log if any. */
export class BpfError extends Error {
  override name = 'BpfError';
  constructor(
    message: string,
    readonly errno: number,
    readonly libbpfLog: string,
    readonly verifierLog: string,
  ) {
    super(message);
  }
}

const PAGE_SIZE = 4096;
const MAX_PFN = 2 ** 52;
/** Largest --max-pfns: pfn_stats is keyed by a u32 and 2^30 slots of 24 bytes are 24 GiB. */
export const MAX_AGGREGATE_SLOTS = 2 ** 30;
const STACKS_MODES = ['none', 'all', 'sampled', 'armed'];

/** The first problem with `options`, as one line, or undefined. */
export function tracerOptionsProblem(options: TracerOptions): string | undefined {
  if (options.events.length === 0) return 'no events to trace';
  const unknown = options.events.find((name) => !(EVENT_NAMES as readonly string[]).includes(name));
  if (unknown) return `unknown event ${unknown}`;
  const ring = options.ringBytes;
  if (!Number.isInteger(ring) || ring < PAGE_SIZE || ring > 2 ** 30 || (ring & (ring - 1)) !== 0) {
    return `buffer size ${ring} must be a power of two from ${PAGE_SIZE} to ${2 ** 30} bytes`;
  }
  if (!Number.isInteger(options.stackEntries) || options.stackEntries < 0 || options.stackEntries > 1 << 20) {
    return `stack entries ${options.stackEntries} must be an integer from 0 to ${1 << 20}`;
  }
  const badPid = options.pids.find((pid) => !Number.isInteger(pid) || pid <= 0 || pid > 0x3fffffff);
  if (badPid !== undefined) return `pid ${badPid} is not a process id`;
  const badComm = options.comms.find((comm) => comm.length === 0 || Buffer.byteLength(comm) > 15);
  if (badComm !== undefined) return `comm "${badComm}" must be 1 to 15 bytes (the kernel's TASK_COMM_LEN - 1)`;
  if (!STACKS_MODES.includes(options.stacks)) return `stacks "${options.stacks}" must be one of ${STACKS_MODES.join(', ')}`;
  if ((options.stacks === 'none') !== (options.stackEntries === 0)) return 'stack entries must be 0 exactly when stacks are off';
  for (const [name, value] of [['stack sample', options.stackSample], ['pfn sample', options.samplePfn], ['event sample', options.sampleEvents]] as const) {
    if (!Number.isInteger(value) || value < 1 || value > 0xffffffff) return `${name} ${value} must be an integer from 1 to ${0xffffffff}`;
  }
  if (options.pfnRanges.length > MAX_PFN_RANGES) return `${options.pfnRanges.length} pfn ranges are more than the ${MAX_PFN_RANGES} the kernel side takes`;
  for (const { start, end } of options.pfnRanges) {
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > MAX_PFN || start >= end) return `pfn range ${start}-${end} is not a valid range`;
  }
  if (!['auto', 'btf', 'tracepoint'].includes(options.attach)) return `attach "${options.attach}" must be auto, btf or tracepoint`;
  const slots = options.aggregateSlots;
  if (!Number.isInteger(slots) || slots < 0 || slots > MAX_AGGREGATE_SLOTS) return `aggregate slots ${slots} must be an integer from 0 to ${MAX_AGGREGATE_SLOTS}`;
  return undefined;
}

/**
 * Loads, configures and attaches the BPF programs for `options.events`.
 * attach "auto" tries BTF first (cheaper per event: BENCHMARKS.md) and falls
 * back to the perf tracepoint when the kernel refuses it.
 */
export function openTracer(options: TracerOptions): OpenedTracer {
  const problem = tracerOptionsProblem(options);
  if (problem) throw new RangeError(problem);
  const addon = loadAddon();
  const open = (attach: AttachMode, btfProblem?: string): OpenedTracer => {
    try {
      // Not this process's own page references: writing the capture and
      // drawing a view would otherwise feed records back (bpf/pageref.bpf.c).
      const selfTgid = process.pid;
      return Object.assign(new addon.NativeTracer({ ...options, attach, selfTgid }), { attachedBy: attach, selfTgid, btfProblem });
    } catch (error) {
      throw asBpfError(error);
    }
  };
  if (options.attach !== 'auto') return open(options.attach);
  try {
    return open('btf');
  } catch (error) {
    if (!(error instanceof BpfError)) throw error;
    return open('tracepoint', error.message);
  }
}

export function asBpfError(error: unknown): unknown {
  const fields = error as { name?: string; message?: string; errno?: number; libbpfLog?: string; verifierLog?: string };
  if (fields?.name !== 'BpfError') return error;
  return new BpfError(fields.message ?? 'BPF failure', fields.errno ?? 0, fields.libbpfLog ?? '', fields.verifierLog ?? '');
}
