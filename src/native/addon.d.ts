// Types of the native addon built from native/ (build/Release/pageref.node).
// Arguments are validated in TypeScript (src/native/tracer.ts) before they
// reach it; the C++ checks them again and throws TypeError.

/** Options for one tracing session; validated by src/native/tracer.ts. */
export interface NativeTracerOptions {
  /** Event names (as in bpf/pageref.h) whose programs are loaded and attached. At least one. */
  events: string[];
  /** Ring buffer size in bytes: a power of two, a multiple of the page size. */
  ringBytes: number;
  /** Entries of the stack map; 0 turns stacks off (stack_id is PAGEREF_STACK_NONE). */
  stackEntries: number;
  /** Only page_ref events of these processes (tgid); empty: all. */
  pids: number[];
  /** Only page_ref events of tasks with these comm values (at most 15 bytes); empty: all. */
  comms: string[];
  /** Only page_ref events with pfnMin <= pfn <= pfnMax. */
  pfnMin: number;
  pfnMax: number;
}

/** Summed over CPUs, one row per event type in bpf/pageref.h order. */
export interface NativeCounters {
  seen: number[];
  filtered: number[];
  emitted: number[];
  dropped: number[];
  stackLost: number[];
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
  /** Kernel instruction pointers of one stack, innermost first, or null if the id is unknown. */
  readStack(stackId: number): BigUint64Array | null;
  readCounters(): NativeCounters;
  /**
   * Detaches every program: no record is written after it returns, while the
   * ring buffer, stacks and counters stay readable until close(). Idempotent.
   */
  detach(): void;
  /** Events whose programs are attached. */
  readonly attached: string[];
  close(): void;
}

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
/** [subsystem, event] per event type, in enum order. */
export const events: Array<[string, string]>;
export const stackDepth: number;
export const stackNone: number;
export const libbpfVersion: string;
