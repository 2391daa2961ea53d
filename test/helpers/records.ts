// Builds raw ring-buffer records byte by byte, at the offsets of
// struct pageref_record written out here by hand (not taken from
// src/record/layout.ts), so a test can catch a layout change.

export interface RawRecord {
  tsNs: bigint;
  pfn: bigint;
  word1: bigint; // page.flags | isolation.end_pfn | cma.count
  word2: bigint; // page.mapping | isolation.fin_pfn | cma.align
  pid: number;
  tgid: number;
  count: number;
  mapcount: number;
  val: number;
  ret: number;
  stackId: number;
  cpu: number;
  type: number;
  mt: number;
  comm: string;
  name: string;
}

export const RAW_RECORD_SIZE = 96;

export function rawRecord(fields: Partial<RawRecord>): Buffer {
  const r: RawRecord = {
    tsNs: 0n, pfn: 0n, word1: 0n, word2: 0n, pid: 0, tgid: 0, count: 0, mapcount: 0, val: 0, ret: 0,
    stackId: -1, cpu: 0, type: 0, mt: 0, comm: '', name: '', ...fields,
  };
  const b = Buffer.alloc(RAW_RECORD_SIZE);
  b.writeBigUInt64LE(r.tsNs, 0);
  b.writeBigUInt64LE(r.pfn, 8);
  b.writeBigUInt64LE(r.word1, 16);
  b.writeBigUInt64LE(r.word2, 24);
  b.writeUInt32LE(r.pid, 32);
  b.writeUInt32LE(r.tgid, 36);
  b.writeInt32LE(r.count, 40);
  b.writeInt32LE(r.mapcount, 44);
  b.writeInt32LE(r.val, 48);
  b.writeInt32LE(r.ret, 52);
  b.writeInt32LE(r.stackId, 56);
  b.writeUInt16LE(r.cpu, 60);
  b.writeUInt8(r.type, 62);
  b.writeUInt8(r.mt, 63);
  b.write(r.comm, 64, 16, 'latin1');
  b.write(r.name, 80, 16, 'latin1');
  return b;
}
