// The doctor's decisions, with the ring buffer probe's answer injected: a
// kernel without BPF ring buffers (before 5.8) is not at hand on the host.

import test from 'ava';
import { doctorFailureLine, renderDoctor, ringBufferCheck, runDoctor } from '../src/doctor/doctor';

const EPERM = 1;

test('a kernel without BPF ring buffers fails the doctor with the explanation and a remedy', (t) => {
  const report = runDoctor({ probeRingBuffer: () => 0 });
  t.false(report.ok);
  const check = report.checks.find((c) => c.name === 'ring buffer')!;
  t.is(check.status, 'fail');
  t.regex(check.detail, /has no BPF ring buffer \(BPF_MAP_TYPE_RINGBUF, Linux 5\.8 and later\)/);
  t.regex(check.remedy!, /boot a kernel 5\.8 or newer/);
  t.regex(renderDoctor(report), /\[FAIL\] ring buffer: .*\n +remedy: boot a kernel 5\.8 or newer/);
  // Checked before tracefs and the events, it is what record, top and blame refuse with
  // once the privileges are there.
  const privileged = report.checks[0].status === 'ok';
  if (privileged) t.regex(doctorFailureLine(report), /^ring buffer: kernel .* has no BPF ring buffer .*; remedy: boot a kernel 5\.8 or newer/);
  else t.regex(doctorFailureLine(report), /^missing CAP_/);
});

test('a kernel with BPF ring buffers passes the check', (t) => {
  const report = runDoctor({ probeRingBuffer: () => 1 });
  t.deepEqual(report.checks.find((c) => c.name === 'ring buffer'), { name: 'ring buffer', status: 'ok', detail: 'BPF_MAP_TYPE_RINGBUF is supported' });
});

test('a probe that cannot tell (EPERM without CAP_BPF, an addon that does not load) is a warning, not a verdict', (t) => {
  const eperm = ringBufferCheck(() => -EPERM);
  t.is(eperm.status, 'warn');
  t.is(eperm.detail, 'unknown: the probe failed (EPERM)');
  t.regex(eperm.remedy!, /with CAP_BPF, or as root/);
  const unbuilt = ringBufferCheck(() => {
    throw new Error('pageref: the native addon is not built. Tried:\n  a\n  b');
  });
  t.is(unbuilt.status, 'warn');
  t.is(unbuilt.detail, 'unknown: pageref: the native addon is not built. Tried:');
});

test('the real probe on this machine answers: its kernel (6.x) has ring buffers', (t) => {
  const check = runDoctor().checks.find((c) => c.name === 'ring buffer')!;
  // Root, or CAP_BPF: the probe can create the map; otherwise it cannot tell.
  if (check.status === 'warn') t.regex(check.detail, /EPERM/);
  else t.is(check.status, 'ok');
});
