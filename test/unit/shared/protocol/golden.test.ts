/**
 * Golden frames: each sample message (test/fixtures/frames/samples.ts) must encode to exactly the bytes in
 * test/fixtures/frames/<kind>.hex, and each fixture must parse back to the sample.
 *
 * To regenerate the fixtures after a deliberate wire change (and review the diff!):
 *   UPDATE_FRAME_FIXTURES=1 npx vitest run test/unit/shared/protocol/golden.test.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { encodeMessage } from '../../../../shared/codec.js';
import { MSG_KINDS } from '../../../../shared/protocol/messages.js';
import { parseMessage } from '../../../../shared/protocol/parse.js';
import { sampleHfWelcome, sampleMessages } from '../../../fixtures/frames/samples.js';
import { hfDirDigest } from '../../../../shared/model/hf-dir-files.js';

const FIXTURE_DIR = fileURLToPath(new URL('../../../fixtures/frames/', import.meta.url));
const UPDATE = process.env.UPDATE_FRAME_FIXTURES === '1';

function toHex(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
  return `${hex.match(/.{1,64}/g)!.join('\n')}\n`;
}

function fromHex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
}

describe('golden frames', () => {
  const samples = sampleMessages();

  it('has a sample for every kind', () => {
    expect(Object.keys(samples).sort()).toEqual([...MSG_KINDS].sort());
  });

  for (const kind of MSG_KINDS) {
    const path = `${FIXTURE_DIR}${kind}.hex`;

    it(`${kind}: encodes to the fixture byte for byte`, () => {
      const bytes = encodeMessage(samples[kind]);
      if (UPDATE) writeFileSync(path, toHex(bytes));
      expect(toHex(bytes)).toBe(readFileSync(path, 'utf8'));
    });

    it(`${kind}: the fixture parses back to the sample`, () => {
      const parsed = parseMessage(fromHex(readFileSync(path, 'utf8')));
      expect(parsed).toEqual(samples[kind]);
    });
  }

  describe('welcome announcing a shipped HF directory (model.files)', () => {
    const path = `${FIXTURE_DIR}welcome_hf.hex`;
    const sample = sampleHfWelcome();

    it('encodes to the fixture byte for byte', () => {
      const bytes = encodeMessage(sample);
      if (UPDATE) writeFileSync(path, toHex(bytes));
      expect(toHex(bytes)).toBe(readFileSync(path, 'utf8'));
    });

    it('parses back to the sample, its digest that of its file list', () => {
      const parsed = parseMessage(fromHex(readFileSync(path, 'utf8')));
      expect(parsed).toEqual(sample);
      expect(hfDirDigest(sample.model.files!)).toBe(sample.model.sha256);
    });

    it('the GGUF welcome fixture (no files) still parses, without a files field', () => {
      const parsed = parseMessage(fromHex(readFileSync(`${FIXTURE_DIR}welcome.hex`, 'utf8')));
      expect(parsed.kind === 'welcome' && 'files' in parsed.model).toBe(false);
    });
  });

  it('decodes tensor data as plain Uint8Array views, not copies', () => {
    const bytes = fromHex(readFileSync(`${FIXTURE_DIR}grad_result.hex`, 'utf8'));
    const msg = parseMessage(bytes);
    if (msg.kind !== 'grad_result') throw new Error('expected grad_result');
    expect(msg.grads[0].data.constructor).toBe(Uint8Array);
    expect(msg.grads[0].data.buffer).toBe(bytes.buffer);
  });
});
