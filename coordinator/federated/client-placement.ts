/**
 * Where each sampled client of a round trains. Real deployments pin one client to each worker (the worker is the
 * client: its data lives there); a simulation places virtual clients on whichever workers are up, balancing the
 * examples each worker must train on (longest-processing-time first), so that a round ends when the busiest
 * worker does and that worker has as little as possible to do.
 */

/** A client to place and how much work it brings (its examples × local epochs, or steps × batch). */
export interface ClientLoad {
  readonly clientId: string;
  readonly work: number;
}

/**
 * Virtual clients onto workers: biggest first, each to the worker with the least work so far (ties: the earlier
 * worker). Deterministic for the same inputs. Returns worker id → client ids in the order they should run.
 * @throws RangeError when there are clients but no workers
 */
export function placeVirtualClients(clients: readonly ClientLoad[], workerIds: readonly string[]): Map<string, string[]> {
  if (clients.length > 0 && workerIds.length === 0) throw new RangeError('no worker to place clients on');
  const placement = new Map<string, string[]>(workerIds.map((id) => [id, []]));
  const load = new Map<string, number>(workerIds.map((id) => [id, 0]));
  const order = [...clients].sort((a, b) => b.work - a.work || a.clientId.localeCompare(b.clientId));
  for (const client of order) {
    let best = workerIds[0];
    for (const id of workerIds) if (load.get(id)! < load.get(best)!) best = id;
    placement.get(best)!.push(client.clientId);
    load.set(best, load.get(best)! + client.work);
  }
  return placement;
}

/**
 * One client per worker, for real federated deployments: a worker keeps its client for the whole run; a client
 * whose worker is lost is unavailable until a worker (a restarted one, under any id) takes its place.
 */
export class PinnedClients {
  private readonly workerOf = new Map<string, string>();

  constructor(private readonly clientIds: readonly string[]) {}

  /**
   * Updates the pinning from the workers now ready (in joining order): keeps existing pairs whose worker is still
   * ready, gives free clients to unpinned workers, and returns the available clients with their workers.
   */
  refresh(readyWorkerIds: readonly string[]): Map<string, string> {
    const ready = new Set(readyWorkerIds);
    for (const [clientId, workerId] of this.workerOf) if (!ready.has(workerId)) this.workerOf.delete(clientId);
    const pinnedWorkers = new Set(this.workerOf.values());
    const freeWorkers = readyWorkerIds.filter((id) => !pinnedWorkers.has(id));
    for (const clientId of this.clientIds) {
      if (this.workerOf.has(clientId)) continue;
      const workerId = freeWorkers.shift();
      if (workerId === undefined) break;
      this.workerOf.set(clientId, workerId);
    }
    return new Map(this.clientIds.filter((id) => this.workerOf.has(id)).map((id) => [id, this.workerOf.get(id)!]));
  }
}
