/**
 * Progress bars on a terminal (cli-progress): one bar for the run (optimizer steps, with the epoch, loss and
 * throughput of the newest train record; or federated rounds with their train loss) and one per worker (training
 * results it returned, against what a worker is expected to return; samples, wire bytes in and out, state). The
 * Trainer-style lines (per logging step and per evaluation) and the run's own lines print above the bars.
 */
import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import type { MetricsRecord } from './metrics.js';
import type { WorkerFigures } from './prometheus-training.js';

/** How often the worker bars are read and redrawn. @default 500 ms */
export const WORKER_BAR_REFRESH_MS = 500;

/** A terminal stream (process.stderr). */
export type BarStream = NodeJS.WritableStream & { readonly isTTY?: boolean; readonly columns?: number };

/** What the bars need of the run to size the per-worker bars. */
export interface BarRunShape {
  readonly mode: 'data-parallel' | 'federated';
  /** Federated: clients sampled per round (max of min_fit_clients and fraction_fit × clients). */
  readonly clientsPerRound?: number;
}

/** Bars for one run on `stream`. */
export class ProgressBars {
  private readonly bars: MultiBar;
  private runBar?: SingleBar;
  private readonly workerBars = new Map<string, SingleBar>();
  private figures?: () => WorkerFigures[];
  private timer?: NodeJS.Timeout;
  private expectedPerWorker = 0;
  private numWorkers = 1;
  private isStopped = false;

  constructor(
    private readonly stream: BarStream,
    private readonly shape: BarRunShape,
  ) {
    this.bars = new MultiBar(
      {
        stream: stream as NodeJS.WritableStream,
        format: '{label} |{bar}| {value}/{total} {unit}  {info}',
        barsize: 24,
        hideCursor: true,
        clearOnComplete: false,
        autopadding: true,
        fps: 5,
      },
      Presets.shades_classic,
    );
  }

  /** Prints `line` above the bars (directly while there are none). */
  line(line: string): void {
    if (this.isStopped || !this.runBar) this.stream.write(`${line}\n`);
    else this.bars.log(`${line}\n`);
  }

  /** Reads every worker's figures at each redraw. */
  watchWorkers(figures: () => WorkerFigures[]): void {
    this.figures = figures;
    this.timer = setInterval(() => this.refreshWorkers(), WORKER_BAR_REFRESH_MS);
    this.timer.unref();
  }

  /** Moves the run bar along with the records. */
  onRecord(record: MetricsRecord): void {
    if (this.isStopped) return;
    const r = record as Record<string, number>;
    if (record.event === 'run_start') {
      const isFederated = this.shape.mode === 'federated';
      const total = isFederated ? r.num_rounds : r.total_steps;
      this.numWorkers = Math.max(1, r.workers ?? 1);
      this.expectedPerWorker = isFederated ? Math.ceil(((this.shape.clientsPerRound ?? this.numWorkers) * total) / this.numWorkers) : total;
      this.runBar = this.bars.create(total, isFederated ? (r.round ?? 0) : (r.step ?? 0), { label: 'train', unit: isFederated ? 'rounds' : 'steps', info: '' });
    } else if (record.event === 'train') {
      this.runBar?.update(r.step, { info: `epoch ${r.epoch.toFixed(2)}  loss ${r.loss.toFixed(4)}  ${r.samples_per_s.toFixed(1)} samples/s` });
    } else if (record.event === 'round') {
      this.runBar?.update(r.round, { info: `train_loss ${Number(r.train_loss).toFixed(4)}  ${r.completed}/${r.sampled ?? r.completed} clients` });
    }
    this.refreshWorkers();
  }

  /** Stops redrawing and leaves the bars' last state on the terminal. */
  stop(): void {
    if (this.isStopped) return;
    if (this.timer) clearInterval(this.timer);
    this.refreshWorkers();
    if (this.runBar) this.bars.update(); // prints the lines still buffered above the bars
    this.bars.stop();
    this.isStopped = true;
  }

  private refreshWorkers(): void {
    if (!this.figures || !this.runBar || this.isStopped) return;
    for (const worker of this.figures()) {
      const info = `${worker.samples} samples  in ${formatBytes(worker.bytesIn)}  out ${formatBytes(worker.bytesOut)}  ${worker.state}`;
      const total = Math.max(this.expectedPerWorker, worker.results, 1);
      const bar = this.workerBars.get(worker.id);
      if (bar) {
        bar.setTotal(total);
        bar.update(worker.results, { info });
      } else this.workerBars.set(worker.id, this.bars.create(total, worker.results, { label: worker.id, unit: 'results', info }));
    }
  }
}

/** `1536` → `1.5 KiB`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}
