/**
 * PEFT adapter names for BERT-family models (`BertForSequenceClassification`): LoRA keys
 * `base_model.model.bert.encoder.layer.N.<module>.lora_{A,B}.weight` (module paths in bert-trainable.ts), the
 * classifier as PEFT saves a `modules_to_save` module (`base_model.model.classifier.weight` / `.bias`: PEFT strips
 * `modules_to_save.default` on save and puts it back on load), `modules_to_save: ["classifier"]`, task SEQ_CLS.
 *
 * `target_modules` follows PEFT's matching (a name matches a module whose path equals it or ends with `.name`; a
 * single string is a regex the whole path must match): a list of the shortest unambiguous suffixes when one
 * exists, else a regex.
 */
import { BERT_LORA_TARGETS, BERT_MODULE_PATHS, type BertLoraTarget } from '../model/bert/bert-trainable.js';
import type { LoraModule } from '../model/types.js';

/** Suffix per target written to `target_modules` (`output.dense` also matches `attention.output.dense`). */
const BERT_TARGET_SUFFIXES: Readonly<Record<BertLoraTarget, string>> = {
  q: 'query',
  k: 'key',
  v: 'value',
  o: 'attention.output.dense',
  up: 'intermediate.dense',
  down: 'output.dense',
};

/** The path PEFT sees for `target` in layer 0 (what `target_modules` is matched against). */
function modulePath(target: BertLoraTarget): string {
  return `bert.encoder.layer.0.${BERT_MODULE_PATHS[target]}`;
}

/**
 * The BERT targets `targetModules` selects, by PEFT's rules; undefined when it selects none or names a module
 * BERT's encoder layers do not have.
 */
export function bertTargetsOfModules(targetModules: unknown): BertLoraTarget[] | undefined {
  if (typeof targetModules === 'string') {
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${targetModules})$`);
    } catch {
      return undefined;
    }
    const hit = BERT_LORA_TARGETS.filter((t) => re.test(modulePath(t)));
    return hit.length > 0 ? hit : undefined;
  }
  if (!Array.isArray(targetModules) || targetModules.length === 0) return undefined;
  const hit = new Set<BertLoraTarget>();
  for (const name of targetModules) {
    if (typeof name !== 'string') return undefined;
    const matched = BERT_LORA_TARGETS.filter((t) => modulePath(t) === name || modulePath(t).endsWith(`.${name}`));
    if (matched.length === 0) return undefined;
    for (const t of matched) hit.add(t);
  }
  return BERT_LORA_TARGETS.filter((t) => hit.has(t));
}

/** `target_modules` for `targets`: suffixes when they select exactly `targets`, else a regex over the layer paths. */
export function bertTargetModules(targets: readonly LoraModule[]): string[] | string {
  const wanted = BERT_LORA_TARGETS.filter((t) => targets.includes(t));
  const list = wanted.map((t) => BERT_TARGET_SUFFIXES[t]);
  const selected = bertTargetsOfModules(list);
  if (selected && selected.length === wanted.length) return list;
  return `bert\\.encoder\\.layer\\.\\d+\\.(?:${wanted.map((t) => BERT_MODULE_PATHS[t].replace(/\./g, '\\.')).join('|')})`;
}
