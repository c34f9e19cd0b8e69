/**
 * The coordinator process runs with V8's incremental marking off: its old generation is collected only when it
 * is really full, in one pause, instead of in marking cycles started again and again.
 *
 * Why: the coordinator is a network hub. Its JS heap is small (about 11 MB in bench:wire) and what it allocates
 * most is the 64 KiB ArrayBuffer of every socket read, 10 MB of them per 10 MB tensor received. On Node 20's V8,
 * external memory allocated since the last full GC counts against the old generation's limit, so a heap that is
 * nowhere near its limit (11 of 27-30 MB) keeps starting incremental marking: measured with
 * `--trace-incremental-marking`, 38 to 76 marking cycles in 150 round trips of 10 MB in half the runs (2 to 5
 * in the others), with concurrent marking and sweeping then taking about 40% of both cores (`perf record`) and
 * each round trip costing twice the CPU. With marking off: one full GC in 150 round trips, every run. In
 * bench:wire (10 MB, `ws_vs_tcp`): 0.52-0.82 with V8's default (ten runs, median 0.73), 0.62-1.09 with marking
 * off in the coordinator only (22 runs, median 0.82), 0.83-1.11 with it off in both processes (seven runs).
 *
 * Workers keep incremental marking: they train, and tfjs's tensors make their own external memory pressure,
 * under which incremental marking is the cheaper choice (bench:train: 5.2 samples/s with marking off against
 * 6.2 with it on, three runs each); their setting is worker/gc-settings.ts. The coordinator runs no tensor
 * compute (evaluation is done by workers).
 *
 * `SWARMTUNE_INCREMENTAL_MARKING=1` keeps V8's default in the coordinator too.
 */
import { setFlagsFromString } from 'node:v8';

/** The environment variable that keeps V8's default (incremental marking on) when set to `1`. */
export const KEEP_INCREMENTAL_MARKING_ENV = 'SWARMTUNE_INCREMENTAL_MARKING';

/**
 * Turns incremental marking off for this process (unless {@link KEEP_INCREMENTAL_MARKING_ENV} is `1`); returns
 * whether marking is now off. Call it before anything sizeable is allocated: a V8 flag changed once a marking
 * cycle has begun can crash the process later (SIGSEGV in concurrent marking). `swarmtune` does it in
 * bin/swarmtune.mjs, before loading any module; the benchmarks as their first import
 * (scripts/coordinator-gc-first.ts).
 */
export function applyCoordinatorGcSettings(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env[KEEP_INCREMENTAL_MARKING_ENV] === '1') return false;
  setFlagsFromString('--no-incremental-marking');
  return true;
}
