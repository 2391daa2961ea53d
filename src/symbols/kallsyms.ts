// Turns kernel instruction pointers into "function+0xoffset" through
// /proc/kallsyms, on the machine that recorded them. Captures store only
// these names: a raw address would reveal the kernel's KASLR base.

import { readFileSync } from 'node:fs';

// Kernel addresses all have their top 16 bits set, so the low 48 bits
// identify them, and 48 bits are exact in a double: no BigInt per symbol.
// (Parsing 120,000 symbols with BigInt took ~20 s under emulation.)
const LOW_48 = 0xffffffffffffn;

function low48(hex: string): number {
  const tail = hex.length > 12 ? hex.slice(-12) : hex;
  return parseInt(tail, 16);
}

export class KernelSymbols {
  private constructor(
    /** Low 48 bits of each text symbol's address, ascending. */
    private readonly starts: Float64Array,
    private readonly names: string[],
    /** " [module]" for module symbols, else "". */
    private readonly modules: string[],
  ) {}

  /** Parses kallsyms text ("address type name [module]" per line); keeps text symbols. */
  static parse(text: string): KernelSymbols {
    const entries: { address: number; name: string; module: string }[] = [];
    let at = 0;
    while (at < text.length) {
      let end = text.indexOf('\n', at);
      if (end < 0) end = text.length;
      const line = text.slice(at, end);
      at = end + 1;
      const firstSpace = line.indexOf(' ');
      const type = line[firstSpace + 1];
      if (firstSpace < 0 || !(type === 't' || type === 'T' || type === 'w' || type === 'W')) continue;
      const address = line.slice(0, firstSpace);
      if (/^0+$/.test(address)) continue; // addresses hidden (kptr_restrict, not root)
      const rest = line.slice(firstSpace + 3);
      const tab = rest.indexOf('\t');
      entries.push({
        address: low48(address),
        name: tab < 0 ? rest : rest.slice(0, tab),
        module: tab < 0 ? '' : ` ${rest.slice(tab + 1).trim()}`,
      });
    }
    entries.sort((a, b) => a.address - b.address);
    return new KernelSymbols(
      Float64Array.from(entries, (entry) => entry.address),
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
    const address = Number(ip & LOW_48);
    let low = 0;
    let high = this.starts.length - 1;
    let found = -1;
    while (low <= high) {
      const mid = (low + high) >> 1;
      if (this.starts[mid] <= address) {
        found = mid;
        low = mid + 1;
      } else {
        high = mid - 1;
      }
    }
    if (found < 0) return '[unknown]';
    return `${this.names[found]}+0x${(address - this.starts[found]).toString(16)}${this.modules[found]}`;
  }
}
