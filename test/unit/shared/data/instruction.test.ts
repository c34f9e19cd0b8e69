import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileConfig } from '../../../../shared/config.js';
import { collateBatch, IGNORE_INDEX } from '../../../../shared/data/collate.js';
import { loadInstructionExamples } from '../../../../shared/data/instruction-load.js';
import { buildSpamInstructions, SPAM_INSTRUCTION } from '../../../../shared/data/instruction-spam.js';
import { ALPACA_TEMPLATE_NO_INPUT, normalizeAnswer, renderInstruction } from '../../../../shared/data/instruction-template.js';
import { PROMPT_TAIL_TOKENS, tokenizeForInstruction } from '../../../../shared/data/instruction-tokenize.js';
import { loadTrainEval } from '../../../../shared/data/prepare.js';
import { digestItems } from '../../../../shared/data/run-data.js';
import type { DataTokenizer } from '../../../../shared/data/tokenize.js';
import { ErrorCode, errorCodeOf } from '../../../../shared/errors.js';

/** One token per character (id 3 + code point % 500). */
const tokenizer: DataTokenizer = {
  padId: 0,
  bosId: 1,
  eosId: 2,
  encode: (text, opts) => [...(opts.addBos ? [1] : []), ...[...text].map((c) => 3 + (c.codePointAt(0)! % 500)), ...(opts.addEos ? [2] : [])],
};
const ids = (text: string): number[] => [...text].map((c) => 3 + (c.codePointAt(0)! % 500));

describe('renderInstruction', () => {
  it("uses Alpaca's template, its no-input variant for an empty input, and substitutes each field once", () => {
    const withInput = renderInstruction({ instruction: 'Sum {input}', input: '1 2', output: '3' }, null);
    expect(withInput.prompt).toContain('### Instruction:\nSum {input}\n\n### Input:\n1 2\n\n### Response:\n');
    expect(withInput.prompt.endsWith('### Response:\n')).toBe(true);
    expect(withInput.response).toBe('3');
    const noInput = renderInstruction({ instruction: 'Say hi', input: ' ', output: 'hi' }, null);
    expect(noInput.prompt).toBe(ALPACA_TEMPLATE_NO_INPUT.replace('{instruction}', 'Say hi').replace('{output}', ''));
  });

  it('renders a custom template and refuses one without a final {output}', () => {
    expect(renderInstruction({ instruction: 'Q', input: 'x', output: 'A' }, 'Q: {instruction} {input}\nA:{output}')).toEqual({ prompt: 'Q: Q x\nA:', response: 'A' });
    for (const bad of ['{instruction} {input}', '{output} {instruction}', '{output}{output}']) {
      expect(() => renderInstruction({ instruction: 'Q', input: '', output: 'A' }, bad), bad).toThrow(/prompt_template/);
      try {
        renderInstruction({ instruction: 'Q', input: '', output: 'A' }, bad);
      } catch (err) {
        expect(errorCodeOf(err)).toBe(ErrorCode.CONFIG_INVALID);
      }
    }
  });

  it('normalises answers for exact match', () => {
    expect(normalizeAnswer('  Yes.\n')).toBe('yes');
    expect(normalizeAnswer('no')).toBe(normalizeAnswer(' NO! '));
    expect(normalizeAnswer('yes no')).not.toBe('yes');
  });
});

describe('tokenizeForInstruction + collateBatch', () => {
  it('is BOS + prompt + response + EOS with loss on the response and EOS only', () => {
    const [item] = tokenizeForInstruction([{ text: 'ab:', response: 'yes' }], tokenizer, { maxLength: 32 });
    expect(Array.from(item.ids)).toEqual([1, ...ids('ab:'), ...ids('yes'), 2]);
    expect(item.promptLength).toBe(4);
    const batch = collateBatch([item, { ids: Int32Array.of(1, 5, 6) }], { task: 'instruction', padId: 0, seqLen: 9 });
    const row0 = Array.from(batch.labels.subarray(0, 9));
    // Positions 0..2 predict prompt tokens; 3..6 predict y, e, s, EOS; 7 is the last real token; 8 is padding.
    expect(row0).toEqual([IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, ...ids('yes'), 2, IGNORE_INDEX, IGNORE_INDEX]);
    // An item without promptLength keeps every next-token target (causal-lm).
    expect(Array.from(batch.labels.subarray(9, 12))).toEqual([5, 6, IGNORE_INDEX]);
  });

  it('cuts a long prompt in its middle, keeping its head, its last tokens and the whole response', () => {
    const prompt = `${'h'.repeat(40)}${'m'.repeat(100)}${'t'.repeat(PROMPT_TAIL_TOKENS)}`;
    const [item] = tokenizeForInstruction([{ text: prompt, response: 'no' }], tokenizer, { maxLength: 64 });
    expect(item.ids.length).toBe(64);
    expect(item.ids[0]).toBe(1);
    expect(Array.from(item.ids.subarray(1, 11))).toEqual(ids('h'.repeat(10)));
    expect(Array.from(item.ids.subarray(item.promptLength - PROMPT_TAIL_TOKENS, item.promptLength))).toEqual(ids('t'.repeat(PROMPT_TAIL_TOKENS)));
    expect(Array.from(item.ids.subarray(item.promptLength))).toEqual([...ids('no'), 2]);
  });

  it('cuts the response at its end when even the prompt tail leaves no room', () => {
    const [item] = tokenizeForInstruction([{ text: 'p'.repeat(50), response: 'r'.repeat(50) }], tokenizer, { maxLength: 40 });
    expect(item.ids.length).toBe(40);
    expect(item.promptLength).toBe(1 + PROMPT_TAIL_TOKENS);
    expect(item.ids[39]).toBe(ids('r')[0]);
  });

  it('changes the training digest with the prompt boundary, and not for items without one', () => {
    const a = { ids: Int32Array.of(1, 5, 6, 2) };
    expect(digestItems([a])).toBe(digestItems([{ ids: Int32Array.of(1, 5, 6, 2) }]));
    expect(digestItems([{ ...a, promptLength: 2 }])).not.toBe(digestItems([{ ...a, promptLength: 3 }]));
  });
});

describe('instruction datasets', () => {
  it('reads JSON Lines and TSV records (input optional) and names the line of a bad record', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'instr-'));
    await writeFile(join(dir, 'a.jsonl'), '{"instruction":"Add","input":"1 2","output":"3"}\n\n{"instruction":"Hi","output":"hello"}\n');
    const examples = await loadInstructionExamples('jsonl:a.jsonl', 'I:{instruction} {input}\nO:{output}', dir);
    expect(examples).toEqual([
      { text: 'I:Add 1 2\nO:', response: '3' },
      { text: 'I:Hi \nO:', response: 'hello' },
    ]);
    await writeFile(join(dir, 'b.tsv'), 'instruction\toutput\nSay\tok\n');
    expect(await loadInstructionExamples('tsv:b.tsv', '{instruction}={output}', dir)).toEqual([{ text: 'Say=', response: 'ok' }]);
    await writeFile(join(dir, 'c.jsonl'), '{"instruction":"Add","output":"3"}\n{"instruction":"Add","output":3}\n');
    await expect(loadInstructionExamples('jsonl:c.jsonl', null, dir)).rejects.toThrow(/c\.jsonl line 2: key "output" is a number/);
    await expect(loadInstructionExamples('spam-assassin', null, dir)).rejects.toMatchObject({ code: ErrorCode.DATASET });
  });

  it('spam-instructions: one record per distinct e-mail; the train and held-out splits share no e-mail', async () => {
    const records = await buildSpamInstructions();
    expect(records.length).toBeGreaterThan(1000);
    expect(new Set(records.map((r) => r.input)).size).toBe(records.length);
    expect(records.every((r) => r.instruction === SPAM_INSTRUCTION && (r.output === 'yes' || r.output === 'no') && r.input.length <= 600)).toBe(true);
    const spam = records.filter((r) => r.output === 'yes').length / records.length;
    expect(spam).toBeGreaterThan(0.2);
    expect(spam).toBeLessThan(0.45);
    const config = compileConfig({ task: 'instruction', dataset: 'spam-instructions', max_train_samples: -1, max_eval_samples: -1 });
    const { train, eval: held } = await loadTrainEval(config);
    expect(held).toHaveLength(300);
    expect(train.length + held.length).toBe(records.length);
    const heldPrompts = new Set(held.map((e) => e.text));
    expect(train.some((e) => heldPrompts.has(e.text))).toBe(false);
    expect(held[0].text).toContain(`### Instruction:\n${SPAM_INSTRUCTION}\n\n### Input:\n`);
  });
});
