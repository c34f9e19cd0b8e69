/**
 * Imported FIRST by a benchmark whose process plays the coordinator: applies the coordinator's garbage-collection
 * setting (coordinator/gc-settings.ts) before the benchmark's other modules load, as bin/swarmtune.mjs does for
 * `swarmtune`. A V8 flag changed once a marking cycle has begun can crash the process later. A process the
 * benchmark starts to play a worker gets `SWARMTUNE_INCREMENTAL_MARKING=1` (workers keep V8's default).
 */
import { applyCoordinatorGcSettings } from '../coordinator/gc-settings.js';

/** Whether this process runs with incremental marking off. */
export const incrementalMarkingOff: boolean = applyCoordinatorGcSettings();
