/**
 * The near-equal contiguous split the shard plans share.
 */

/** `items` cut into `parts` contiguous runs of near-equal length (the first `length % parts` one longer). */
export function nearEqualSplit(items: ArrayLike<number>, parts: number): number[][] {
  const base = Math.floor(items.length / parts);
  const extra = items.length % parts;
  const out: number[][] = [];
  let start = 0;
  for (let part = 0; part < parts; part++) {
    const end = start + base + (part < extra ? 1 : 0);
    out.push(Array.from({ length: end - start }, (_, i) => items[start + i]));
    start = end;
  }
  return out;
}
