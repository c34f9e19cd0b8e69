#!/usr/bin/env node
// The `swarmtune` command. TypeScript sources run through tsx's loader (no build step); the subcommands that
// compute (`worker`, `generate`, `eval`) live with the worker, the rest with the coordinator, and neither imports the other.
import { setFlagsFromString } from 'node:v8';

const subcommand = process.argv[2];
const computes = subcommand === 'worker' || subcommand === 'generate' || subcommand === 'eval';
// The coordinator's garbage-collection setting (coordinator/gc-settings.ts: incremental marking off), applied
// before anything else loads: a V8 flag changed once a marking cycle has begun can crash the process later (seen
// as SIGSEGV in concurrent marking, in about one `swarmtune run` in 15, when this ran after the imports).
if (!computes && process.env.SWARMTUNE_INCREMENTAL_MARKING !== '1') setFlagsFromString('--no-incremental-marking');

const { register } = await import('tsx/esm/api');
register();
const entry = computes ? '../worker/cli.ts' : '../coordinator/cli.ts';
await import(new URL(entry, import.meta.url).href);
