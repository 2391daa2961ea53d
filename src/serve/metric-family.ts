// The metric model /metrics is built from, and what its two text formats
// (prometheus-text.ts, openmetrics-text.ts) render alike: names, label sets
// and sample values.

export type MetricType = 'counter' | 'gauge';

export interface MetricSample {
  labels?: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  /** [a-zA-Z_:][a-zA-Z0-9_:]*; counters end in _total. */
  name: string;
  help: string;
  type: MetricType;
  /** OpenMetrics UNIT, e.g. "seconds"; the name must end in _<unit> (before a counter's _total). */
  unit?: string;
  samples: MetricSample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Throws on a name neither format allows: the families are pageref's own, so that is a bug, not input. */
export function checkNames(family: MetricFamily): void {
  if (!NAME.test(family.name)) throw new Error(`metric name ${family.name} is not valid`);
  for (const sample of family.samples) {
    for (const name of Object.keys(sample.labels ?? {})) if (!LABEL_NAME.test(name) || name.startsWith('__')) throw new Error(`label name ${name} is not valid`);
  }
}

/** Backslash, double quote and newline: the same escapes in both formats. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/**
 * JavaScript's own number text fits both formats: integers without a decimal
 * point, other values with one or with an exponent ("1e+21", "1.5e-7");
 * only the non-finite values need spelling out.
 */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/** `name{label="value",...} value`, without braces when there are no labels. */
export function sampleLine(name: string, sample: MetricSample): string {
  const labels = Object.entries(sample.labels ?? {});
  const labelText = labels.length === 0 ? '' : `{${labels.map(([label, value]) => `${label}="${escapeLabelValue(value)}"`).join(',')}}`;
  return `${name}${labelText} ${formatValue(sample.value)}`;
}
