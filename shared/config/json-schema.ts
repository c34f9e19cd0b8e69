/**
 * The configuration's JSON Schema (draft 2020-12), for editor completion and validation of run files
 * (`# yaml-language-server: $schema=./swarmtune.schema.json`). Generated from the zod schema of
 * shared/config/schema.ts with zod's `z.toJSONSchema`; the committed `swarmtune.schema.json` must equal it (a test
 * checks), so regenerate with `swarmtune config schema --output swarmtune.schema.json` after adding a key.
 */
import { z } from 'zod';
import { DEFAULTS } from './run-config.js';
import { CONFIG_INPUT_SCHEMA, PEFT_FIELDS, TOP_FIELDS } from './schema.js';
import { DEPRECATED_KEYS } from './deprecated.js';

/** File name of the committed schema at the repository root. */
export const SCHEMA_FILE_NAME = 'swarmtune.schema.json';

/** Defaults that depend on the machine (absolute paths) and so are described in words instead. */
const MACHINE_DEPENDENT_DEFAULTS: ReadonlySet<string> = new Set(['model']);

type JsonObject = Record<string, unknown>;

/**
 * The JSON Schema of a configuration file: every key with its type, range, `description` (what it expects) and
 * `default`; deprecated Hugging Face names marked `deprecated: true`. Deterministic: the same on every machine.
 */
export function configJsonSchema(): JsonObject {
  const schema = z.toJSONSchema(CONFIG_INPUT_SCHEMA, { io: 'input', target: 'draft-2020-12' }) as JsonObject;
  const properties = schema.properties as Record<string, JsonObject>;
  const defaults = DEFAULTS as unknown as Record<string, unknown>;
  for (const [key, spec] of Object.entries(TOP_FIELDS)) {
    if (key === 'peft') continue;
    annotate(properties[key], spec.expected, MACHINE_DEPENDENT_DEFAULTS.has(key) ? undefined : defaults[key]);
  }
  if (properties.model !== undefined) properties.model.description = `${TOP_FIELDS.model.expected}; default: ../shared/models/stories260K.gguf beside the swarmtune checkout`;
  const peft = properties.peft;
  peft.description = 'fine-tuning method settings (PEFT names)';
  const peftProperties = peft.properties as Record<string, JsonObject>;
  for (const [key, spec] of Object.entries(PEFT_FIELDS)) annotate(peftProperties[key], spec.expected, (DEFAULTS.peft as unknown as Record<string, unknown>)[key]);
  for (const [old, spec] of Object.entries(DEPRECATED_KEYS)) {
    properties[old] = {
      ...(old === 'no_cuda' || old === 'use_cpu' ? { type: 'boolean' } : structuredClone(properties[spec.replacement])),
      description: `deprecated Hugging Face name: use ${spec.replacement}${spec.note ? ` (${spec.note})` : ''}`,
      deprecated: true,
    };
    delete properties[old].default;
  }
  return {
    $schema: schema.$schema,
    title: 'swarmtune run configuration',
    description: 'A swarmtune run file (YAML or JSON). Keys are Hugging Face TrainingArguments / PEFT names; see shared/config/run-config.ts.',
    ...Object.fromEntries(Object.entries(schema).filter(([key]) => key !== '$schema')),
  };
}

/** The schema as the committed file holds it: two-space JSON and a final newline. */
export function configJsonSchemaText(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}

function annotate(property: JsonObject | undefined, expected: string, defaultValue: unknown): void {
  if (property === undefined) return;
  property.description = expected;
  if (defaultValue !== undefined) property.default = structuredClone(defaultValue);
}
