/**
 * `swarmtune config schema`: the configuration's JSON Schema for editors; and the YAML rendering behind
 * `--print-config`.
 */
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import YAML from 'yaml';
import type { RunConfig } from '../shared/config.js';
import { redactSecrets } from '../shared/config/redact.js';
import { SCHEMA_FILE_NAME, configJsonSchemaText } from '../shared/config/json-schema.js';
import { ConfigError, ErrorCode } from '../shared/errors.js';

/** A resolved configuration as YAML, secrets redacted; compiling the text again gives the same configuration. */
export function configYaml(config: RunConfig): string {
  return `# swarmtune resolved configuration (secrets redacted)\n${YAML.stringify(redactSecrets(config), { lineWidth: 0 })}`;
}

/** Adds `swarmtune config schema [--output FILE]`. */
export function registerConfigCommand(program: Command): void {
  const config = program.command('config').description('configuration tools: `swarmtune config schema --help`');
  config
    .command('schema')
    .description('write the run configuration\'s JSON Schema (every key, its type, range and default) for editor completion')
    .option('-o, --output <file>', 'write to this file instead of stdout')
    .addHelpText(
      'after',
      `
Examples:
  swarmtune config schema > ${SCHEMA_FILE_NAME}
  swarmtune config schema --output ${SCHEMA_FILE_NAME}

Then start a YAML run file with
  # yaml-language-server: $schema=./${SCHEMA_FILE_NAME}
(the repository ships ${SCHEMA_FILE_NAME} at its root; VS Code's YAML extension then completes and checks keys).`,
    )
    .action(async (flags: { output?: string }) => {
      const text = configJsonSchemaText();
      if (flags.output === undefined) {
        process.stdout.write(text);
        return;
      }
      try {
        await writeFile(resolve(flags.output), text);
      } catch (err) {
        throw new ConfigError(ErrorCode.CONFIG_FILE, `cannot write the schema to ${resolve(flags.output)}: ${(err as Error).message}`, { cause: err });
      }
    });
}
