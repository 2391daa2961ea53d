// The addon on this machine's kernel, which has BPF and BTF but no page_ref
// tracepoints: programs for missing events fail to load with the kernel's
// and libbpf's own explanation; an event the kernel has loads, drains and
// closes cleanly.

import test from 'ava';
import { existsSync } from 'node:fs';
import { BpfError, openTracer, TracerOptions } from '../src/native/tracer';
import { findTracefs, eventExists } from '../src/kernel/tracefs';
import { runDoctor } from '../src/doctor/doctor';

const options = (events: string[]): TracerOptions => ({ events, ringBytes: 1 << 16, stackEntries: 0, pids: [], comms: [], pfnMin: 0, pfnMax: 2 ** 52 });

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
  t.is(tracer.drain(new Uint8Array(96 * 16)), 0);
  const counters = tracer.readCounters();
  t.is(counters.seen.length, 12);
  t.is(counters.dropped.reduce((a, b) => a + b, 0), 0);
  t.is(tracer.readStack(0), null);
  tracer.detach();
  tracer.close();
  t.throws(() => tracer.drain(new Uint8Array(96)), { message: /closed/ });
});
