import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SCHEMA_FILE_NAME, configJsonSchema, configJsonSchemaText } from '../../../../shared/config/json-schema.js';
import { KNOWN_KEYS } from '../../../../shared/config/schema.js';
import { REPO_ROOT } from '../../../../shared/config.js';
import { resolveConfig } from '../../../../shared/config/resolve.js';

const committed = readFileSync(join(REPO_ROOT, SCHEMA_FILE_NAME), 'utf8');

describe('the configuration JSON Schema', () => {
  it(`the committed ${SCHEMA_FILE_NAME} equals the generated one (regenerate: swarmtune config schema --output ${SCHEMA_FILE_NAME})`, () => {
    expect(committed).toBe(configJsonSchemaText());
  });

  it('describes every key with a default, refuses unknown keys, and marks deprecated names', () => {
    const schema = configJsonSchema() as { properties: Record<string, Record<string, unknown>>; additionalProperties: unknown };
    expect(schema.additionalProperties).toBe(false);
    for (const key of KNOWN_KEYS['']) expect(schema.properties[key]?.description, key).toBeTypeOf('string');
    expect(schema.properties.learning_rate).toMatchObject({ type: 'number', exclusiveMinimum: 0, default: 0.01 });
    expect(schema.properties.eval_strategy).toMatchObject({ enum: ['no', 'steps', 'epoch'], default: 'epoch' });
    const peft = schema.properties.peft as { properties: Record<string, Record<string, unknown>>; additionalProperties: unknown };
    expect(peft.additionalProperties).toBe(false);
    for (const key of KNOWN_KEYS.peft) expect(peft.properties[key]?.description, `peft.${key}`).toBeTypeOf('string');
    expect(schema.properties.evaluation_strategy).toMatchObject({ deprecated: true, enum: ['no', 'steps', 'epoch'] });
    expect(JSON.stringify(schema)).not.toContain(REPO_ROOT);
  });

  it('the shipped example config points editors at the schema and compiles', async () => {
    const path = join(REPO_ROOT, 'examples', 'run.yaml');
    expect(readFileSync(path, 'utf8').split('\n')[0]).toBe(`# yaml-language-server: $schema=../${SCHEMA_FILE_NAME}`);
    const config = await resolveConfig({ file: path, onWarning: () => undefined });
    expect(config.load_best_model_at_end).toBe(true);
  });
});
