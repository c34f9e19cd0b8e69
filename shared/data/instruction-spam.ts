/**
 * The built-in instruction set `spam-instructions`, made from the SpamAssassin corpus: "Is this e-mail spam?
 * Answer yes or no." with the head of an e-mail as input and `yes` / `no` as output.
 */
import type { InstructionRecord } from './instruction-template.js';
import { loadSpamAssassin } from './spam-assassin.js';

/** The instruction every record of {@link buildSpamInstructions} carries. */
export const SPAM_INSTRUCTION = 'Is this e-mail spam? Answer yes or no.';

/** How many characters of each e-mail body the input keeps (whitespace collapsed first). @default 600 */
export const SPAM_INSTRUCTION_INPUT_CHARS = 600;

/**
 * One record per distinct e-mail of the corpus, in corpus order: the body's whitespace collapsed, its first
 * `inputChars` characters as the input, `yes` for spam and `no` for ham. E-mails whose input is identical to an
 * earlier one's (the corpus holds re-sent messages) are dropped, so that a train/held-out split of these records
 * never puts the same e-mail on both sides.
 * @param inputChars characters of the body kept. @default {@link SPAM_INSTRUCTION_INPUT_CHARS}
 */
export async function buildSpamInstructions(inputChars = SPAM_INSTRUCTION_INPUT_CHARS): Promise<InstructionRecord[]> {
  const corpus = await loadSpamAssassin();
  const seen = new Set<string>();
  const records: InstructionRecord[] = [];
  for (const { text, label } of corpus) {
    const input = text.replace(/\s+/g, ' ').trim().slice(0, inputChars).trim();
    if (input === '' || seen.has(input)) continue;
    seen.add(input);
    records.push({ instruction: SPAM_INSTRUCTION, input, output: label === 'spam' ? 'yes' : 'no' });
  }
  return records;
}
