// The flight recorder of `pageref serve`: a sink on the live record stream
// that keeps the last seconds (and at most so many bytes) of raw record
// blocks in memory and, when an isolation fails or a CMA allocation is
// retried as busy, writes a capture of the window before and after it to
// --flight-dir. The records reach the sink behind it (ServeState) decoded.

import { readdirSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { CaptureWriter } from '../capture/capture-writer';
import type { CaptureHeader, KernelCounters, PfnCounts, StackEntry } from '../capture/schema';
import type { EventBatch } from '../record/event-batch';
import { isolationFailed } from '../record/event-batch';
import { EVENT_COUNT, EventType } from '../record/event-types';
import { RECORD_SIZE, RecordField } from '../record/layout';
import { RecordDecoder } from '../record/record-decoder';
import { StringTable } from '../record/string-table';
import type { CaptureSink, StreamEnd } from '../stream/capture-sink';
import { captureNowNs } from '../live/capture-clock';

export interface FlightOptions {
  /** Where capture files go; it must exist. */
  dir: string;
  /** Records kept before a failure: the last this many seconds... */
  seconds: number;
  /** ...and at most this many bytes of records (96 each). */
  bytes: number;
  /** Seconds recorded after the last failure of a window before its file is written. */
  afterSeconds: number;
  /** Files in `dir` at most; the oldest go first. */
  maxFiles: number;
  /** Bytes of files in `dir` at most; the oldest go first. */
  maxBytes: number;
}

export const DEFAULT_FLIGHT = {
  seconds: 30,
  bytes: 64 << 20,
  afterSeconds: 5,
  maxFiles: 20,
  maxBytes: 1024 << 20,
};

/** A file of the flight recorder, for /captures. */
export interface FlightFile {
  name: string;
  bytes: number;
  /** ISO 8601: when the file was written. */
  time: string;
  /** Isolation failures and CMA busy retries in it; null for a file an earlier run left. */
  failures: number | null;
}

export interface FlightStats {
  captures: number;
  deleted: number;
}

/** Flight-recorder files are named so, and only such files in --flight-dir are counted or deleted. */
const FILE_PATTERN = /^pageref-flight-\d{8}T\d{6}\.\d{3}Z(-\d+)?\.capture$/;
/**
 * Records reach the sink up to 200 ms (the live source's flush interval)
 * after their time: a window is closed by the clock only this much after
 * its deadline, so that its last records are in it.
 */
const CLOSE_SLACK_NS = 500e6;

interface Block {
  bytes: Uint8Array;
  firstNs: number;
  lastNs: number;
}

interface Window {
  blocks: Block[];
  bytesAfter: number;
  failures: number;
  firstFailureNs: number;
  deadlineNs: number;
}

export class FlightRecorder implements CaptureSink {
  private header_: CaptureHeader | undefined;
  private readonly strings = new StringTable();
  private decoder: RecordDecoder | undefined;
  private readonly ring: Block[] = [];
  private ringBytes = 0;
  private window: Window | undefined;
  private readonly stackFrames = new Map<number, string[]>();
  private latestCounters: KernelCounters | undefined;
  private readonly files: FlightFile[] = [];
  readonly stats: FlightStats = { captures: 0, deleted: 0 };

  /**
   * Adopts the flight files an earlier run left in `options.dir` (they count
   * towards the limits, oldest first by name, which is their time).
   * @param next the sink that gets every record, decoded
   * @param clockNs now, in ns since the header's monotonic base (default: CLOCK_MONOTONIC)
   * @param say a log line for each file written or deleted, and each failure to
   */
  constructor(
    private readonly next: CaptureSink,
    private readonly options: FlightOptions,
    private readonly say: (line: string) => void = () => {},
    private readonly clockNs?: () => number,
  ) {
    for (const name of readdirSync(options.dir).filter((n) => FILE_PATTERN.test(n)).sort()) {
      const stat = statSync(join(options.dir, name));
      this.files.push({ name, bytes: stat.size, time: stat.mtime.toISOString(), failures: null });
    }
  }

  /** Oldest first. */
  captures(): FlightFile[] {
    return this.files.map((f) => ({ ...f }));
  }

  header(header: CaptureHeader): void {
    this.header_ = header;
    this.decoder = new RecordDecoder(this.strings, null, BigInt(header.monotonicBaseNs));
    this.next.header(header);
  }

  stacks(entries: StackEntry[]): void {
    // Stack ids are the kernel's stack map slots; one is never reused in a session.
    for (const entry of entries) this.stackFrames.set(entry.id, entry.frames);
    this.next.stacks(entries);
  }

  /** Raw records as drained (mappings hashed): kept, and handed on decoded. */
  records(records: Uint8Array): void {
    if (!this.decoder) throw new Error('flight recorder: records before the header');
    if (records.length === 0) return;
    // The live source reuses its buffer: the ring keeps a copy.
    const bytes = records.slice();
    const batch = this.decoder.decode(bytes, bytes.length);
    this.next.events(batch, this.strings);
    this.take(bytes, batch);
  }

  events(batch: EventBatch, strings: StringTable): void {
    // Only a source without raw records (a capture file, imported text) calls this: nothing to keep.
    this.next.events(batch, strings);
  }

  counters(counters: KernelCounters): void {
    this.latestCounters = counters;
    this.next.counters(counters);
    this.tick();
  }

  pfnCounts(totals: PfnCounts): void {
    this.next.pfnCounts?.(totals);
  }

  /** Writes the file of a window still open (SIGTERM finishes files), then ends the next sink. */
  end(end: StreamEnd): void {
    if (end.trailer) this.latestCounters = end.trailer.counters;
    if (this.window) this.writeWindow(`the session ended (${end.trailer?.stopReason ?? end.truncated ?? 'stopped'}) during the window`);
    this.next.end(end);
  }

  /** Closes a window whose deadline has passed, and forgets blocks older than the seconds bound, by the clock: when no records come. */
  tick(): void {
    if (!this.header_) return;
    const now = this.now();
    if (this.window && now > this.window.deadlineNs + CLOSE_SLACK_NS) this.writeWindow('the window ended');
    this.evict(now);
  }

  private now(): number {
    return this.clockNs ? this.clockNs() : captureNowNs(this.header_!);
  }

  private take(bytes: Uint8Array, batch: EventBatch): void {
    let firstNs = Infinity;
    let lastNs = -Infinity;
    const failureTimes: number[] = [];
    for (let i = 0; i < batch.length; i++) {
      const ts = batch.tsNs[i];
      if (ts < firstNs) firstNs = ts;
      if (ts > lastNs) lastNs = ts;
      const type = batch.type[i];
      if ((type === EventType.TestPagesIsolated && isolationFailed(batch, i)) || type === EventType.CmaAllocBusyRetry) failureTimes.push(ts);
    }
    const block: Block = { bytes, firstNs, lastNs };
    if (this.window && firstNs > this.window.deadlineNs) this.writeWindow('the window ended');
    if (this.window) {
      this.window.blocks.push(block);
      this.window.bytesAfter += bytes.length;
      for (const ts of failureTimes) this.extend(this.window, ts);
      this.window.failures += failureTimes.length;
    } else if (failureTimes.length > 0) {
      const first = Math.min(...failureTimes);
      const before = this.ring.filter((b) => b.lastNs >= first - this.options.seconds * 1e9);
      this.window = { blocks: [...before, block], bytesAfter: bytes.length, failures: 0, firstFailureNs: first, deadlineNs: first + this.options.afterSeconds * 1e9 };
      for (const ts of failureTimes) this.extend(this.window, ts);
      this.window.failures = failureTimes.length;
    }
    this.ring.push(block);
    this.ringBytes += bytes.length;
    // The part after the failure is bounded like the part before it.
    if (this.window && this.window.bytesAfter >= this.options.bytes) this.writeWindow(`the records after the failure reached --flight-bytes ${this.options.bytes}`);
    this.evict(Math.max(lastNs, this.clockNs ? this.clockNs() : -Infinity));
  }

  /**
   * A failure during an open window joins it: the window stays open until
   * --flight-after seconds after the last one, but never longer than
   * --flight-seconds past its first (then a file is written and the next
   * failure opens a new window), so that failures that never stop still
   * produce files.
   */
  private extend(window: Window, failureNs: number): void {
    const limit = window.firstFailureNs + Math.max(this.options.seconds, this.options.afterSeconds) * 1e9;
    window.deadlineNs = Math.min(Math.max(window.deadlineNs, failureNs + this.options.afterSeconds * 1e9), limit);
  }

  private evict(nowNs: number): void {
    const oldest = nowNs - this.options.seconds * 1e9;
    while (this.ring.length > 0 && (this.ringBytes > this.options.bytes || this.ring[0].lastNs < oldest)) {
      this.ringBytes -= this.ring.shift()!.bytes.length;
    }
  }

  /** The bytes of records held for the time before a failure (tests read it). */
  get heldBytes(): number {
    return this.ringBytes;
  }

  /** True while records are being collected after a failure. */
  get windowOpen(): boolean {
    return this.window !== undefined;
  }

  private writeWindow(why: string): void {
    const window = this.window!;
    this.window = undefined;
    const header = this.header_!;
    // Record times are offsets from monotonicBaseNs, which was read with startTimeUnixUs.
    const name = this.fileName(header.startTimeUnixUs + window.firstFailureNs / 1000);
    const path = join(this.options.dir, name);
    // Written under a hidden name and renamed when whole: /captures and
    // `pageref blame` never see a file half written.
    const partial = join(this.options.dir, `.${name}.partial`);
    let writer: CaptureWriter | undefined;
    try {
      writer = new CaptureWriter(partial, { force: true });
      writer.header(header);
      const ids = new Set<number>();
      for (const block of window.blocks) {
        const words = new Int32Array(block.bytes.buffer, block.bytes.byteOffset, block.bytes.length / 4);
        for (let at = RecordField.stack_id.offset / 4; at < words.length; at += RECORD_SIZE / 4) if (words[at] >= 0) ids.add(words[at]);
      }
      const stacks = [...ids].flatMap((id) => {
        const frames = this.stackFrames.get(id);
        return frames ? [{ id, frames }] : [];
      });
      writer.stacks(stacks);
      for (const block of window.blocks) writer.records(block.bytes);
      const counters = this.latestCounters ?? emptyCounters();
      writer.counters(counters);
      writer.end({ trailer: { endTimeUnixUs: Date.now() * 1000, stopReason: `flight recorder: ${window.failures} isolation failures and CMA busy retries; ${why}`, counters } });
      renameSync(partial, path);
    } catch (error) {
      writer?.discard();
      this.say(`flight recorder: cannot write ${path}: ${(error as Error).message}`);
      return;
    }
    const bytes = statSync(path).size;
    this.files.push({ name, bytes, time: new Date().toISOString(), failures: window.failures });
    this.stats.captures++;
    this.say(`flight recorder: wrote ${path} (${bytes} bytes, ${window.failures} failures; ${why})`);
    this.enforceLimits();
  }

  private fileName(unixUs: number): string {
    const stamp = new Date(Math.floor(unixUs / 1000)).toISOString().replace(/[-:]/g, '');
    let name = `pageref-flight-${stamp}.capture`;
    for (let n = 1; this.files.some((f) => f.name === name); n++) name = `pageref-flight-${stamp}-${n}.capture`;
    return name;
  }

  /** Oldest first, until both limits hold (the newest file too goes if it alone is over --flight-max-bytes). */
  private enforceLimits(): void {
    const total = () => this.files.reduce((sum, f) => sum + f.bytes, 0);
    while (this.files.length > 0 && (this.files.length > this.options.maxFiles || total() > this.options.maxBytes)) {
      const oldest = this.files.shift()!;
      try {
        unlinkSync(join(this.options.dir, oldest.name));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') this.say(`flight recorder: cannot delete ${oldest.name}: ${(error as Error).message}`);
      }
      this.stats.deleted++;
      this.say(`flight recorder: deleted ${oldest.name} (limits: ${this.options.maxFiles} files, ${this.options.maxBytes} bytes)`);
    }
  }
}

function emptyCounters(): KernelCounters {
  const zeros = () => new Array<number>(EVENT_COUNT).fill(0);
  return {
    seen: zeros(), filtered: zeros(), sampledOut: zeros(), countedOnly: zeros(), emitted: zeros(), dropped: zeros(),
    stackLost: zeros(), aggregated: zeros(), aggregateOverflow: zeros(), recursionMisses: zeros(), recordsReceived: 0,
  };
}
