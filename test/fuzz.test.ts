import test from 'ava';
import { rmSync } from 'node:fs';
import { FuzzFailure, fuzzWorkDir, runFuzz, unclearMessage } from './fuzz/fuzz-readers';

// The CI run: a fixed seed, so a failure here is the same failure on every
// machine; `npm run fuzz -- --seed N --iterations N` runs other seeds for longer.
const SEED = 20261126;
const INPUTS = 100_000;

function describe({ input, reason }: FuzzFailure): string {
  return `input ${input.index} (${input.kind} from ${input.seed}): ${reason}; again: npm run fuzz -- --seed ${SEED} --first ${input.index} --iterations 1`;
}

test('100,000 mutated captures and ftrace texts: each reads, or is refused with the reader\'s own error in one clear line, in time, without a large allocation', (t) => {
  // The whole-test limit: an input that loops for ever fails here rather than at ava's 20 minutes.
  t.timeout(5 * 60_000);
  const workDir = fuzzWorkDir();
  const run = runFuzz({ seed: SEED, count: INPUTS, workDir });
  rmSync(workDir, { recursive: true });
  t.log(`${run.inputs} inputs in ${(run.elapsedMs / 1000).toFixed(1)} s, slowest ${run.slowestMs.toFixed(0)} ms, largest allocation ${(run.largestAllocation / 2 ** 20).toFixed(1)} MiB, live heap ${(run.heapBaseline / 2 ** 20).toFixed(1)} -> ${(run.heapPeak / 2 ** 20).toFixed(1)} MiB`);
  t.log(JSON.stringify(run.outcomes));
  t.deepEqual(run.failures.map(describe), []);
  t.is(run.inputs, INPUTS);
  // Mutations that only ever broke the container would leave the decoder and the checks behind it untried.
  for (const outcome of ['capture read', 'capture cut short', 'capture refused', 'text read', 'text refused'] as const) {
    t.true(run.outcomes[outcome] > INPUTS / 50, `${outcome}: ${run.outcomes[outcome]}`);
  }
});

test('the oracle calls a message unclear when it spans lines or shows a lost value, not when it quotes the input', (t) => {
  t.is(unclearMessage('x.pgref: frame 3 is damaged: index out of range: 12 + 10 > 20'), undefined);
  t.is(unclearMessage('line 3: page flag "NaN" is not in the flag table; left out'), undefined);
  t.regex(unclearMessage('an event has type undefined') ?? '', /undefined/);
  t.regex(unclearMessage('pfn NaN is impossible') ?? '', /NaN/);
  t.regex(unclearMessage('bad\n    at decode (reader.js:1:1)') ?? '', /several lines/);
  t.regex(unclearMessage('') ?? '', /empty/);
});
