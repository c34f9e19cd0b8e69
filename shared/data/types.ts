/**
 * The data types every stage of the pipeline shares: raw examples, tokenized items.
 */
import type { RunTask } from '../model/types.js';

/** One example as loaded: its text and, for classification, its label as a string. */
export interface RawExample {
  readonly text: string;
  /** Class label (`ham`, `spam`, `positive`, `3`...); absent for causal-lm. */
  readonly label?: string;
  /** Instruction tuning: the answer the model must write after `text` (the rendered prompt). */
  readonly response?: string;
}

/** How to read examples out of a dataset. */
export interface LoadOptions {
  /** `classification` requires a label on every example; `causal-lm` reads the text only. */
  readonly task: RunTask;
  /** Column (JSONL key, CSV/TSV header) of the text. @default 'text' */
  readonly textColumn?: string;
  /** Column of the label; read for classification only. @default 'label' */
  readonly labelColumn?: string;
  /** Folder against which relative file paths in the spec are resolved. @default the process cwd */
  readonly baseDir?: string;
}

/** One tokenized sequence; `label` is the class id for classification and absent for causal-lm. */
export interface TokenizedItem {
  /** Token ids, BOS first, at most `max_length` long. */
  readonly ids: Int32Array;
  /** Class id (index into the label set). */
  readonly label?: number;
  /**
   * Instruction tuning: the first `promptLength` positions (BOS and prompt) bear no loss on the token after them,
   * so only the response (and its EOS) is learned. Absent: every next token bears loss.
   */
  readonly promptLength?: number;
}

/** A tokenized classification example. */
export interface ClassificationItem extends TokenizedItem {
  readonly label: number;
}
