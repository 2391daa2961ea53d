// Mutations of ftrace text, line by line and within lines: what a cut,
// merged, hand-edited or simply wrong file looks like to the importer.

import { Random } from './random';

const HUGE_NUMBERS = [
  '9'.repeat(20), '9'.repeat(400), '18446744073709551615', '18446744073709551616', '4294967296', '2147483648', '65536',
  '0x' + 'f'.repeat(16), '0x' + 'f'.repeat(17), '0x' + '9'.repeat(40), '0x8000000000000000', '0x20000000000000',
  '-1', '-2147483649', '-0', '-' + '9'.repeat(30), '1e309', 'NaN', 'Infinity', '0x', '', 'x1', '0x1g', '１２', '1.5', '.', '-',
];
const EVENT_NAMES = ['page_ref_set', 'page_ref_mod', 'page_ref_mod_and_test', 'page_ref_mod_and_return', 'page_ref_mod_unless', 'page_ref_freeze',
  'page_ref_unfreeze', 'test_pages_isolated', 'cma_alloc_start', 'cma_alloc_finish', 'cma_alloc_busy_retry', 'cma_release', 'kernel_stack',
  'user_stack', 'sched_switch', 'page_ref_mox', '<stack trace>', '<user stack trace>', 'x'];
const ODD_LINES = [
  ' => ', ' =>', '=> __page_ref_mod+0x5a/0x70', ' => 0xffffffff81176659', ' => <ffffffff81176659>', 'CPU:1 [LOST 99999999999999999999 EVENTS]',
  'CPU:99999999999 [LOST 3 EVENTS]', '# entries-in-buffer/entries-written: 5/999999999999999999999', '# entries-in-buffer/entries-written: 9/1',
  '##### CPU 99999999999 buffer started ####', 'cpus=4', '   <...>-1 [000] 1.1: <stack trace>', '   <...>-1 [000] 1.1: kernel_stack:',
  '   <...>-1 [000] 1.1: user_stack: <stack trace>', '   <...>-1 [000] 1.1: page_ref_mod:', 'a-1 [1] 1.1: cma_release: name= pfn=0x1 page= count=1',
  '\0\0\0\0', '\uFEFF', '\uFFFD\uFFFD', '-', '- [', '-1 [',
];

/** Places in a line that a mutation can aim at. */
const NUMBER = /0x[0-9a-fA-F]+|\d+/g;
const FIELD = /\S+=\S*/g;
const EVENT = /\b[a-z_]+:|<(?:user )?stack trace>/g;

function matches(re: RegExp, line: string): RegExpExecArray[] {
  return [...line.matchAll(re)] as RegExpExecArray[];
}

function replaceMatch(line: string, m: RegExpExecArray, text: string): string {
  return line.slice(0, m.index) + text + line.slice(m.index + m[0].length);
}

function garbage(rng: Random, n: number): string {
  let out = '';
  for (let i = 0; i < n; i++) out += String.fromCharCode(rng.chance(0.2) ? rng.below(32) : rng.below(256));
  return out;
}

// Lines far longer than ftrace writes, built from what the line patterns look
// for (dashes, digits, spaces, brackets) so that a pattern that backtracks shows.
function longLine(rng: Random, lines: string[]): string {
  const size = 1_000 + rng.below(rng.chance(0.2) ? 200_000 : 20_000);
  const unit = rng.pick(['-1 ', ' ', '1', '-', 'a-1 [1] 1.', ' => ', '=', 'x-1 (1) [1] ', '9-9 99999 ', '\t', rng.pick(lines) ?? 'a']);
  const body = unit.repeat(Math.ceil(size / Math.max(1, unit.length))).slice(0, size);
  switch (rng.below(4)) {
    case 0:
      return body;
    case 1:
      return body + ' <...>-9018  [004]    92.678375: page_ref_set: pfn=0x17ac9 flags=0x0 count=1 mapcount=0 mapping=(nil) mt=4 val=1';
    case 2:
      return '<...>-9018  [004]    92.678375: page_ref_set: pfn=0x17ac9 flags=' + body;
    default:
      return ' '.repeat(size) + 'x-1 ' + body;
  }
}

function mutateLine(rng: Random, line: string, lines: string[]): string {
  switch (rng.below(9)) {
    case 0: {
      const m = rng.pick(matches(NUMBER, line));
      return m ? replaceMatch(line, m, rng.pick(HUGE_NUMBERS)) : line;
    }
    case 1: {
      const m = rng.pick(matches(FIELD, line));
      if (!m) return line;
      const eq = m[0].indexOf('=');
      return replaceMatch(line, m, rng.pick(['', m[0].slice(0, eq), m[0].slice(0, eq + 1), m[0].slice(eq), m[0] + m[0], `${m[0].slice(0, eq)}=${rng.pick(HUGE_NUMBERS)}`]));
    }
    case 2: {
      const m = rng.pick(matches(EVENT, line));
      return m ? replaceMatch(line, m, rng.pick(EVENT_NAMES) + (rng.chance(0.7) ? ':' : '')) : line;
    }
    case 3:
      return line.slice(0, rng.below(line.length + 1));
    case 4: {
      const at = rng.below(line.length + 1);
      return line.slice(0, at) + garbage(rng, 1 + rng.below(24)) + line.slice(at);
    }
    case 5: {
      const at = rng.below(line.length);
      return line.slice(0, at) + line.slice(at + 1 + rng.below(8));
    }
    case 6: {
      const other = rng.pick(lines) ?? '';
      return line.slice(0, rng.below(line.length + 1)) + other.slice(rng.below(other.length + 1));
    }
    case 7:
      return line.replace(/\s+/g, () => rng.pick(['', ' ', '\t', '  ', '\r', '\v']));
    default:
      return line + rng.pick([' ', ':', '=', ' x=1', ' pfn=0x1', ' ret=', '\r', '\\']);
  }
}

/** A mutated text: one to four changes to a seed, each to lines or within one. */
export function mutateText(rng: Random, seed: string, donors: string[]): string {
  let lines = seed.split('\n');
  // Half the inputs are a window of the seed: the importer has no state a window cannot reach, and short texts make more inputs per second.
  if (rng.chance(0.5)) {
    const start = rng.below(lines.length);
    lines = lines.slice(start, start + 4 + rng.below(16));
  }
  const donor = rng.pick(donors).split('\n');
  const changes = 1 + rng.below(4);
  for (let c = 0; c < changes; c++) {
    const i = rng.below(lines.length);
    switch (rng.below(11)) {
      case 0:
      case 1:
      case 2:
        lines[i] = mutateLine(rng, lines[i] ?? '', donor);
        break;
      case 3: {
        const j = rng.below(lines.length);
        [lines[i], lines[j]] = [lines[j], lines[i]];
        break;
      }
      case 4: {
        // Shuffle a window: stack frames away from their event, events out of time order.
        const window = lines.slice(i, i + 2 + rng.below(8));
        for (let k = window.length - 1; k > 0; k--) {
          const j = rng.below(k + 1);
          [window[k], window[j]] = [window[j], window[k]];
        }
        lines.splice(i, window.length, ...window);
        break;
      }
      case 5:
        lines.splice(i, 1 + rng.below(3));
        break;
      case 6:
        // At most 256 KiB of copies: copies of a long line made texts of 180 MB, all time and no new paths.
        lines.splice(i, 0, ...new Array<string>(Math.min(1 + rng.below(rng.chance(0.1) ? 2000 : 5), Math.ceil(2 ** 18 / ((lines[i] ?? '').length + 1)))).fill(lines[i] ?? ''));
        break;
      case 7:
        lines.splice(i, 0, rng.pick(ODD_LINES));
        break;
      case 8:
        lines.splice(i, 0, rng.chance(0.5) ? garbage(rng, 1 + rng.below(200)) : rng.pick(donor));
        break;
      case 9:
        if (rng.chance(0.25)) lines.splice(i, 0, longLine(rng, lines));
        else lines = lines.slice(0, i + 1);
        break;
      default: {
        // Cut the text inside a line, as a copy that stopped short.
        const text = lines.join('\n');
        lines = text.slice(0, rng.below(text.length + 1)).split('\n');
      }
    }
  }
  return lines.join(rng.chance(0.1) ? '\r\n' : '\n');
}
