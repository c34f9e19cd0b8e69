import { Command } from 'commander';
import type { RunConfig } from '../shared/config.js';
import { DEFAULT_MODEL_PATH, resolveConfig } from '../shared/config.js';
import { ExitCode, describeError, exitCodeFor } from '../shared/exit-codes.js';
import { PACKAGE_VERSION } from '../shared/version.js';
import { startLocalWorkers, type LocalWorkers } from './local-workers.js';
import { resolveLogFormat } from './log-format.js';
import { createRunReporter } from './run-reporter.js';
import { runCoordinator } from './run.js';
import { authSettingsOf, localWorkerAccess } from './auth-settings.js';
import { redactSecrets } from '../shared/config/redact.js';
import { registerTokenizerCommand } from './tokenizer-cli.js';
import { registerConfigCommand, configYaml } from './config-cli.js';
import { registerDashboardCommand } from './dashboard/dashboard-cli.js';

/** Options shared by `run` and `coordinator`: where the configuration comes from. */
interface ConfigFlags {
  readonly config?: string;
  readonly set: string[];
  readonly workers?: string;
  readonly outputDir?: string;
  readonly model?: string;
  readonly dataset?: string;
  readonly host?: string;
  readonly port?: string;
  /** `--resume` alone (true) or `--resume PATH`. */
  readonly resume?: string | true;
  /** Print the resolved configuration (YAML, secrets redacted) and exit 0 without training. */
  readonly printConfig?: boolean;
  /** `--log-format`: auto (pretty on a terminal, else json), pretty or json (coordinator/log-format.ts). */
  readonly logFormat?: string;
}

/** Turns the convenience flags into `--set` overrides, so precedence stays: flags/--set > env > file > defaults. */
async function configFrom(flags: ConfigFlags): Promise<RunConfig> {
  const sets = [...flags.set];
  const shortcut = (key: string, value: string | undefined) => value !== undefined && sets.push(`${key}=${value}`);
  shortcut('workers', flags.workers);
  shortcut('output_dir', flags.outputDir);
  shortcut('model', flags.model);
  shortcut('dataset', flags.dataset);
  shortcut('host', flags.host);
  shortcut('port', flags.port);
  if (flags.resume !== undefined) shortcut('resume_from_checkpoint', flags.resume === true ? 'true' : flags.resume);
  return resolveConfig({ file: flags.config, env: process.env, sets });
}

function withConfigFlags(command: Command): Command {
  return command
    .option('-c, --config <file>', 'YAML or JSON run configuration')
    .option('-s, --set <key=value>', 'override one key, dotted for nested keys (repeatable): --set peft.r=16', (v: string, all: string[]) => [...all, v], [])
    .option('--workers <n>', 'number of workers (run: local processes to start; coordinator: workers to wait for)')
    .option('--model <path>', 'base model (.gguf); same as --set model=PATH')
    .option('--dataset <spec>', 'spam-assassin | jsonl:PATH | csv:PATH | tsv:PATH; same as --set dataset=SPEC')
    .option('-o, --output-dir <dir>', 'run output folder; same as --set output_dir=DIR')
    .option('--resume [path]', 'continue from the newest complete checkpoint (in output_dir, or the newest run folder), or from PATH (a checkpoint or run folder); same as --set resume_from_checkpoint=true|PATH')
    .option('--print-config', 'print the resolved configuration (YAML, secrets redacted) to stdout and exit without training')
    .option('--log-format <format>', 'stderr: pretty (Trainer-style lines, progress bars on a terminal), json (pino lines: `2>&1 | npx pino-pretty`) or auto (pretty on a terminal, else json)', 'auto')
    .addHelpText(
      'after',
      `
Configuration precedence: command line (--set, and the flags above) > environment (SWARMTUNE_<KEY>, e.g.
SWARMTUNE_LEARNING_RATE=1e-4, SWARMTUNE_PEFT__R=16) > --config file > defaults. Keys are Hugging Face
TrainingArguments / PEFT names; \`swarmtune config schema\` prints them all as JSON Schema.`,
    );
}

async function runCommand(flags: ConfigFlags & { backend?: string }, startWorkers: boolean): Promise<void> {
  const config = await configFrom(flags);
  if (flags.printConfig === true) {
    process.stdout.write(configYaml(config));
    return;
  }
  const reporter = createRunReporter({ format: resolveLogFormat(flags.logFormat, process.stderr.isTTY === true), shape: barShapeOf(config) });
  reporter.config(redactSecrets(config));
  let workers: LocalWorkers | undefined;
  const stopWorkers = async () => workers?.stop();
  const onSignal = (signal: NodeJS.Signals) => {
    reporter.close();
    console.error(`swarmtune: ${signal}, stopping`);
    void stopWorkers().finally(() => process.exit(ExitCode.INTERRUPTED));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const result = await runCoordinator(config, {
      onListening: (url) => {
        if (!startWorkers) return;
        const access = localWorkerAccess(authSettingsOf(config), config);
        workers = startLocalWorkers(config.workers, url, ['--backend', config.backend, ...access.args], (line) => reporter.line(line, 'worker'), () => access.env);
      },
      onMetrics: (record) => reporter.record(record),
      log: (line) => reporter.line(line),
      onWorkerFigures: (figures) => reporter.watchWorkers(figures),
    });
    reporter.close();
    const stepKey = config.mode === 'federated' ? 'rounds' : 'steps';
    console.log(JSON.stringify({ output_dir: result.outputDir, [stepKey]: result.steps, eval_loss: result.evalLoss, eval_accuracy: result.evalAccuracy }));
  } finally {
    reporter.close();
    await stopWorkers();
  }
}

/** What the progress bars need of the run's shape: federated clients sampled per round. */
function barShapeOf(config: RunConfig): { mode: RunConfig['mode']; clientsPerRound?: number } {
  if (config.mode !== 'federated') return { mode: config.mode };
  const clients = config.num_clients === -1 ? config.workers : config.num_clients;
  return { mode: config.mode, clientsPerRound: Math.min(clients, Math.max(config.min_fit_clients, Math.ceil(config.fraction_fit * clients))) };
}

const program = new Command()
  .name('swarmtune')
  .description('Fine-tune pretrained transformers with LoRA across worker processes and machines.')
  .version(PACKAGE_VERSION)
  .showHelpAfterError()
  .addHelpText(
    'after',
    `
Worker commands (run by the worker program):
  swarmtune worker --connect ws://HOST:PORT [--backend auto|tensorflow|wasm|cpu] [--model PATH]
                   [--token T | --token-file F] [--auth-key-id ID] [--ca FILE]   (auth and wss://)
  swarmtune generate --model PATH --prompt TEXT [--max-new-tokens N] [--temperature T] [--adapter DIR]`,
  );

withConfigFlags(program.command('run'))
  .description('coordinator plus N local worker processes: the whole fine-tune on this machine')
  .addHelpText(
    'after',
    `
Examples:
  swarmtune run                                              # the embedded default: LoRA spam classifier, 2 workers
  swarmtune run --config run.yaml --workers 4 -o runs/exp1
  swarmtune run --set learning_rate=5e-3 --set peft.r=16 --set peft.target_modules=all-linear
  swarmtune run --set eval_strategy=steps --set eval_steps=20 --set save_strategy=steps --set save_steps=20 \\
                --set load_best_model_at_end=true --set metric_for_best_model=accuracy
  swarmtune run --set model=test/fixtures/hf-bert --set task=causal-lm --set max_length=56   # BERT: masked-LM
  SWARMTUNE_LEARNING_RATE=1e-3 swarmtune run --print-config   # show what would run, then exit
  swarmtune run --resume                                     # continue the newest run from its newest checkpoint`,
  )
  .action((flags: ConfigFlags) => runCommand(flags, true));

withConfigFlags(program.command('coordinator'))
  .description('run the coordinator only; workers connect with `swarmtune worker --connect ws://HOST:PORT`')
  .option('--host <host>', 'interface to listen on (0.0.0.0 for every interface)')
  .option('--port <port>', 'TCP port to listen on')
  .addHelpText(
    'after',
    `
Examples:
  swarmtune coordinator --host 0.0.0.0 --port 7070 --workers 2          # then on each machine:
  swarmtune worker --connect ws://COORDINATOR_HOST:7070
  swarmtune coordinator --host 0.0.0.0 --port 7070 --set auth=token --set auth_token_file=token.txt \\
                        --set tls_cert=cert.pem --set tls_key=key.pem      # workers: wss://, --token-file token.txt`,
  )
  .action((flags: ConfigFlags) => runCommand(flags, false));

withConfigFlags(program.command('simulate'))
  .description('federated fine-tuning with N virtual clients over W local worker processes (mode: federated)')
  .option('--clients <n>', 'virtual clients (shards of the training set); same as --set num_clients=N')
  .option('--rounds <n>', 'federated rounds; same as --set num_rounds=N')
  .addHelpText(
    'after',
    `
Examples:
  swarmtune simulate --clients 100 --workers 2 --rounds 5
  swarmtune simulate --clients 20 --set partition=dirichlet --set dirichlet_alpha=0.5 --set strategy=fedprox --set proximal_mu=0.01`,
  )
  .action((flags: ConfigFlags & { clients?: string; rounds?: string }) => {
    const sets = ['mode=federated', ...flags.set];
    if (flags.clients !== undefined) sets.push(`num_clients=${flags.clients}`);
    if (flags.rounds !== undefined) sets.push(`num_rounds=${flags.rounds}`);
    return runCommand({ ...flags, set: sets }, true);
  });

program
  .command('export')
  .description('write a LoRA adapter as a Hugging Face PEFT adapter (q/k rows in HF layout) and the merged model in HF layout')
  .requiredOption('--adapter <dir>', 'adapter directory: a run\'s adapter/ or checkpoint-N/, or one written by Python PEFT')
  .option('--model <path>', 'base model: a .gguf file or a Hugging Face directory', DEFAULT_MODEL_PATH)
  .option('-o, --output-dir <dir>', 'receives adapter/ and merged/', 'export')
  .option('--no-merged', 'write the PEFT adapter only')
  .addHelpText(
    'after',
    `
Examples:
  swarmtune export --adapter runs/20261127-053000/adapter -o export     # export/adapter and export/merged
  swarmtune export --adapter runs/20261127-053000/checkpoint-63 --model path/to/hf-llama-dir --no-merged`,
  )
  .action(async (flags: { adapter: string; model: string; outputDir: string; merged: boolean }) => {
    const { exportHf } = await import('../shared/formats/hf-export.js');
    const result = await exportHf({ model: flags.model, adapterDir: flags.adapter, outputDir: flags.outputDir, merged: flags.merged });
    console.log(`PEFT adapter: ${result.adapterDir}${result.mergedDir ? `\nmerged model: ${result.mergedDir}` : ''}`);
  });

registerTokenizerCommand(program);
registerConfigCommand(program);
registerDashboardCommand(program);

// bin/swarmtune.mjs applied the coordinator's GC setting (coordinator/gc-settings.ts) before these modules loaded.
try {
  await program.parseAsync(process.argv);
} catch (err) {
  console.error(`swarmtune: ${describeError(err)}`);
  process.exit(exitCodeFor(err));
}
