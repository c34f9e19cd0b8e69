/**
 * `npm run soak [-- --rounds N]`: the S20 leak check at a nightly size. A federated run of N rounds (default 500)
 * with the coordinator and two workers in this process; prints numTensors, RSS and V8 heap (after a full GC) every
 * 50 rounds, then one JSON line. Exit 1 when numTensors moved after round 5 or RSS grew more than 5% after round 10.
 */
import { selectBackend } from '../worker/backend.js';
import { makeDpFixture } from '../test/helpers/dp-fixture.js';
import { measureRoundMemory } from '../test/helpers/leak-probe.js';

const roundsFlag = process.argv.indexOf('--rounds');
const numRounds = roundsFlag >= 0 ? Number(process.argv[roundsFlag + 1]) : 500;
if (!Number.isInteger(numRounds) || numRounds < 10) {
  console.error(`soak: --rounds must be an integer >= 10, got ${process.argv[roundsFlag + 1]}`);
  process.exit(2);
}

const backend = await selectBackend('auto');
const fixture = await makeDpFixture();
const started = performance.now();
const memory = await measureRoundMemory(fixture, backend, numRounds, 10);
const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
for (let round = 50; round <= numRounds; round += 50) {
  const i = round - 1;
  console.error(`round ${round}: numTensors ${memory.numTensors[i]}, rss ${mb(memory.rssBytes[i])} MiB, heap ${mb(memory.heapUsedBytes[i])} MiB`);
}
const last = numRounds - (numRounds % 10) - 1;
const tensorsDrift = Math.max(...memory.numTensors.slice(4)) - memory.numTensors[4];
const rssGrowth = memory.rssBytes[last] / memory.rssBytes[9] - 1;
const heapGrowth = memory.heapUsedBytes[last] / memory.heapUsedBytes[9] - 1;
const isFlat = tensorsDrift === 0 && memory.numTensors[numRounds - 1] === memory.numTensors[4] && rssGrowth <= 0.05;
console.log(
  JSON.stringify({
    rounds: numRounds,
    backend: backend.name,
    num_tensors_round_5: memory.numTensors[4],
    num_tensors_last: memory.numTensors[numRounds - 1],
    rss_growth_from_round_10: Number(rssGrowth.toFixed(4)),
    heap_growth_from_round_10: Number(heapGrowth.toFixed(4)),
    seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
    pass: isFlat,
  }),
);
process.exit(isFlat ? 0 : 1);
