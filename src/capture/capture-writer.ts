// Writes a capture file (proto/capture.proto, framing in ./framing.ts).
// Each frame goes to the file in one write, so whatever happens to the
// process, the file holds whole frames plus at most one torn one; and the
// file only appears with its header, so every capture can be reported on.

import { closeSync, fsyncSync, unlinkSync, writeSync, writevSync } from 'node:fs';
import type { EventBatch } from '../record/event-batch';
import type { StringTable } from '../record/string-table';
import type { CaptureSink, StreamEnd } from '../stream/capture-sink';
import { frameBytes, MAGIC, recordBlockFrameHead } from './framing';
import { checkOutputFile, createOutputFileWith } from './output-file';
import { RECORD_SIZE } from '../record/layout';
import { CaptureHeader, captureSchema, KernelCounters, PfnCounts, StackEntry } from './schema';

export interface CaptureWriterOptions {
  /** Replace an existing regular file; without it an existing file is an error (createOutputFile). */
  force?: boolean;
}

export class CaptureWriter implements CaptureSink {
  private fd: number | undefined;
  private state: 'unopened' | 'open' | 'closed' = 'unopened';
  /** The file header() created, until discard() deletes it. */
  private created = false;
  private readonly force: boolean;
  private stringsWritten = 1; // index 0, "", is implicit
  private readonly Frame = captureSchema().Frame;
  bytesWritten = 0;

  /**
   * Checks that the file can be created (checkOutputFile: what
   * createOutputFile would refuse); header() creates it.
   */
  constructor(readonly path: string, options: CaptureWriterOptions = {}) {
    this.force = options.force === true;
    checkOutputFile(path, this.force);
  }

  /**
   * Creates the file (mode 0600) with the magic bytes and the header frame
   * already in it (createOutputFileWith). A recorder killed before its header
   * (record loads and attaches its programs first: seconds under emulation)
   * leaves no file rather than one that no command can read, even when the
   * kill falls while the file is made (SIGKILL trials in the VM found an
   * empty one when the file was created first and written after);
   * killed later, a file that `report` reads up to its last whole frame.
   */
  header(header: CaptureHeader): void {
    if (this.state !== 'unopened') throw new Error(`capture ${this.path} has a header already`);
    const first = Buffer.concat([MAGIC, this.frame({ header })]);
    this.fd = createOutputFileWith(this.path, this.force, first);
    this.state = 'open';
    this.created = true;
    this.bytesWritten += first.length;
  }

  stacks(stacks: StackEntry[]): void {
    if (stacks.length > 0) this.writeFrame({ stacks: { stacks } });
  }

  events(batch: EventBatch, strings: StringTable): void {
    if (batch.length === 0) return;
    const newStrings = strings.strings.slice(this.stringsWritten);
    this.stringsWritten = strings.strings.length;
    this.writeFrame({ events: encodeColumns(batch, newStrings) });
  }

  /** Raw records (mappings hashed already) as one RecordBlock frame: no per-field encoding, and no copy of the records. */
  records(records: Uint8Array): void {
    if (records.length > 0) this.write(recordBlockFrameHead(RECORD_SIZE, records), records);
  }

  counters(counters: KernelCounters): void {
    this.writeFrame({ counters });
  }

  pfnCounts(pfnCounts: PfnCounts): void {
    if (pfnCounts.pfn.length > 0) this.writeFrame({ pfnCounts });
  }

  /** Writes the trailer (if any), flushes to disk and closes; before header(), creates nothing. Safe to call twice. */
  end(end: StreamEnd): void {
    if (this.fd === undefined) return;
    if (end.trailer) this.writeFrame({ trailer: end.trailer });
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = undefined;
    this.state = 'closed';
  }

  /** Closes and deletes the file if header() created it: for a recording that failed before it recorded anything. */
  discard(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    this.state = 'closed';
    // Never another's file, such as one that appeared after the constructor's check and made header() fail.
    if (this.created) unlinkSync(this.path);
    this.created = false;
  }

  private frame(frame: object): Buffer {
    return frameBytes(this.Frame.encode(frame).finish());
  }

  private writeFrame(frame: object): void {
    this.write(this.frame(frame));
  }

  /** Writes the parts of one frame, in one system call unless the kernel takes less. */
  private write(...parts: Uint8Array[]): void {
    if (this.fd === undefined) throw new Error(this.state === 'unopened' ? `capture ${this.path} has no header yet` : `capture ${this.path} is already closed`);
    const total = parts.reduce((sum, part) => sum + part.length, 0);
    let done = parts.length === 1 ? writeSync(this.fd, parts[0]) : writevSync(this.fd, parts);
    for (const part of parts) {
      if (done >= part.length) {
        done -= part.length;
        continue;
      }
      while (done < part.length) done += writeSync(this.fd, part, done);
      done = 0;
    }
    this.bytesWritten += total;
  }
}

// protobufjs encodes from plain objects and only reads `.length` and
// indexes of repeated fields, so the typed-array columns go in as they are.
function encodeColumns(batch: EventBatch, newStrings: string[]): object {
  const tsDeltaNs = new Float64Array(batch.length);
  let previous = 0;
  for (let i = 0; i < batch.length; i++) {
    tsDeltaNs[i] = batch.tsNs[i] - previous;
    previous = batch.tsNs[i];
  }
  const { length: _length, tsNs: _tsNs, ...columns } = batch;
  return { ...columns, tsDeltaNs, newStrings };
}
