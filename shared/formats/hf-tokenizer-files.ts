/**
 * `tokenizer.json` + `tokenizer_config.json` of a Hugging Face model directory ⇄ {@link TextTokenizer}.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, InputFileError } from '../errors.js';
import { tokenizerFromJson, type TextTokenizer } from '../tokenizer/text-tokenizer.js';

/** Special ids config.json may hold (they back up tokenizer_config.json's token strings). */
export interface HfConfigTokenIds {
  readonly bosTokenId?: number;
  readonly eosTokenId?: number;
  readonly padTokenId?: number;
}

interface TokenizerJsonShape {
  added_tokens?: { id: number; content: string }[];
  model?: { vocab?: Record<string, number> | [string, number][]; unk_token?: string };
}

/** The id of `content` in a tokenizer.json (added tokens first, then the model's vocabulary). */
export function tokenIdOf(json: object, content: string): number | undefined {
  const j = json as TokenizerJsonShape;
  const added = j.added_tokens?.find((t) => t.content === content);
  if (added) return added.id;
  const vocab = j.model?.vocab;
  if (Array.isArray(vocab)) {
    const i = vocab.findIndex(([piece]) => piece === content);
    return i >= 0 ? i : undefined;
  }
  return vocab !== undefined && Object.hasOwn(vocab, content) ? vocab[content] : undefined;
}

/** The text of token `id` in a tokenizer.json, or undefined. */
export function tokenContentOf(json: object, id: number): string | undefined {
  const j = json as TokenizerJsonShape;
  const added = j.added_tokens?.find((t) => t.id === id);
  if (added) return added.content;
  const vocab = j.model?.vocab;
  if (Array.isArray(vocab)) return vocab[id]?.[0];
  if (vocab === undefined) return undefined;
  for (const [piece, i] of Object.entries(vocab)) if (i === id) return piece;
  return undefined;
}

/** A special token entry of tokenizer_config.json: a string or `{ content }` (AddedToken). */
function specialContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as { content?: unknown }).content === 'string') return (value as { content: string }).content;
  return undefined;
}

async function readJson(path: string, what: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputFileError(ErrorCode.MODEL_FILE, `${what} ${path}: ${code === 'ENOENT' ? 'file not found' : `cannot read (${code})`}`, { cause: err });
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Record<string, unknown>;
  } catch (err) {
    throw new InputFileError(ErrorCode.MODEL_FILE, `${what} ${path}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
}

/** Reads a JSON object file, naming it in errors. @throws InputFileError E_MODEL_FILE */
export const readHfJson = readJson;

/**
 * The tokenizer of an HF directory: `tokenizer.json` (required) and `tokenizer_config.json` (optional). BOS/EOS/pad
 * are tokenizer_config's `bos_token` / `eos_token` / `pad_token` looked up in tokenizer.json, else config.json's ids;
 * pad falls back to EOS.
 * @param vocabSize the embedding rows (config.json `vocab_size`).
 * @throws InputFileError E_MODEL_FILE for a missing or invalid file, or when BOS or EOS cannot be resolved.
 */
export async function readHfTokenizer(dir: string, vocabSize: number, ids: HfConfigTokenIds): Promise<TextTokenizer> {
  const jsonPath = join(dir, 'tokenizer.json');
  const configPath = join(dir, 'tokenizer_config.json');
  const json = await readJson(jsonPath, 'tokenizer.json');
  const config = existsSync(configPath) ? await readJson(configPath, 'tokenizer_config.json') : {};
  const resolve = (key: 'bos_token' | 'eos_token' | 'pad_token', fallback: number | undefined): number | undefined => {
    const content = specialContent(config[key]);
    const id = content === undefined ? undefined : tokenIdOf(json, content);
    if (content !== undefined && id === undefined) {
      throw new InputFileError(ErrorCode.MODEL_FILE, `tokenizer_config.json ${configPath}: ${key} ${JSON.stringify(content)} is not in ${jsonPath}`);
    }
    return id ?? fallback;
  };
  const bosId = resolve('bos_token', ids.bosTokenId);
  const eosId = resolve('eos_token', ids.eosTokenId);
  if (bosId === undefined || eosId === undefined) {
    throw new InputFileError(ErrorCode.MODEL_FILE, `HF model directory ${dir}: no ${bosId === undefined ? 'bos' : 'eos'}_token in tokenizer_config.json nor its id in config.json`);
  }
  const padId = resolve('pad_token', ids.padTokenId) ?? eosId;
  for (const [name, id] of [['bos', bosId], ['eos', eosId], ['pad', padId]] as const) {
    if (id >= vocabSize) throw new InputFileError(ErrorCode.MODEL_FILE, `HF model directory ${dir}: ${name} id ${id} is outside vocab_size ${vocabSize}`);
  }
  return tokenizerFromJson(json, config, { vocabSize, bosId, eosId, padId });
}

/**
 * Writes `tokenizer.json` (the tokenizer's own JSON) and a `tokenizer_config.json` naming its special tokens.
 * @param contextLength `model_max_length`.
 */
export async function writeHfTokenizer(dir: string, tokenizer: TextTokenizer, contextLength: number): Promise<void> {
  const json = tokenizer.toJSON();
  const unk = (json as TokenizerJsonShape).model?.unk_token;
  const config = {
    tokenizer_class: 'LlamaTokenizer',
    add_bos_token: true,
    add_eos_token: false,
    legacy: true,
    clean_up_tokenization_spaces: false,
    bos_token: tokenContentOf(json, tokenizer.bosId) ?? null,
    eos_token: tokenContentOf(json, tokenizer.eosId) ?? null,
    unk_token: unk ?? null,
    pad_token: tokenizer.padId === tokenizer.eosId ? null : (tokenContentOf(json, tokenizer.padId) ?? null),
    model_max_length: contextLength,
  };
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(json));
  await writeFile(join(dir, 'tokenizer_config.json'), `${JSON.stringify(config, null, 2)}\n`);
}
