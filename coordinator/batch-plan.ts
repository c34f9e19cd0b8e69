/**
 * How a global batch is divided among workers: pure index arithmetic, so that the plan is data and the same
 * global batch gives the same global gradient whatever the number of workers.
 */

/** A contiguous part of a global batch, identified by its position so results can be summed in a fixed order. */
export interface BatchSlice {
  /** Position of this slice in the global batch (0-based); results are summed in this order. */
  readonly sliceIndex: number;
  /** Example indices (into the training set) of this slice. */
  readonly exampleIndices: readonly number[];
}

/**
 * Cuts a global batch into `numParts` contiguous slices whose sizes differ by at most one (the first
 * `length % numParts` slices get the extra example). Empty slices are left out: a global batch smaller than
 * the number of workers (the last batch of an epoch) occupies only some of them.
 */
export function splitGlobalBatch(globalBatch: readonly number[], numParts: number): BatchSlice[] {
  if (!Number.isInteger(numParts) || numParts < 1) throw new RangeError(`numParts must be a positive integer, got ${numParts}`);
  const base = Math.floor(globalBatch.length / numParts);
  const extra = globalBatch.length % numParts;
  const slices: BatchSlice[] = [];
  let start = 0;
  for (let part = 0; part < numParts; part++) {
    const size = base + (part < extra ? 1 : 0);
    if (size > 0) slices.push({ sliceIndex: part, exampleIndices: globalBatch.slice(start, start + size) });
    start += size;
  }
  return slices;
}
