// Parsing of command-line values. Each parser throws UsageError with one
// line that names the option and says what is expected.

export class UsageError extends Error {
  override name = 'UsageError';
}

/** A non-negative integer, decimal or 0x-prefixed hexadecimal. */
export function parseInteger(text: string, what: string): number {
  const trimmed = text.trim();
  const value = /^0x[0-9a-f]+$/i.test(trimmed) ? parseInt(trimmed.slice(2), 16) : /^\d+$/.test(trimmed) ? Number(trimmed) : NaN;
  if (!Number.isSafeInteger(value)) throw new UsageError(`${what}: "${text}" is not a non-negative integer`);
  return value;
}

/** "START-END" (decimal or 0x hex), half-open like the kernel's isolation ranges: START <= pfn < END. */
export function parsePfnRange(text: string): { start: number; end: number } {
  const match = /^\s*([0-9a-fx]+)\s*-\s*([0-9a-fx]+)\s*$/i.exec(text);
  if (!match) throw new UsageError(`--pfn: "${text}" is not a range START-END (e.g. 0x17800-0x17c00)`);
  const start = parseInteger(match[1], '--pfn start');
  const end = parseInteger(match[2], '--pfn end');
  if (end <= start) throw new UsageError(`--pfn: the end of "${text}" must be above its start`);
  if (end > 2 ** 52) throw new UsageError(`--pfn: "${text}" is beyond any physical address`);
  return { start, end };
}

/** Bytes, with an optional K, M or G suffix (powers of 1024). */
export function parseBytes(text: string, what: string): number {
  const match = /^\s*(\d+)\s*([kmg]?)i?b?\s*$/i.exec(text);
  if (!match) throw new UsageError(`${what}: "${text}" is not a size (e.g. 16M)`);
  const scale = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[match[2].toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Number(match[1]) * scale;
}

/** Seconds, > 0, fractions allowed, and at most `max` when given. */
export function parseSeconds(text: string, what: string, max?: number): number {
  const value = Number(text);
  if (!/^\s*\d+(\.\d+)?\s*$/.test(text) || !(value > 0)) throw new UsageError(`${what}: "${text}" is not a positive number of seconds`);
  if (max !== undefined && value > max) throw new UsageError(`${what}: "${text}" is more than ${max} seconds`);
  return value;
}

export function parsePid(text: string): number {
  const pid = parseInteger(text, '--pid');
  if (pid <= 0 || pid > 0x3fffffff) throw new UsageError(`--pid: ${text} is not a process id`);
  return pid;
}

export function parseComm(text: string): string {
  if (text.length === 0 || Buffer.byteLength(text) > 15) {
    throw new UsageError(`--comm: "${text}" must be 1 to 15 bytes, as the kernel keeps it`);
  }
  return text;
}

/** A positive integer up to 2^32 - 1: sampling rates and sizes counted in items. */
export function parseCount(text: string, what: string): number {
  const value = parseInteger(text, what);
  if (value < 1 || value > 0xffffffff) throw new UsageError(`${what}: "${text}" must be from 1 to ${0xffffffff}`);
  return value;
}

const STACKS_MODES = ['all', 'sampled', 'armed', 'none'] as const;

export function parseStacksMode(text: string): (typeof STACKS_MODES)[number] {
  const mode = STACKS_MODES.find((m) => m === text);
  if (!mode) throw new UsageError(`--stacks: "${text}" must be one of ${STACKS_MODES.join(', ')}`);
  return mode;
}

const ATTACH_MODES = ['auto', 'btf', 'tracepoint'] as const;

export function parseAttachMode(text: string): (typeof ATTACH_MODES)[number] {
  const mode = ATTACH_MODES.find((m) => m === text);
  if (!mode) throw new UsageError(`--attach: "${text}" must be one of ${ATTACH_MODES.join(', ')}`);
  return mode;
}

export function collect<T>(parse: (text: string) => T) {
  return (text: string, previous: T[] | undefined): T[] => [...(previous ?? []), parse(text)];
}
