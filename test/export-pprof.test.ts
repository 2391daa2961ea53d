import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import type { PfnCounts, RecordOptions } from '../src/capture/schema';
import { EventType } from '../src/record/event-types';
import { lines, pageref } from './helpers/cli';
import { tempPath, writeCapture } from './helpers/capture';
import { rawRecord } from './helpers/records';

const FIXTURES = join(__dirname, '..', '..', 'test', 'fixtures');

// Stack 1 of writeCapture is a GUP pin (try_grab_page), stack 2 a release at exit.
function pinnedCapture(recordOptions: Partial<RecordOptions> = {}, pfnCounts?: PfnCounts[]): string {
  const path = tempPath('pins.pgref');
  const records = [];
  let ts = 1_000_000_000n;
  for (let page = 0; page < 4; page++) {
    records.push(rawRecord({ type: EventType.PageRefMod, tsNs: (ts += 1000n), pfn: BigInt(0x30000 + page), val: 1, count: 2, pid: 100, tgid: 100, comm: 'vmsplice-hold', stackId: 1 }));
  }
  records.push(rawRecord({ type: EventType.PageRefMod, tsNs: (ts += 1000n), pfn: 0x30000n, val: 1, count: 3, pid: 100, tgid: 100, comm: 'vmsplice-hold', stackId: 1 }));
  records.push(rawRecord({ type: EventType.PageRefModAndTest, tsNs: (ts += 1000n), pfn: 0x40000n, val: -1, count: 0, ret: 1, pid: 200, tgid: 200, comm: 'bash', stackId: 2 }));
  writeCapture(path, records, { recordOptions, pfnCounts });
  return path;
}

function goPprof(args: string[]): string {
  const run = spawnSync('go', ['tool', 'pprof', ...args], { encoding: 'utf8', timeout: 120_000 });
  if (run.error) throw new Error(`go tool pprof: ${run.error.message} (scripts/setup.sh installs golang-go)`);
  if (run.status !== 0) throw new Error(`go tool pprof ${args.join(' ')}: ${run.stderr}`);
  return run.stdout;
}

test('go tool pprof -top reads the exported profile and lists the holder frames', (t) => {
  const capture = pinnedCapture();
  const out = tempPath('holds.pb.gz');
  const run = pageref(['export', capture, '--pprof', out]);
  t.is(run.status, 0, run.stderr);
  t.regex(run.stdout, /pprof: .*holds\.pb\.gz: 2 samples/);
  const top = goPprof(['-top', '-sample_index=references', '-tagfocus=role=holder', out]);
  t.regex(top, /Type: references/);
  t.regex(top, /\b5\b.*__page_ref_mod\n/, 'five references held, taken in __page_ref_mod');
  t.regex(top, /try_grab_page/);
  t.regex(top, /follow_page_pte/);
  t.notRegex(top, /release_pages/, 'the releaser is not a holder');
  const pages = goPprof(['-top', '-sample_index=pages', '-tagfocus=role=holder', out]);
  t.regex(pages, /Showing nodes accounting for 4, 80(\.00)?% of 5 total/, 'four pages held by holders, one dropped on by the releaser');
  const tags = goPprof(['-tags', out]);
  t.regex(tags, /comm:.*vmsplice-hold/s);
  t.regex(tags, /role:.*holder/s);
  t.regex(tags, /releaser/);
});

test('the profile: three sample types, one location per frame, labels, gzipped', (t) => {
  const capture = pinnedCapture();
  const out = tempPath('p.pb.gz');
  t.is(pageref(['export', capture, '--pprof', out]).status, 0);
  const profile = Profile.decode(gunzipSync(readFileSync(out)));
  const str = (i: number | bigint) => profile.stringTable.strings[Number(i)];
  t.deepEqual(profile.sampleType.map((v) => [str(v.type), str(v.unit)]), [['pages', 'count'], ['references', 'count'], ['events', 'count']]);
  t.is(profile.location.length, 6, 'three frames in each of two stacks');
  const samples = profile.sample.map((s) => ({
    labels: Object.fromEntries(s.label.map((l) => [str(l.key), str(l.str)])),
    value: s.value.map(Number),
    leaf: str(profile.function.find((f) => f.id === profile.location.find((l) => l.id === s.locationId[0])!.line[0].functionId)!.name),
  }));
  t.deepEqual(samples, [
    { labels: { comm: 'vmsplice-hold', role: 'holder', held_at: 'end', kind: 'pin' }, value: [4, 5, 5], leaf: '__page_ref_mod' },
    { labels: { comm: 'bash', role: 'releaser' }, value: [1, 1, 1], leaf: '__page_ref_mod_and_test' },
  ]);
  t.true(profile.comment.map(str)[0].startsWith('pageref hold profile of test'));
});

test('sampled and aggregated captures say so in the profile comments and labels', (t) => {
  const sampled = pinnedCapture({ samplePfn: 8 });
  const out = tempPath('s.pb.gz');
  const run = pageref(['export', sampled, '--pprof', out]);
  t.is(run.status, 0, run.stderr);
  t.regex(run.stdout, /note: sampled: the page_ref events of 1 in 8 pfns/);
  const comments = goPprof(['-comments', out]);
  t.regex(comments, /sampled: the page_ref events of 1 in 8 pfns/);
  t.regex(comments, /estimates for all pages and events are the sample's counts times 8/);
  t.regex(goPprof(['-tags', out]), /sampled:.*1 in 8/s);
  const aggregated = pinnedCapture({ aggregateSlots: 1024, stacksMode: 'none', stacks: false }, [
    { pfn: [0x50000], gets: [3], puts: [1], events: [4], lastCount: [3], lastTsNs: [5000] },
  ]);
  const agg = tempPath('a.pb.gz');
  t.is(pageref(['export', aggregated, '--pprof', agg]).status, 0);
  const aggComments = goPprof(['-comments', agg]);
  t.regex(aggComments, /aggregated: page_ref events were summed per pfn in the kernel/);
  t.regex(aggComments, /4 page_ref events were summed per pfn in the kernel and have no stack/);
});

test('an imported ftrace text exports too', (t) => {
  const capture = tempPath('trace.pgref');
  t.is(pageref(['import', join(FIXTURES, 'ftrace-trace.txt'), '-o', capture]).status, 0);
  const out = tempPath('trace.pb.gz');
  t.is(pageref(['export', capture, '--pprof', out]).status, 0);
  const top = goPprof(['-top', '-sample_index=events', '-tagfocus=kind=pin', out]);
  t.regex(top, /try_grab_folio/);
  t.regex(goPprof(['-comments', out]), /ftrace text: .*ftrace-trace\.txt/);
});

test('export --json, and its errors: nothing to write, an existing output, a missing capture', (t) => {
  const capture = pinnedCapture();
  const out = tempPath('j.pb.gz');
  const run = pageref(['export', capture, '--pprof', out, '--json']);
  t.is(run.status, 0, run.stderr);
  const json = JSON.parse(run.stdout);
  t.deepEqual(Object.keys(json.pprof), ['output', 'bytes', 'samples', 'locations', 'functions', 'comments']);
  t.is(json.input, capture);
  t.is(json.pprof.samples, 2);
  const none = pageref(['export', capture]);
  t.is(none.status, 2);
  t.deepEqual(lines(none.stderr), ['pageref: export: say what to write: --pprof OUT.pb.gz or --perfetto OUT']);
  writeFileSync(out, 'keep');
  const exists = pageref(['export', capture, '--pprof', out]);
  t.is(exists.status, 2);
  t.regex(exists.stderr, /exists; pass --force/);
  t.is(pageref(['export', capture, '--pprof', out, '--force']).status, 0);
  const missing = pageref(['export', '/nonexistent/x.pgref', '--pprof', tempPath('m.pb.gz')]);
  t.is(missing.status, 1);
  t.deepEqual(lines(missing.stderr), ['pageref: cannot open /nonexistent/x.pgref: ENOENT']);
});

test('held_at=failure: what held the busy page when its isolation failed, for -tagfocus', (t) => {
  const path = tempPath('failure.pgref');
  writeCapture(path, [
    rawRecord({ type: EventType.PageRefMod, tsNs: 1_000_001_000n, pfn: 0x30000n, val: 1, count: 2, pid: 100, tgid: 100, comm: 'vmsplice-hold', stackId: 1 }),
    rawRecord({ type: EventType.TestPagesIsolated, tsNs: 1_000_002_000n, pfn: 0x30000n, word1: 0x30200n, word2: 0x30000n, pid: 300, tgid: 300, comm: 'cma' }),
    rawRecord({ type: EventType.TestPagesIsolated, tsNs: 1_000_003_000n, pfn: 0x30000n, word1: 0x30200n, word2: 0x30000n, pid: 300, tgid: 300, comm: 'cma' }),
    rawRecord({ type: EventType.PageRefModAndTest, tsNs: 1_000_004_000n, pfn: 0x30000n, val: -1, count: 1, pid: 100, tgid: 100, comm: 'vmsplice-hold', stackId: 2 }),
  ]);
  const out = tempPath('failure.pb.gz');
  t.is(pageref(['export', path, '--pprof', out]).status, 0);
  const failures = goPprof(['-top', '-tagfocus=held_at=failure', '-sample_index=events', out]);
  t.regex(failures, /Showing nodes accounting for 2, /, 'two failures on the page the pin held');
  t.regex(failures, /try_grab_page/);
  const atEnd = goPprof(['-top', '-tagfocus=held_at=end', '-sample_index=pages', out]);
  t.regex(atEnd, /Showing nodes accounting for 0, /, 'nothing was still held at the end: the pin was released');
});
