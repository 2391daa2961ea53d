// The addon on this machine's kernel, which has BPF and BTF but no page_ref
// tracepoints: programs for missing events fail to load with the kernel's
// and libbpf's own explanation; an event the kernel has loads, drains and
// closes cleanly.

import test from 'ava';
import { existsSync } from 'node:fs';
import { BpfError, openTracer, TracerOptions } from '../src/native/tracer';
import { findTracefs, eventExists } from '../src/kernel/tracefs';
import { runDoctor } from '../src/doctor/doctor';

const options = (events: string[]): TracerOptions => ({
  events,
  ringBytes: 1 << 16,
  stacks: 'none',
  stackEntries: 0,
  stackSample: 1,
  samplePfn: 1,
  sampleEvents: 1,
  pids: [],
  comms: [],
  pfnRanges: [],
  aggregateSlots: 0,
  attach: 'tracepoint',
});

// The doctor mounts tracefs when it is missing, as record does.
runDoctor({ mountTracefs: true });
const tracefs = findTracefs();

test('a program for a tracepoint the kernel lacks fails as a BpfError with errno, libbpf\'s log and the verifier\'s', (t) => {
  t.true(tracefs !== undefined && !eventExists(tracefs, 'page_ref_mod'), 'this test needs a kernel without page_ref (as this machine\'s is)');
  const error = t.throws(() => openTracer(options(['page_ref_mod'])), { instanceOf: BpfError });
  t.true(error!.errno > 0);
  t.regex(error!.message, /page_ref_mod/);
  t.regex(error!.libbpfLog, /CO-RE relocation|failed to/);
  t.regex(error!.verifierLog, /trace_event_raw_page_ref_mod_template/);
});

test('options are checked before they reach the addon', (t) => {
  t.throws(() => openTracer(options([])), { instanceOf: RangeError, message: /no events/ });
  t.throws(() => openTracer(options(['page_ref_nope'])), { instanceOf: RangeError, message: /unknown event page_ref_nope/ });
  t.throws(() => openTracer({ ...options(['page_ref_mod']), ringBytes: 5000 }), { instanceOf: RangeError, message: /power of two/ });
  t.throws(() => openTracer({ ...options(['page_ref_mod']), comms: ['a-name-that-is-too-long'] }), { instanceOf: RangeError, message: /1 to 15 bytes/ });
  t.throws(() => openTracer({ ...options(['page_ref_mod']), stacks: 'all' }), { instanceOf: RangeError, message: /stack entries must be 0 exactly when/ });
  t.throws(() => openTracer({ ...options(['page_ref_mod']), samplePfn: 0 }), { instanceOf: RangeError, message: /pfn sample 0/ });
  t.throws(() => openTracer({ ...options(['page_ref_mod']), pfnRanges: [{ start: 5, end: 5 }] }), { instanceOf: RangeError, message: /pfn range 5-5/ });
  const seventeen = Array.from({ length: 17 }, (_, i) => ({ start: i * 10, end: i * 10 + 1 }));
  t.throws(() => openTracer({ ...options(['page_ref_mod']), pfnRanges: seventeen }), { instanceOf: RangeError, message: /17 pfn ranges/ });
  t.throws(() => openTracer({ ...options(['page_ref_mod']), aggregateSlots: 2 ** 31 }), { instanceOf: RangeError, message: /aggregate slots/ });
});

test('an event the kernel has loads, drains nothing, counts nothing, and closes; a closed tracer refuses work', (t) => {
  const present = tracefs && eventExists(tracefs, 'test_pages_isolated');
  if (!present) {
    // Without CONFIG_MEMORY_ISOLATION there is no event to attach here.
    t.false(existsSync('/sys/kernel/tracing/events/page_isolation'));
    return;
  }
  const tracer = openTracer(options(['test_pages_isolated']));
  t.deepEqual(tracer.attached, ['test_pages_isolated']);
  t.throws(() => tracer.hashPointers(new Uint8Array(8)), { instanceOf: TypeError, message: /16-byte/ });
  tracer.hashPointers(new Uint8Array(16).fill(7));
  t.is(tracer.drain(new Uint8Array(96 * 16)), 0);
  const counters = tracer.readCounters();
  t.is(counters.seen.length, 12);
  t.is(counters.dropped.reduce((a, b) => a + b, 0), 0);
  t.is(tracer.readStack(0), null);
  t.is(tracer.readPfnStats(new Uint8Array(0)), 0, 'without --aggregate there are no per-pfn totals');
  t.deepEqual(tracer.armedRanges(), []);
  t.is(tracer.ringFill(), 0, 'nothing pending in the ring buffer');
  tracer.detach();
  t.is(tracer.ringFill(), 0, 'the ring buffer stays readable after detach');
  tracer.close();
  t.throws(() => tracer.drain(new Uint8Array(96)), { message: /closed/ });
  t.throws(() => tracer.ringFill(), { message: /closed/ });
  t.throws(() => tracer.hashPointers(new Uint8Array(16)), { message: /closed/ });
});

test('--aggregate and --stacks armed load on this kernel; the per-pfn totals are mapped and start at zero', (t) => {
  if (!(tracefs && eventExists(tracefs, 'test_pages_isolated'))) {
    t.false(existsSync('/sys/kernel/tracing/events/page_isolation'));
    return;
  }
  const tracer = openTracer({ ...options(['test_pages_isolated']), stacks: 'armed', stackEntries: 64, aggregateSlots: 1000, pfnRanges: [{ start: 0x1000, end: 0x1200 }, { start: 0x2000, end: 0x2000 + 488 }] });
  try {
    t.throws(() => tracer.readPfnStats(new Uint8Array(100)), { instanceOf: RangeError, message: /24000 bytes/ });
    const totals = new Uint8Array(24_000).fill(0xff);
    t.is(tracer.readPfnStats(totals), 24_000);
    t.true(totals.every((byte) => byte === 0));
    t.deepEqual(tracer.armedRanges(), []);
  } finally {
    tracer.close();
  }
});
