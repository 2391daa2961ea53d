// The record layout is defined once, in bpf/pageref.h. The compiler's view of
// it (offsetof/sizeof, exported by the addon), the TypeScript decoder's
// offsets and the capture schema's columns must agree, field by field.

import test from 'ava';
import { loadAddon } from '../src/native/load-addon';
import { captureSchema } from '../src/capture/schema';
import { CounterField, COUNTERS_SIZE, MAX_PFN_RANGES, PFN_STATS_SIZE, PfnStatsField, RECORD_SIZE, RecordField, STACK_DEPTH, STACK_NONE } from '../src/record/layout';
import { EVENT_NAMES, EVENT_SUBSYSTEMS } from '../src/record/event-types';

const addon = loadAddon();

test('the decoder has every field of struct pageref_record at the compiler\'s offset and size', (t) => {
  t.is(addon.recordLayout.size, RECORD_SIZE);
  t.deepEqual(Object.keys(RecordField).sort(), Object.keys(addon.recordLayout.fields).sort());
  for (const [field, where] of Object.entries(addon.recordLayout.fields)) {
    t.deepEqual(RecordField[field as keyof typeof RecordField], where, field);
  }
});

test('the counters and constants agree with the header', (t) => {
  t.is(addon.countersLayout.size, COUNTERS_SIZE);
  t.deepEqual(addon.countersLayout.fields, CounterField);
  t.is(addon.stackDepth, STACK_DEPTH);
  t.is(addon.stackNone, STACK_NONE);
  t.is(addon.pfnStatsLayout.size, PFN_STATS_SIZE);
  t.deepEqual(addon.pfnStatsLayout.fields, PfnStatsField);
  t.is(addon.maxPfnRanges, MAX_PFN_RANGES);
});

test('event types are numbered the same in C and TypeScript', (t) => {
  t.deepEqual(
    addon.events,
    EVENT_NAMES.map((name) => [EVENT_SUBSYSTEMS[name], name]),
  );
});

// Each record field and the capture column that carries it.
const COLUMN_OF: Record<keyof typeof RecordField, string> = {
  ts_ns: 'ts_delta_ns',
  pfn: 'pfn',
  'page.flags': 'flags',
  'page.mapping': 'mapping',
  'isolation.end_pfn': 'flags',
  'isolation.fin_pfn': 'mapping',
  'cma.count': 'flags',
  'cma.align': 'mapping',
  pid: 'pid',
  tgid: 'tgid',
  count: 'count',
  mapcount: 'mapcount',
  val: 'val',
  ret: 'ret',
  stack_id: 'stack_id',
  cpu: 'cpu',
  type: 'type',
  mt: 'mt',
  comm: 'comm',
  name: 'name',
};

test('every record field has a column in the capture schema, and every column a field', (t) => {
  const batch = captureSchema().Frame.lookupType('pageref.capture.EventBatch');
  // protobufjs camel-cases field names; the .proto spells them in snake case.
  const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  const columns = new Map(batch.fieldsArray.map((field) => [snake(field.name), field]));
  for (const [field, column] of Object.entries(COLUMN_OF)) {
    t.true(columns.get(column)?.repeated, `${field}: no repeated column ${column}`);
  }
  const carried = new Set(Object.values(COLUMN_OF));
  for (const column of columns.keys()) {
    if (column !== 'new_strings') t.true(carried.has(column), `column ${column} carries no record field`);
  }
});
