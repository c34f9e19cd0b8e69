/**
 * The compute side of a worker in a federated run: it hosts the clients the coordinator places on it (one, or
 * many virtual ones), trains each from the global parameters of the round, evaluates the global model on a
 * client's data, and answers centralized-evaluation batches. Pure request → reply; no I/O.
 */
import type { MessageBody, MessageOf, ClientData, ParamUpdate } from '../shared/protocol/messages.js';
import { MsgKind } from '../shared/protocol/messages.js';
import { wireToBatch } from '../shared/protocol/batch.js';
import { blobToFloat32, blobToInt32, float32Blob } from '../shared/codec.js';
import type { TrainableModel } from '../shared/model/trainable-model.js';
import type { TokenizedItem } from '../shared/data/types.js';
import { ErrorCode, OrchestratorError, ShapeError } from '../shared/errors.js';
import { HeldParams } from './held-params.js';
import { VirtualClientHost } from './virtual-clients.js';
import type { ClientShard } from './local-training.js';

/** The examples a worker prepared itself (`data_delivery: local`); absent when examples are shipped. */
export interface LocalRunData {
  readonly train: readonly TokenizedItem[];
  readonly eval: readonly TokenizedItem[];
}

/** Answers `fit_request`, `client_eval_request` and `eval_request` frames for the clients placed on this worker. */
export class FederatedRank {
  private readonly params: HeldParams;
  private readonly host: VirtualClientHost;
  /** Whether the model's trainable variables may differ from the held global parameters (after local training). */
  private isModelDirty = true;
  /** Version of the exact-LoRA residuals folded into the base (0: none). */
  private residualVersion = 0;

  constructor(
    private readonly model: TrainableModel,
    private readonly localData: LocalRunData | undefined,
    padId: number,
  ) {
    this.params = new HeldParams(model.manifest);
    this.host = new VirtualClientHost({ model, dataset: localData?.train ?? [], evalDataset: localData?.eval ?? [], padding: { padId } });
  }

  /**
   * Local training of one client for one round.
   * @throws OrchestratorError E_PARAMS_VERSION for an update this worker cannot apply; E_DATASET for local indices
   *   without local data; whatever local training throws (invalid config, divergence)
   */
  async fit(request: MessageOf<typeof MsgKind.FIT_REQUEST>): Promise<MessageBody<typeof MsgKind.FIT_RESULT>> {
    const started = performance.now();
    this.applyResiduals(request);
    const { params } = this.params.apply(request);
    this.isModelDirty = true;
    const result = await this.host.fit(request.clientId, params, request.config, this.shardOf(request.data, 'train'));
    const delta = this.model.manifest
      .filter((spec) => result.delta.has(spec.name))
      .map((spec) => float32Blob(spec.name, spec.shape, result.delta.get(spec.name)!));
    return {
      replyTo: request.id,
      round: request.round,
      clientId: request.clientId,
      delta,
      numExamples: result.numExamples,
      numTokens: result.numTokens,
      trainLoss: result.trainLoss,
      steps: result.steps,
      computeMs: performance.now() - started,
    };
  }

  /** Loss statistics of the global parameters on one client's evaluation examples. */
  evaluateClient(request: MessageOf<typeof MsgKind.CLIENT_EVAL_REQUEST>): MessageBody<typeof MsgKind.CLIENT_EVAL_RESULT> {
    const started = performance.now();
    this.applyResiduals(request);
    const { params } = this.params.apply(request);
    this.isModelDirty = true;
    const stats = this.host.evaluate(request.clientId, params, request.batchSize, this.shardOf(request.data, 'eval'));
    return { replyTo: request.id, round: request.round, clientId: request.clientId, stats, computeMs: performance.now() - started };
  }

  /** Centralized evaluation: loss statistics of the global parameters on one batch. */
  evaluateBatch(request: MessageOf<typeof MsgKind.EVAL_REQUEST>): MessageBody<typeof MsgKind.EVAL_RESULT> {
    const started = performance.now();
    this.applyResiduals(request);
    const { params, changed } = this.params.apply(request);
    if (changed || this.isModelDirty) this.model.setTrainable(params);
    this.isModelDirty = false;
    const stats = this.model.evaluate(wireToBatch(request.batch));
    return { replyTo: request.id, step: request.step, stats, computeMs: performance.now() - started };
  }

  /**
   * Folds the exact-LoRA residuals a request brings into the base, once per residual version.
   * @throws ShapeError for residuals that do not fit the model (the base is left as it was)
   */
  private applyResiduals(update: ParamUpdate): void {
    if (update.residualVersion === undefined || update.residualVersion === this.residualVersion || !update.baseResiduals) return;
    this.model.setBaseResiduals(new Map(update.baseResiduals.map((blob) => [blob.name, blobToFloat32(blob)])));
    this.residualVersion = update.residualVersion;
  }

  /** The client's examples: indices into this worker's own data, or the examples the request carries. */
  private shardOf(data: ClientData, split: 'train' | 'eval'): ClientShard {
    if (data.examples) {
      const dataset = unpackExamples(data.examples);
      return { dataset, indices: dataset.map((_, i) => i) };
    }
    if (!this.localData) {
      throw new OrchestratorError(ErrorCode.DATASET, 'the request names example indices, but this worker holds no local data (the run ships examples)');
    }
    return { dataset: split === 'train' ? this.localData.train : this.localData.eval, indices: data.indices! };
  }
}

/**
 * Shipped examples back into tokenized items (views into the frame; nothing is copied).
 * @throws ShapeError E_TENSOR_SHAPE when the lengths do not add up to the token count, or labels are not one per example
 */
export function unpackExamples(examples: NonNullable<ClientData['examples']>): TokenizedItem[] {
  const tokenIds = blobToInt32(examples.tokenIds);
  const lengths = blobToInt32(examples.lengths);
  const labels = examples.labels ? blobToInt32(examples.labels) : undefined;
  if (labels && labels.length !== lengths.length) {
    throw new ShapeError(ErrorCode.TENSOR_SHAPE, `shipped examples: ${labels.length} labels for ${lengths.length} examples`);
  }
  const items: TokenizedItem[] = [];
  let offset = 0;
  for (let i = 0; i < lengths.length; i++) {
    const length = lengths[i];
    if (length < 1 || offset + length > tokenIds.length) {
      throw new ShapeError(ErrorCode.TENSOR_SHAPE, `shipped examples: example ${i} of length ${length} overruns the ${tokenIds.length} token ids`);
    }
    items.push({ ids: tokenIds.subarray(offset, offset + length), ...(labels ? { label: labels[i] } : {}) });
    offset += length;
  }
  if (offset !== tokenIds.length) {
    throw new ShapeError(ErrorCode.TENSOR_SHAPE, `shipped examples: lengths add up to ${offset} tokens, the frame carries ${tokenIds.length}`);
  }
  return items;
}
