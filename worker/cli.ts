import { Command, Option } from 'commander';
import { DEFAULT_MODEL_PATH } from '../shared/config.js';
import { ExitCode, describeError, exitCodeFor } from '../shared/exit-codes.js';
import { describeClose } from '../shared/transport.js';
import { loadModel } from '../shared/model/load-model.js';
import { isHfBertDir } from '../shared/model/bert/load-hf-bert.js';
import { TaskModel } from '../shared/model/task-model.js';
import { generate } from '../shared/model/generate.js';
import { loadPeftAdapter } from '../shared/formats/peft-adapter.js';
import { PACKAGE_VERSION } from '../shared/version.js';
import { BACKEND_PREFERENCES, selectBackend, type BackendPreference } from './backend.js';
import { DEFAULT_PING_TIMEOUT_MS, connectWithRetry } from './transport-ws.js';
import { runWorkerSession } from './worker-runtime.js';
import { DEFAULT_REJOIN_POLICY, runWithRejoin } from './rejoin.js';
import { WorkerModelCache } from './model-cache.js';
import type { Transport } from '../shared/transport.js';
import { DEFAULT_CACHE_DIR } from './blob-fetch.js';
import { loadClientCredentials } from './auth-credentials.js';
import { applyWorkerGcSettings } from './gc-settings.js';
import { readFileSync } from 'node:fs';
import { ConfigError, ErrorCode } from '../shared/errors.js';

const log = (line: string) => console.error(line);

/** The `--ca` file's PEM text. @throws ConfigError E_CONFIG_FILE when unreadable. */
function readCa(path: string | undefined): Buffer | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(ErrorCode.CONFIG_FILE, `cannot read the --ca file ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** A non-negative integer flag. @throws ConfigError E_CONFIG_INVALID otherwise. */
function countFlag(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new ConfigError(ErrorCode.CONFIG_INVALID, `${name} must be an integer >= 0, got '${value}'`);
  return n;
}

interface WorkerFlags {
  connect: string;
  backend: BackendPreference;
  model?: string;
  cacheDir: string;
  connectAttempts: string;
  token?: string;
  tokenFile?: string;
  authKeyId?: string;
  ca?: string;
  workerId?: string;
  rejoinAttempts: string;
  rejoinPatienceMs: string;
  pingTimeoutMs: string;
}

async function workerCommand(flags: WorkerFlags): Promise<number> {
  // Before anything large is loaded: the setting shapes the heap's limits from the next full GC on.
  applyWorkerGcSettings(process.env);
  // Credentials, CA and numbers first: a typo should not wait for the backend to load.
  const credentials = loadClientCredentials({ token: flags.token, tokenFile: flags.tokenFile, keyId: flags.authKeyId, env: process.env });
  const ca = readCa(flags.ca);
  const rejoin = { maxAttempts: countFlag('--rejoin-attempts', flags.rejoinAttempts), patienceMs: countFlag('--rejoin-patience-ms', flags.rejoinPatienceMs) };
  const pingTimeoutMs = countFlag('--ping-timeout-ms', flags.pingTimeoutMs);
  const backend = await selectBackend(flags.backend);
  log(`backend: ${backend.name}${backend.fallbackReasons.length ? ` (not used: ${backend.fallbackReasons.join('; ')})` : ''}`);
  const shutdown = new AbortController();
  const first = await connectWithRetry(flags.connect, { reconnect: { maxAttempts: Number(flags.connectAttempts) }, credentials, ca, pingTimeoutMs, signal: shutdown.signal });
  let current: Transport = first;
  const onSignal = () => {
    shutdown.abort();
    current.close(1001, 'worker shutting down');
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const modelCache = new WorkerModelCache();
  let assignedWorkerId: string | undefined;
  try {
    const outcome = await runWithRejoin(first, rejoin, {
      dial: (reconnect, signal, onRetry) => connectWithRetry(flags.connect, { reconnect, credentials, ca, pingTimeoutMs, signal, onRetry }),
      session: (transport, workerId) =>
        runWorkerSession({
          transport,
          backend: { ...backend },
          modelPath: flags.model,
          cacheDir: flags.cacheDir,
          log,
          workerId,
          modelCache,
          onWelcome: (info) => (assignedWorkerId = info.workerId),
        }),
      onTransport: (transport) => (current = transport),
      workerId: flags.workerId,
      assignedWorkerId: () => assignedWorkerId,
      log,
      signal: shutdown.signal,
    });
    if (outcome.kind === 'stopped') {
      log(`stopped by the coordinator: ${outcome.reason}`);
      return ExitCode.OK;
    }
    if (outcome.kind === 'aborted' || shutdown.signal.aborted) return ExitCode.INTERRUPTED;
    log(outcome.why);
    return ExitCode.CONNECTION;
  } finally {
    modelCache.dispose();
  }
}

async function generateCommand(flags: { model: string; prompt: string; maxNewTokens: string; temperature: string; seed: string; adapter?: string; backend: BackendPreference }): Promise<number> {
  if (isHfBertDir(flags.model)) {
    // Checked before loading: loadModel's refusal would only say "LLaMA-family models only", not why.
    throw new ConfigError(
      ErrorCode.CONFIG_INVALID,
      `cannot generate with ${flags.model}: it is a BERT encoder (model_type "bert"), which reads a whole text at once and has no next-token (causal) language-model head to write one token after another; generate needs a LLaMA-family decoder (GGUF or HF directory). Use swarmtune eval on a BERT model instead`,
    );
  }
  await selectBackend(flags.backend);
  const loaded = await loadModel(flags.model);
  const adapter = flags.adapter ? await loadPeftAdapter(flags.adapter, loaded.config) : undefined;
  const model = TaskModel.create(loaded.config, loaded.weights, adapter?.spec ?? {
    task: 'causal-lm',
    numLabels: 2,
    pooling: 'mean',
    peft: { method: 'lora', r: 1, loraAlpha: 1, loraDropout: 0, targetModules: ['q'], useRslora: false },
  });
  try {
    if (adapter) model.setTrainable(adapter.tensors);
    const text = generate(model, loaded.tokenizer, flags.prompt, {
      maxNewTokens: Number(flags.maxNewTokens),
      temperature: Number(flags.temperature),
      seed: Number(flags.seed),
    });
    process.stdout.write(`${flags.prompt}${text}\n`);
  } finally {
    model.dispose();
  }
  return ExitCode.OK;
}

const backendOption = ['--backend <name>', `compute backend: ${BACKEND_PREFERENCES.join(' | ')}`, 'auto'] as const;

const program = new Command().name('swarmtune').version(PACKAGE_VERSION).showHelpAfterError();

program
  .command('worker')
  .description('connect to a coordinator and compute what it asks for')
  .requiredOption('--connect <url>', 'coordinator address, ws://HOST:PORT (wss://HOST:PORT with TLS)')
  .option(...backendOption)
  .option('--model <path>', 'load the base model from this path instead of the one the coordinator names (same sha256)')
  .option('--cache-dir <dir>', 'where a model this host lacks is fetched from the coordinator to (<dir>/blobs/<sha256>; an HF directory as <dir>/hf/<sha256>/), resumably', DEFAULT_CACHE_DIR)
  .option('--connect-attempts <n>', 'connection attempts before giving up (jittered exponential backoff)', '20')
  .option('--worker-id <id>', 'rejoin under this worker id (the one the coordinator logged); a live session holding it is replaced')
  .addOption(
    new Option('--rejoin-attempts <n>', 'after a lost connection (not after stop, a refusal or quarantine), dial again up to n times with jittered exponential backoff and rejoin under the same worker id, keeping the loaded model; 0 exits instead')
      .env('SWARMTUNE_REJOIN_ATTEMPTS')
      .default(String(DEFAULT_REJOIN_POLICY.maxAttempts)),
  )
  .addOption(
    new Option('--rejoin-patience-ms <ms>', 'give up rejoining after this long (0: only --rejoin-attempts bounds it)').env('SWARMTUNE_REJOIN_PATIENCE_MS').default(String(DEFAULT_REJOIN_POLICY.patienceMs)),
  )
  .addOption(
    new Option('--ping-timeout-ms <ms>', "treat the link as dead after this long without a ping or frame from the coordinator (raised to fit the run's heartbeat; 0 disables)")
      .env('SWARMTUNE_PING_TIMEOUT_MS')
      .default(String(DEFAULT_PING_TIMEOUT_MS)),
  )
  .option('--token <token>', 'run token (coordinator auth=token), or the HMAC secret with --auth-key-id; prefer --token-file or env SWARMTUNE_AUTH_TOKEN (argv is visible to other users)')
  .option('--token-file <file>', 'read the token from this file (env SWARMTUNE_AUTH_TOKEN_FILE)')
  .option('--auth-key-id <id>', 'sign requests with the token as the secret of this key id (coordinator auth=hmac; env SWARMTUNE_AUTH_KEY_ID)')
  .option('--ca <file>', 'PEM certificate(s) of the CA to trust for wss:// (default: the system store)')
  .addHelpText(
    'after',
    `
Examples:
  swarmtune worker --connect ws://192.168.1.10:7070                  # fetches the model from the coordinator
  swarmtune worker --connect ws://HOST:7070 --backend tensorflow --cache-dir /var/cache/swarmtune
  SWARMTUNE_AUTH_TOKEN=... swarmtune worker --connect wss://HOST:7070 --ca ca.pem
  swarmtune worker --connect ws://HOST:7070 --token-file token.txt --rejoin-attempts 0   # exit on a lost link

Environment:
  SWARMTUNE_HEAP_GROWING_PERCENT=N   old-generation limit after a full GC, in percent over what survived (default 100;
                                     0 keeps V8's own factor; see README, Worker GC)`,
  )
  .action(async (flags) => process.exit(await workerCommand(flags)));

program
  .command('generate')
  .description('print a continuation of a prompt (greedy by default), optionally with a trained LoRA adapter')
  .option('--model <path>', 'base model: a .gguf file or a Hugging Face directory', DEFAULT_MODEL_PATH)
  .option('--prompt <text>', 'text to continue (empty: start from BOS)', '')
  .option('--max-new-tokens <n>', 'tokens to generate', '64')
  .option('--temperature <t>', '0 = greedy; otherwise sample from softmax(logits / t)', '0')
  .option('--seed <n>', 'sampling seed', '0')
  .option('--adapter <dir>', 'LoRA adapter directory written by `swarmtune run` or by Python PEFT (causal-lm)')
  .option(...backendOption)
  .addHelpText(
    'after',
    `
Examples:
  swarmtune generate --prompt "Once upon a time" --max-new-tokens 32
  swarmtune generate --model path/to/hf-llama-dir --prompt "Hello" --temperature 0.8 --seed 1
  swarmtune generate --prompt "Subject:" --adapter runs/20261127-053000/adapter   # a causal-lm run's adapter`,
  )
  .action(async (flags) => process.exit(await generateCommand(flags)));

program
  .command('eval')
  .description('print held-out metrics (JSON) of a model, with or without an adapter, on the configured dataset and task')
  .option('--model <path>', 'base model: a .gguf file or a Hugging Face directory (default: the config\'s model)')
  .option('--adapter <dir>', 'adapter directory written by `swarmtune run` or by Python PEFT')
  .option('--config <file>', 'run configuration (YAML/JSON): dataset, task, split, seed, max_length ...')
  .option('--set <key=value>', 'configuration override (repeatable)', (value: string, previous: string[]) => [...previous, value], [] as string[])
  .option('--max-generate <n>', 'instruction: held-out prompts answered greedily for eval_exact_match', '100')
  .option(...backendOption)
  .addHelpText(
    'after',
    `
Examples:
  swarmtune eval --adapter runs/20261127-053000/adapter                       # the default classification task
  swarmtune eval --set task=causal-lm --set max_eval_samples=50                # held-out NLL and perplexity of the base
  swarmtune eval --adapter runs/X/adapter --set task=instruction --set dataset=spam-instructions`,
  )
  .action(async (flags) => {
    const { evalCommand } = await import('./eval-cli.js');
    process.stdout.write(`${JSON.stringify(await evalCommand(flags, log))}\n`);
    process.exit(ExitCode.OK);
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  console.error(`swarmtune: ${describeError(err)}`);
  process.exit(exitCodeFor(err));
}
