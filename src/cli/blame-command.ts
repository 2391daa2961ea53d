// `pageref blame FILE` reads a capture; `pageref blame` without a file
// records live first (until --duration or Ctrl-C) and then says who held
// the pages that isolation could not take.

import { replayCapture } from '../capture/capture-reader';
import { BlameAnalysis } from '../blame/blame-analysis';
import { blameJson } from '../blame/blame-report';
import { renderBlame } from '../blame/blame-text';
import { doctorFailureLine, runDoctor } from '../doctor/doctor';
import { runLiveCapture } from '../live/live-capture';
import { stopOnSignals } from '../live/stop-signals';
import { BpfError, TracerOptions, tracerOptionsProblem } from '../native/tracer';
import { UsageError } from './arguments';
import { DEFAULT_STACK_ENTRIES } from './record-command';

export function blameOutput(analysis: BlameAnalysis, json: boolean): string {
  const verdict = blameJson(analysis);
  return json ? JSON.stringify(verdict, null, 2) + '\n' : renderBlame(verdict);
}

export function blameFile(path: string, json: boolean, maxPfns: number): string {
  const analysis = new BlameAnalysis(maxPfns);
  replayCapture(path, analysis);
  return blameOutput(analysis, json);
}

export async function blameLive(options: { durationSec?: number; bufferBytes: number; json: boolean; maxPfns: number; commandLine: string[] }): Promise<number> {
  const tracer = (events: string[]): TracerOptions => ({
    events,
    ringBytes: options.bufferBytes,
    stacks: 'all',
    stackEntries: DEFAULT_STACK_ENTRIES,
    stackSample: 1,
    samplePfn: 1,
    sampleEvents: 1,
    pids: [],
    comms: [],
    pfnRanges: [],
    aggregateSlots: 0,
    attach: 'auto',
  });
  const problem = tracerOptionsProblem(tracer(['page_ref_mod']));
  if (problem) throw new UsageError(problem);
  const doctor = runDoctor({ mountTracefs: true });
  if (!doctor.ok) {
    process.stderr.write(`pageref blame: ${doctorFailureLine(doctor)}\n`);
    return 1;
  }
  const analysis = new BlameAnalysis(options.maxPfns);
  const stop = stopOnSignals();
  try {
    await runLiveCapture(
      {
        tracer: tracer(doctor.events.present),
        eventsMissing: doctor.events.missing,
        commandLine: options.commandLine,
        durationSec: options.durationSec,
        signal: stop.signal,
        onAttached: () => process.stderr.write(`pageref blame: recording${options.durationSec ? ` for ${options.durationSec} s` : ''}; Ctrl-C to stop and report\n`),
      },
      analysis,
    );
  } catch (error) {
    if (error instanceof BpfError) {
      process.stderr.write(`pageref blame: ${error.message}\n`);
      return 1;
    }
    throw error;
  } finally {
    stop.release();
  }
  process.stdout.write(blameOutput(analysis, options.json));
  return 0;
}
