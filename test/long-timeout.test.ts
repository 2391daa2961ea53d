import test from 'ava';
import { setLongTimeout } from '../src/live/long-timeout';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('a timeout beyond 2^31 - 1 ms does not fire at once (setTimeout would, after 1 ms)', async (t) => {
  let fired = false;
  const timer = setLongTimeout(() => (fired = true), 30 * 86400 * 1000);
  await sleep(100);
  timer.clear();
  t.false(fired);
});

test('a short timeout fires once, on time; clear() cancels one', async (t) => {
  let fired = 0;
  const started = Date.now();
  setLongTimeout(() => fired++, 50);
  let cancelled = false;
  setLongTimeout(() => (cancelled = true), 60).clear();
  await sleep(200);
  t.is(fired, 1);
  t.false(cancelled);
  t.true(Date.now() - started >= 50);
});
