#!/usr/bin/env node
// The `swarmtune` command. TypeScript sources run through tsx's loader (no build step); the subcommands that
// compute (`worker`, `generate`, `eval`) live with the worker, the rest with the coordinator, and neither imports the other.
import { register } from 'tsx/esm/api';

register();
const subcommand = process.argv[2];
const entry = subcommand === 'worker' || subcommand === 'generate' || subcommand === 'eval' ? '../worker/cli.ts' : '../coordinator/cli.ts';
await import(new URL(entry, import.meta.url).href);
