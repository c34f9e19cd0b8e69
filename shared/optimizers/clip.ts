/**
 * Clips gradients in place to a global L2 norm of at most `maxNorm`, as `torch.nn.utils.clip_grad_norm_`
 * (scale by maxNorm / (norm + 1e-6) when that is below 1). Returns the norm before clipping.
 * A `maxNorm` of 0 or less disables clipping but still reports the norm.
 */
export function clipGlobalNorm(grads: Map<string, Float64Array>, maxNorm: number): number {
  let sumOfSquares = 0;
  for (const g of grads.values()) for (let i = 0; i < g.length; i++) sumOfSquares += g[i] * g[i];
  const norm = Math.sqrt(sumOfSquares);
  const scale = maxNorm / (norm + 1e-6);
  if (maxNorm > 0 && scale < 1) {
    for (const g of grads.values()) for (let i = 0; i < g.length; i++) g[i] *= scale;
  }
  return norm;
}
