/**
 * A padded {@link Batch} ⇄ its wire form {@link WireBatch} (three int32 blobs).
 */
import { ErrorCode, ShapeError } from '../errors.js';
import { blobToInt32, int32Blob } from '../codec.js';
import type { Batch } from '../model/types.js';
import type { TensorBlob, WireBatch } from './messages.js';

/**
 * The wire form of a batch (no copy: the blobs view the batch's arrays).
 * @throws ShapeError E_TENSOR_SHAPE when an array's length does not match `batchSize`/`seqLen`.
 */
export function batchToWire(batch: Batch): WireBatch {
  const { batchSize, seqLen } = batch;
  const labelsShape = batch.labels.length === batchSize ? [batchSize] : [batch.labels.length];
  return {
    batchSize,
    seqLen,
    inputIds: int32Blob('inputIds', [batchSize, seqLen], batch.inputIds),
    attentionMask: int32Blob('attentionMask', [batchSize, seqLen], batch.attentionMask),
    labels: checkLabels(int32Blob('labels', labelsShape, batch.labels), batchSize, seqLen),
  };
}

function checkLabels(blob: TensorBlob, batchSize: number, seqLen: number): TensorBlob {
  const n = blob.shape.length === 1 ? blob.shape[0] : -1;
  if (n !== batchSize && n !== batchSize * seqLen) {
    throw new ShapeError(
      ErrorCode.TENSOR_SHAPE,
      `batch tensor "labels": shape [${blob.shape.join(', ')}], expected [${batchSize}] or [${batchSize * seqLen}]`,
    );
  }
  return blob;
}

function checkGrid(blob: TensorBlob, field: string, batchSize: number, seqLen: number): Int32Array {
  if (blob.shape.length !== 2 || blob.shape[0] !== batchSize || blob.shape[1] !== seqLen) {
    throw new ShapeError(
      ErrorCode.TENSOR_SHAPE,
      `batch tensor "${field}": shape [${blob.shape.join(', ')}], expected [${batchSize}, ${seqLen}]`,
    );
  }
  return blobToInt32(blob);
}

/**
 * A received batch as typed arrays (views into the frame where aligned), after checking dtypes and shapes:
 * `inputIds`/`attentionMask` `[batchSize, seqLen]`, `labels` `[batchSize]` or `[batchSize * seqLen]`.
 * @throws ShapeError E_TENSOR_SHAPE / E_TENSOR_DTYPE, CodecError for a wrong byte length.
 */
export function wireToBatch(wire: WireBatch): Batch {
  const { batchSize, seqLen } = wire;
  return {
    batchSize,
    seqLen,
    inputIds: checkGrid(wire.inputIds, 'inputIds', batchSize, seqLen),
    attentionMask: checkGrid(wire.attentionMask, 'attentionMask', batchSize, seqLen),
    labels: blobToInt32(checkLabels(wire.labels, batchSize, seqLen)),
  };
}
