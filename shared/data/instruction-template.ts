/**
 * Instruction records (`instruction` / `input` / `output`, the Alpaca fields) rendered through a prompt template
 * into the prompt the model reads and the response it must learn to write.
 */
import { ConfigError, ErrorCode } from '../errors.js';

/** One instruction-tuning record; `input` may be empty. */
export interface InstructionRecord {
  readonly instruction: string;
  readonly input: string;
  readonly output: string;
}

/** Stanford Alpaca's prompt for a record with an input. */
export const ALPACA_TEMPLATE =
  'Below is an instruction that describes a task, paired with an input that provides further context. ' +
  'Write a response that appropriately completes the request.\n\n' +
  '### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n{output}';

/** Stanford Alpaca's prompt for a record without an input. */
export const ALPACA_TEMPLATE_NO_INPUT =
  'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n' +
  '### Instruction:\n{instruction}\n\n### Response:\n{output}';

/** The template fields, in the order they may appear. */
const PLACEHOLDER = /\{(instruction|input|output)\}/g;

/**
 * Check a `prompt_template`: it must hold `{output}` exactly once, at its end (the response is everything the model
 * writes after the prompt), and may hold `{instruction}` and `{input}` anywhere before it.
 * @throws ConfigError E_CONFIG_INVALID naming the problem.
 */
export function validatePromptTemplate(template: string): void {
  const outputs = template.split('{output}').length - 1;
  if (outputs !== 1) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `prompt_template must contain {output} exactly once, found ${outputs} in ${JSON.stringify(template)}`);
  }
  if (!template.endsWith('{output}')) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `prompt_template must end with {output} (the response follows the prompt), got ${JSON.stringify(template)}`);
  }
}

/**
 * The prompt (template up to `{output}`, fields substituted once: braces inside a field are kept as written) and the
 * response (`output`) of a record.
 * @param template a template with `{instruction}`, `{input}`, `{output}`; null = Alpaca's, its no-input variant when
 *   `input` is empty or only whitespace.
 * @throws ConfigError E_CONFIG_INVALID for a template without a final `{output}` (see {@link validatePromptTemplate}).
 */
export function renderInstruction(record: InstructionRecord, template: string | null): { prompt: string; response: string } {
  const chosen = template ?? (record.input.trim() === '' ? ALPACA_TEMPLATE_NO_INPUT : ALPACA_TEMPLATE);
  validatePromptTemplate(chosen);
  const head = chosen.slice(0, chosen.length - '{output}'.length);
  const prompt = head.replace(PLACEHOLDER, (_, field: 'instruction' | 'input' | 'output') => record[field]);
  return { prompt, response: record.output };
}

/**
 * Answer normalisation for exact-match accuracy: trimmed, lower-case, inner whitespace collapsed, trailing `.`/`!`
 * dropped ("Yes." matches "yes").
 */
export function normalizeAnswer(text: string): string {
  return text.trim().toLowerCase().replace(/\s+/g, ' ').replace(/[.!]+$/, '').trim();
}
