/**
 * `swarmtune tokenizer train`: learns a byte-level BPE vocabulary from text files and/or the pre-training corpus
 * and writes a Hugging Face tokenizer folder.
 */
import type { Command } from 'commander';
import { ConfigError, ErrorCode } from '../shared/errors.js';
import { PretrainingSource } from '../shared/data/pretraining-corpus.js';
import { DEFAULT_BPE_SPECIAL_TOKENS, runBpeTrainJob } from '../shared/tokenizer/bpe-train-job.js';

interface TrainFlags {
  readonly input: string[];
  readonly corpus?: string;
  readonly vocabSize: string;
  readonly output: string;
  readonly seed: string;
  readonly minFrequency: string;
  readonly specialTokens: string;
  readonly maxInputChars?: string;
}

function integerFlag(name: string, value: string, min: number): number {
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) {
    throw new ConfigError(ErrorCode.CONFIG_INVALID, `--${name} ${JSON.stringify(value)}: expected an integer >= ${min}`);
  }
  return n;
}

function corpusFlag(value: string | undefined): PretrainingSource[] {
  if (value === undefined) return [];
  const known = Object.values(PretrainingSource) as string[];
  return value.split(',').map((s) => {
    const name = s.trim();
    if (!known.includes(name)) {
      throw new ConfigError(ErrorCode.CONFIG_INVALID, `--corpus ${JSON.stringify(name)}: expected one of ${known.join(', ')}`);
    }
    return name as PretrainingSource;
  });
}

/** Adds `tokenizer train` to the program. */
export function registerTokenizerCommand(program: Command): void {
  const tokenizer = program.command('tokenizer').description('tokenizer tools: `swarmtune tokenizer train --help`');
  tokenizer
    .command('train')
    .description('learn a byte-level BPE vocabulary (GPT-2 style) and write tokenizer.json + tokenizer_config.json')
    .option('-i, --input <files...>', 'UTF-8 text files to learn from', [])
    .option('--corpus <sources>', `and/or the train split of the pre-training corpus: comma-separated ${Object.values(PretrainingSource).join(', ')}`)
    .option('--vocab-size <n>', 'vocabulary size, special tokens and the 256 byte characters included', '2000')
    .requiredOption('-o, --output <dir>', 'folder to write tokenizer.json and tokenizer_config.json into')
    .option('--seed <n>', 'seeds the --max-input-chars sample and the corpus held-out split (same input + seed = same files)', '42')
    .option('--min-frequency <n>', 'never merge a pair seen fewer times', '2')
    .option('--special-tokens <list>', 'comma-separated; the first is BOS/EOS, the second padding', DEFAULT_BPE_SPECIAL_TOKENS.join(','))
    .option('--max-input-chars <n>', 'train on a seeded sample of at most N characters (paragraphs / documents)')
    .addHelpText(
      'after',
      `
Merges are chosen by highest pair count; ties go to the pair with the smaller token ids (as Hugging Face's
BpeTrainer), so the same input and seed always give byte-identical files.

Examples:
  swarmtune tokenizer train --input notes.txt more.txt --vocab-size 2000 --output runs/tok
  swarmtune tokenizer train --corpus brown,moby-dick --vocab-size 2000 --output models/swarmtune-mini
  swarmtune tokenizer train --input big.txt --max-input-chars 5000000 --seed 7 --output runs/tok`,
    )
    .action(async (flags: TrainFlags) => {
      const corpus = corpusFlag(flags.corpus);
      if (flags.input.length === 0 && corpus.length === 0) {
        throw new ConfigError(ErrorCode.CONFIG_INVALID, 'tokenizer train: give --input FILE... and/or --corpus SOURCES');
      }
      const specialTokens = flags.specialTokens.split(',').filter((t) => t.length > 0);
      const summary = await runBpeTrainJob({
        inputFiles: flags.input,
        corpus,
        outputDir: flags.output,
        vocabSize: integerFlag('vocab-size', flags.vocabSize, 1),
        seed: integerFlag('seed', flags.seed, 0),
        minFrequency: integerFlag('min-frequency', flags.minFrequency, 1),
        specialTokens,
        maxInputChars: flags.maxInputChars === undefined ? undefined : integerFlag('max-input-chars', flags.maxInputChars, 1),
      });
      const requested = Number(flags.vocabSize);
      if (summary.vocabSize < requested) {
        console.error(`swarmtune: only ${summary.vocabSize} of ${requested} tokens: no pair left with count >= --min-frequency (more text?)`);
      }
      console.error(
        `trained ${summary.numMerges} merges on ${summary.numInputChars} characters (${summary.numUniqueWords} unique words) in ${((summary.countMs + summary.trainMs) / 1000).toFixed(1)} s (reading and counting ${(summary.countMs / 1000).toFixed(1)} s, merges ${(summary.trainMs / 1000).toFixed(1)} s)`,
      );
      console.log(
        JSON.stringify({
          output_dir: summary.outputDir,
          vocab_size: summary.vocabSize,
          merges: summary.numMerges,
          input_chars: summary.numInputChars,
          tokenizer_json_sha256: summary.tokenizerJsonSha256,
        }),
      );
    });
}
