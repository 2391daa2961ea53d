// The OpenMetrics 1.0.0 text format
// (https://prometheus.io/docs/specs/om/open_metrics_spec/), what Prometheus
// asks for first. It differs from 0.0.4 where the family model meets it:
// a counter family is named without _total while its samples keep it,
// metadata comes as TYPE, UNIT, HELP, HELP escapes double quotes too, and
// the exposition ends with "# EOF" (a scrape without it was cut short).

import { checkNames, escapeLabelValue, MetricFamily, sampleLine } from './metric-family';

export const OPENMETRICS_CONTENT_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

/** The OpenMetrics text of `families`; throws where the model breaks a rule of the format (a bug, not input). */
export function renderOpenMetrics(families: MetricFamily[]): string {
  const lines: string[] = [];
  for (const family of families) {
    checkNames(family);
    const name = familyName(family);
    lines.push(`# TYPE ${name} ${family.type}`);
    if (family.unit !== undefined) lines.push(`# UNIT ${name} ${unitOf(name, family.unit)}`);
    // HELP is an escaped-string, like a label value
    lines.push(`# HELP ${name} ${escapeLabelValue(family.help)}`);
    for (const sample of family.samples) {
      if (family.type === 'counter' && Number.isNaN(sample.value)) throw new Error(`counter ${family.name} is NaN, which OpenMetrics does not allow`);
      lines.push(sampleLine(family.name, sample));
    }
  }
  lines.push('# EOF');
  return lines.join('\n') + '\n';
}

/** The MetricFamily name: a counter's samples carry _total, its family does not. */
function familyName(family: MetricFamily): string {
  if (family.type !== 'counter') return family.name;
  if (!family.name.endsWith('_total')) throw new Error(`counter ${family.name} does not end in _total`);
  return family.name.slice(0, -'_total'.length);
}

/** The spec wants the family name to end in _<unit>: a unit the name does not show is refused. */
function unitOf(name: string, unit: string): string {
  if (!name.endsWith(`_${unit}`)) throw new Error(`metric ${name} does not end in its unit _${unit}`);
  return unit;
}
