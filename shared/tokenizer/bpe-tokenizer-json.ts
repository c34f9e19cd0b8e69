/**
 * A trained byte-level BPE model as the Hugging Face files GPT-2 ships: `tokenizer.json` (BPE model, ByteLevel
 * pre-tokenizer, post-processor and decoder, written as `tokenizers` writes them) and `tokenizer_config.json`,
 * and the way back: a tokenizer directory loaded through `@huggingface/tokenizers`.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, InputFileError } from '../errors.js';
import type { BpeModel } from './bpe-trainer.js';
import { tokenizerFromJson, type TextTokenizer } from './text-tokenizer.js';

/** Special-token roles written to `tokenizer_config.json`. */
export interface BpeSpecialRoles {
  /** Begin- and end-of-text token (GPT-2 uses one for both). @default the first special token */
  readonly endOfText?: string;
  /** Padding token. @default the second special token when there is one, else `endOfText` */
  readonly pad?: string;
  /** Longest input the model takes, in tokens, when known (`model_max_length`). */
  readonly modelMaxLength?: number;
}

/** The `tokenizer.json` object for a byte-level BPE model (GPT-2 layout). */
export function buildBpeTokenizerJson(model: BpeModel): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  model.tokens.forEach((t, id) => {
    vocab[t] = id;
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: model.tokens.slice(0, model.numSpecialTokens).map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: model.merges.map(([a, b]) => [a, b]),
    },
  };
}

/** The `tokenizer_config.json` object (GPT2TokenizerFast, no clean-up of spaces so that decode inverts encode). */
export function buildBpeTokenizerConfig(model: BpeModel, roles: BpeSpecialRoles = {}): Record<string, unknown> {
  const specials = model.tokens.slice(0, model.numSpecialTokens);
  const endOfText = roles.endOfText ?? specials[0] ?? null;
  const pad = roles.pad ?? specials[1] ?? endOfText;
  const decoder: Record<string, unknown> = {};
  specials.forEach((content, id) => {
    decoder[String(id)] = { content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };
  });
  return {
    add_bos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: decoder,
    bos_token: endOfText,
    clean_up_tokenization_spaces: false,
    eos_token: endOfText,
    ...(roles.modelMaxLength === undefined ? {} : { model_max_length: roles.modelMaxLength }),
    pad_token: pad,
    tokenizer_class: 'GPT2Tokenizer',
    unk_token: endOfText,
  };
}

/**
 * `tokenizer.json` text as `tokenizers` pretty-prints it: two-space indents, the vocabulary in id order (a JS
 * object would put number-like tokens such as "7" first), one merge per line. Same model → same bytes.
 */
export function serializeBpeTokenizerJson(json: Record<string, unknown>): string {
  const model = json.model as { vocab: Record<string, number>; merges: [string, string][] };
  const text = JSON.stringify({ ...json, model: { ...model, vocab: '\u0000vocab', merges: '\u0000merges' } }, null, 2);
  const byId = Object.entries(model.vocab).sort((a, b) => a[1] - b[1]);
  const vocabText =
    byId.length === 0 ? '{}' : `{\n${byId.map(([t, id]) => `      ${JSON.stringify(t)}: ${id}`).join(',\n')}\n    }`;
  const mergesText =
    model.merges.length === 0
      ? '[]'
      : `[\n${model.merges.map(([a, b]) => `      [${JSON.stringify(a)}, ${JSON.stringify(b)}]`).join(',\n')}\n    ]`;
  // The placeholders hold a NUL, which JSON.stringify escapes, so no real token can spell them; replacer
  // functions keep `$` in tokens literal.
  const filled = text
    .replace(JSON.stringify('\u0000vocab'), () => vocabText)
    .replace(JSON.stringify('\u0000merges'), () => mergesText);
  return `${filled}\n`;
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

/**
 * Writes `tokenizer.json` and `tokenizer_config.json` into `dir` (created if missing), each atomically.
 * @returns the two paths.
 */
export async function writeBpeTokenizerDir(
  dir: string,
  model: BpeModel,
  roles: BpeSpecialRoles = {},
): Promise<{ tokenizerJsonPath: string; tokenizerConfigPath: string }> {
  await mkdir(dir, { recursive: true });
  const tokenizerJsonPath = join(dir, 'tokenizer.json');
  const tokenizerConfigPath = join(dir, 'tokenizer_config.json');
  await writeAtomic(tokenizerJsonPath, serializeBpeTokenizerJson(buildBpeTokenizerJson(model)));
  await writeAtomic(tokenizerConfigPath, `${JSON.stringify(buildBpeTokenizerConfig(model, roles), null, 2)}\n`);
  return { tokenizerJsonPath, tokenizerConfigPath };
}

/**
 * Loads a tokenizer directory written by {@link writeBpeTokenizerDir} (or any GPT-2-style one whose
 * `tokenizer_config.json` names its tokens) as a {@link TextTokenizer}: BOS and EOS are `bos_token` /
 * `eos_token`, padding `pad_token` (else EOS); `encode` adds BOS unless told not to.
 * @throws InputFileError E_MODEL_FILE when a file is missing or unreadable, or a named token is not in the vocabulary.
 */
export async function loadBpeTokenizerDir(dir: string): Promise<TextTokenizer> {
  const read = async (name: string): Promise<Record<string, unknown>> => {
    const path = join(dir, name);
    try {
      return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new InputFileError(ErrorCode.MODEL_FILE, `${path}: cannot read tokenizer file: ${err}`, { cause: err });
    }
  };
  const json = await read('tokenizer.json');
  const config = await read('tokenizer_config.json');
  const ids = new Map<string, number>();
  const model = json.model as { vocab?: Record<string, number> } | undefined;
  for (const [t, id] of Object.entries(model?.vocab ?? {})) ids.set(t, id);
  for (const added of (json.added_tokens as { id: number; content: string }[] | undefined) ?? []) ids.set(added.content, added.id);
  const idOf = (key: string): number | undefined => {
    const name = config[key];
    if (name === null || name === undefined) return undefined;
    const id = typeof name === 'string' ? ids.get(name) : undefined;
    if (id === undefined) {
      throw new InputFileError(ErrorCode.MODEL_FILE, `${join(dir, 'tokenizer_config.json')}: ${key} ${JSON.stringify(name)} is not in the vocabulary`);
    }
    return id;
  };
  const eosId = idOf('eos_token');
  if (eosId === undefined) {
    throw new InputFileError(ErrorCode.MODEL_FILE, `${join(dir, 'tokenizer_config.json')}: no eos_token`);
  }
  const bosId = idOf('bos_token') ?? eosId;
  const padId = idOf('pad_token') ?? eosId;
  let vocabSize = 0;
  for (const id of ids.values()) vocabSize = Math.max(vocabSize, id + 1);
  return tokenizerFromJson(json, config, { vocabSize, bosId, eosId, padId });
}
