// `pageref export FILE --pprof OUT.pb.gz --perfetto OUT`: a capture into the
// formats other tools read, in one read of the capture.

import { existsSync, writeFileSync } from 'node:fs';
import { replayCapture } from '../capture/capture-reader';
import { HoldProfile, PprofSummary } from '../export/pprof-profile';
import type { CaptureSink } from '../stream/capture-sink';
import { TeeSink } from '../stream/tee-sink';
import { UsageError } from './arguments';

export interface ExportArgs {
  capture: string;
  pprof?: string;
  force: boolean;
  json: boolean;
}

/** The --json line of `pageref export`: what the README documents. */
export interface ExportJson {
  input: string;
  pprof: (PprofSummary & { output: string; bytes: number }) | null;
}

export function exportCommand(args: ExportArgs): string {
  const outputs = [args.pprof].filter((o): o is string => o !== undefined);
  if (outputs.length === 0) throw new UsageError('export: say what to write: --pprof OUT.pb.gz or --perfetto OUT');
  for (const output of outputs) if (existsSync(output) && !args.force) throw new UsageError(`${output} exists; pass --force to replace it`);
  const sinks: CaptureSink[] = [];
  const profile = args.pprof ? new HoldProfile() : undefined;
  if (profile) sinks.push(profile);
  replayCapture(args.capture, new TeeSink(sinks));
  const result: ExportJson = { input: args.capture, pprof: null };
  if (profile && args.pprof) {
    const { bytes, summary } = profile.encode();
    writeFileSync(args.pprof, bytes, { mode: 0o600 });
    result.pprof = { output: args.pprof, bytes: bytes.length, ...summary };
  }
  if (args.json) return JSON.stringify(result) + '\n';
  const lines: string[] = [];
  if (result.pprof) {
    lines.push(`pprof: ${result.pprof.output}: ${result.pprof.samples} samples, ${result.pprof.locations} locations, ${result.pprof.bytes} bytes (go tool pprof -top ${result.pprof.output})`);
    for (const comment of result.pprof.comments.slice(2)) lines.push(`  note: ${comment}`);
  }
  return lines.join('\n') + '\n';
}
