import { Command } from 'commander';
import { DEFAULT_MODEL_PATH } from '../shared/config.js';
import { ExitCode, describeError, exitCodeFor } from '../shared/exit-codes.js';
import { describeClose } from '../shared/transport.js';
import { loadLlamaGguf } from '../shared/model/load-gguf.js';
import { TaskModel } from '../shared/model/task-model.js';
import { generate } from '../shared/model/generate.js';
import { loadPeftAdapter } from '../shared/formats/peft-adapter.js';
import { PACKAGE_VERSION } from '../shared/version.js';
import { BACKEND_PREFERENCES, selectBackend, type BackendPreference } from './backend.js';
import { connectWithRetry } from './transport-ws.js';
import { runWorkerSession } from './worker-runtime.js';
import { DEFAULT_CACHE_DIR } from './blob-fetch.js';
import { loadClientCredentials } from './auth-credentials.js';
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

async function workerCommand(flags: { connect: string; backend: BackendPreference; model?: string; cacheDir: string; connectAttempts: string; token?: string; tokenFile?: string; authKeyId?: string; ca?: string; workerId?: string }): Promise<number> {
  // Credentials and CA first: a typo in a path should not wait for the backend to load.
  const credentials = loadClientCredentials({ token: flags.token, tokenFile: flags.tokenFile, keyId: flags.authKeyId, env: process.env });
  const ca = readCa(flags.ca);
  const backend = await selectBackend(flags.backend);
  log(`backend: ${backend.name}${backend.fallbackReasons.length ? ` (not used: ${backend.fallbackReasons.join('; ')})` : ''}`);
  const transport = await connectWithRetry(flags.connect, { reconnect: { maxAttempts: Number(flags.connectAttempts) }, credentials, ca });
  let stopping = false;
  const onSignal = () => {
    stopping = true;
    transport.close(1001, 'worker shutting down');
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const outcome = await runWorkerSession({ transport, backend: { ...backend }, modelPath: flags.model, cacheDir: flags.cacheDir, log, workerId: flags.workerId });
  if (outcome.kind === 'stopped') {
    log(`stopped by the coordinator: ${outcome.reason}`);
    return ExitCode.OK;
  }
  if (stopping) return ExitCode.INTERRUPTED;
  log(`connection to the coordinator ${describeClose(outcome.close)}`);
  return ExitCode.CONNECTION;
}

async function generateCommand(flags: { model: string; prompt: string; maxNewTokens: string; temperature: string; seed: string; adapter?: string; backend: BackendPreference }): Promise<number> {
  await selectBackend(flags.backend);
  const loaded = await loadLlamaGguf(flags.model);
  const adapter = flags.adapter ? await loadPeftAdapter(flags.adapter) : undefined;
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
  .option('--cache-dir <dir>', 'where a model this host lacks is fetched from the coordinator to (<dir>/blobs/<sha256>), resumably', DEFAULT_CACHE_DIR)
  .option('--connect-attempts <n>', 'connection attempts before giving up (jittered exponential backoff)', '20')
  .option('--worker-id <id>', 'rejoin under this worker id (the one the coordinator logged); a live session holding it is replaced')
  .option('--token <token>', 'run token (coordinator auth=token), or the HMAC secret with --auth-key-id; prefer --token-file or env SWARMTUNE_AUTH_TOKEN (argv is visible to other users)')
  .option('--token-file <file>', 'read the token from this file (env SWARMTUNE_AUTH_TOKEN_FILE)')
  .option('--auth-key-id <id>', 'sign requests with the token as the secret of this key id (coordinator auth=hmac; env SWARMTUNE_AUTH_KEY_ID)')
  .option('--ca <file>', 'PEM certificate(s) of the CA to trust for wss:// (default: the system store)')
  .action(async (flags) => process.exit(await workerCommand(flags)));

program
  .command('generate')
  .description('print a continuation of a prompt (greedy by default), optionally with a trained LoRA adapter')
  .option('--model <path>', 'base model (.gguf)', DEFAULT_MODEL_PATH)
  .option('--prompt <text>', 'text to continue (empty: start from BOS)', '')
  .option('--max-new-tokens <n>', 'tokens to generate', '64')
  .option('--temperature <t>', '0 = greedy; otherwise sample from softmax(logits / t)', '0')
  .option('--seed <n>', 'sampling seed', '0')
  .option('--adapter <dir>', 'PEFT adapter directory written by `swarmtune run` (causal-lm)')
  .option(...backendOption)
  .action(async (flags) => process.exit(await generateCommand(flags)));

try {
  await program.parseAsync(process.argv);
} catch (err) {
  console.error(`swarmtune: ${describeError(err)}`);
  process.exit(exitCodeFor(err));
}
