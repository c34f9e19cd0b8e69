/**
 * "Did you mean" for unknown configuration keys: synonyms people bring from other tools, camelCase and kebab-case
 * spellings, keys written at the wrong depth, and small typos.
 */

/** Synonyms from other trainers and libraries, by the depth they are written at (`''` top level, `'peft'`). */
const ALIASES: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  '': {
    lr: 'learning_rate',
    batch_size: 'per_device_train_batch_size',
    train_batch_size: 'per_device_train_batch_size',
    eval_batch_size: 'per_device_eval_batch_size',
    epochs: 'num_train_epochs',
    num_epochs: 'num_train_epochs',
    steps: 'max_steps',
    num_steps: 'max_steps',
    warmup: 'warmup_steps',
    scheduler: 'lr_scheduler_type',
    lr_scheduler: 'lr_scheduler_type',
    grad_clip: 'max_grad_norm',
    clip_grad_norm: 'max_grad_norm',
    output: 'output_dir',
    num_workers: 'workers',
    model_path: 'model',
    model_name_or_path: 'model',
    train_dataset: 'dataset',
    dataset_name: 'dataset',
    eval_size: 'eval_split_size',
    test_size: 'eval_split_size',
    validation_split: 'eval_split_size',
    max_seq_length: 'max_length',
    seq_len: 'max_length',
    lora: 'peft',
  },
  peft: {
    rank: 'r',
    lora_r: 'r',
    lora_rank: 'r',
    alpha: 'lora_alpha',
    dropout: 'lora_dropout',
    target: 'target_modules',
    targets: 'target_modules',
    modules: 'target_modules',
    rslora: 'use_rslora',
    peft_type: 'method',
    type: 'method',
  },
};

/**
 * The full dotted key the user probably meant, or undefined when nothing is close enough.
 *
 * @param parentPath dotted path of the mapping holding the unknown key (`''` for the top level, `'peft'`).
 * @param key the unknown key as written.
 * @param knownByPath the known keys of every mapping, by parent path (`{ '': [...], peft: [...] }`).
 */
export function suggestKey(
  parentPath: string,
  key: string,
  knownByPath: Readonly<Record<string, readonly string[]>>,
): string | undefined {
  const known = knownByPath[parentPath] ?? [];
  const join = (path: string, k: string): string => (path === '' ? k : `${path}.${k}`);
  const normalised = normaliseSpelling(key);

  const alias = ALIASES[parentPath]?.[normalised];
  if (alias !== undefined && known.includes(alias)) return join(parentPath, alias);
  if (known.includes(normalised)) return join(parentPath, normalised);

  // A key written at the wrong depth: `lora_alpha` at the top level, `learning_rate` inside `peft`.
  for (const [otherPath, otherKeys] of Object.entries(knownByPath)) {
    if (otherPath === parentPath) continue;
    const otherAlias = ALIASES[otherPath]?.[normalised];
    if (otherKeys.includes(normalised)) return join(otherPath, normalised);
    if (otherAlias !== undefined && otherKeys.includes(otherAlias) && normalised.length > 2) {
      return join(otherPath, otherAlias);
    }
  }

  let best: string | undefined;
  let bestDistance = normalised.length >= 5 ? 2 : 1;
  for (const candidate of known) {
    const distance = levenshtein(normalised, candidate);
    if (distance <= bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  if (best !== undefined) return join(parentPath, best);

  // A fragment of a longer key: `alpha` for `lora_alpha`, `eval_batch` for `per_device_eval_batch_size`.
  if (normalised.length >= 3) {
    const containing = known.filter((candidate) => `_${candidate}_`.includes(`_${normalised}_`));
    if (containing.length === 1) return join(parentPath, containing[0]);
  }
  return undefined;
}

/** `learningRate`, `learning-rate`, `Learning_Rate` → `learning_rate`. */
function normaliseSpelling(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[-\s]+/g, '_')
    .toLowerCase();
}

/** Edit distance (insertions, deletions, substitutions), two-row dynamic programme. */
export function levenshtein(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j] + 1, current[j - 1] + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length];
}
