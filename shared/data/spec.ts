/**
 * Dataset specs: the one string that names a dataset in the configuration.
 *
 * Forms: a built-in name (`spam-assassin`; `spam-instructions` for `task: instruction`), or `SCHEME:PATH` for a local file with `SCHEME` one of `jsonl`, `csv`,
 * `tsv`. The path is everything after the first colon, kept as written (relative paths are relative to the process
 * cwd unless the caller passes a base directory).
 */
import { isAbsolute, resolve } from 'node:path';
import { ErrorCode, InputFileError } from '../errors.js';

/** Datasets that ship with the project's dependencies and need no file. */
export const BUILTIN_DATASETS = ['spam-assassin', 'spam-instructions'] as const;
/** One of {@link BUILTIN_DATASETS}. */
export type BuiltinDataset = (typeof BUILTIN_DATASETS)[number];

/** Local file formats a spec can name. */
export const FILE_SCHEMES = ['jsonl', 'csv', 'tsv'] as const;
/** One of {@link FILE_SCHEMES}. */
export type FileScheme = (typeof FILE_SCHEMES)[number];

/** A parsed dataset spec. */
export type DatasetSpec =
  | { readonly kind: 'builtin'; readonly name: BuiltinDataset }
  | { readonly kind: 'file'; readonly scheme: FileScheme; readonly path: string };

/**
 * Parse a dataset spec string.
 *
 * @param spec `spam-assassin`, `jsonl:PATH`, `csv:PATH` or `tsv:PATH`.
 * @param baseDir when given, a relative PATH is resolved against it; otherwise it is kept as written.
 * @throws InputFileError E_DATASET for an empty spec, an unknown built-in or scheme, or a scheme with no path.
 */
export function parseDatasetSpec(spec: string, baseDir?: string): DatasetSpec {
  const trimmed = spec.trim();
  if (trimmed === '') throw new InputFileError(ErrorCode.DATASET, 'empty dataset spec');
  if ((BUILTIN_DATASETS as readonly string[]).includes(trimmed)) {
    return { kind: 'builtin', name: trimmed as BuiltinDataset };
  }
  const colon = trimmed.indexOf(':');
  if (colon < 0) {
    throw new InputFileError(
      ErrorCode.DATASET,
      `unknown dataset "${spec}": expected a built-in (${BUILTIN_DATASETS.join(', ')}) or SCHEME:PATH with SCHEME one of ${FILE_SCHEMES.join(', ')}`,
    );
  }
  const scheme = trimmed.slice(0, colon).toLowerCase();
  const path = trimmed.slice(colon + 1);
  if (!(FILE_SCHEMES as readonly string[]).includes(scheme)) {
    throw new InputFileError(
      ErrorCode.DATASET,
      `unknown dataset spec scheme "${scheme}" in "${spec}": expected one of ${FILE_SCHEMES.join(', ')}`,
    );
  }
  if (path === '') throw new InputFileError(ErrorCode.DATASET, `dataset spec "${spec}" names no file after "${scheme}:"`);
  const resolved = baseDir !== undefined && !isAbsolute(path) ? resolve(baseDir, path) : path;
  return { kind: 'file', scheme: scheme as FileScheme, path: resolved };
}

/** The spec string of a parsed spec (`jsonl:PATH`, `spam-assassin`). */
export function formatDatasetSpec(spec: DatasetSpec): string {
  return spec.kind === 'builtin' ? spec.name : `${spec.scheme}:${spec.path}`;
}
