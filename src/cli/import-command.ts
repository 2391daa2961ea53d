// `pageref import TRACE -o FILE`: ftrace text (trace, trace_pipe, trace-cmd
// report, a mail) into a capture that every command reads.

import { closeSync, constants, createReadStream, existsSync, open, openSync, statSync, unlinkSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { CaptureWriter } from '../capture/capture-writer';
import { sameFile } from '../capture/output-file';
import { FtraceImportResult, FtraceTextError, importFtraceStream } from '../import/ftrace-text';
import { stopOnSignals } from '../live/stop-signals';
import { UsageError } from './arguments';

/** Warnings printed at most; the rest are counted in one line (and in --json's warningCount). */
export const MAX_WARNINGS_SHOWN = 10;

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
  /** null: nothing was imported, and no capture written. */
  output: string | null;
  imported: number;
}

/**
 * Returns the exit status: 0, or 1 when --strict met a malformed line or the
 * text held no event pageref knows; on a failure no output file is left.
 * SIGINT and SIGTERM stop the reading: the capture is finished with what was read.
 */
export async function importCommand(args: ImportArgs, log: (line: string) => void = (line) => process.stderr.write(line + '\n')): Promise<number> {
  if (existsSync(args.output) && !args.force) throw new UsageError(`${args.output} exists; pass --force to replace it`);
  const fromStdin = args.trace === '-';
  if (!fromStdin && sameFile(args.output, args.trace)) throw new UsageError(`${args.output} is the text being imported: write the capture to another file`);
  let input: Readable | undefined;
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
    if (!stat.isFIFO()) input = createReadStream(args.trace, { encoding: 'utf8' });
  }
  const name = fromStdin ? 'stdin' : args.trace;
  // Taken before a FIFO is opened (which waits for its writer), so a signal then is not lost.
  const stop = stopOnSignals();
  const writer = new CaptureWriter(args.output, { force: args.force });
  let result: FtraceImportResult;
  let warnings = 0;
  try {
    result = await importFtraceStream(input ?? (await openFifo(args.trace, stop.signal)), writer, {
      name,
      kernelRelease: args.kernelRelease,
      strict: args.strict,
      startTimeUnixUs,
      commandLine: args.commandLine,
      signal: stop.signal,
      // Hostile or binary text makes a warning of every line: the first few say what is wrong.
      onWarning: args.json ? undefined : (message) => {
        if (++warnings <= MAX_WARNINGS_SHOWN) log(`pageref import: ${name}: ${message}`);
      },
    });
  } catch (error) {
    writer.discard();
    if (error instanceof FtraceTextError) {
      log(`pageref import: ${error.message} (--strict)`);
      return 1;
    }
    throw error;
  } finally {
    stop.release();
  }
  if (warnings > MAX_WARNINGS_SHOWN) log(`pageref import: ${name}: ${warnings - MAX_WARNINGS_SHOWN} more warnings not shown (${warnings} in all)`);
  const imported = Object.values(result.events).reduce((a, b) => a + b, 0);
  const summary: ImportJson = { input: fromStdin ? '-' : args.trace, output: args.output, imported, ...result };
  if (imported === 0) {
    // A capture of nothing is no result: it is not left behind, as with --strict.
    unlinkSync(args.output);
    if (args.json) process.stdout.write(JSON.stringify({ ...summary, output: null }) + '\n');
    log(`pageref import: ${summary.input} holds no page_ref, test_pages_isolated or cma event${result.stopReason !== 'end of ftrace text' ? ` (stopped by ${result.stopReason} at line ${result.lines})` : ''}; no capture written`);
    return 1;
  }
  if (args.json) process.stdout.write(JSON.stringify(summary) + '\n');
  else process.stdout.write(renderImport(summary));
  return 0;
}

/**
 * A FIFO as a socket-like stream: Node reads a FIFO opened as a file with
 * blocking reads on its thread pool, which nothing can interrupt, so a
 * signal could not end the import until the writer wrote again. The open
 * itself waits for a writer, on the thread pool too.
 */
async function openFifo(path: string, signal: AbortSignal): Promise<Readable> {
  // A signal before any writer came: a writer of our own, which does not wait, ends the wait.
  const unblock = () => {
    try {
      closeSync(openSync(path, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // the open has finished meanwhile
    }
  };
  signal.addEventListener('abort', unblock, { once: true });
  let fd: number;
  try {
    fd = await new Promise<number>((resolve, reject) => open(path, 'r', (error, fd) => (error ? reject(error) : resolve(fd))));
  } finally {
    signal.removeEventListener('abort', unblock);
  }
  const socket = new Socket({ fd, readable: true, writable: false });
  socket.setEncoding('utf8');
  return socket;
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
  if (s.stopReason !== 'end of ftrace text') lines.push(`stopped by ${s.stopReason} after line ${s.lines}: the capture holds what was read up to there`);
  if (s.malformed > 0) lines.push(`${s.malformed} malformed lines skipped (warnings above)`);
  if (s.lostEvents > 0) lines.push(`the kernel lost ${s.lostEvents} events before they reached the text (CPU:N [LOST M EVENTS])`);
  return lines.join('\n') + '\n';
}
