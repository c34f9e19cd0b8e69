import { describe, expect, it } from 'vitest';
import { loadExamples } from '../../../../shared/data/load.js';
import { emailBody, labelOfGroup, loadSpamAssassin } from '../../../../shared/data/spam-assassin.js';
import { ErrorCode, errorCodeOf } from '../../../../shared/errors.js';

describe('emailBody', () => {
  it('drops the header block up to the first blank line and collapses whitespace', () => {
    const message = 'From a@b.c  Mon Jan  1 00:00:00 2002\nReceived: from x\n\tby y\nSubject: hi\n\nHello\n\n  there,\tfriend \n';
    expect(emailBody(message)).toBe('Hello there, friend');
    expect(emailBody('Subject: x\r\n\r\nBody\r\nline')).toBe('Body line');
  });

  it('is empty for a message with headers only or a blank body', () => {
    expect(emailBody('Subject: x\nFrom: y\n')).toBe('');
    expect(emailBody('Subject: x\n\n  \n\t\n')).toBe('');
  });
});

describe('labelOfGroup', () => {
  it('maps the package groups to ham and spam', () => {
    expect(['easy-ham-1', 'easy-ham-2', 'hard-ham-1'].map(labelOfGroup)).toEqual(['ham', 'ham', 'ham']);
    expect(['spam-1', 'spam-2'].map(labelOfGroup)).toEqual(['spam', 'spam']);
    expect(errorCodeOf(captured(() => labelOfGroup('phishing')))).toBe(ErrorCode.DATASET);
  });
});

function captured(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('the spam-assassin built-in (real package data)', () => {
  it('has every message of the corpus with its label', async () => {
    const corpus = await loadSpamAssassin();
    // 6,046 messages: easy-ham-1 2,500 + easy-ham-2 1,400 + hard-ham-1 250 = 4,150 ham; spam-1 500 + spam-2 1,396 = 1,896 spam.
    // No message has an empty body, so none is dropped.
    expect(corpus).toHaveLength(6046);
    const count = (label: string): number => corpus.filter((e) => e.label === label).length;
    expect(count('ham')).toBe(4150);
    expect(count('spam')).toBe(1896);
    const groups = new Map<string, number>();
    for (const e of corpus) groups.set(e.group, (groups.get(e.group) ?? 0) + 1);
    expect(Object.fromEntries(groups)).toEqual({ 'easy-ham-1': 2500, 'easy-ham-2': 1400, 'hard-ham-1': 250, 'spam-1': 500, 'spam-2': 1396 });
  });

  it('keeps bodies only: no header lines or mbox separators at the start, whitespace collapsed', async () => {
    const corpus = await loadSpamAssassin();
    for (const { text } of corpus) {
      expect(text.length).toBeGreaterThan(0);
      expect(text).not.toMatch(/^Received:/);
      expect(text).not.toMatch(/^(Delivered-To|Message-Id|X-Spam-[\w-]+):/i);
      // The mbox separator line: "From sender@host  Tue Aug  6 11:51:02 2002".
      expect(text).not.toMatch(/^From \S+@\S+\s+\w{3} \w{3}/);
      expect(text).not.toMatch(/\s{2}|^\s|\s$|\n/);
    }
  });

  it('is what loadExamples returns for the spec, without labels for causal-lm', async () => {
    const classification = await loadExamples('spam-assassin', { task: 'classification' });
    const corpus = await loadSpamAssassin();
    expect(classification).toHaveLength(corpus.length);
    expect(classification[0]).toEqual({ text: corpus[0].text, label: 'ham' });
    expect(classification[classification.length - 1].label).toBe('spam');
    const lm = await loadExamples('spam-assassin', { task: 'causal-lm' });
    expect(lm[0]).toEqual({ text: corpus[0].text });
  });
});
