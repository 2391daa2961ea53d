// `pageref serve`: a long-running agent. Traces at production overhead by
// default (the CMA areas only, per-pfn totals in the kernel, stacks only for
// pages isolation failed on) and answers HTTP scrapes: Prometheus metrics,
// culprit stacks, a pprof profile of holders. With --flight-dir, a flight
// recorder writes a capture around each isolation failure. SIGINT and
// SIGTERM stop it (a flight window still open is written first, exit 0);
// SIGHUP reopens --log.

import { accessSync, constants } from 'node:fs';
import type { Server } from 'node:http';
import { doctorFailureLine, DoctorReport, runDoctor } from '../doctor/doctor';
import { CmaAreasError } from '../kernel/memory';
import { runLiveCapture } from '../live/live-capture';
import { stopOnSignals } from '../live/stop-signals';
import { BpfError } from '../native/tracer';
import { startServer } from '../serve/http-server';
import { LogFile } from '../serve/log-file';
import { FlightOptions, FlightRecorder } from '../serve/flight-recorder';
import { ServeState } from '../serve/serve-state';
import type { CaptureSink } from '../stream/capture-sink';
import { checkScope, resolveScope, ResolvedScope, TraceScope } from './record-command';

export interface ServeArgs {
  scope: TraceScope;
  listen: { host: string; port: number };
  /** Culprit series on /metrics, at most. */
  culprits: number;
  /** Failures older than this leave the culprits. */
  culpritWindowSec: number;
  log?: string;
  /** --flight-dir and its limits: the flight recorder; undefined: none. */
  flight?: FlightOptions;
  commandLine: string[];
}

/** Returns the exit status; throws UsageError for options that cannot work. */
export async function serveCommand(args: ServeArgs): Promise<number> {
  checkScope(args.scope);
  let log: LogFile;
  try {
    log = new LogFile(args.log);
  } catch (error) {
    process.stderr.write(`pageref serve: --log ${args.log}: ${(error as Error).message}\n`);
    return 1;
  }
  const say = (line: string) => log.write(`pageref serve: ${line}`);
  const onHangup = () => {
    log.reopen();
    say('SIGHUP: log reopened');
  };
  process.on('SIGHUP', onHangup);
  const stop = stopOnSignals();
  let server: Server | undefined;
  let forgetTimer: NodeJS.Timeout | undefined;
  try {
    const doctor = runDoctor({ mountTracefs: true });
    const pageRefAvailable = doctor.events.present.some((name) => name.startsWith('page_ref_'));
    if (!canServe(doctor)) {
      say(doctorFailureLine(doctor));
      return 1;
    }
    if (!pageRefAvailable) say(`the kernel has no page_ref tracepoints: serving its isolation and CMA events only (pageref_page_ref_available 0)`);
    else if (doctor.events.missing.length > 0) say(`not traced, the kernel lacks them: ${doctor.events.missing.join(', ')}`);
    let resolved: ResolvedScope;
    try {
      resolved = resolveScope(args.scope, doctor.events.present);
    } catch (error) {
      if (!(error instanceof CmaAreasError)) throw error;
      say(`--cma: ${error.message} (--all-pfns traces every pfn instead)`);
      return 1;
    }
    resolved.notes.forEach(say);
    const state = new ServeState({ pageRefAvailable, maxCulprits: args.culprits, maxPfns: args.scope.maxPfns, culpritWindowSec: args.culpritWindowSec });
    // Also when nobody scrapes: the busy pfns of old failures would pile up.
    forgetTimer = setInterval(() => state.forgetOldFailures(), Math.min(args.culpritWindowSec, 60) * 1000);
    forgetTimer.unref();
    let sink: CaptureSink = state;
    if (args.flight) {
      // Before any BPF: a --flight-dir that cannot be read is found without touching the kernel.
      let recorder: FlightRecorder;
      try {
        accessSync(args.flight.dir, constants.W_OK | constants.X_OK);
        recorder = new FlightRecorder(state, args.flight, say);
      } catch (error) {
        say(`--flight-dir: ${(error as Error).message}`);
        return 1;
      }
      state.flight = recorder;
      sink = recorder;
      say(`flight recorder: ${args.flight.seconds} s or ${args.flight.bytes} bytes of records before a failure, ${args.flight.afterSeconds} s after; files in ${args.flight.dir} (${recorder.captures().length} there already), at most ${args.flight.maxFiles} and ${args.flight.maxBytes} bytes`);
    }
    // Bind before loading any BPF: a port in use is found without touching the kernel.
    try {
      const bound = await startServer(state, args.listen.host, args.listen.port);
      server = bound.server;
    } catch (error) {
      say(`cannot listen on ${args.listen.host}:${args.listen.port}: ${(error as Error).message}`);
      return 1;
    }
    const where = `http://${args.listen.host.includes(':') ? `[${args.listen.host}]` : args.listen.host}:${(server.address() as { port: number }).port}`;
    const result = await runLiveCapture(
      {
        tracer: resolved.tracer,
        eventsMissing: doctor.events.missing,
        cmaAreas: resolved.cmaAreas,
        commandLine: args.commandLine,
        signal: stop.signal,
        onAttached: (names, how) => say(`attached ${names.length} programs (${names.join(', ')}; page_ref by ${how}); serving ${where}/metrics`),
      },
      sink,
    );
    say(`stopped by ${result.stopReason} after ${result.elapsedSec.toFixed(1)} s: ${result.records} records, ${result.dropped} dropped`);
    return 0;
  } catch (error) {
    if (error instanceof BpfError) {
      say(`${error.message}${error.verifierLog ? ' (the verifier log follows)' : ''}`);
      if (error.verifierLog) log.write(error.verifierLog);
      return 1;
    }
    throw error;
  } finally {
    clearInterval(forgetTimer);
    stop.release();
    process.off('SIGHUP', onHangup);
    if (server) await closeServer(server);
    log.close();
  }
}

/** Serving needs what record needs, except page_ref: without it the isolation and CMA events are still worth serving. */
function canServe(doctor: DoctorReport): boolean {
  const failed = doctor.checks.filter((check) => check.status === 'fail');
  const pageRefOnly = failed.length === 1 && failed[0].name === 'page_ref events' && doctor.events.present.length > 0;
  return failed.length === 0 || pageRefOnly;
}

function closeServer(server: Server): Promise<void> {
  // Scrapers keep connections alive; they are not a reason to stay up.
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
