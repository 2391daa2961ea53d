// Reads a capture file frame by frame and drives a CaptureSink with it, so a
// capture of any size is read in constant memory (one frame at a time).

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { allocateBatch, EventBatch } from '../record/event-batch';
import { EVENT_COUNT, EVENT_NAMES, isPageRefEvent } from '../record/event-types';
import { RECORD_SIZE } from '../record/layout';
import { RecordDecoder } from '../record/record-decoder';
import { StringTable } from '../record/string-table';
import type { CaptureSink, StreamEnd } from '../stream/capture-sink';
import { FRAME_HEADER_SIZE, MAGIC, MAX_FRAME_SIZE, payloadCrc } from './framing';
import { CaptureHeader, captureSchema, FORMAT_VERSION, KernelCounters, PfnCounts } from './schema';

/** A file that is not a capture, or a capture this version cannot read. */
export class CaptureError extends Error {
  override name = 'CaptureError';
}

export interface ReplayResult {
  header: CaptureHeader;
  frames: number;
  /** Why reading stopped early, when the capture was cut short. */
  truncated?: string;
}

type DecodedFrame = {
  header?: CaptureHeader;
  events?: DecodedColumns;
  stacks?: { stacks: { id: number; frames: string[] }[] };
  counters?: KernelCounters;
  pfnCounts?: PfnCounts;
  records?: { recordSize: number; records: Uint8Array };
  trailer?: StreamEnd['trailer'];
};

type DecodedColumns = Record<string, number[] | string[] | undefined>;

export function replayCapture(path: string, sink: CaptureSink): ReplayResult {
  const { Frame } = captureSchema();
  const file = new FrameFile(path);
  try {
    const strings = new StringTable();
    let header: CaptureHeader | undefined;
    let frames = 0;
    let trailerSeen = false;
    // Strings of column batches are numbered by the writer, those of record
    // blocks by the reader: one capture holds one kind or the other.
    let columnsSeen = false;
    let recordDecoder: RecordDecoder | undefined;
    for (;;) {
      const next = file.nextPayload();
      if (next.done) {
        const end: StreamEnd = next.truncated ? { truncated: next.truncated } : {};
        if (!header) throw new CaptureError(`${path} holds no header: ${next.truncated ?? 'it is empty'}`);
        if (!next.truncated && !trailerSeen) end.truncated = 'the capture has no trailer: recording did not finish';
        sink.end(end);
        return { header, frames, truncated: end.truncated };
      }
      let frame: DecodedFrame;
      try {
        frame = Frame.toObject(Frame.decode(next.payload), { defaults: true, arrays: true }) as DecodedFrame;
      } catch (error) {
        throw new CaptureError(`${path}: frame ${frames + 1} is damaged: ${(error as Error).message}`);
      }
      frames++;
      if (!header) {
        if (!frame.header) throw new CaptureError(`${path}: the first frame is not a header`);
        if (frame.header.formatVersion > FORMAT_VERSION) {
          throw new CaptureError(`${path}: capture format ${frame.header.formatVersion} is newer than this pageref reads (${FORMAT_VERSION})`);
        }
        header = frame.header;
        sink.header(header);
      } else if (frame.events) {
        if (recordDecoder) throw new CaptureError(`${path}: frame ${frames} mixes column batches with record blocks`);
        columnsSeen = true;
        sink.events(decodeColumns(frame.events, strings), strings);
      } else if (frame.records) {
        if (columnsSeen) throw new CaptureError(`${path}: frame ${frames} mixes record blocks with column batches`);
        recordDecoder ??= new RecordDecoder(strings, null, monotonicBase(header));
        sink.events(decodeRecords(frame.records, recordDecoder), strings);
      } else if (frame.stacks) {
        sink.stacks(frame.stacks.stacks);
      } else if (frame.counters) {
        sink.counters(frame.counters);
      } else if (frame.pfnCounts) {
        sink.pfnCounts?.(checkedCounts(frame.pfnCounts));
      } else if (frame.trailer) {
        trailerSeen = true;
        sink.end({ trailer: frame.trailer });
        return { header, frames };
      }
    }
  } finally {
    file.close();
  }
}

function monotonicBase(header: CaptureHeader): bigint {
  if (!/^\d{1,20}$/.test(header.monotonicBaseNs)) throw new CaptureError(`the header's monotonic base "${header.monotonicBaseNs}" is not a number`);
  return BigInt(header.monotonicBaseNs);
}

function decodeRecords(block: { recordSize: number; records: Uint8Array }, decoder: RecordDecoder): EventBatch {
  if (block.recordSize !== RECORD_SIZE) throw new CaptureError(`a record block has records of ${block.recordSize} bytes; this pageref reads ${RECORD_SIZE}`);
  if (block.records.length % RECORD_SIZE !== 0) throw new CaptureError(`a record block of ${block.records.length} bytes does not hold whole records`);
  return checkedEvents(decoder.decode(block.records, block.records.length), 'a record block');
}

// Sinks keep per-pfn tables indexed by a page_ref event's pfn (src/holds/pfn-counters.ts):
// one outside [0, 2^52) is damage, refused here rather than thrown as a RangeError there.
function checkedEvents(batch: EventBatch, what: string): EventBatch {
  for (let i = 0; i < batch.length; i++) {
    const type = batch.type[i];
    if (type >= EVENT_COUNT) throw new CaptureError(`${what} has event type ${type}, which this pageref does not know`);
    const pfn = batch.pfn[i];
    if (isPageRefEvent(type) && !(Number.isInteger(pfn) && pfn >= 0 && pfn < 2 ** 52)) throw new CaptureError(`${what} has a ${EVENT_NAMES[type]} event of impossible pfn ${pfn}`);
  }
  return batch;
}

function decodeColumns(columns: DecodedColumns, strings: StringTable): EventBatch {
  const type = (columns.type ?? []) as number[];
  const batch = allocateBatch(type.length);
  const tsDelta = columns.tsDeltaNs as number[];
  let ts = 0;
  for (let i = 0; i < batch.length; i++) {
    ts += tsDelta[i] ?? 0;
    batch.tsNs[i] = ts;
  }
  const numeric = ['type', 'pfn', 'flags', 'mapping', 'count', 'mapcount', 'val', 'ret', 'stackId', 'cpu', 'mt', 'pid', 'tgid', 'comm', 'name'] as const;
  for (const key of numeric) {
    const values = (columns[key] ?? []) as number[];
    if (values.length !== batch.length) {
      throw new CaptureError(`an event batch has ${values.length} values of ${key} for ${batch.length} events`);
    }
    batch[key].set(values);
  }
  strings.extend((columns.newStrings ?? []) as string[]);
  checkedEvents(batch, 'an event batch');
  for (let i = 0; i < batch.length; i++) {
    if (batch.comm[i] >= strings.strings.length || batch.name[i] >= strings.strings.length) {
      throw new CaptureError('an event refers to a string the capture never defined');
    }
  }
  return batch;
}

// Every row is a pfn whose count moved: a pfn beyond any physical address
// or a row without events is damage, and would upset the per-pfn tables.
function checkedCounts(counts: PfnCounts): PfnCounts {
  const rows = counts.pfn.length;
  for (const key of ['gets', 'puts', 'events', 'lastCount', 'lastTsNs'] as const) {
    if (counts[key].length !== rows) throw new CaptureError(`a pfn counts frame has ${counts[key].length} values of ${key} for ${rows} pfns`);
  }
  for (let i = 0; i < rows; i++) {
    const pfn = counts.pfn[i];
    if (!Number.isSafeInteger(pfn) || pfn < 0 || pfn >= 2 ** 52) throw new CaptureError(`a pfn counts frame has an impossible pfn ${pfn}`);
    if (!(counts.events[i] >= 1)) throw new CaptureError(`a pfn counts frame has a row without events (pfn 0x${pfn.toString(16)})`);
  }
  return counts;
}

type NextPayload = { done: false; payload: Uint8Array } | { done: true; truncated?: string };

/** The container layer: magic bytes, then length + CRC + payload frames. */
class FrameFile {
  private readonly fd: number;
  private offset = 0;

  constructor(private readonly path: string) {
    try {
      this.fd = openSync(path, 'r');
    } catch (error) {
      throw new CaptureError(`cannot open ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    // open(2) takes a directory for reading; only the first read would fail, with no name in its message.
    if (fstatSync(this.fd).isDirectory()) {
      this.close();
      throw new CaptureError(`${path} is a directory, not a pageref capture`);
    }
    const magic = this.read(MAGIC.length);
    if (magic.length < MAGIC.length || !MAGIC.equals(magic)) {
      this.close();
      throw new CaptureError(`${path} is not a pageref capture`);
    }
  }

  nextPayload(): NextPayload {
    const at = this.offset;
    const head = this.read(FRAME_HEADER_SIZE);
    if (head.length === 0) return { done: true };
    if (head.length < FRAME_HEADER_SIZE) return { done: true, truncated: `cut short at byte ${at}: torn frame header` };
    const length = head.readUInt32LE(0);
    const crc = head.readUInt32LE(4);
    if (length > MAX_FRAME_SIZE) return { done: true, truncated: `cut short at byte ${at}: frame length ${length} is not plausible` };
    // A torn frame is told from the file's size, not by allocating the length it claims (up to 64 MiB per frame).
    const remaining = fstatSync(this.fd).size - this.offset;
    if (length > remaining) return { done: true, truncated: `cut short at byte ${at}: torn frame (${Math.max(0, remaining)} of ${length} bytes)` };
    const payload = this.read(length);
    if (payload.length < length) return { done: true, truncated: `cut short at byte ${at}: torn frame (${payload.length} of ${length} bytes)` };
    if (payloadCrc(payload) !== crc) return { done: true, truncated: `cut short at byte ${at}: frame checksum does not match` };
    return { done: false, payload };
  }

  close(): void {
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
  }

  private read(length: number): Buffer {
    const buffer = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      let n: number;
      try {
        n = readSync(this.fd, buffer, done, length - done, this.offset + done);
      } catch (error) {
        throw new CaptureError(`cannot read ${this.path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
      if (n === 0) break;
      done += n;
    }
    this.offset += done;
    return buffer.subarray(0, done);
  }
}
