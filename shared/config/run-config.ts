/**
 * The run configuration: its type, its defaults, and the one documented meaning of every key.
 *
 * Keys are snake_case, exactly as they are written in YAML/JSON files, `--set` overrides and environment variables,
 * and exactly as Hugging Face `TrainingArguments` / PEFT `LoraConfig` name them. The TypeScript type keeps the same
 * snake_case names so that a key reads the same everywhere (file, CLI, env, code, `run_config.json`); code that needs
 * the camelCase model types converts at the boundary (see `toLoraSpec`).
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AdapterNonLinearity, LoraModule, PeftMethod, Pooling, RunTask } from '../model/types.js';

/** Absolute path of the repository root (the folder holding package.json), with no trailing separator. */
export const REPO_ROOT: string = fileURLToPath(new URL('../../', import.meta.url)).replace(/[\\/]+$/, '');

/** The default model as written relative to the repository root (the checkpoint lives beside the repo, never in it). */
export const DEFAULT_MODEL_RELATIVE = '../shared/models/stories260K.gguf';

/** {@link DEFAULT_MODEL_RELATIVE} resolved against {@link REPO_ROOT}: an absolute path. */
export const DEFAULT_MODEL_PATH: string = resolve(REPO_ROOT, DEFAULT_MODEL_RELATIVE);

/** Placeholder in `output_dir` that the run replaces with its start time (see `resolveOutputDir`). */
export const OUTPUT_DIR_TIMESTAMP = '<timestamp>';

/** Compute backends a worker may ask for; `auto` picks tensorflow (tfjs-node[-gpu]) if installed, else wasm. */
export const BACKENDS = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
/** One of {@link BACKENDS}. */
export type BackendName = (typeof BACKENDS)[number];

/** What the coordinator does with the part of a step or round that a lost worker held. */
export const TOPK_SCOPES = ['tensor', 'global'] as const;
/** One of {@link TOPK_SCOPES}. */
export type TopkScope = (typeof TOPK_SCOPES)[number];
export const TOPK_SELECTIONS = ['magnitude', 'preconditioned', 'fisher'] as const;
/** One of {@link TOPK_SELECTIONS}. */
export type TopkSelection = (typeof TOPK_SELECTIONS)[number];
export const SPARSE_OPTIMIZERS = ['coordinator', 'worker'] as const;
/** One of {@link SPARSE_OPTIMIZERS}. */
export type SparseOptimizer = (typeof SPARSE_OPTIMIZERS)[number];
export const ON_WORKER_LOSS = ['reassign', 'survivors'] as const;
/** One of {@link ON_WORKER_LOSS}. */
export type OnWorkerLoss = (typeof ON_WORKER_LOSS)[number];

/** How the run trains: synchronous data-parallel steps, or federated rounds (DESIGN §2). */
export const TRAINING_MODES = ['data-parallel', 'federated'] as const;
/** One of {@link TRAINING_MODES}. */
export type TrainingMode = (typeof TRAINING_MODES)[number];

/** Federated strategies (Flower names, lower-case). */
export const FEDERATED_STRATEGIES = [
  'fedavg',
  'fedprox',
  'fedavgm',
  'fedadam',
  'fedyogi',
  'fedadagrad',
  'fedmedian',
  'fedtrimmedavg',
  'krum',
  'multikrum',
  'centered-clipping',
] as const;
/** One of {@link FEDERATED_STRATEGIES}. */
export type FederatedStrategyName = (typeof FEDERATED_STRATEGIES)[number];

/** How the coordinator authenticates workers in the HTTP upgrade: not at all, a bearer token, or signed requests. */
export const AUTH_MODES = ['none', 'token', 'hmac'] as const;
/** One of {@link AUTH_MODES}. */
export type AuthMode = (typeof AUTH_MODES)[number];

/** How LoRA factors are aggregated: A and B averaged apart, A frozen (FFA-LoRA), or exactly (FedEx-LoRA). */
export const LORA_AGGREGATIONS = ['average', 'freeze-a', 'exact'] as const;
/** One of {@link LORA_AGGREGATIONS}. */
export type LoraAggregation = (typeof LORA_AGGREGATIONS)[number];

/** Shard plans: how training examples are divided among federated clients. */
export const PARTITIONS = ['iid', 'dirichlet', 'pathological', 'natural'] as const;
/** One of {@link PARTITIONS}. */
export type PartitionMethod = (typeof PARTITIONS)[number];

/** When the coordinator writes a resumable `checkpoint-<step>/` (HF `save_strategy`); federated rounds count as epochs. */
export const SAVE_STRATEGIES = ['no', 'epoch', 'steps'] as const;
/** One of {@link SAVE_STRATEGIES}. */
export type SaveStrategy = (typeof SAVE_STRATEGIES)[number];

/** When the coordinator evaluates on the held-out set (HF `eval_strategy`): never mid-run, every `eval_steps` steps, or after every epoch. */
export const EVAL_STRATEGIES = ['no', 'steps', 'epoch'] as const;
/** One of {@link EVAL_STRATEGIES}. */
export type EvalStrategy = (typeof EVAL_STRATEGIES)[number];

/** How a client gets its examples: it loads the dataset itself (`local`) or the coordinator sends them (`ship`). */
export const DATA_DELIVERIES = ['local', 'ship'] as const;
/** One of {@link DATA_DELIVERIES}. */
export type DataDelivery = (typeof DATA_DELIVERIES)[number];

/** Learning-rate schedules (Hugging Face `lr_scheduler_type` names). */
export const LR_SCHEDULER_TYPES = ['linear', 'constant'] as const;
/** One of {@link LR_SCHEDULER_TYPES}. */
export type LrSchedulerName = (typeof LR_SCHEDULER_TYPES)[number];

/** Fine-tuning method settings, PEFT names (`LoraConfig`, `PromptTuningConfig`); one flat mapping for every method. */
export interface PeftConfig {
  /**
   * Fine-tuning method: `lora`, `adapter` (Houlsby bottleneck adapters), `prompt` (prompt tuning), `feature`
   * (frozen body, trained head and top `trainable_top_layers` blocks) or `full` (every weight). Keys of another
   * method are refused. @default 'lora'
   */
  readonly method: PeftMethod;
  /** LoRA rank: inner width of A `[r, in]` and B `[out, r]`. Integer >= 1. @default 8 */
  readonly r: number;
  /** LoRA alpha; the update is scaled by `lora_alpha / r` (or `/ sqrt(r)` with rsLoRA). > 0. @default 16 */
  readonly lora_alpha: number;
  /** Dropout probability on the LoRA input path during training, in [0, 1). @default 0 */
  readonly lora_dropout: number;
  /**
   * Modules that get an adapter, as short names in canonical order (q, k, v, o, gate, up, down, embed), without
   * duplicates. Files may also use Hugging Face names (`q_proj`, `gate_proj`, `embed_tokens`, ...), llama.cpp names
   * (`attn_q`, `ffn_gate`, `attn_output`, `token_embd`, ...), `all-linear` (the linear layers, not the embedding),
   * or one comma-separated string; all are normalised.
   * @default ['q', 'v']
   */
  readonly target_modules: readonly LoraModule[];
  /** rsLoRA: scale by `lora_alpha / sqrt(r)` instead of `lora_alpha / r`. @default false */
  readonly use_rslora: boolean;
  /** `adapter`: bottleneck width (AdapterHub: model width / `reduction_factor`). Integer >= 1. @default 16 */
  readonly adapter_size: number;
  /** `adapter`: the bottleneck's non-linearity (`silu` is AdapterHub's `swish`). @default 'relu' */
  readonly adapter_non_linearity: AdapterNonLinearity;
  /** `prompt`: trainable virtual tokens before every sequence (PEFT `num_virtual_tokens`). Integer >= 1. @default 8 */
  readonly num_virtual_tokens: number;
  /** `feature`: top blocks trained with the head (and the final norm when >= 1). Integer >= 0. @default 0 */
  readonly trainable_top_layers: number;
}

/** A compiled, validated run configuration: every key present, normalised, and checked for conflicts. */
export interface RunConfig {
  /** Path to the base model (a `.gguf` file). Relative paths are kept as written (relative to the process cwd). @default DEFAULT_MODEL_PATH */
  readonly model: string;
  /** Training data spec: `spam-assassin`, `jsonl:PATH`, `csv:PATH` or `tsv:PATH`. @default 'spam-assassin' */
  readonly dataset: string;
  /** Evaluation data spec (same forms as `dataset`); `null` = a seeded split of `dataset`. @default null */
  readonly eval_dataset: string | null;
  /**
   * Size of the evaluation split taken from `dataset` when `eval_dataset` is null: a count of examples if an integer
   * >= 1, or a fraction of the dataset if in (0, 1). The split happens before the `max_*_samples` caps.
   * A value other than the default together with `eval_dataset` is a conflict. @default 300
   */
  readonly eval_split_size: number;
  /** Column (JSONL key, CSV/TSV header) holding the text. @default 'text' */
  readonly text_column: string;
  /** Column holding the class label (classification only; values are read as strings). @default 'label' */
  readonly label_column: string;
  /**
   * What to train: a sequence classifier, next-token prediction, or `instruction` (instruction / input / output
   * records through `prompt_template`, loss on the response tokens only). @default 'classification'
   */
  readonly task: RunTask;
  /**
   * Instruction tuning: the prompt template, `{instruction}`, `{input}` and a final `{output}`; null = Stanford
   * Alpaca's (its no-input variant for records with an empty input). @default null
   */
  readonly prompt_template: string | null;
  /** Maximum tokens per sequence, BOS/EOS included. Integer >= 2. @default 128 */
  readonly max_length: number;
  /** Cap on training examples after the train/eval split and shuffle; -1 = no cap. @default 1000 */
  readonly max_train_samples: number;
  /** Cap on evaluation examples after the split and shuffle; -1 = no cap. @default 300 */
  readonly max_eval_samples: number;
  /** How the classifier pools hidden states: mean over real tokens, or the last real token. @default 'mean' */
  readonly pooling: Pooling;
  /** LoRA settings. */
  readonly peft: PeftConfig;
  /** Peak learning rate of the schedule. > 0. @default 1e-2 (tuned for the embedded stories260K spam-assassin run; LoRA on larger models wants 1e-4 to 1e-3) */
  readonly learning_rate: number;
  /** Examples per worker per optimizer step (the global batch is this times the number of workers). @default 8 */
  readonly per_device_train_batch_size: number;
  /** Examples per forward pass during evaluation. @default 32 */
  readonly per_device_eval_batch_size: number;
  /** Passes over the training set; fractional values stop partway through the last epoch. > 0. @default 1 */
  readonly num_train_epochs: number;
  /** Total optimizer steps; -1 = derive from `num_train_epochs`. Integer >= 1 or -1. @default -1 */
  readonly max_steps: number;
  /** AdamW decoupled weight decay. >= 0. @default 0 */
  readonly weight_decay: number;
  /** AdamW beta1, in [0, 1). @default 0.9 */
  readonly adam_beta1: number;
  /** AdamW beta2, in [0, 1). @default 0.999 */
  readonly adam_beta2: number;
  /** AdamW epsilon. > 0. @default 1e-8 */
  readonly adam_epsilon: number;
  /** Fraction of total steps spent in linear warm-up, in [0, 1). Conflicts with `warmup_steps` > 0. @default 0 */
  readonly warmup_ratio: number;
  /** Optimizer steps of linear warm-up. Integer >= 0. Conflicts with `warmup_ratio` > 0. @default 0 */
  readonly warmup_steps: number;
  /** Learning-rate schedule after warm-up: linear decay to 0, or constant. @default 'linear' */
  readonly lr_scheduler_type: LrSchedulerName;
  /** Global gradient-norm clip; 0 disables clipping. >= 0. @default 1.0 */
  readonly max_grad_norm: number;
  /** Seed of every random choice (split, shuffles, LoRA init, dropout). Integer in [0, 2^32). @default 42 */
  readonly seed: number;
  /**
   * Run output folder. `<timestamp>` is replaced by the run's start time when the run resolves it; relative paths
   * are relative to the process cwd. @default 'runs/<timestamp>'
   */
  readonly output_dir: string;
  /** Log metrics every this many optimizer steps. Integer >= 1. @default 10 */
  readonly logging_steps: number;
  /**
   * When to write a resumable checkpoint (adapter + `swarmtune_state.*`, coordinator/checkpoint-store.ts): after
   * every epoch (every round in federated mode), every `save_steps` steps (rounds) and at the end, or never.
   * @default 'epoch'
   */
  readonly save_strategy: SaveStrategy;
  /** Optimizer steps (federated: rounds) between checkpoints with `save_strategy: steps`. Integer >= 1. @default 500 */
  readonly save_steps: number;
  /** Keep at most this many `checkpoint-*` folders, deleting the oldest; null keeps all. Integer >= 1. @default null */
  readonly save_total_limit: number | null;
  /**
   * Resume: `true` continues from the newest checkpoint whose checksums verify in `output_dir` (or, when it holds
   * `<timestamp>`, in the newest run folder beside it that has one); a path names a checkpoint or run folder (the
   * run then continues in that run folder). Partial or corrupt checkpoints are skipped with a warning. @default null
   */
  readonly resume_from_checkpoint: boolean | string | null;
  /**
   * Wire codec of parameter updates coordinator → worker: `fp32` (lossless; changed tensors travel as values),
   * `fp16`, `bf16`, `int8[:BLOCK]`, `topk[:DENSITY]` (lossy; changed tensors travel as differences against the
   * worker's exact copy, so nothing is lost over time). @default 'fp32'
   */
  readonly params_codec: string;
  /** Wire codec of gradients worker → coordinator (same forms as `params_codec`). @default 'fp32' */
  readonly grads_codec: string;
  /** Per-tensor overrides of `params_codec`: glob pattern (`*` any run) → codec, first match wins. @default {} */
  readonly params_codec_overrides: Readonly<Record<string, string>>;
  /** Per-tensor overrides of `grads_codec`. @default {} */
  readonly grads_codec_overrides: Readonly<Record<string, string>>;
  /** Keep what a lossy gradient codec dropped and add it to the worker's next result. @default true */
  readonly error_feedback: boolean;
  /**
   * Largest wire frame, in bytes: a longer message travels as numbered chunks of at most this many bytes with
   * a CRC-32 each. The coordinator's inbound `maxPayload` follows it (chunk + 64 KiB of header slack); workers
   * learn it from `welcome`. At least 64 KiB, at most 64 MiB. @default 4194304 (4 MiB, DEFAULT_CHUNK_SIZE_BYTES)
   */
  readonly chunk_size_bytes: number;
  /**
   * With a `topk` gradient codec: the first N optimizer steps send gradients dense (fp32) so AdamW estimates its
   * second moment, which is then frozen (1-bit Adam) so that the update is linear in the gradient and error
   * feedback's delayed mass moves the weights as it would have on time. 0 = plain AdamW on the sparse gradients.
   * Integer >= 0. @default 0
   */
  readonly sparse_warmup_steps: number;
  /**
   * `topk` gradients: a result keeps ⌊density × its topk elements⌋ entries in all (never rounded up per tensor), each
   * tensor its share of them (`tensor`) or wherever the ranking puts them (`global`). Measured with `fisher` on the
   * stories260K LoRA run at 1%: global ends closer to fp32 (README, "The wire"). @default 'global'
   */
  readonly topk_scope: TopkScope;
  /**
   * `topk` gradients: rank by `magnitude`, or by magnitude over the root of the worker's own second-moment estimate
   * from the dense warm-up steps (`preconditioned`: what the frozen AdamW will scale most), or, with
   * `sparse_optimizer: worker`, by |δ|·√v̂ of the worker's own AdamW (`fisher`: the loss a displacement δ is worth
   * under the empirical Fisher, ½·v̂·δ², so one global budget goes where leaving a displacement behind would cost
   * the most loss; with `sparse_optimizer: coordinator` it ranks by magnitude). @default 'fisher'
   */
  readonly topk_selection: TopkSelection;
  /**
   * With a `topk` gradient codec, where AdamW runs: `coordinator` (workers send sparse gradients, the coordinator
   * steps AdamW on their mean) or `worker` (each worker steps AdamW on its own dense gradient and sends its sparse,
   * error-fed update; the coordinator adds the weighted mean of the updates, so error feedback telescopes exactly;
   * the worker's moments are not checkpointed). No effect without a `topk` tensor. @default 'worker'
   */
  readonly sparse_optimizer: SparseOptimizer;
  /**
   * With `sparse_optimizer: worker` and error feedback: each worker computes its gradient at θ + its own residual
   * (where its own dense AdamW would have taken the weights) instead of at θ, so a coordinate waiting for a slot is
   * not pushed past its optimum. Measured on the stories260K LoRA run at 1% (by magnitude, 1.18% before the exact
   * budget): eval loss 0.285 with, 0.356 without.
   * @default true
   */
  readonly sparse_lookahead: boolean;
  /**
   * With `sparse_optimizer: worker` and error feedback: the run's last step sends each worker's update plus residual
   * dense (fp32), so the final weights hold everything the workers computed (one dense step in the run; measured on
   * the stories260K LoRA run at 1% by magnitude (1.18% before the exact budget), 63 steps: eval loss 0.2603 against
   * fp32's 0.2569, 0.2854 without; an average density of 2.6%). @default false
   */
  readonly sparse_final_flush: boolean;
  /**
   * With `sparse_optimizer: worker`: zero the worker's AdamW first moment at the coordinates each result sent (DGC's
   * momentum factor masking), so stale momentum does not refill them at once. Measured on the stories260K LoRA run
   * at 1%: eval loss 0.3115 with, 0.2783 without. @default false
   */
  readonly sparse_momentum_masking: boolean;
  /**
   * With `sparse_optimizer: worker` and error feedback: each worker multiplies its residuals by this after every
   * result (what is scaled away is lost, so error feedback no longer telescopes when below 1). Measured on the
   * stories260K LoRA run at 1% by magnitude: 0.95 ends at eval loss 0.3299, 1 at 0.2854. In [0, 1]. @default 1
   */
  readonly sparse_residual_decay: number;
  /** Evaluate once before the first step too, so the base model's `eval_loss` is on record. @default false */
  readonly eval_on_start: boolean;
  /**
   * When to evaluate on the held-out set during a data-parallel run (HF `eval_strategy`; the deprecated
   * `evaluation_strategy` is accepted with a warning): `epoch` after every epoch, `steps` every `eval_steps` optimizer
   * steps, `no` never mid-run. The run always ends with one evaluation (`eval_results.json`). Unlike HF, whose
   * default is `no`, the default keeps swarmtune's per-epoch evaluation. Federated runs use `eval_every_rounds`.
   * @default 'epoch'
   */
  readonly eval_strategy: EvalStrategy;
  /** Optimizer steps between evaluations with `eval_strategy: steps`; null = `logging_steps` (as in HF). Integer >= 1. @default null */
  readonly eval_steps: number | null;
  /**
   * Keep track of the best checkpoint by `metric_for_best_model` and export it as `adapter/` at the end (HF
   * `load_best_model_at_end`); `best_metric` and `best_model_checkpoint` go to `trainer_state.json` and
   * `eval_results.json`. Requires `save_strategy` = `eval_strategy` (and with `steps`, `save_steps` a multiple of
   * `eval_steps`), as the HF Trainer does. Data-parallel only. @default false
   */
  readonly load_best_model_at_end: boolean;
  /** Metric that ranks checkpoints (`loss`/`eval_loss`, `accuracy`/`eval_accuracy`); null = `eval_loss` (HF: "loss"). @default null */
  readonly metric_for_best_model: string | null;
  /** Whether a larger `metric_for_best_model` is better; null = false for a metric whose name ends in `loss`, else true (as in HF). @default null */
  readonly greater_is_better: boolean | null;
  /** Local worker processes `swarmtune run` starts. Integer >= 1. @default 2 */
  readonly workers: number;
  /** Coordinator TCP port; 0 = let the OS pick a free port (the embedded `swarmtune run` default). @default 0 */
  readonly port: number;
  /** Interface the coordinator listens on. @default '127.0.0.1' */
  readonly host: string;
  /** Compute backend of the workers. @default 'auto' */
  readonly backend: BackendName;
  /** Longest the coordinator waits for one worker's step result, in milliseconds. Integer >= 1. @default 60000 */
  readonly step_timeout_ms: number;
  /** Longest the coordinator waits for the workers to join at start, in milliseconds. Integer >= 1. @default 60000 */
  readonly join_timeout_ms: number;
  /**
   * The coordinator pings each worker this often, in milliseconds; workers learn it in `welcome` and wait at
   * least 2 × interval + timeout for a ping before treating the link as dead. Integer >= 1. @default 10000
   */
  readonly heartbeat_interval_ms: number;
  /**
   * A worker that sends no pong (and no frame) this long after a ping is cut (close 4002), unless a request to it
   * is outstanding (it may be computing; the request's timeout bounds that). Milliseconds, integer >= 1. @default 10000
   */
  readonly heartbeat_timeout_ms: number;
  /** Results a worker may have rejected at the gate (non-finite, wrong shape/dtype/name) before it is quarantined for the run; 0 = never. Integer >= 0. @default 3 */
  readonly quarantine_strikes: number;
  /** A lost worker's share of a step is reassigned to the others, or the step uses the survivors only. @default 'reassign' */
  readonly on_worker_loss: OnWorkerLoss;
  /** Synchronous data-parallel steps, or federated rounds. @default 'data-parallel' */
  readonly mode: TrainingMode;
  /** Federated rounds to run. Integer >= 1. @default 10 */
  readonly num_rounds: number;
  /** Federated: evaluate on the held-out set (and checkpoint) every this many rounds, and after the last; 0 = after the last only. Integer >= 0. @default 1 */
  readonly eval_every_rounds: number;
  /** Federated clients (shards of the training set); -1 = one per worker. Integer >= 1 or -1. @default -1 */
  readonly num_clients: number;
  /** Fraction of available clients sampled to train each round, in (0, 1]. @default 1 */
  readonly fraction_fit: number;
  /** Fraction of available clients sampled for federated evaluation each round, in [0, 1]; 0 = off. @default 0 */
  readonly fraction_evaluate: number;
  /** Fewest clients sampled to train in a round. Integer >= 1. @default 2 */
  readonly min_fit_clients: number;
  /** Fewest clients sampled for federated evaluation (when `fraction_evaluate` > 0). Integer >= 1. @default 2 */
  readonly min_evaluate_clients: number;
  /** A round starts only when this many clients are available. Integer >= 1. @default 2 */
  readonly min_available_clients: number;
  /** Longest a round waits for client updates, in seconds; later updates are stale and dropped. > 0. @default 300 */
  readonly round_timeout: number;
  /** Fraction of sampled clients whose updates must arrive for the round to be aggregated (else it is skipped), in [0, 1]. @default 0.5 */
  readonly min_completion_rate: number;
  /** Local passes over a client's examples per round (when `local_steps` is -1). > 0. @default 1 */
  readonly local_epochs: number;
  /** Local optimizer steps per round instead of epochs; -1 = use `local_epochs`. Integer >= 1 or -1. @default -1 */
  readonly local_steps: number;
  /** Clients' local optimizer. @default 'adamw' */
  readonly client_optimizer: 'adamw' | 'sgd';
  /** Momentum of the `sgd` client optimizer, in [0, 1). @default 0 */
  readonly client_momentum: number;
  /** FedProx proximal weight mu (0 = none); used by every strategy, not only `fedprox`. >= 0. @default 0 */
  readonly proximal_mu: number;
  /** Aggregation strategy of federated rounds. @default 'fedavg' */
  readonly strategy: FederatedStrategyName;
  /** Client weights in averaging strategies: examples or tokens trained on. @default 'examples' */
  readonly weight_by: 'examples' | 'tokens';
  /** Server learning rate (FedAvgM, FedAdam, FedYogi, FedAdagrad; eta in Reddi et al. 2021); null = the strategy's Flower default. > 0. @default null */
  readonly server_learning_rate: number | null;
  /** FedAvgM server momentum, in [0, 1); null = the strategy's Flower default. @default null */
  readonly server_momentum: number | null;
  /** FedAdam/FedYogi first-moment decay, in [0, 1); null = Flower's default. @default null */
  readonly server_beta_1: number | null;
  /** FedAdam/FedYogi second-moment decay, in [0, 1); null = Flower's default. @default null */
  readonly server_beta_2: number | null;
  /** FedAdam/FedYogi/FedAdagrad adaptivity tau; null = Flower's default. > 0. @default null */
  readonly server_tau: number | null;
  /** FedTrimmedAvg: fraction of clients cut from each end per coordinate, in [0, 0.5). @default 0.2 */
  readonly trim_fraction: number;
  /** Krum / Multi-Krum: Byzantine clients tolerated (f). Integer >= 0. @default 1 */
  readonly num_byzantine: number;
  /** Multi-Krum: updates kept and averaged; 0 = n − f. Integer >= 0. @default 0 */
  readonly num_to_keep: number;
  /** Centered clipping radius tau (L2, per client update). > 0. @default 1 */
  readonly clipping_radius: number;
  /** Centered clipping iterations. Integer >= 1. @default 3 */
  readonly clipping_iterations: number;
  /** How LoRA factors are aggregated. @default 'average' */
  readonly lora_aggregation: LoraAggregation;
  /** FedBuff: aggregate every this many arrivals without round barriers; 0 = synchronous rounds. Integer >= 0. @default 0 */
  readonly async_buffer_size: number;
  /** FedBuff staleness weight exponent a in (1 + staleness)^-a. >= 0. @default 0.5 */
  readonly staleness_exponent: number;
  /** Shard plan of the training examples among clients. @default 'iid' */
  readonly partition: PartitionMethod;
  /** Dirichlet concentration alpha (`partition: dirichlet`); small = heterogeneous. > 0. @default 0.5 */
  readonly dirichlet_alpha: number;
  /** Labels per client (`partition: pathological`). Integer >= 1. @default 2 */
  readonly labels_per_client: number;
  /** Column whose value names each example's client (`partition: natural`). @default null */
  readonly partition_column: string | null;
  /** Federated clients load the dataset themselves (`local`) or receive their tokenized examples (`ship`). @default 'local' */
  readonly data_delivery: DataDelivery;
  /**
   * Worker authentication, checked in the HTTP upgrade before any frame (RELIABILITY S15): `none`, `token` (the worker
   * sends `Authorization: Bearer <auth_token>`), or `hmac` (the worker signs method, path, timestamp and a nonce with
   * a secret from `auth_keys_file`; skew > 60 s and replayed nonces are refused). @default 'none'
   */
  readonly auth: AuthMode;
  /** The run token (`auth: token`), at least 16 characters; also from env SWARMTUNE_AUTH_TOKEN. Never written to run_config.json. @default null */
  readonly auth_token: string | null;
  /** A file whose content (trimmed) is the run token; exclusive with `auth_token`. @default null */
  readonly auth_token_file: string | null;
  /** `auth: hmac`: a JSON file mapping key ids to secrets (`{"worker-a": "<secret of >= 16 characters>"}`). @default null */
  readonly auth_keys_file: string | null;
  /** PEM certificate (chain) file; with `tls_key` the coordinator listens on `wss://`. @default null */
  readonly tls_cert: string | null;
  /** PEM private key file of `tls_cert`. @default null */
  readonly tls_key: string | null;
}

/** Every default of {@link RunConfig}, deeply frozen. */
export const DEFAULTS: RunConfig = deepFreeze({
  model: DEFAULT_MODEL_PATH,
  dataset: 'spam-assassin',
  eval_dataset: null,
  eval_split_size: 300,
  text_column: 'text',
  label_column: 'label',
  task: 'classification',
  prompt_template: null,
  max_length: 128,
  max_train_samples: 1000,
  max_eval_samples: 300,
  pooling: 'mean',
  peft: {
    method: 'lora',
    r: 8,
    lora_alpha: 16,
    lora_dropout: 0,
    target_modules: ['q', 'v'],
    use_rslora: false,
    adapter_size: 16,
    adapter_non_linearity: 'relu',
    num_virtual_tokens: 8,
    trainable_top_layers: 0,
  },
  learning_rate: 1e-2,
  per_device_train_batch_size: 8,
  per_device_eval_batch_size: 32,
  num_train_epochs: 1,
  max_steps: -1,
  weight_decay: 0.0,
  adam_beta1: 0.9,
  adam_beta2: 0.999,
  adam_epsilon: 1e-8,
  warmup_ratio: 0.0,
  warmup_steps: 0,
  lr_scheduler_type: 'linear',
  max_grad_norm: 1.0,
  seed: 42,
  output_dir: `runs/${OUTPUT_DIR_TIMESTAMP}`,
  logging_steps: 10,
  save_strategy: 'epoch',
  save_steps: 500,
  save_total_limit: null,
  resume_from_checkpoint: null,
  eval_on_start: false,
  eval_strategy: 'epoch',
  eval_steps: null,
  load_best_model_at_end: false,
  metric_for_best_model: null,
  greater_is_better: null,
  params_codec: 'fp32',
  grads_codec: 'fp32',
  params_codec_overrides: {},
  grads_codec_overrides: {},
  error_feedback: true,
  chunk_size_bytes: 4 * 1024 * 1024,
  sparse_warmup_steps: 0,
  topk_scope: 'global',
  topk_selection: 'fisher',
  sparse_optimizer: 'worker',
  sparse_lookahead: true,
  sparse_final_flush: false,
  sparse_momentum_masking: false,
  sparse_residual_decay: 1,
  workers: 2,
  port: 0,
  host: '127.0.0.1',
  backend: 'auto',
  step_timeout_ms: 60_000,
  join_timeout_ms: 60_000,
  heartbeat_interval_ms: 10_000,
  heartbeat_timeout_ms: 10_000,
  quarantine_strikes: 3,
  on_worker_loss: 'reassign',
  mode: 'data-parallel',
  num_rounds: 10,
  eval_every_rounds: 1,
  num_clients: -1,
  fraction_fit: 1,
  fraction_evaluate: 0,
  min_fit_clients: 2,
  min_evaluate_clients: 2,
  min_available_clients: 2,
  round_timeout: 300,
  min_completion_rate: 0.5,
  local_epochs: 1,
  local_steps: -1,
  client_optimizer: 'adamw',
  client_momentum: 0,
  proximal_mu: 0,
  strategy: 'fedavg',
  weight_by: 'examples',
  server_learning_rate: null,
  server_momentum: null,
  server_beta_1: null,
  server_beta_2: null,
  server_tau: null,
  trim_fraction: 0.2,
  num_byzantine: 1,
  num_to_keep: 0,
  clipping_radius: 1,
  clipping_iterations: 3,
  lora_aggregation: 'average',
  async_buffer_size: 0,
  staleness_exponent: 0.5,
  partition: 'iid',
  dirichlet_alpha: 0.5,
  labels_per_client: 2,
  partition_column: null,
  data_delivery: 'local',
  auth: 'none',
  auth_token: null,
  auth_token_file: null,
  auth_keys_file: null,
  tls_cert: null,
  tls_key: null,
});

/**
 * `output_dir` with `<timestamp>` replaced by `now` as `YYYYMMDD-HHMMSS` (UTC), a name that sorts by time and is
 * valid on every file system.
 */
export function resolveOutputDir(outputDir: string, now: Date): string {
  const stamp = now.toISOString().replace(/\.\d+Z$/, '').replace(/[-:]/g, '').replace('T', '-');
  return outputDir.split(OUTPUT_DIR_TIMESTAMP).join(stamp);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
