// `pageref export FILE --pprof OUT.pb.gz --perfetto OUT`: a capture into the
// formats other tools read, in one read of the capture.

import { closeSync, existsSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { createOutputFile, sameFile } from '../capture/output-file';
import { replayCapture } from '../capture/capture-reader';
import { HoldProfile, PprofSummary } from '../export/pprof-profile';
import { choosePfns, PerfettoSummary, PerfettoTraceWriter } from '../export/perfetto-trace';
import { CaptureSummary } from '../report/capture-summary';
import type { CaptureSink } from '../stream/capture-sink';
import { TeeSink } from '../stream/tee-sink';
import { UsageError } from './arguments';

export interface ExportArgs {
  capture: string;
  pprof?: string;
  perfetto?: string;
  /** --perfetto: pfns with a refcount track, at most. */
  pfnTracks: number;
  /** --max-pfns: per-pfn state at most. */
  maxPfns: number;
  force: boolean;
  json: boolean;
}

/** The --json line of `pageref export`: what the README documents. */
export interface ExportJson {
  input: string;
  pprof: (PprofSummary & { output: string; bytes: number }) | null;
  perfetto: (PerfettoSummary & { output: string; bytes: number }) | null;
}

export function exportCommand(args: ExportArgs): string {
  const outputs = [args.pprof, args.perfetto].filter((o): o is string => o !== undefined);
  if (outputs.length === 0) throw new UsageError('export: say what to write: --pprof OUT.pb.gz or --perfetto OUT');
  if (args.pprof !== undefined && args.perfetto !== undefined && sameFile(args.pprof, args.perfetto)) throw new UsageError(`--pprof and --perfetto both name ${args.pprof}: give each its own file`);
  for (const output of outputs) if (sameFile(output, args.capture)) throw new UsageError(`${output} is the capture being exported: write to another file`);
  for (const output of outputs) if (existsSync(output) && !args.force) throw new UsageError(`${output} exists; pass --force to replace it`);
  const sinks: CaptureSink[] = [];
  const profile = args.pprof ? new HoldProfile(args.maxPfns) : undefined;
  if (profile) sinks.push(profile);
  let trace: PerfettoTraceWriter | undefined;
  if (args.perfetto) {
    // A first read picks the pages worth a counter track; the second writes the trace as it reads.
    const summary = new CaptureSummary(args.maxPfns);
    replayCapture(args.capture, summary);
    trace = new PerfettoTraceWriter(args.perfetto, choosePfns(summary, args.pfnTracks), { force: args.force, maxPfns: args.maxPfns });
    sinks.push(trace);
  }
  try {
    replayCapture(args.capture, new TeeSink(sinks));
  } catch (error) {
    if (trace) {
      trace.end({});
      unlinkSync(trace.path);
    }
    throw error;
  }
  const result: ExportJson = { input: args.capture, pprof: null, perfetto: null };
  if (trace && args.perfetto) result.perfetto = { output: args.perfetto, bytes: statSync(args.perfetto).size, ...trace.summary };
  if (profile && args.pprof) {
    const { bytes, summary } = profile.encode();
    const fd = createOutputFile(args.pprof, args.force);
    try {
      for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done);
    } finally {
      closeSync(fd);
    }
    result.pprof = { output: args.pprof, bytes: bytes.length, ...summary };
  }
  if (args.json) return JSON.stringify(result) + '\n';
  const lines: string[] = [];
  if (result.pprof) {
    lines.push(`pprof: ${result.pprof.output}: ${result.pprof.samples} samples, ${result.pprof.locations} locations, ${result.pprof.bytes} bytes (go tool pprof -top ${result.pprof.output})`);
    for (const comment of result.pprof.comments.slice(2)) lines.push(`  note: ${comment}`);
  }
  if (result.perfetto) {
    const p = result.perfetto;
    lines.push(`perfetto: ${p.output}: ${p.counterTracks} refcount tracks, ${p.instants} instant events and ${p.slices} allocation slices on ${p.threadTracks} threads, ${p.packets} packets, ${p.bytes} bytes (open in ui.perfetto.dev)`);
    for (const limit of p.limits) lines.push(`  note: ${limit}`);
  }
  return lines.join('\n') + '\n';
}
