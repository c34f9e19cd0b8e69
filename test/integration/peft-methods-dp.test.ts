/**
 * Every fine-tuning method beside LoRA in real data-parallel runs over loopback WebSockets: on a random model,
 * 2 workers equal the one-process reference (the wire carries each method's tensors, full fine-tuning's included);
 * on the real stories260K spam classification, a handful of steps per method with 2 workers.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { compileConfig } from '../../shared/config.js';
import { prepareRun } from '../../coordinator/run.js';
import { selectBackend, type BackendReport } from '../../worker/backend.js';
import { runRecordingSteps } from '../helpers/in-process-workers.js';
import { dpConfig, makeDpFixture, maxRelativeDifference, NON_LORA_METHOD_PEFT, referenceRun, type DpFixture } from '../helpers/dp-fixture.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunConfig } from '../../shared/config.js';

const METHOD_PEFT = NON_LORA_METHOD_PEFT;

let fixture: DpFixture;
let backend: BackendReport;

beforeAll(async () => {
  fixture = await makeDpFixture();
  backend = await selectBackend('auto');
});

const train = (config: RunConfig, numWorkers: number) => runRecordingSteps(config, numWorkers, backend);

describe('fine-tuning methods in data-parallel runs', () => {
  for (const [method, peft] of Object.entries(METHOD_PEFT)) {
    it(`${method}: 2 workers equal the one-process reference`, async () => {
      const config = dpConfig(fixture, 2, { peft, max_steps: 4 });
      const reference = await referenceRun(config);
      const initial = (await prepareRun(config)).initial;
      const { result } = await train(config, 2);
      expect(result.steps).toBe(4);
      result.stepLosses.forEach((loss, i) => expect(Math.abs(loss - reference.losses[i]) / reference.losses[i]).toBeLessThan(1e-4));
      expect(maxRelativeDifference(reference.params, initial)).toBeGreaterThan(1e-4);
      expect(maxRelativeDifference(result.params, reference.params)).toBeLessThan(1e-4);
    });
  }

  it('lora with embed_tokens targeted: 2 workers equal the one-process reference, and the embedding factors train', async () => {
    const config = dpConfig(fixture, 2, { peft: { r: 4, lora_alpha: 8, target_modules: ['q', 'v', 'embed_tokens'] }, max_steps: 4 });
    const reference = await referenceRun(config);
    const initial = (await prepareRun(config)).initial;
    const { result } = await train(config, 2);
    expect(result.steps).toBe(4);
    result.stepLosses.forEach((loss, i) => expect(Math.abs(loss - reference.losses[i]) / reference.losses[i]).toBeLessThan(1e-4));
    for (const name of ['model.embed_tokens.lora_embedding_A', 'model.embed_tokens.lora_embedding_B']) {
      const only = (m: Map<string, Float32Array>) => new Map([[name, m.get(name)!]]);
      expect(maxRelativeDifference(only(initial), only(reference.params)), name).toBeGreaterThan(1e-4);
    }
    expect(maxRelativeDifference(result.params, reference.params)).toBeLessThan(1e-4);
  });

  it('stories260K spam classification: every method runs a handful of steps with 2 workers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'swarmtune-methods-'));
    for (const [method, peft] of Object.entries(METHOD_PEFT)) {
      const config = compileConfig({
        peft,
        max_steps: 3,
        max_train_samples: 48,
        max_eval_samples: 16,
        max_length: 32,
        workers: 2,
        learning_rate: method === 'full' || method === 'feature' ? 2e-3 : 1e-2,
        save_strategy: 'no',
        output_dir: join(dir, method),
      });
      const { result, records } = await train(config, 2);
      expect(result.steps, method).toBe(3);
      expect(Number.isFinite(result.evalLoss), method).toBe(true);
      expect(result.evalAccuracy, method).toBeGreaterThan(0);
      expect(records.every((r) => Number.isFinite(r.loss as number)), method).toBe(true);
    }
  });
});
