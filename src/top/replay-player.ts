// `pageref top --replay FILE --speed X`: plays a capture into a sink at X
// times the pace it was recorded at (0: as fast as possible), on a clock of
// capture time, and says when each sampling interval of that clock ends.
// The capture is read by a worker thread (replay-worker.ts), so the main
// thread stays free for keys and drawing, and memory stays bounded.

import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { CaptureError } from '../capture/capture-reader';
import type { CaptureHeader } from '../capture/schema';
import type { EventBatch } from '../record/event-batch';
import { StringTable } from '../record/string-table';
import type { CaptureSink } from '../stream/capture-sink';
import { IN_FLIGHT, ReplayMessage, STOP } from './replay-worker';

/** How often the player looks at the clock when it plays at a pace. */
const PACE_MS = 20;

export interface ReplayOptions {
  path: string;
  /** Times the recorded pace; 0: as fast as possible. */
  speed: number;
  /** Length of a sampling interval, ns of capture time. */
  tickNs: number;
  /** An interval ended at `nowNs` (capture time): everything before it has been played. */
  onTick(nowNs: number): void;
  /** The whole capture has been played (end() was called on the sink); `lastNs` is its newest event. */
  onEnd(lastNs: number, how: string): void;
  /** Reading failed after the header (a damaged frame): the message. */
  onError(message: string): void;
}

export class ReplayPlayer {
  private readonly worker: Worker;
  private readonly control = new Int32Array(new SharedArrayBuffer(8));
  private readonly queue: ReplayMessage[] = [];
  /** Played events of the queue's first batch. */
  private offset = 0;
  private readonly strings = new StringTable();
  private nextTickNs: number;
  private lastNs = 0;
  private started = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private finished = false;
  private headerWaiter: { resolve(h: CaptureHeader): void; reject(e: Error): void } | undefined;
  /** Capture time the clock stopped at, while paused. */
  private pausedAtNs: number | undefined;

  constructor(
    private readonly sink: CaptureSink,
    private readonly options: ReplayOptions,
  ) {
    this.nextTickNs = options.tickNs;
    this.worker = new Worker(join(__dirname, 'replay-worker.js'), { workerData: { path: options.path, control: this.control.buffer } });
    this.worker.on('message', (message: ReplayMessage) => this.receive(message));
    this.worker.on('error', (error) => this.fail(error.message, false));
  }

  /** Resolves with the header once it has been played; rejects with CaptureError when the file is not a readable capture. */
  start(): Promise<CaptureHeader> {
    return new Promise((resolve, reject) => {
      this.headerWaiter = { resolve, reject };
    });
  }

  /** The capture clock: ns since the recording began, as far as played. */
  get nowNs(): number {
    if (this.finished) return this.lastNs;
    if (this.options.speed === 0) return Math.max(this.lastNs, this.nextTickNs - this.options.tickNs);
    return this.clock();
  }

  /** Stops reading and playing; the sink gets nothing more. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    Atomics.store(this.control, STOP, 1);
    Atomics.notify(this.control, IN_FLIGHT);
    void this.worker.terminate();
  }

  /** Stops the clock (nothing more is played) or starts it again where it stopped. */
  setPaused(paused: boolean): void {
    if (paused === (this.pausedAtNs !== undefined) || this.stopped) return;
    if (paused) {
      this.pausedAtNs = this.clock();
    } else {
      const at = this.pausedAtNs ?? 0;
      this.pausedAtNs = undefined;
      if (this.options.speed > 0) this.started = Date.now() - at / (1e6 * this.options.speed);
      this.pump();
    }
  }

  private clock(): number {
    if (this.pausedAtNs !== undefined) return this.pausedAtNs;
    return (Date.now() - this.started) * 1e6 * this.options.speed;
  }

  private receive(message: ReplayMessage): void {
    if (this.stopped) return;
    if (message.kind === 'error') {
      this.fail(message.message, message.captureError);
      return;
    }
    if (message.kind === 'header') {
      this.consumed();
      this.sink.header(message.header);
      this.started = Date.now();
      if (this.options.speed > 0) this.timer = setInterval(() => this.pump(), PACE_MS);
      this.headerWaiter?.resolve(message.header);
      this.headerWaiter = undefined;
      return;
    }
    this.queue.push(message);
    this.pump();
  }

  private fail(text: string, captureError: boolean): void {
    if (this.headerWaiter) {
      this.headerWaiter.reject(captureError ? new CaptureError(text) : new Error(text));
      this.headerWaiter = undefined;
      this.stop();
      return;
    }
    this.stop();
    this.options.onError(text);
  }

  private consumed(): void {
    Atomics.sub(this.control, IN_FLIGHT, 1);
    Atomics.notify(this.control, IN_FLIGHT);
  }

  /** Plays what is due by the clock, ending intervals on the way. */
  private pump(): void {
    if (this.pausedAtNs !== undefined) return;
    const target = this.options.speed === 0 ? Infinity : this.clock();
    while (!this.stopped) {
      const item = this.queue[0];
      if (!item) break;
      if (item.kind !== 'events') {
        this.queue.shift();
        this.consumed();
        this.play(item);
        continue;
      }
      const batch = item.batch;
      if (this.offset === 0 && item.newStrings.length > 0) this.strings.extend(item.newStrings);
      const limit = Math.min(target, this.nextTickNs);
      let end = this.offset;
      while (end < batch.length && batch.tsNs[end] <= limit) end++;
      if (end > this.offset) {
        this.sink.events(slice(batch, this.offset, end), this.strings);
        for (let i = this.offset; i < end; i++) if (batch.tsNs[i] > this.lastNs) this.lastNs = batch.tsNs[i];
        this.offset = end;
        if (this.stopped) return;
      }
      if (end === batch.length) {
        this.queue.shift();
        this.offset = 0;
        this.consumed();
        continue;
      }
      // The next event is later than the interval's end or than the clock.
      if (this.nextTickNs <= target) {
        this.tick();
        continue;
      }
      break;
    }
  }

  private tick(): void {
    const at = this.nextTickNs;
    this.nextTickNs += this.options.tickNs;
    this.options.onTick(at);
  }

  private play(item: ReplayMessage): void {
    switch (item.kind) {
      case 'stacks':
        this.sink.stacks(item.stacks);
        break;
      case 'counters':
        this.sink.counters(item.counters);
        break;
      case 'pfnCounts':
        for (let i = 0; i < item.totals.lastTsNs.length; i++) if (item.totals.lastTsNs[i] > this.lastNs) this.lastNs = item.totals.lastTsNs[i];
        this.sink.pfnCounts?.(item.totals);
        break;
      case 'end': {
        this.sink.end(item.end);
        // Intervals that ended before the last event still end, in order.
        while (this.nextTickNs <= this.lastNs && !this.stopped) this.tick();
        this.finished = true;
        if (this.timer) clearInterval(this.timer);
        const how = item.end.truncated ? `cut short: ${item.end.truncated}` : 'end of capture';
        this.options.onEnd(this.lastNs, how);
        break;
      }
      default:
        // header, events and errors never wait in the queue unplayed
        break;
    }
  }
}

/** Events [from, to) of a batch, as views on its columns. */
function slice(batch: EventBatch, from: number, to: number): EventBatch {
  if (from === 0 && to === batch.length) return batch;
  const out = { length: to - from } as EventBatch;
  for (const [key, value] of Object.entries(batch)) {
    if (ArrayBuffer.isView(value)) (out as unknown as Record<string, unknown>)[key] = (value as Uint8Array).subarray(from, to);
  }
  return out;
}
