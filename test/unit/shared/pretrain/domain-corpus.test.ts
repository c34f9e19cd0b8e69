/**
 * The domain-adaptive corpus is the downstream task's training texts exactly: the task's evaluation texts (the
 * split `swarmtune run` makes from the same data keys and seed) are held out, nothing is lost, and an unchanged task
 * reuses the cached files.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileConfig } from '../../../../shared/config.js';
import { loadTrainEval } from '../../../../shared/data/prepare.js';
import { cachedDomainCorpus } from '../../../../shared/pretrain/domain-corpus.js';

const dir = mkdtempSync(join(tmpdir(), 'swarmtune-domain-'));
const dataPath = join(dir, 'mail.jsonl');
writeFileSync(dataPath, Array.from({ length: 40 }, (_, i) => JSON.stringify({ text: `message ${i} about ${i % 3 ? 'lunch' : 'prizes'}`, label: i % 3 ? 'ham' : 'spam' })).join('\n'));
const taskPath = join(dir, 'task.yaml');
writeFileSync(taskPath, `dataset: jsonl:${dataPath}\ntask: classification\neval_split_size: 7\nmax_train_samples: 10\nmax_eval_samples: 3\nseed: 5\n`);

const texts = (path: string): string[] => readFileSync(path, 'utf8').trim().split('\n').map((line) => (JSON.parse(line) as { text: string }).text);

describe('cachedDomainCorpus', () => {
  it("holds the task's evaluation split out and keeps every training text, caps lifted", async () => {
    const corpus = await cachedDomainCorpus(taskPath, join(dir, 'cache'));
    const run = await loadTrainEval({ ...compileConfig({ dataset: `jsonl:${dataPath}`, task: 'classification', eval_split_size: 7, seed: 5 }), max_train_samples: -1, max_eval_samples: -1 });
    const train = texts(corpus.trainPath);
    const heldOut = texts(corpus.heldOutPath);
    expect(corpus.isCached).toBe(false);
    expect(heldOut).toEqual(run.eval.map((e) => e.text));
    expect(train).toEqual(run.train.map((e) => e.text));
    expect(train).toHaveLength(33);
    expect(heldOut).toHaveLength(7);
    expect(train.filter((t) => heldOut.includes(t))).toEqual([]);
    expect(corpus.numTrainChars).toBe(train.reduce((n, t) => n + t.length, 0));
  });

  it('reuses the files for an unchanged task and names a missing task file', async () => {
    const again = await cachedDomainCorpus(taskPath, join(dir, 'cache'));
    expect(again.isCached).toBe(true);
    expect(again.numTrainTexts).toBe(33);
    await expect(cachedDomainCorpus(join(dir, 'nope.yaml'), join(dir, 'cache'))).rejects.toThrow(/nope\.yaml cannot be read/);
  });
});
