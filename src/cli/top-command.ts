// `pageref top`: live, or `--replay FILE`; the interactive screen on a
// terminal, else (or with --batch / --json) snapshots printed as text or
// JSON lines. Options are checked before the kernel or the file is touched.

import { ReadStream, WriteStream } from 'node:tty';
import { doctorFailureLine, runDoctor } from '../doctor/doctor';
import { CmaAreasError } from '../kernel/memory';
import { parseFilter, TopFilter, NO_FILTER } from '../top/top-filter';
import { runTopLive, runTopReplay, TopOptions } from '../top/top-session';
import { SORT_KEYS, TOP_VIEWS, TopView } from '../top/top-snapshot';
import { UsageError } from './arguments';
import { checkScope, resolveScope, ResolvedScope, TraceScope } from './record-command';

export const DEFAULT_TOP_ROWS = 20;
/**
 * -d at most: an hour between snapshots is already no live view, and beyond
 * 2^31 ms Node's timers fire after 1 ms instead (a refresh every millisecond).
 */
export const MAX_TOP_DELAY_SEC = 3600;

export interface TopArgs {
  replay?: string;
  speed?: number;
  delaySec: number;
  /** --batch N; null: the interactive screen if there is a terminal. */
  batch: number | null;
  json: boolean;
  view: TopView;
  sort?: string;
  filter?: TopFilter;
  rows: number;
  /** Tracing options given on the command line (they make no sense with --replay). */
  traceOptionsGiven: string[];
  scope: TraceScope;
  commandLine: string[];
}

/** --speed: a number of times the recorded pace, >= 0; "max" is 0, as fast as possible. */
export function parseSpeed(text: string): number {
  if (text.trim() === 'max') return 0;
  const value = Number(text);
  if (!/^\s*\d+(\.\d+)?\s*$/.test(text) || !Number.isFinite(value)) throw new UsageError(`--speed: "${text}" is not a number of times the recorded pace (or max)`);
  return value;
}

export function parseView(text: string): TopView {
  const view = TOP_VIEWS.find((v) => v === text);
  if (!view) throw new UsageError(`--view: "${text}" must be one of ${TOP_VIEWS.join(', ')}`);
  return view;
}

export function parseFilterOption(text: string): TopFilter {
  try {
    return parseFilter(text);
  } catch (error) {
    if (error instanceof UsageError) throw new UsageError(`--filter: ${error.message.replace(/^filter: /, '')}`);
    throw error;
  }
}

/** Returns the exit status; throws UsageError, and CaptureError for a replayed file that is not a capture. */
export async function topCommand(args: TopArgs): Promise<number> {
  if (args.sort !== undefined && !SORT_KEYS[args.view].includes(args.sort)) {
    throw new UsageError(`--sort: "${args.sort}" is not a column of the ${args.view} view (${SORT_KEYS[args.view].join(', ')})`);
  }
  if (args.replay === undefined && args.speed !== undefined) throw new UsageError('--speed is for --replay');
  // --max-pfns also bounds the user-space tables, so it applies to a replay too.
  const liveOnly = args.traceOptionsGiven.filter((name) => name !== '--max-pfns');
  if (args.replay !== undefined && liveOnly.length > 0) {
    throw new UsageError(`${liveOnly.join(', ')}: options of live tracing, not of --replay (use --filter to show part of a capture)`);
  }
  const log = (line: string) => process.stderr.write(line + '\n');
  // The screen needs a terminal both ways; anything else is batch output, one snapshot unless told.
  const interactive = args.batch === null && !args.json && process.stdin.isTTY === true && process.stdout.isTTY === true;
  const options: TopOptions = {
    delaySec: args.delaySec,
    batch: interactive ? null : (args.batch ?? 1),
    json: args.json,
    view: args.view,
    sort: args.sort,
    filter: args.filter ?? NO_FILTER,
    rows: args.rows,
    maxPfns: args.scope.maxPfns,
    write: (text) => process.stdout.write(text),
    log,
    tty: interactive ? { input: process.stdin as ReadStream, output: process.stdout as WriteStream } : undefined,
  };
  if (args.replay !== undefined) return runTopReplay(args.replay, args.speed ?? 1, options);

  checkScope(args.scope);
  const doctor = runDoctor({ mountTracefs: true });
  if (!doctor.ok) {
    log(`pageref top: ${doctorFailureLine(doctor)}`);
    return 1;
  }
  if (doctor.events.missing.length > 0) log(`pageref top: not traced, the kernel lacks them: ${doctor.events.missing.join(', ')}`);
  let resolved: ResolvedScope;
  try {
    resolved = resolveScope(args.scope, doctor.events.present);
  } catch (error) {
    if (!(error instanceof CmaAreasError)) throw error;
    log(`pageref top: --cma: ${error.message}`);
    return 1;
  }
  resolved.notes.forEach((note) => log(`pageref top: ${note}`));
  return runTopLive({ tracer: resolved.tracer, eventsMissing: doctor.events.missing, cmaAreas: resolved.cmaAreas, commandLine: args.commandLine }, options);
}
