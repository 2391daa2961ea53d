// ftrace text as a record source: the page_ref, test_pages_isolated and cma
// events of /sys/kernel/tracing/trace, trace_pipe, `trace-cmd report` or an
// old mail (the seed commit's example), turned into the same EventBatch
// stream a live session or a capture produces, so every sink reads it.
//
// Shapes taken:
//   comm-pid [cpu] TIMESTAMP: event: fields                        (no irq-info columns; the seed, trace-cmd)
//   comm-pid [cpu] d..1. TIMESTAMP: event: fields                  (the irqs-off/need-resched/... columns)
//   comm-pid (tgid) [cpu] ... TIMESTAMP: event: fields             (options/record-tgid)
//   ... TIMESTAMP: <stack trace>   then " => frame" lines          (options/stacktrace)
//   ... TIMESTAMP: kernel_stack: [<stack trace >]  then "=> frame"  (the seed, trace-cmd report)
//   " => frame" lines right after an event line                    (the seed's second stack)
//   comm-pid cpu d..1. 123us : event: fields                       (options/latency-format)
// Frames: "func", "func+0x1f/0x30 [mod]", "func (ffffffff8117c9e4)", "func+0x1f/0x30 <ffffffff...>";
// addresses are dropped (they reveal the KASLR base), offsets kept as "func+0x1f".
// Page flags: numeric (the seed's "stale" kernels, trace-cmd) or names joined by "|".
// Pointers: "(nil)", "(null)", raw "0xffff8880..." (trace-cmd, hash-ptr off) or hashed
// "%p" ("00000000a1b2c3d4"); all go through the capture's keyed PointerHasher.

import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { allocateBatch, EventBatch, NO_PFN } from '../record/event-batch';
import { EVENT_COUNT, EVENT_NAMES, EventType, eventTypeOf } from '../record/event-types';
import { PointerHasher } from '../record/pointer-hash';
import { StringTable } from '../record/string-table';
import type { CaptureSink } from '../stream/capture-sink';
import { CaptureHeader, FORMAT_VERSION, KernelCounters } from '../capture/schema';
import { FLAG_TABLE_RELEASES, pageFlagTable } from '../top/page-flags';

/** A line --strict refuses, or a file that is not ftrace text at all. */
export class FtraceTextError extends Error {
  override name = 'FtraceTextError';
}

export interface FtraceImportOptions {
  /** Names the text in the header ("ftrace text: FILE"). */
  name: string;
  /** The kernel the text came from: the header's release, and the table for symbolic page flags. */
  kernelRelease?: string;
  /** A malformed line is fatal instead of a warning. */
  strict?: boolean;
  /** Wall-clock time (µs) to call the start; ftrace text has none. */
  startTimeUnixUs?: number;
  commandLine?: string[];
  batchSize?: number;
  pointerKey?: Uint8Array;
  /** Called for each warning (malformed lines and the like), with the line number in the text. */
  onWarning?: (message: string) => void;
  /** Aborted (SIGINT, SIGTERM): stop reading and finish the capture with what was read; the reason is the stop reason. */
  signal?: AbortSignal;
}

export interface FtraceImportResult {
  lines: number;
  /** Imported events by name, every pageref event name present. */
  events: Record<string, number>;
  /** Events of other names, counted and skipped. */
  unknownEvents: Record<string, number>;
  /** Lines that were neither events, stack frames, comments nor known banners. */
  malformed: number;
  /** Distinct stacks in the capture. */
  stacks: number;
  /** Events with a stack. */
  eventsWithStacks: number;
  /** Events the kernel reported lost ("CPU:N [LOST M EVENTS]"). */
  lostEvents: number;
  /** Nanoseconds from the first event to the last. */
  spanNs: number;
  /** The first 20 warnings. */
  warnings: string[];
  /** All the warnings, those past the first 20 too. */
  warningCount: number;
  /** Why reading stopped: "end of ftrace text", or the signal that stopped it ("SIGINT", "SIGTERM"). */
  stopReason: string;
}

const DEFAULT_BATCH = 4096;
const END_OF_TEXT = 'end of ftrace text';
const MAX_WARNINGS_KEPT = 20;

// comm-pid, an optional (tgid) column, [cpu], optional irq-info columns, seconds.micros, then the event.
// (?=\S) pins the leading \s* to all the leading blanks: without it a long blank
// line was retried from every shorter prefix, seconds for a line of 20,000 tabs.
const EVENT_LINE = /^\s*(?=\S)(.*?)-(\d+)\s+(?:\(\s*(\d+|-+)\)\s+)?\[(\d+)\]\s+(?:(\S{1,6})\s+)?(\d+)\.(\d+):\s+(.*)$/;
// options/latency-format: comm (at most 8 characters), pid, cpu and the irq-info columns run
// together, then microseconds since the buffer started and a delay mark.
const LATENCY_LINE = /^\s*(?=\S)(.*?)-(\d+)\s+(\d+)(\S{4,5})\s+(\d+)us[ +!#*@$]?:\s+(.*)$/;
// What follows the timestamp: "name: fields", or a stack header of the stacktrace/userstacktrace options.
const EVENT_BODY = /^(?:(\w+):|<(stack trace|user stack trace)\s*>)\s*(.*)$/;
// The frame is trimmed in code: a lazy (.*?)\s*$ rescans every blank run to the end, quadratic in it.
const STACK_FRAME = /^\s*=>(.*)$/;
const BANNERS = [
  /^#/,
  /^\s*$/,
  /^cpus=\d+\s*$/, // trace-cmd report's first line
  /^version = \d+\s*$/,
  /^\s*CPU\s*\d+ is empty\s*$/,
  /^\s*CPU\d+ data recorded at offset=/,
  /^\s*\d+ bytes in size/,
  /^#{3,} CPU \d+ buffer started #{3,}\s*$/,
];
const ENTRIES = /^#\s*entries-in-buffer\/entries-written:\s*(\d+)\/(\d+)/;
const LOST = /^\s*CPU:\s*(\d+)\s*\[LOST (\d+) EVENTS\]\s*$/;

interface EventRef {
  batch: EventBatch;
  index: number;
}

/**
 * Takes ftrace text a line at a time and drives a sink. Stack blocks come
 * after their event and belong to the latest event on the same CPU (the
 * per-CPU buffers are merged by time, so another CPU's event may sit
 * between them); two batches are kept so a stack can still reach an event
 * of the batch before, which is why memory stays at two batches plus the
 * distinct stacks.
 */
export class FtraceTextParser {
  private readonly strings = new StringTable();
  private readonly hasher: PointerHasher;
  private readonly batchSize: number;
  private readonly flagTable: readonly string[] | undefined;
  private current: EventBatch;
  private filled = 0;
  private previous: { batch: EventBatch; length: number } | undefined;
  private readonly stackIds = new Map<string, number>();
  private newStacks: { id: number; frames: string[] }[] = [];
  private readonly lastEventOnCpu = new Map<number, EventRef | null>();
  private lastEventLine: EventRef | null = null;
  /** The block being read: frames and the event it goes to (null: an event not imported). */
  private stackBlock: { frames: string[]; target: EventRef | null; line: number } | undefined;
  private readonly commByPid = new Map<number, number>();
  private firstNs: number | undefined;
  private lastNs = 0;
  private readonly counts = new Array<number>(EVENT_COUNT).fill(0);
  private readonly unknown = new Map<string, number>();
  private readonly warnedFlags = new Set<string>();
  private result: FtraceImportResult;
  private lineNo = 0;
  private headerWritten = false;

  constructor(private readonly sink: CaptureSink, private readonly options: FtraceImportOptions) {
    this.hasher = new PointerHasher(options.pointerKey);
    this.batchSize = options.batchSize ?? DEFAULT_BATCH;
    this.current = allocateBatch(this.batchSize);
    this.flagTable = pageFlagTable(options.kernelRelease ?? '');
    this.result = { lines: 0, events: {}, unknownEvents: {}, malformed: 0, stacks: 0, eventsWithStacks: 0, lostEvents: 0, spanNs: 0, warnings: [], warningCount: 0, stopReason: END_OF_TEXT };
  }

  line(text: string): void {
    this.lineNo++;
    if (!this.headerWritten) this.writeHeader();
    const frame = STACK_FRAME.exec(text);
    if (frame) {
      this.stackFrame(frame[1].trim());
      return;
    }
    this.finishStack();
    let match = EVENT_LINE.exec(text);
    if (!match) {
      const latency = LATENCY_LINE.exec(text);
      // Same groups as EVENT_LINE: comm, pid, tgid, cpu, irq-info, seconds, fraction, body.
      if (latency) {
        const us = Number(latency[5]);
        const [seconds, micros] = [Math.floor(us / 1e6).toString(), (us % 1e6).toString().padStart(6, '0')];
        match = [latency[0], latency[1], latency[2], undefined, latency[3], latency[4], seconds, micros, latency[6]] as unknown as RegExpExecArray;
      }
    }
    if (!match) {
      const entries = ENTRIES.exec(text);
      if (entries) {
        // The trace file's header: entries written but no longer in the buffer were overwritten.
        this.result.lostEvents += Math.max(0, Number(entries[2]) - Number(entries[1]));
        return;
      }
      const lost = LOST.exec(text);
      if (lost) {
        this.result.lostEvents += Number(lost[2]);
        this.lastEventOnCpu.set(Number(lost[1]), null);
        this.lastEventLine = null;
        return;
      }
      if (BANNERS.some((banner) => banner.test(text))) return;
      this.malformed('not an ftrace event line');
      return;
    }
    const [, commText, pidText, tgidText, cpuText, , secText, fracText, body] = match;
    const cpu = Number(cpuText);
    // The columns hold a pid in 32 bits and a cpu in 16; 2^32 s is no uptime. Beyond them the
    // numbers would wrap or become Infinity, so the line is damage.
    if (Number(pidText) > 0xffffffff || cpu > 0xffff || !(Number(secText) < 2 ** 32)) {
      this.lastEventLine = null;
      this.malformed('a pid, cpu or timestamp out of range');
      return;
    }
    const parts = EVENT_BODY.exec(body);
    if (!parts) {
      // A tracer's own lines (function: "func <-parent") are not events pageref knows.
      this.unknown.set('[tracer output]', (this.unknown.get('[tracer output]') ?? 0) + 1);
      this.lastEventOnCpu.set(cpu, null);
      this.lastEventLine = null;
      return;
    }
    const [, event, stackKind, fields] = parts;
    const pid = Number(pidText);
    const ns = Number(secText) * 1e9 + Number(fracText.padEnd(9, '0').slice(0, 9));
    if (stackKind !== undefined || event === 'kernel_stack' || event === 'user_stack') {
      // User stacks name user addresses only: nothing to keep.
      const target = stackKind === 'stack trace' || event === 'kernel_stack' ? this.lastEventOnCpu.get(cpu) ?? null : null;
      this.stackBlock = { frames: [], target, line: this.lineNo };
      this.lastEventLine = null;
      return;
    }
    const type = eventTypeOf(event);
    if (type < 0) {
      this.unknown.set(event, (this.unknown.get(event) ?? 0) + 1);
      this.lastEventOnCpu.set(cpu, null);
      this.lastEventLine = null;
      return;
    }
    const batch = this.current;
    const i = this.filled;
    if (!this.fillFields(batch, i, type, fields)) {
      this.lastEventOnCpu.set(cpu, null);
      this.lastEventLine = null;
      return;
    }
    this.firstNs ??= ns;
    this.lastNs = Math.max(this.lastNs, ns);
    batch.type[i] = type;
    batch.tsNs[i] = ns - this.firstNs;
    batch.pid[i] = pid;
    batch.tgid[i] = tgidText !== undefined && /^\d+$/.test(tgidText) ? Number(tgidText) : pid;
    batch.cpu[i] = cpu;
    batch.stackId[i] = -1;
    batch.comm[i] = this.commIndex(commText.trim(), pid);
    this.counts[type]++;
    const ref = { batch, index: i };
    this.lastEventOnCpu.set(cpu, ref);
    this.lastEventLine = ref;
    this.filled++;
    if (this.filled === this.batchSize) this.rotate();
  }

  /** Flushes everything, writes the trailer, and returns what was imported; `stopReason` when reading stopped before the end. */
  end(stopReason = END_OF_TEXT): FtraceImportResult {
    if (!this.headerWritten) this.writeHeader();
    this.finishStack();
    if (this.previous) this.flush(this.previous.batch, this.previous.length);
    this.previous = undefined;
    this.flush(this.current, this.filled);
    this.filled = 0;
    const spanNs = this.firstNs === undefined ? 0 : this.lastNs - this.firstNs;
    const imported = this.counts.reduce((a, b) => a + b, 0);
    const counters = this.trailerCounters(imported);
    const lost = this.result.lostEvents > 0 ? `; the kernel lost ${this.result.lostEvents} events before they reached the text` : '';
    this.sink.end({
      trailer: {
        endTimeUnixUs: this.startUs() + Math.round(spanNs / 1000),
        stopReason: `${stopReason}${lost}`,
        counters,
      },
    });
    this.result.lines = this.lineNo;
    this.result.stopReason = stopReason;
    this.result.events = Object.fromEntries(EVENT_NAMES.map((name, type) => [name, this.counts[type]]));
    this.result.unknownEvents = Object.fromEntries([...this.unknown].sort((a, b) => b[1] - a[1]));
    this.result.stacks = this.stackIds.size;
    this.result.spanNs = spanNs;
    return this.result;
  }

  private writeHeader(): void {
    this.headerWritten = true;
    this.sink.header(this.header());
  }

  private header(): CaptureHeader {
    return {
      formatVersion: FORMAT_VERSION,
      kernelRelease: this.options.kernelRelease ?? 'unknown',
      kernelVersion: '',
      machine: '',
      hostname: '',
      // Times are relative to the first event; its ftrace timestamp is not known yet here.
      monotonicBaseNs: '0',
      bootTimeUnixUs: 0,
      startTimeUnixUs: this.startUs(),
      commandLine: this.options.commandLine ?? [],
      options: {
        pids: [],
        comms: [],
        stacks: true,
        ringBytes: 0,
        stackEntries: 0,
        pfnRanges: [],
        stacksMode: 'all',
        stackSample: 0,
        samplePfn: 1,
        sampleEvents: 1,
        aggregateSlots: 0,
        cmaAreas: [],
        attach: 'ftrace',
      },
      // Which events were enabled is not in the text: any of them may appear.
      eventsAttached: [...EVENT_NAMES],
      eventsMissing: [],
      pageSize: 4096,
      source: `ftrace text: ${this.options.name}`,
      // Every pointer of the text goes through the keyed hash.
      rawPointers: false,
    };
  }

  private startUs(): number {
    return this.options.startTimeUnixUs ?? 0;
  }

  private trailerCounters(imported: number): KernelCounters {
    const zeros = () => new Array<number>(EVENT_COUNT).fill(0);
    return {
      seen: [...this.counts],
      filtered: zeros(),
      sampledOut: zeros(),
      countedOnly: zeros(),
      emitted: [...this.counts],
      dropped: zeros(),
      stackLost: zeros(),
      aggregated: zeros(),
      aggregateOverflow: zeros(),
      recursionMisses: zeros(),
      recordsReceived: imported,
    };
  }

  // Fills the event's own columns from "key=value ..."; false (with a warning) when they do not parse.
  private fillFields(batch: EventBatch, i: number, type: number, text: string): boolean {
    const fields = parseFields(text);
    batch.name[i] = 0;
    batch.mt[i] = 0;
    batch.count[i] = 0;
    batch.mapcount[i] = 0;
    batch.val[i] = 0;
    batch.ret[i] = 0;
    if (type <= EventType.PageRefUnfreeze) {
      const pfn = hexNumber(fields.get('pfn'));
      const count = decimal(fields.get('count'));
      const mapcount = decimal(fields.get('mapcount'));
      const val = decimal(fields.get('val'));
      const flags = this.pageFlags(fields.get('flags'));
      const mapping = this.pointer(fields.get('mapping'));
      const mt = fields.has('mt') ? decimal(fields.get('mt')) : 0;
      const hasRet = type >= EventType.PageRefModAndTest && type <= EventType.PageRefFreeze;
      const ret = hasRet ? decimal(fields.get('ret')) : 0;
      const bad = [['pfn', pfn], ['count', count], ['mapcount', mapcount], ['val', val], ['flags', flags], ['mapping', mapping], ['mt', mt], ['ret', ret]].find(([, v]) => Number.isNaN(v));
      if (bad) return this.malformed(`${EVENT_NAMES[type]} without a readable ${bad[0]}`);
      // All ones is "no pfn" for a CMA event only; a page has one, and the per-pfn tables refuse -1.
      if (pfn === NO_PFN) return this.malformed(`${EVENT_NAMES[type]} without a readable pfn`);
      batch.pfn[i] = pfn;
      batch.flags[i] = flags;
      batch.mapping[i] = mapping;
      batch.count[i] = count;
      batch.mapcount[i] = mapcount;
      batch.val[i] = val;
      batch.ret[i] = ret;
      batch.mt[i] = mt;
      return true;
    }
    if (type === EventType.TestPagesIsolated) {
      const start = hexNumber(fields.get('start_pfn'));
      const end = hexNumber(fields.get('end_pfn'));
      const fin = hexNumber(fields.get('fin_pfn'));
      const bad = [['start_pfn', start], ['end_pfn', end], ['fin_pfn', fin]].find(([, v]) => Number.isNaN(v));
      if (bad) return this.malformed(`test_pages_isolated without a readable ${bad[0]}`);
      const ret = fields.get('ret');
      if (ret !== undefined && ret !== 'fail' && ret !== 'success') return this.malformed(`test_pages_isolated with ret ${quoted(ret)}, not fail or success`);
      // The kernel prints ret=fail exactly when fin_pfn < end_pfn; blame reads the pfns.
      batch.pfn[i] = start;
      batch.flags[i] = end;
      batch.mapping[i] = fin;
      return true;
    }
    // cma_alloc_start: name count align; finish/busy_retry: name pfn page count align [errorno]; release: name pfn page count.
    const name = fields.get('name');
    const count = decimal(fields.get('count'));
    const align = fields.has('align') ? decimal(fields.get('align')) : 0;
    const pfnText = fields.get('pfn');
    const pfn = pfnText === undefined ? NO_PFN : hexNumber(pfnText);
    const page = fields.get('page');
    const errorno = fields.has('errorno') ? signedDecimal(fields.get('errorno')) : 0;
    if (name === undefined) return this.malformed(`${EVENT_NAMES[type]} without a name`);
    const bad = [['count', count], ['align', align], ['pfn', pfn], ['errorno', errorno]].find(([, v]) => Number.isNaN(v));
    if (bad) return this.malformed(`${EVENT_NAMES[type]} without a readable ${bad[0]}`);
    batch.pfn[i] = pfn;
    batch.flags[i] = count;
    batch.mapping[i] = align;
    batch.name[i] = this.strings.intern(name);
    // As the BPF side: val says whether the event's struct page was not NULL.
    batch.val[i] = page === undefined || isNullPointer(page) ? 0 : 1;
    batch.ret[i] = errorno;
    return true;
  }

  private pageFlags(text: string | undefined): number {
    if (text === undefined) return NaN;
    if (text === '' || text === 'none') return 0; // show_page_flags() prints "none" for no flags
    if (/^(0x)?[0-9a-f]+$/i.test(text) && !(this.flagTable ?? NEWEST_FLAGS).includes(text)) return hexNumber(text.startsWith('0x') ? text : `0x${text}`);
    const table = this.flagTable ?? NEWEST_FLAGS;
    if (!this.flagTable && !this.warnedFlags.has('*')) {
      this.warnedFlags.add('*');
      this.warn(
        this.options.kernelRelease
          ? `symbolic page flags read with the ${NEWEST_RELEASE} flag table: there is none for kernel ${this.options.kernelRelease} (tables: ${FLAG_TABLE_RELEASES.join(', ')})`
          : `symbolic page flags read with the ${NEWEST_RELEASE} flag table; pass --kernel RELEASE for another kernel's`,
      );
    }
    let flags = 0;
    for (const name of text.split('|')) {
      if (/^0x[0-9a-f]+$/i.test(name)) {
        flags += hexNumber(name); // bits __print_flags had no name for
        continue;
      }
      const bit = table.indexOf(name);
      if (bit < 0) {
        if (!this.warnedFlags.has(name)) {
          this.warnedFlags.add(name);
          this.warn(`page flag ${quoted(name)} is not in the flag table; left out`);
        }
        continue;
      }
      flags += 2 ** bit;
    }
    return flags;
  }

  private pointer(text: string | undefined): number {
    if (text === undefined) return NaN;
    if (isNullPointer(text)) return 0;
    // Hashed %p: the kernel prints its 32-bit hash as 16 digits, the upper 8 zero.
    const hashed = /^0{8}([0-9a-f]{8})$/i.exec(text);
    const raw = hashed ? undefined : /^(?:0x)?([0-9a-f]{1,16})$/i.exec(text);
    const digits = raw?.[1] ?? hashed?.[1];
    if (digits === undefined) return NaN;
    const hi = digits.length > 8 ? parseInt(digits.slice(0, -8), 16) : 0;
    let lo = parseInt(digits.slice(-8), 16);
    // A hashed %p has lost the low type bits (anon, movable): do not let its noise claim one.
    if (hashed) lo = (lo & ~3) >>> 0;
    return this.hasher.hash(lo, hi);
  }

  private commIndex(comm: string, pid: number): number {
    // "<...>": the comm was no longer in the kernel's saved-cmdlines cache; another line may have named the pid.
    if (comm === '<...>') return this.commByPid.get(pid) ?? this.strings.intern(comm);
    const index = this.strings.intern(comm);
    if (this.commByPid.size > 65536) this.commByPid.clear();
    this.commByPid.set(pid, index);
    return index;
  }

  private stackFrame(text: string): void {
    if (!this.stackBlock) {
      // "=>" lines straight after an event line, without a stack header (the seed's second stack).
      if (this.lastEventLine) this.stackBlock = { frames: [], target: this.lastEventLine, line: this.lineNo };
      else {
        this.malformed('a stack frame with no event before it');
        this.stackBlock = { frames: [], target: null, line: this.lineNo };
        return;
      }
    }
    if (this.stackBlock.target) this.stackBlock.frames.push(frameName(text));
  }

  private finishStack(): void {
    const block = this.stackBlock;
    this.stackBlock = undefined;
    if (!block?.target || block.frames.length === 0) return;
    const frames = fromTracedFunction(block.frames);
    const key = frames.join('\n');
    let id = this.stackIds.get(key);
    if (id === undefined) {
      id = this.stackIds.size + 1;
      this.stackIds.set(key, id);
      this.newStacks.push({ id, frames });
    }
    const { batch, index } = block.target;
    if (batch.stackId[index] < 0) this.result.eventsWithStacks++;
    batch.stackId[index] = id;
  }

  private rotate(): void {
    if (this.previous) this.flush(this.previous.batch, this.previous.length);
    this.previous = { batch: this.current, length: this.filled };
    this.current = allocateBatch(this.batchSize);
    this.filled = 0;
  }

  private flush(batch: EventBatch, length: number): void {
    if (this.newStacks.length > 0) {
      this.sink.stacks(this.newStacks);
      this.newStacks = [];
    }
    if (length === 0) return;
    // A stack block may still name an event of a flushed batch: forget those references.
    for (const [cpu, ref] of this.lastEventOnCpu) if (ref?.batch === batch) this.lastEventOnCpu.set(cpu, null);
    if (this.lastEventLine?.batch === batch) this.lastEventLine = null;
    this.sink.events(length === batch.length ? batch : sliceBatch(batch, length), this.strings);
  }

  private malformed(why: string): false {
    this.result.malformed++;
    if (this.options.strict) throw new FtraceTextError(`${this.options.name}: line ${this.lineNo}: ${why}`);
    this.warn(why);
    return false;
  }

  private warn(why: string): void {
    const message = `line ${this.lineNo}: ${why}`;
    this.result.warningCount++;
    if (this.result.warnings.length < MAX_WARNINGS_KEPT) this.result.warnings.push(message);
    this.options.onWarning?.(message);
  }
}

/** Reads a text stream line by line (readline: one line in memory at a time) into the sink. */
export async function importFtraceStream(input: Readable, sink: CaptureSink, options: FtraceImportOptions): Promise<FtraceImportResult> {
  const parser = new FtraceTextParser(sink, options);
  const lines = createInterface({ input, crlfDelay: Infinity });
  const { signal } = options;
  // Closing the interface ends the loop below; the input is let go so a FIFO or a terminal waits no more.
  const stop = () => {
    lines.close();
    input.destroy();
  };
  signal?.addEventListener('abort', stop, { once: true });
  try {
    if (signal?.aborted) stop();
    else {
      for await (const line of lines) {
        parser.line(line);
        if (signal?.aborted) break;
      }
    }
  } finally {
    signal?.removeEventListener('abort', stop);
  }
  return parser.end(signal?.aborted ? String(signal.reason) : END_OF_TEXT);
}

export async function importFtraceFile(path: string, sink: CaptureSink, options: FtraceImportOptions): Promise<FtraceImportResult> {
  return importFtraceStream(createReadStream(path, { encoding: 'utf8' }), sink, options);
}

// The newest table page-flags.ts has, for symbolic flags of an unnamed kernel.
const NEWEST_RELEASE = '6.12';
const NEWEST_FLAGS = pageFlagTable(NEWEST_RELEASE) ?? [];

function parseFields(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const token of text.trim().split(/\s+/)) {
    const eq = token.indexOf('=');
    if (eq > 0) fields.set(token.slice(0, eq), token.slice(eq + 1));
  }
  return fields;
}

function hexNumber(text: string | undefined): number {
  if (text === undefined) return NaN;
  const match = /^0x([0-9a-f]{1,16})$/i.exec(text);
  if (!match) return NaN;
  const digits = match[1];
  if (/^f{16}$/i.test(digits)) return NO_PFN; // all ones: "no pfn" (a failed CMA allocation)
  const value = digits.length > 8 ? parseInt(digits.slice(0, -8), 16) * 2 ** 32 + parseInt(digits.slice(-8), 16) : parseInt(digits, 16);
  return value < 2 ** 53 ? value : NaN;
}

function decimal(text: string | undefined): number {
  return text !== undefined && /^-?\d+$/.test(text) && Math.abs(Number(text)) < 2 ** 31 ? Number(text) : NaN;
}

function signedDecimal(text: string | undefined): number {
  return decimal(text);
}

/** Text of the input in a message: quoted, and at most 40 characters of it, so a message stays one short line. */
function quoted(text: string): string {
  return `"${text.length > 40 ? `${text.slice(0, 40)}...` : text}"`;
}

function isNullPointer(text: string): boolean {
  return text === '(nil)' || text === '(null)' || /^(0x)?0+$/i.test(text);
}

/** "func+0x1f/0x30 [mod] <ffff...>" -> "func+0x1f [mod]"; "func (ffff...)" -> "func"; a bare address -> "[unknown]". */
export function frameName(text: string): string {
  // (?<!\s): an address is looked for from the start of a blank run only, not from
  // each blank in it, which made a frame with a long blank run quadratic.
  let frame = text.replace(/(?<!\s)\s*<[0-9a-fx]+>\s*$/i, '').replace(/(?<!\s)\s*\([0-9a-fx]+\)\s*$/i, '').trim();
  if (frame === '' || /^(0x)?[0-9a-f]{8,16}$/i.test(frame)) return '[unknown]';
  frame = frame.replace(/^(\S+?\+0x[0-9a-f]+)\/0x[0-9a-f]+/i, '$1');
  return frame;
}

// ftrace's stacks begin inside the tracing machinery (trace_event_raw_event_*,
// __traceiter_*); pageref's begin at the __page_ref_* function that fired
// (src/live/live-capture.ts), so imported and recorded stacks read the same.
const MACHINERY = /^(trace_event_raw_event_|__traceiter_|perf_trace_|__bpf_trace_|trace_call_bpf|bpf_trace_run)/;

function fromTracedFunction(frames: string[]): string[] {
  const pageRef = frames.findIndex((frame) => frame.startsWith('__page_ref_'));
  if (pageRef > 0) return frames.slice(pageRef);
  let first = 0;
  while (first < frames.length - 1 && MACHINERY.test(frames[first])) first++;
  return first > 0 ? frames.slice(first) : frames;
}

function sliceBatch(batch: EventBatch, length: number): EventBatch {
  const out = allocateBatch(length);
  for (const key of Object.keys(batch) as (keyof EventBatch)[]) {
    if (key === 'length') continue;
    (out[key] as Uint8Array).set((batch[key] as Uint8Array).subarray(0, length));
  }
  return out;
}
