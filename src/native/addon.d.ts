// Types of the native addon built from native/ (build/Release/pageref.node).
// Arguments are validated in TypeScript (src/native/tracer.ts) before they
// reach it; the C++ checks them again and throws TypeError.

/** Options for one tracing session; validated by src/native/tracer.ts. */
export interface NativeTracerOptions {
  /** Event names (as in bpf/pageref.h) whose programs are loaded and attached. At least one. */
  events: string[];
  /** Ring buffer size in bytes: a power of two, a multiple of the page size. */
  ringBytes: number;
  /** Entries of the stack map; 0 exactly when `stacks` is "none". */
  stackEntries: number;
  /** Which records get a kernel stack (enum pageref_stacks_mode in bpf/pageref.h). */
  stacks: StacksMode;
  /** stacks "sampled": records of 1 in stackSample pfns (by pfn hash) get stacks. */
  stackSample: number;
  /** Keep page_ref events of 1 in samplePfn pfns, chosen by pfn hash (1: all). */
  samplePfn: number;
  /** Keep 1 in sampleEvents page_ref events, per CPU and event type (1: all). */
  sampleEvents: number;
  /**
   * How page_ref programs attach: "btf" (tp_btf: the tracepoint's own
   * arguments, no formatted event, migrate type not computed) or
   * "tracepoint" (perf tracepoint: the formatted event). Isolation and CMA
   * events are always tracepoints.
   */
  attach: AttachMode;
  /** --aggregate: slots of the per-pfn totals (one per traced pfn), 0 for per-event records. */
  aggregateSlots: number;
  /** Only page_ref events of these processes (tgid); empty: all. */
  pids: number[];
  /** The tracer's own process (tgid), whose page_ref events are not traced (counted as filtered); 0: none. */
  selfTgid: number;
  /** Only page_ref events of tasks with these comm values (at most 15 bytes); empty: all. */
  comms: string[];
  /** Only page_ref events with start <= pfn < end of one of these (at most maxPfnRanges); empty: all.
   *  With aggregateSlots, the ranges' pfns take slots in order; without ranges a pfn's slot is the pfn. */
  pfnRanges: PfnRange[];
}

export type StacksMode = 'none' | 'all' | 'sampled' | 'armed';

export type AttachMode = 'btf' | 'tracepoint';

export interface PfnRange {
  start: number;
  end: number;
}

/** Summed over CPUs, one row per event type in bpf/pageref.h order. */
export interface NativeCounters {
  seen: number[];
  filtered: number[];
  sampledOut: number[];
  countedOnly: number[];
  emitted: number[];
  dropped: number[];
  stackLost: number[];
  aggregated: number[];
  aggregateOverflow: number[];
  /** Kernel's count of program runs skipped because a BPF program was already running on that CPU (bpf_prog_info.recursion_misses), per event type. */
  recursionMisses: number[];
}

/**
 * One loaded and attached BPF object. The constructor opens, configures,
 * loads and attaches; on failure it throws a BpfError and leaves nothing
 * loaded. close() detaches and frees everything; later calls throw. The
 * kernel also detaches everything when the process exits or is killed,
 * because every attachment is held by a file descriptor.
 */
export class NativeTracer {
  constructor(options: NativeTracerOptions);
  /**
   * Copies whole records (recordLayout.size bytes each) from the ring buffer
   * into `into`, starting at offset 0, until the ring buffer is empty or
   * `into` has no room for another record. Returns the number of bytes
   * written. Never blocks.
   */
  drain(into: Uint8Array): number;
  /**
   * From now on, drain() replaces page.mapping in every page_ref record by
   * its hash under `key` (16 bytes), the hash PointerHasher computes with
   * the same key. Throws TypeError for any other key.
   */
  hashPointers(key: Uint8Array): void;
  /** Kernel instruction pointers of one stack, innermost first, or null if the id is unknown. */
  readStack(stackId: number): BigUint64Array | null;
  readCounters(): NativeCounters;
  /**
   * --aggregate: copies the per-pfn totals (aggregateSlots entries of
   * pfnStatsLayout.size bytes) into `into`; returns the bytes copied, 0
   * without aggregation. Throws RangeError if `into` is too small.
   */
  readPfnStats(into: Uint8Array): number;
  /**
   * The share of the page_ref records' ring buffer (ringBytes; not the
   * small ring of isolation and CMA records) that records not yet drained
   * take up, 0 to 1, read from the positions the kernel keeps (producer
   * minus consumer, over ringBytes). Any CPU may add records meanwhile: it
   * is the fill at some moment of the call.
   */
  ringFill(): number;
  /** stacks "armed": the pfn ranges isolation failures have armed so far. */
  armedRanges(): PfnRange[];
  /**
   * Detaches every program: no record is written after it returns, while the
   * ring buffer, stacks and counters stay readable until close(). Idempotent.
   */
  detach(): void;
  /** Events whose programs are attached. */
  readonly attached: string[];
  close(): void;
}

/** The addon's hash of the pointer hi:lo under `key` (what hashPointers makes drain() write), as its [lo, hi] words. */
export function hashPointer(key: Uint8Array, lo: number, hi: number): [number, number];
/** zlib's crc32(initial, bytes), by carry-less multiplication where the CPU has it (native/crc32.cc). */
export function crc32(bytes: Uint8Array, initial: number): number;
/** Whether crc32 folds with PCLMULQDQ here (else it is zlib's). */
export const crc32Folds: boolean;

/** Thrown by the addon for libbpf and kernel failures. */
export interface BpfErrorFields {
  /** Positive errno. */
  errno: number;
  /** What libbpf printed (warnings and info) while the failing call ran. */
  libbpfLog: string;
  /** The verifier's log when a program failed to load, else "". */
  verifierLog: string;
}

/** Offsets and sizes from the C compiler, for the layout test. */
export const recordLayout: {
  size: number;
  fields: Record<string, { offset: number; size: number }>;
};
export const countersLayout: {
  size: number;
  fields: Record<string, { offset: number; size: number }>;
};
export const pfnStatsLayout: {
  size: number;
  fields: Record<string, { offset: number; size: number }>;
};
export const maxPfnRanges: number;
/** [subsystem, event] per event type, in enum order. */
export const events: Array<[string, string]>;
export const stackDepth: number;
export const stackNone: number;
export const libbpfVersion: string;
/**
 * Whether the kernel has BPF ring buffer maps (BPF_MAP_TYPE_RINGBUF, 5.8+),
 * by libbpf_probe_bpf_map_type(), which creates one: 1 yes, 0 no, a negative
 * errno when the probe could not tell (-EPERM without CAP_BPF).
 */
export function probeRingBuffer(): number;
