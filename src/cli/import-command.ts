// `pageref import TRACE -o FILE`: ftrace text (trace, trace_pipe, trace-cmd
// report, a mail) into a capture that every command reads.

import { existsSync, statSync } from 'node:fs';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { CaptureWriter } from '../capture/capture-writer';
import { sameFile } from '../capture/output-file';
import { FtraceImportResult, FtraceTextError, importFtraceStream } from '../import/ftrace-text';
import { UsageError } from './arguments';

export interface ImportArgs {
  trace: string;
  output: string;
  strict: boolean;
  force: boolean;
  json: boolean;
  kernelRelease?: string;
  commandLine: string[];
}

/** The --json line of `pageref import`: what the README documents. */
export interface ImportJson extends FtraceImportResult {
  input: string;
  output: string;
  imported: number;
}

/** Returns the exit status: 0, or 1 when --strict met a malformed line or the text held no event pageref knows. */
export async function importCommand(args: ImportArgs, log: (line: string) => void = (line) => process.stderr.write(line + '\n')): Promise<number> {
  if (existsSync(args.output) && !args.force) throw new UsageError(`${args.output} exists; pass --force to replace it`);
  const fromStdin = args.trace === '-';
  if (!fromStdin && sameFile(args.output, args.trace)) throw new UsageError(`${args.output} is the text being imported: write the capture to another file`);
  let input: Readable;
  let startTimeUnixUs = Date.now() * 1000;
  if (fromStdin) input = process.stdin;
  else {
    // Opened before the output is created, so a missing input leaves no file behind.
    let stat;
    try {
      stat = statSync(args.trace);
    } catch (error) {
      throw fileError(`cannot open ${args.trace}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, 'ENOENT');
    }
    if (stat.isDirectory()) throw fileError(`${args.trace} is a directory, not ftrace text`, 'EISDIR');
    // ftrace text has no wall-clock time; the file's modification time is the nearest there is.
    startTimeUnixUs = Math.round(stat.mtimeMs * 1000);
    input = createReadStream(args.trace, { encoding: 'utf8' });
  }
  const writer = new CaptureWriter(args.output, { force: args.force });
  let result: FtraceImportResult;
  try {
    result = await importFtraceStream(input, writer, {
      name: fromStdin ? 'stdin' : args.trace,
      kernelRelease: args.kernelRelease,
      strict: args.strict,
      startTimeUnixUs,
      commandLine: args.commandLine,
      onWarning: args.json ? undefined : (message) => log(`pageref import: ${fromStdin ? 'stdin' : args.trace}: ${message}`),
    });
  } catch (error) {
    writer.discard();
    if (error instanceof FtraceTextError) {
      log(`pageref import: ${error.message} (--strict)`);
      return 1;
    }
    throw error;
  }
  const imported = Object.values(result.events).reduce((a, b) => a + b, 0);
  const summary: ImportJson = { input: fromStdin ? '-' : args.trace, output: args.output, imported, ...result };
  if (args.json) process.stdout.write(JSON.stringify(summary) + '\n');
  else process.stdout.write(renderImport(summary));
  if (imported === 0) {
    log(`pageref import: ${summary.input} holds no page_ref, test_pages_isolated or cma event`);
    return 1;
  }
  return 0;
}

// An error main() prints as one line with exit status 1, as it does for the file errors of Node.
function fileError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code, syscall: 'open' });
}

function renderImport(s: ImportJson): string {
  const kinds = Object.entries(s.events).filter(([, n]) => n > 0).map(([name, n]) => `${name} ${n}`).join(', ');
  const unknown = Object.entries(s.unknownEvents).map(([name, n]) => `${name} ${n}`).join(', ');
  const lines = [
    `imported ${s.imported} events from ${s.lines} lines of ${s.input} into ${s.output}${kinds ? `: ${kinds}` : ''}`,
    `stacks: ${s.eventsWithStacks} events with a stack, ${s.stacks} distinct`,
  ];
  if (unknown) lines.push(`skipped events pageref does not know: ${unknown}`);
  if (s.malformed > 0) lines.push(`${s.malformed} malformed lines skipped (warnings above)`);
  if (s.lostEvents > 0) lines.push(`the kernel lost ${s.lostEvents} events before they reached the text (CPU:N [LOST M EVENTS])`);
  return lines.join('\n') + '\n';
}
