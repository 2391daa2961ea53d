// `pageref record`: trace live into a capture file until the duration ends,
// SIGINT or SIGTERM; the file is always finished, whatever stopped it.

import { existsSync } from 'node:fs';
import { CaptureWriter } from '../capture/capture-writer';
import { doctorFailureLine, runDoctor } from '../doctor/doctor';
import { runLiveCapture } from '../live/live-capture';
import { stopOnSignals } from '../live/stop-signals';
import { BpfError, TracerOptions, tracerOptionsProblem } from '../native/tracer';
import type { EventName } from '../record/event-types';
import { UsageError } from './arguments';

export interface RecordArgs {
  output: string;
  durationSec?: number;
  pids: number[];
  comms: string[];
  pfn?: { start: number; end: number };
  stacks: boolean;
  bufferBytes: number;
  stackEntries: number;
  force: boolean;
  commandLine: string[];
}

export const DEFAULT_BUFFER_BYTES = 16 << 20;
export const DEFAULT_STACK_ENTRIES = 16384;

/** Returns the exit status. */
export async function recordCommand(args: RecordArgs, log: (line: string) => void = (line) => process.stderr.write(line + '\n')): Promise<number> {
  if (existsSync(args.output) && !args.force) throw new UsageError(`${args.output} exists; pass --force to replace it`);
  const problem = tracerOptionsProblem({ ...tracerOptions(args, ['page_ref_mod']), stackEntries: args.stackEntries });
  if (problem) throw new UsageError(problem);
  const doctor = runDoctor({ mountTracefs: true });
  if (!doctor.ok) {
    log(`pageref record: ${doctorFailureLine(doctor)}`);
    return 1;
  }
  const events: EventName[] = doctor.events.present;
  if (doctor.events.missing.length > 0) log(`pageref record: not traced, the kernel lacks them: ${doctor.events.missing.join(', ')}`);

  const tracer = tracerOptions(args, events);
  const writer = new CaptureWriter(args.output, { force: args.force });
  const stop = stopOnSignals();
  const progress = process.stderr.isTTY
    ? (p: { elapsedSec: number; records: number; dropped: number }) =>
        process.stderr.write(
          `\r  ${p.elapsedSec.toFixed(0)} s  ${p.records} events (${Math.round(p.records / Math.max(p.elapsedSec, 1e-3))}/s)  ${p.dropped} dropped  ${(writer.bytesWritten / 1048576).toFixed(1)} MiB `,
        )
    : undefined;
  let attached = false;
  try {
    const result = await runLiveCapture(
      {
        tracer,
        eventsMissing: doctor.events.missing,
        commandLine: args.commandLine,
        durationSec: args.durationSec,
        signal: stop.signal,
        onProgress: progress,
        onAttached: (names) => {
          attached = true;
          log(`pageref record: attached ${names.length} programs (${names.join(', ')}); recording to ${args.output}`);
        },
      },
      writer,
    );
    if (progress) process.stderr.write('\n');
    log(
      `pageref record: ${result.records} events in ${result.elapsedSec.toFixed(1)} s (stopped by ${result.stopReason}), ${result.dropped} dropped, ${writer.bytesWritten} bytes written to ${args.output}`,
    );
    if (result.dropped > 0) log(`pageref record: WARNING: ${result.dropped} records were lost because the ring buffer was full; try a larger --buffer-size or filters`);
    return 0;
  } catch (error) {
    if (!attached) {
      writer.discard();
    } else {
      writer.end({ trailer: undefined });
    }
    if (error instanceof BpfError) {
      log(`pageref record: ${error.message}${error.verifierLog ? ' (the verifier log follows)' : ''}`);
      if (error.verifierLog) log(error.verifierLog);
      return 1;
    }
    throw error;
  } finally {
    stop.release();
  }
}

function tracerOptions(args: RecordArgs, events: EventName[]): TracerOptions {
  return {
    events,
    ringBytes: args.bufferBytes,
    stackEntries: args.stacks ? args.stackEntries : 0,
    pids: args.pids,
    comms: args.comms,
    pfnMin: args.pfn?.start ?? 0,
    pfnMax: args.pfn ? args.pfn.end - 1 : 2 ** 52,
  };
}
