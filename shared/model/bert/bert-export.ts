/**
 * `swarmtune export` for BERT: a trained LoRA adapter over a BERT directory → the PEFT adapter directory (BERT
 * module paths, the classifier under `modules_to_save`) and the merged `BertForSequenceClassification` directory
 * (`W + s·B·A` in every adapted layer, the trained classifier as its head, the base tokenizer); a masked-LM adapter
 * merges into a `BertForMaskedLM` (its trained head, or the checkpoint's when the head stayed frozen).
 */
import { join } from 'node:path';
import { ConfigError, ErrorCode } from '../../errors.js';
import { loadPeftAdapter, writePeftAdapter } from '../../formats/peft-adapter.js';
import { mergeBertLora, writeHfBert } from './bert-merge.js';
import { BERT_CLASSIFIER_BIAS, BERT_CLASSIFIER_WEIGHT, bertTrainableManifest } from './bert-trainable.js';
import { loadHfBert } from './load-hf-bert.js';
import { BERT_MLM_DENSE_WEIGHT, bertMlmHeadManifest, isBertMlm } from './bert-mlm-head.js';

/**
 * Writes `<outputDir>/adapter` and, unless `merged` is false, `<outputDir>/merged`.
 * @throws InputFileError E_MODEL_FILE for an unreadable model or adapter (naming the file and tensor);
 *   ConfigError E_CONFIG_INVALID when the adapter is not LoRA.
 */
export async function exportHfBert(options: { readonly model: string; readonly adapterDir: string; readonly outputDir: string; readonly merged?: boolean }): Promise<{ adapterDir: string; mergedDir?: string }> {
  const loaded = await loadHfBert(options.model);
  const adapter = await loadPeftAdapter(options.adapterDir, loaded.config);
  if (adapter.spec.peft.method !== 'lora') throw new ConfigError(ErrorCode.CONFIG_INVALID, `export: ${options.adapterDir} is not a LoRA adapter`);
  const adapterDir = join(options.outputDir, 'adapter');
  const isMlm = isBertMlm(adapter.spec);
  const manifest = bertTrainableManifest(loaded.config, adapter.spec, { hasMlmHead: !adapter.tensors.has(BERT_MLM_DENSE_WEIGHT) });
  await writePeftAdapter(adapterDir, adapter.tensors, manifest, { spec: adapter.spec, baseModel: options.model, labels: adapter.labels, modelConfig: loaded.config });
  if (options.merged === false) return { adapterDir };
  const mergedDir = join(options.outputDir, 'merged');
  const weights = mergeBertLora(loaded.config, loaded.weights, adapter.spec, adapter.tensors);
  if (isMlm) {
    // The adapter's head when it trained one (modules_to_save), else the checkpoint's.
    const mlmHead = adapter.tensors.has(BERT_MLM_DENSE_WEIGHT)
      ? new Map(bertMlmHeadManifest(loaded.config).map((t) => [t.name, adapter.tensors.get(t.name) as Float32Array]))
      : loaded.mlmHead;
    await writeHfBert(mergedDir, { config: loaded.config, weights, mlmHead, tokenizer: loaded.tokenizer });
    return { adapterDir, mergedDir };
  }
  const head = { weight: adapter.tensors.get(BERT_CLASSIFIER_WEIGHT) as Float32Array, bias: adapter.tensors.get(BERT_CLASSIFIER_BIAS) as Float32Array };
  await writeHfBert(mergedDir, { config: { ...loaded.config, numLabels: adapter.spec.numLabels }, weights, head, tokenizer: loaded.tokenizer });
  return { adapterDir, mergedDir };
}
