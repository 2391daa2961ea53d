// The reading half of `pageref top --replay`: a worker thread runs the
// ordinary capture reader (replayCapture, synchronous, frame by frame) and
// posts each sink call to the main thread, which plays them at the recorded
// pace (replay-player.ts). At most MAX_IN_FLIGHT messages wait unplayed:
// past that the worker blocks on a shared counter, so a large capture
// played slowly stays in constant memory.

import { parentPort, workerData } from 'node:worker_threads';
import { CaptureError, replayCapture } from '../capture/capture-reader';
import type { EventBatch } from '../record/event-batch';
import type { StringTable } from '../record/string-table';
import type { CaptureSink } from '../stream/capture-sink';

/** Messages posted but not yet played, at most (a batch is at most 8192 events, ~0.7 MB). */
export const MAX_IN_FLIGHT = 16;
/** control[IN_FLIGHT]: messages posted and not yet played; control[STOP]: 1 when the player wants no more. */
export const IN_FLIGHT = 0;
export const STOP = 1;

export type ReplayMessage =
  | { kind: 'header'; header: Parameters<CaptureSink['header']>[0] }
  | { kind: 'stacks'; stacks: Parameters<CaptureSink['stacks']>[0] }
  | { kind: 'events'; batch: EventBatch; newStrings: string[] }
  | { kind: 'counters'; counters: Parameters<CaptureSink['counters']>[0] }
  | { kind: 'pfnCounts'; totals: Parameters<NonNullable<CaptureSink['pfnCounts']>>[0] }
  | { kind: 'end'; end: Parameters<CaptureSink['end']>[0] }
  | { kind: 'error'; message: string; captureError: boolean };

class Stopped extends Error {}

function run(port: NonNullable<typeof parentPort>, path: string, control: Int32Array): void {
  const post = (message: ReplayMessage, transfer: ArrayBuffer[] = []) => {
    for (;;) {
      if (Atomics.load(control, STOP) !== 0) throw new Stopped();
      const inFlight = Atomics.load(control, IN_FLIGHT);
      if (inFlight < MAX_IN_FLIGHT) break;
      Atomics.wait(control, IN_FLIGHT, inFlight, 1000);
    }
    Atomics.add(control, IN_FLIGHT, 1);
    port.postMessage(message, transfer);
  };
  // Both sides' tables start with the empty string.
  let stringsSent = 1;
  const sink: CaptureSink = {
    header: (header) => post({ kind: 'header', header }),
    stacks: (stacks) => post({ kind: 'stacks', stacks }),
    events: (batch: EventBatch, strings: StringTable) => {
      const newStrings = strings.strings.slice(stringsSent);
      stringsSent = strings.strings.length;
      const columns = Object.values(batch).filter((v): v is Uint8Array => ArrayBuffer.isView(v));
      post({ kind: 'events', batch, newStrings }, [...new Set(columns.map((c) => c.buffer as ArrayBuffer))]);
    },
    counters: (counters) => post({ kind: 'counters', counters }),
    pfnCounts: (totals) => post({ kind: 'pfnCounts', totals }),
    end: (end) => post({ kind: 'end', end }),
  };
  try {
    replayCapture(path, sink);
  } catch (error) {
    if (error instanceof Stopped) return;
    port.postMessage({ kind: 'error', message: (error as Error).message, captureError: error instanceof CaptureError || isFileError(error) } satisfies ReplayMessage);
  }
}

function isFileError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException)?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code);
}

if (parentPort) {
  const { path, control } = workerData as { path: string; control: SharedArrayBuffer };
  run(parentPort, path, new Int32Array(control));
}
