/**
 * One top-k budget over the several tensors of a result: at most density × (all their elements) entries in all,
 * where {@link topkCount} per tensor rounds each count up (a result of many small tensors then sends well over its
 * density: 107 entries rather than 90 for the 9,088 coordinates of the stories260K LoRA at 1%).
 */

/**
 * How many entries each tensor of sizes `sizes` keeps at `densities` (one per tensor, each in (0, 1]) when the
 * result as a whole keeps K = ⌊Σ dᵢ·nᵢ⌋ (at least 1 when any tensor has an element): every tensor its ⌊dᵢ·nᵢ⌋,
 * then one more each for the largest fractional parts (ties to the lower index) until K are given. Never more
 * than a tensor's size; a density of 1 keeps every element.
 * @throws RangeError when the lengths differ, a size is not a non-negative integer or a density is not in (0, 1]
 */
export function allocateTopkBudget(sizes: readonly number[], densities: readonly number[]): number[] {
  if (sizes.length !== densities.length) throw new RangeError(`allocateTopkBudget: ${sizes.length} sizes but ${densities.length} densities`);
  // Products like 0.29 × 100 land a hair below their integer in float64; the slack keeps them whole.
  const slack = 1e-9;
  const exact = sizes.map((n, i) => {
    const d = densities[i];
    if (!(Number.isInteger(n) && n >= 0)) throw new RangeError(`allocateTopkBudget: size ${n} is not a non-negative integer`);
    if (!(d > 0 && d <= 1)) throw new RangeError(`allocateTopkBudget: density ${d} is not in (0, 1]`);
    return d * n;
  });
  const counts = exact.map((x, i) => Math.min(sizes[i], Math.floor(x + slack)));
  const totalSize = sizes.reduce((a, b) => a + b, 0);
  const budget = totalSize === 0 ? 0 : Math.max(1, Math.floor(exact.reduce((a, b) => a + b, 0) + slack));
  let left = budget - counts.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => ({ i, fraction: x - counts[i] })).sort((a, b) => b.fraction - a.fraction || a.i - b.i);
  for (const { i } of order) {
    if (left <= 0) break;
    if (counts[i] < sizes[i]) {
      counts[i]++;
      left--;
    }
  }
  return counts;
}
