// Which of pageref's events the running kernel has, read from tracefs.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { EVENT_NAMES, EVENT_SUBSYSTEMS, EventName } from '../record/event-types';

const TRACEFS_CANDIDATES = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];

/** The mounted tracefs this process can read, or undefined. */
export function findTracefs(): string | undefined {
  return TRACEFS_CANDIDATES.find((dir) => existsSync(join(dir, 'events')));
}

/** Where tracefs is mounted (/proc/self/mounts), readable by this process or not. */
export function tracefsMounts(): string[] {
  let text: string;
  try {
    text = readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((line) => line.split(' '))
    .filter((fields) => fields[2] === 'tracefs')
    .map((fields) => fields[1].replace(/\\040/g, ' '));
}

export function eventExists(tracefs: string, name: EventName): boolean {
  return existsSync(join(tracefs, 'events', EVENT_SUBSYSTEMS[name], name, 'id'));
}

export function availableEvents(tracefs: string): { present: EventName[]; missing: EventName[] } {
  const present: EventName[] = [];
  const missing: EventName[] = [];
  for (const name of EVENT_NAMES) (eventExists(tracefs, name) ? present : missing).push(name);
  return { present, missing };
}

/** "y", "n" (not set) or undefined when the kernel's config cannot be read. */
export function kernelConfigValue(option: string, release: string): string | undefined {
  const text = readKernelConfig(release);
  if (text === undefined) return undefined;
  const match = new RegExp(`^${option}=(.*)$`, 'm').exec(text);
  return match ? match[1] : 'n';
}

function readKernelConfig(release: string): string | undefined {
  try {
    return gunzipSync(readFileSync('/proc/config.gz')).toString('utf8');
  } catch {
    // no IKCONFIG_PROC: try the distribution's copy
  }
  try {
    return readFileSync(`/boot/config-${release}`, 'utf8');
  } catch {
    return undefined;
  }
}
