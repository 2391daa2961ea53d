// A strict reader of the Prometheus text format 0.0.4, for tests: it
// throws on what a Prometheus server would refuse, so that a test reading
// pageref's /metrics back checks the format and not only the numbers.

export interface ParsedFamily {
  help: string;
  type: string;
  samples: { labels: Record<string, string>; value: number }[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';

export function parseExposition(text: string): Map<string, ParsedFamily> {
  if (!text.endsWith('\n')) throw new Error('the text must end with a newline');
  const families = new Map<string, ParsedFamily>();
  let current: string | undefined;
  for (const line of text.slice(0, -1).split('\n')) {
    const help = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(line);
    const type = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line);
    if (help) {
      if (families.has(help[1])) throw new Error(`second HELP for ${help[1]}`);
      families.set(help[1], { help: help[2].replace(/\\n/g, '\n').replace(/\\\\/g, '\\'), type: '', samples: [] });
      current = help[1];
    } else if (type) {
      const family = families.get(type[1]);
      if (!family || current !== type[1] || family.type !== '' || family.samples.length > 0) throw new Error(`TYPE of ${type[1]} not right after its HELP`);
      family.type = type[2];
    } else if (line.startsWith('#')) {
      continue;
    } else {
      const sample = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)$`).exec(line);
      if (!sample) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
      const family = families.get(sample[1]);
      if (!family || current !== sample[1] || family.type === '') throw new Error(`sample of ${sample[1]} outside its family`);
      const value = Number(sample[3].replace(/^\+Inf$/, 'Infinity').replace(/^-Inf$/, '-Infinity'));
      if (Number.isNaN(value) && sample[3] !== 'NaN') throw new Error(`not a value: ${sample[3]}`);
      family.samples.push({ labels: parseLabels(sample[2] ?? ''), value });
    }
  }
  for (const [name, family] of families) if (family.type === '') throw new Error(`${name} has no TYPE`);
  return families;
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let at = 0;
  while (at < text.length) {
    const name = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(text.slice(at));
    if (!name) throw new Error(`bad label at ${JSON.stringify(text.slice(at))}`);
    at += name[0].length;
    let value = '';
    for (;;) {
      if (at >= text.length) throw new Error(`unterminated label value in ${JSON.stringify(text)}`);
      const c = text[at++];
      if (c === '"') break;
      if (c === '\n') throw new Error('raw newline in a label value');
      if (c !== '\\') {
        value += c;
        continue;
      }
      const escaped = text[at++];
      if (escaped === 'n') value += '\n';
      else if (escaped === '\\' || escaped === '"') value += escaped;
      else throw new Error(`bad escape \\${escaped}`);
    }
    if (name[1] in labels) throw new Error(`label ${name[1]} twice`);
    labels[name[1]] = value;
    if (text[at] === ',') at++;
    else if (at !== text.length) throw new Error(`expected , at ${JSON.stringify(text.slice(at))}`);
  }
  return labels;
}
