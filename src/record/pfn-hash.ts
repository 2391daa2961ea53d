// The pfn hash of bpf/pageref.h (pageref_pfn_hash): --sample-pfn keeps the
// pfns whose hash % N is 0, so user space can tell which pages a sampled
// capture covers. Math.imul gives the same 32-bit products as the C code.

export function pfnHash(pfn: number): number {
  const lo = pfn >>> 0;
  const hi = Math.floor(pfn / 0x100000000) >>> 0;
  let x = (lo ^ Math.imul(hi, 0x9e3779b1)) >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b) >>> 0;
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

/** Whether --sample-pfn `samplePfn` keeps `pfn` (1 and 0 keep every pfn). */
export function pfnSampledIn(pfn: number, samplePfn: number): boolean {
  return samplePfn <= 1 || pfnHash(pfn) % samplePfn === 0;
}

/** bpf/pageref.h PAGEREF_STACK_SAMPLE_SALT */
const STACK_SAMPLE_SALT = 0x5bd1e995;

/** Whether --stacks sampled with --stack-sample `stackSample` takes stacks on `pfn`. */
export function stackSampledIn(pfn: number, stackSample: number): boolean {
  const lo = ((pfn >>> 0) ^ STACK_SAMPLE_SALT) >>> 0;
  return stackSample <= 1 || pfnHash(Math.floor(pfn / 0x100000000) * 0x100000000 + lo) % stackSample === 0;
}
