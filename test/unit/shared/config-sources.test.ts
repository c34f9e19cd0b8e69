import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULTS,
  envOverrides,
  loadConfigFile,
  mergeLayers,
  parseSetOverrides,
  resolveConfig,
} from '../../../shared/config.js';
import { ConfigError, ErrorCode } from '../../../shared/errors.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'swarmtune-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function write(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

async function rejection(promise: Promise<unknown>): Promise<ConfigError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

function thrown(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

const YAML_CONFIG = `# a run
dataset: jsonl:data/train.jsonl
learning_rate: 5e-4
peft:
  r: 4
  lora_alpha: 32
  target_modules: [q_proj, k_proj, v_proj]
seed: 7
`;

describe('loadConfigFile', () => {
  it('reads a YAML file', async () => {
    const path = await write('run.yaml', YAML_CONFIG);
    expect(await loadConfigFile(path)).toEqual({
      dataset: 'jsonl:data/train.jsonl',
      learning_rate: 5e-4,
      peft: { r: 4, lora_alpha: 32, target_modules: ['q_proj', 'k_proj', 'v_proj'] },
      seed: 7,
    });
  });

  it('reads a JSON file', async () => {
    const path = await write('run.json', JSON.stringify({ task: 'causal-lm', peft: { use_rslora: true } }, null, 2));
    expect(await loadConfigFile(path)).toEqual({ task: 'causal-lm', peft: { use_rslora: true } });
  });

  it('reads an empty YAML file as no keys', async () => {
    expect(await loadConfigFile(await write('empty.yml', '# nothing\n'))).toEqual({});
  });

  it('names the path of a missing file', async () => {
    const path = join(dir, 'absent.yaml');
    const err = await rejection(loadConfigFile(path));
    expect(err.code).toBe(ErrorCode.CONFIG_FILE);
    expect(err.message).toContain(path);
    expect(err.message).toContain('not found');
  });

  it('names the path and line of a YAML syntax error', async () => {
    const path = await write('broken.yaml', 'seed: 1\npeft:\n  r: [4, 8\nlearning_rate: 1\n');
    const err = await rejection(loadConfigFile(path));
    expect(err.code).toBe(ErrorCode.CONFIG_FILE);
    expect(err.message).toMatch(new RegExp(`${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} line [34]`));
  });

  it('rejects duplicate YAML keys with their line', async () => {
    const path = await write('dup.yaml', 'seed: 1\nmax_length: 8\nseed: 2\n');
    const err = await rejection(loadConfigFile(path));
    expect(err.code).toBe(ErrorCode.CONFIG_FILE);
    expect(err.message).toContain('line 3');
  });

  it('names the path and line of a JSON syntax error', async () => {
    const path = await write('broken.json', '{\n  "seed": 1,\n  "peft": {"r" 4}\n}\n');
    const err = await rejection(loadConfigFile(path));
    expect(err.code).toBe(ErrorCode.CONFIG_FILE);
    expect(err.message).toContain(path);
    expect(err.message).toContain('line 3');
  });

  it('rejects a top level that is not a mapping, and unknown extensions', async () => {
    expect((await rejection(loadConfigFile(await write('list.yaml', '- 1\n- 2\n')))).code).toBe(ErrorCode.CONFIG_FILE);
    const toml = await rejection(loadConfigFile(await write('run.toml', 'seed = 1\n')));
    expect(toml.code).toBe(ErrorCode.CONFIG_FILE);
    expect(toml.message).toContain('.toml');
  });
});

describe('parseSetOverrides', () => {
  it('builds a nested object with YAML-typed values', () => {
    expect(parseSetOverrides(['peft.r=16', 'learning_rate=1e-3', 'peft.target_modules=[q,v]'])).toEqual({
      peft: { r: 16, target_modules: ['q', 'v'] },
      learning_rate: 1e-3,
    });
  });

  it('types booleans, null, strings with colons and values containing "="', () => {
    expect(parseSetOverrides(['peft.use_rslora=true', 'eval_dataset=null', 'dataset=jsonl:/tmp/a=b.jsonl', 'host=0.0.0.0'])).toEqual({
      peft: { use_rslora: true },
      eval_dataset: null,
      dataset: 'jsonl:/tmp/a=b.jsonl',
      host: '0.0.0.0',
    });
  });

  it('lets a later argument win', () => {
    expect(parseSetOverrides(['seed=1', 'seed=2'])).toEqual({ seed: 2 });
  });

  it('rejects an argument without "=" and a malformed key', () => {
    expect(thrown(() => parseSetOverrides(['peft.r'])).code).toBe(ErrorCode.CONFIG_INVALID);
    expect(thrown(() => parseSetOverrides(['peft..r=1'])).code).toBe(ErrorCode.CONFIG_INVALID);
    expect(thrown(() => parseSetOverrides(['=1'])).code).toBe(ErrorCode.CONFIG_INVALID);
  });

  it('rejects prototype keys', () => {
    const err = thrown(() => parseSetOverrides(['__proto__.polluted=1']));
    expect(err.code).toBe(ErrorCode.CONFIG_UNKNOWN_KEY);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('envOverrides', () => {
  it('maps SWARMTUNE_KEY and SWARMTUNE_SECTION__KEY to keys, ignoring other variables', () => {
    expect(
      envOverrides({
        SWARMTUNE_LEARNING_RATE: '1e-3',
        SWARMTUNE_PEFT__R: '16',
        SWARMTUNE_PEFT__TARGET_MODULES: '[q_proj, v_proj]',
        SWARMTUNE_MAX_STEPS: '-1',
        PATH: '/usr/bin',
        HOME: '/root',
      }),
    ).toEqual({ learning_rate: 1e-3, max_steps: -1, peft: { r: 16, target_modules: ['q_proj', 'v_proj'] } });
  });

  it('ignores prefixed variables that do not start with a configuration key', () => {
    expect(envOverrides({ SWARMTUNE_LOCAL_WORKER: '1', SWARMTUNE_MODELS: '/models', SWARMTUNE_SEED: '3' })).toEqual({ seed: 3 });
  });

  it('rejects a malformed variable name', () => {
    const err = thrown(() => envOverrides({ SWARMTUNE_PEFT____R: '1' }));
    expect(err.code).toBe(ErrorCode.CONFIG_INVALID);
    expect(err.message).toContain('SWARMTUNE_PEFT____R');
  });
});

describe('mergeLayers', () => {
  it('merges mappings key by key and replaces lists', () => {
    const base = { peft: { r: 4, target_modules: ['q', 'k', 'v'] }, seed: 1 };
    expect(mergeLayers(base, { peft: { target_modules: ['o'] } })).toEqual({ peft: { r: 4, target_modules: ['o'] }, seed: 1 });
    expect(base.peft.target_modules).toEqual(['q', 'k', 'v']);
  });
});

describe('resolveConfig precedence', () => {
  it('applies --set > env > file > defaults, key by key', async () => {
    const file = await write('precedence.yaml', YAML_CONFIG);
    const config = await resolveConfig({
      file,
      env: { SWARMTUNE_LEARNING_RATE: '3e-4', SWARMTUNE_SEED: '8', SWARMTUNE_PEFT__R: '12' },
      sets: ['seed=9', 'peft.lora_dropout=0.05'],
    });
    expect(config.seed).toBe(9); // set > env > file
    expect(config.learning_rate).toBe(3e-4); // env > file
    expect(config.peft.r).toBe(12); // env > file, at depth 2
    expect(config.peft.lora_alpha).toBe(32); // file, kept beside an env and a set key in the same section
    expect(config.peft.lora_dropout).toBe(0.05); // set
    expect(config.peft.target_modules).toEqual(['q', 'k', 'v']); // file, normalised
    expect(config.dataset).toBe('jsonl:data/train.jsonl'); // file
    expect(config.max_length).toBe(DEFAULTS.max_length); // default
  });

  it('compiles the defaults when given nothing', async () => {
    const config = await resolveConfig();
    expect(config.peft.r).toBe(8);
    expect(config.dataset).toBe('spam-assassin');
  });

  it('names the environment variable behind an unknown key', async () => {
    const err = await rejection(resolveConfig({ env: { SWARMTUNE_PEFT__RANK: '4' } }));
    expect(err.code).toBe(ErrorCode.CONFIG_UNKNOWN_KEY);
    expect(err.message).toContain('unknown config key "peft.rank" (did you mean "peft.r"?)');
    expect(err.message).toContain('SWARMTUNE_PEFT__RANK');
  });

  it('names the --set argument behind an invalid value', async () => {
    const err = await rejection(resolveConfig({ env: { SWARMTUNE_PEFT__R: '4' }, sets: ['peft.r=many'] }));
    expect(err.code).toBe(ErrorCode.CONFIG_INVALID);
    expect(err.message).toContain('invalid config key "peft.r" (from --set peft.r): got "many" (string)');
  });

  it('names the file and line behind an invalid value', async () => {
    const file = await write('bad-value.yaml', 'seed: 1\npeft:\n  lora_alpha: -2\n');
    const err = await rejection(resolveConfig({ file }));
    expect(err.code).toBe(ErrorCode.CONFIG_INVALID);
    expect(err.message).toContain(`invalid config key "peft.lora_alpha" (from file ${file} line 3)`);
  });

  it('rejects an unknown key in a JSON file', async () => {
    const file = await write('unknown.json', JSON.stringify({ peft: { lora_rank: 4 } }));
    const err = await rejection(resolveConfig({ file }));
    expect(err.code).toBe(ErrorCode.CONFIG_UNKNOWN_KEY);
    expect(err.message).toContain('unknown config key "peft.lora_rank" (did you mean "peft.r"?)');
    expect(err.message).toContain(file);
  });

  it('lets a set null clear a file value', async () => {
    const file = await write('eval.yaml', 'eval_dataset: jsonl:e.jsonl\n');
    expect((await resolveConfig({ file })).eval_dataset).toBe('jsonl:e.jsonl');
    expect((await resolveConfig({ file, sets: ['eval_dataset=null'] })).eval_dataset).toBeNull();
  });
});
