import { mkdtempSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { writePeftAdapter } from '../../../../shared/formats/peft-adapter.js';
import { loadHfModel } from '../../../../shared/model/load-hf.js';
import { initTrainableValues, trainableManifest } from '../../../../shared/model/trainable.js';
import type { ModelSpec } from '../../../../shared/model/types.js';
import { baseWeightsFromFullAdapter, writeRandomHfModel, writeTrainedHfModel } from '../../../../shared/pretrain/hf-model-files.js';
import { loadBpeTokenizerDir } from '../../../../shared/tokenizer/bpe-tokenizer-json.js';
import { runBpeTrainJob } from '../../../../shared/tokenizer/bpe-train-job.js';

const dir = mkdtempSync(join(tmpdir(), 'swarmtune-hfmini-'));
const shape = { dim: 16, nLayers: 1, nHeads: 2, nKvHeads: 1, hiddenDim: 32, normEps: 1e-5, ropeTheta: 10000, contextLength: 32 };
const spec: ModelSpec = { task: 'causal-lm', numLabels: 2, pooling: 'mean', peft: { method: 'full' } };

beforeAll(async () => {
  await writeFile(join(dir, 'text.txt'), 'the cat sat on the mat. the dog sat on the log. '.repeat(50));
  await runBpeTrainJob({ inputFiles: [join(dir, 'text.txt')], outputDir: join(dir, 'tok'), vocabSize: 280 });
});

describe('pre-training model directories', () => {
  it('random init → full adapter → trained HF directory round-trips every weight', async () => {
    const vocabSize = (await loadBpeTokenizerDir(join(dir, 'tok'))).vocabSize;
    const config = { ...shape, vocabSize };
    await writeRandomHfModel(join(dir, 'init'), config, join(dir, 'tok'), 3);
    const init = await loadHfModel(join(dir, 'init'));
    expect(init.config).toEqual(config);
    expect(init.tokenizer.decode(init.tokenizer.encode('the cat sat', { addBos: true }))).toBe('the cat sat');
    const manifest = trainableManifest(init.config, spec, init.weights);
    const values = initTrainableValues(init.config, spec, 1, init.weights);
    await writePeftAdapter(join(dir, 'adapter'), values, manifest, { spec, baseModel: join(dir, 'init'), modelConfig: init.config });
    const weights = await baseWeightsFromFullAdapter(join(dir, 'adapter'), config);
    await writeTrainedHfModel(join(dir, 'out'), config, weights, join(dir, 'tok'));
    const out = await loadHfModel(join(dir, 'out'));
    for (const [name, w] of init.weights) expect(out.weights.get(name), name).toEqual(w);
    expect(out.tokenizer.sha256).toBe(init.tokenizer.sha256);
  });

  it('refuses a tokenizer whose vocabulary differs from the config', async () => {
    await expect(writeRandomHfModel(join(dir, 'bad'), { ...shape, vocabSize: 999 }, join(dir, 'tok'), 3)).rejects.toMatchObject({ code: 'E_TENSOR_SHAPE' });
  });

  it('refuses a LoRA adapter as a full fine-tune', async () => {
    const vocabSize = (await loadHfModel(join(dir, 'init'))).config.vocabSize;
    const lora: ModelSpec = { ...spec, peft: { method: 'lora', r: 2, loraAlpha: 4, loraDropout: 0, targetModules: ['q'], useRslora: false } };
    const config = { ...shape, vocabSize };
    await writePeftAdapter(join(dir, 'lora'), initTrainableValues(config, lora, 1), trainableManifest(config, lora), { spec: lora, baseModel: 'x', modelConfig: config });
    await expect(baseWeightsFromFullAdapter(join(dir, 'lora'), config)).rejects.toMatchObject({ code: 'E_TENSOR_NAME' });
  });
});
