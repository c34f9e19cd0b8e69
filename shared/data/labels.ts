/**
 * Class labels: the sorted label set of a dataset, and label ⇄ id.
 */
import { ErrorCode, InputFileError } from '../errors.js';
import type { RawExample } from './types.js';

/**
 * The distinct labels of `examples`, sorted; a label's id is its index (`['ham', 'spam']`: ham = 0, spam = 1).
 * When every label is a canonical integer (`0`, `7`, `-1`) they sort numerically, so that label `2` gets id 2 in a
 * `0..k` label set; otherwise by UTF-16 code unit (locale-independent). Examples without a label are ignored.
 */
export function labelSet(examples: Iterable<RawExample>): string[] {
  const distinct = new Set<string>();
  for (const example of examples) if (example.label !== undefined) distinct.add(example.label);
  const labels = [...distinct];
  if (labels.every((label) => /^-?(0|[1-9]\d{0,14})$/.test(label))) return labels.sort((a, b) => Number(a) - Number(b));
  return labels.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * A lookup from label to id for a label set from {@link labelSet}.
 *
 * @returns `idOf(label)`, which throws InputFileError E_DATASET for a missing label or one outside the set.
 */
export function labelIndex(labels: readonly string[]): (label: string | undefined, where?: string) => number {
  const ids = new Map(labels.map((label, id) => [label, id]));
  return (label, where = 'example') => {
    if (label === undefined) throw new InputFileError(ErrorCode.DATASET, `${where} has no label (classification needs one)`);
    const id = ids.get(label);
    if (id === undefined) {
      throw new InputFileError(ErrorCode.DATASET, `${where} has label ${JSON.stringify(label)}, not in the label set [${labels.join(', ')}]`);
    }
    return id;
  };
}
