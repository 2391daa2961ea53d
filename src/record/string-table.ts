// Strings (comm values, CMA area names) are stored once per capture and
// referenced by index, so an event carries a number, not a string.

export class StringTable {
  readonly strings: string[] = [''];
  private readonly indexOf = new Map<string, number>([['', 0]]);

  intern(value: string): number {
    let index = this.indexOf.get(value);
    if (index === undefined) {
      index = this.strings.length;
      this.strings.push(value);
      this.indexOf.set(value, index);
    }
    return index;
  }

  /** Appends strings read from a capture, in the order they were written. */
  extend(added: readonly string[]): void {
    for (const value of added) {
      if (!this.indexOf.has(value)) this.indexOf.set(value, this.strings.length);
      this.strings.push(value);
    }
  }

  get(index: number): string {
    return this.strings[index] ?? '';
  }
}
