/**
 * A strict reader of the Prometheus text exposition format 0.0.4 for tests: every line is a `# HELP`, a `# TYPE`
 * or a sample; each metric family has exactly one HELP and one TYPE before its samples; sample names belong to
 * their family (`_bucket`/`_sum`/`_count` for histograms); label values are unescaped (`\\`, `\"`, `\n`); values
 * are floats or `+Inf`/`-Inf`/`NaN`; histogram buckets are cumulative, end at `le="+Inf"` and equal `_count`.
 * Anything else throws, naming the line.
 */

/** A metric family: its type, help and samples. */
export interface PromFamily {
  readonly name: string;
  readonly type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  readonly help: string;
  readonly samples: PromStrictSample[];
}

/** One sample line. */
export interface PromStrictSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(text: string, line: string): number {
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (text === 'NaN') return Number.NaN;
  if (!/^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`bad sample value ${JSON.stringify(text)} in ${JSON.stringify(line)}`);
  return Number(text);
}

function parseLabels(body: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let rest = body;
  while (rest.length > 0) {
    const match = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/.exec(rest);
    if (!match) throw new Error(`bad labels in ${JSON.stringify(line)}`);
    if (match[1] in labels) throw new Error(`label ${match[1]} repeated in ${JSON.stringify(line)}`);
    labels[match[1]] = match[2].replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
    rest = rest.slice(match[0].length);
  }
  return labels;
}

/** The families of `text`, by name. @throws Error on any line or structure that is not valid exposition text */
export function parsePrometheusStrict(text: string): Map<string, PromFamily> {
  if (!text.endsWith('\n')) throw new Error('exposition text must end with a newline');
  const families = new Map<string, PromFamily & { samples: PromStrictSample[]; hasHelp: boolean; hasType: boolean }>();
  const familyOf = (name: string) => {
    let family = families.get(name);
    if (!family) families.set(name, (family = { name, type: 'untyped', help: '', samples: [], hasHelp: false, hasType: false }));
    return family;
  };
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') continue;
    const help = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(line);
    const type = new RegExp(`^# TYPE (${NAME}) (\\S+)$`).exec(line);
    if (help) {
      const family = familyOf(help[1]);
      if (family.hasHelp || family.samples.length) throw new Error(`HELP out of place: ${JSON.stringify(line)}`);
      Object.assign(family, { help: help[2], hasHelp: true });
      continue;
    }
    if (type) {
      const family = familyOf(type[1]);
      if (family.hasType || family.samples.length || !TYPES.has(type[2])) throw new Error(`TYPE out of place or unknown: ${JSON.stringify(line)}`);
      Object.assign(family, { type: type[2], hasType: true });
      continue;
    }
    if (line.startsWith('#')) throw new Error(`unknown comment line: ${JSON.stringify(line)}`);
    const sample = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)(?: (-?\\d+))?$`).exec(line);
    if (!sample) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const [, name, labelBody, valueText] = sample;
    const base = [...families.keys()].reverse().find((f) => name === f || (['_bucket', '_sum', '_count'].some((s) => name === f + s) && families.get(f)!.type === 'histogram'));
    if (!base) throw new Error(`sample of an undeclared family: ${JSON.stringify(line)}`);
    const family = families.get(base)!;
    if (!family.hasHelp || !family.hasType) throw new Error(`sample before HELP and TYPE: ${JSON.stringify(line)}`);
    family.samples.push({ name, labels: parseLabels(labelBody ?? '', line), value: parseValue(valueText, line) });
  }
  for (const family of families.values()) {
    if (family.type === 'counter' && family.samples.some((s) => !(s.value >= 0))) throw new Error(`counter ${family.name} has a negative or NaN sample`);
    if (family.type === 'histogram') checkHistogram(family);
  }
  return new Map([...families].map(([name, { hasHelp: _h, hasType: _t, ...family }]) => [name, family]));
}

function checkHistogram(family: PromFamily): void {
  const buckets = family.samples.filter((s) => s.name === `${family.name}_bucket`);
  const count = family.samples.find((s) => s.name === `${family.name}_count`);
  if (!count || !family.samples.some((s) => s.name === `${family.name}_sum`)) throw new Error(`histogram ${family.name} lacks _sum or _count`);
  const bounds = buckets.map((b) => (b.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(b.labels.le)));
  if (bounds.at(-1) !== Number.POSITIVE_INFINITY) throw new Error(`histogram ${family.name} does not end with le="+Inf"`);
  for (let i = 1; i < buckets.length; i++) {
    if (!(bounds[i] > bounds[i - 1]) || buckets[i].value < buckets[i - 1].value) throw new Error(`histogram ${family.name} buckets are not cumulative at le=${buckets[i].labels.le}`);
  }
  if (buckets.at(-1)!.value !== count.value) throw new Error(`histogram ${family.name}: +Inf bucket ${buckets.at(-1)!.value} != _count ${count.value}`);
}

/** The value of the one sample named `name` (the family's own name unless given) with exactly `labels`. @throws Error when absent */
export function valueOf(families: Map<string, PromFamily>, family: string, labels: Readonly<Record<string, string>> = {}, name = family): number {
  const samples = families.get(family)?.samples.filter((s) => s.name === name && Object.keys(s.labels).length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (!samples || samples.length !== 1) throw new Error(`${name}${JSON.stringify(labels)}: ${samples?.length ?? 0} samples`);
  return samples[0].value;
}
