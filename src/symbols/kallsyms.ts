// Turns kernel instruction pointers into "function+0xoffset" through
// /proc/kallsyms, on the machine that recorded them. Captures store only
// these names: a raw address would reveal the kernel's KASLR base.

import { readFileSync } from 'node:fs';

export class KernelSymbols {
  private constructor(
    /** Text symbol start addresses, ascending. */
    private readonly starts: BigUint64Array,
    private readonly names: string[],
    /** " [module]" for module symbols, else "". */
    private readonly modules: string[],
  ) {}

  /** Parses kallsyms text ("address type name [module]" per line); keeps text symbols. */
  static parse(text: string): KernelSymbols {
    const entries: { address: bigint; name: string; module: string }[] = [];
    for (const line of text.split('\n')) {
      const [address, type, name, module] = line.split(/\s+/, 4);
      if (!name || !/^[tTwW]$/.test(type)) continue;
      const value = BigInt(`0x${address}`);
      if (value === 0n) continue; // addresses hidden (kptr_restrict, not root)
      entries.push({ address: value, name, module: module ? ` ${module.trim()}` : '' });
    }
    entries.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
    return new KernelSymbols(
      BigUint64Array.from(entries, (entry) => entry.address),
      entries.map((entry) => entry.name),
      entries.map((entry) => entry.module),
    );
  }

  static load(path = '/proc/kallsyms'): KernelSymbols {
    return KernelSymbols.parse(readFileSync(path, 'utf8'));
  }

  get size(): number {
    return this.names.length;
  }

  /** "function+0xoffset", or "[unknown]" when the address is below every symbol or none are readable. */
  symbolize(ip: bigint): string {
    let low = 0;
    let high = this.starts.length - 1;
    let found = -1;
    while (low <= high) {
      const mid = (low + high) >> 1;
      if (this.starts[mid] <= ip) {
        found = mid;
        low = mid + 1;
      } else {
        high = mid - 1;
      }
    }
    if (found < 0) return '[unknown]';
    return `${this.names[found]}+0x${(ip - this.starts[found]).toString(16)}${this.modules[found]}`;
  }
}
