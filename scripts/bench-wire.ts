/**
 * `npm run bench:wire`: round-trip throughput of one fp32 tensor of 1, 10 and 100 MB on loopback, all in one run:
 *
 * - `ws`: the full stack, coordinator → worker → coordinator: encode (msgpackr) + chunking + ws + parse +
 *   decode (`blobToFloat32`) on each side. The coordinator sends a `grad_request` whose `params` hold the tensor; a
 *   worker process (this script with `--echo`) decodes it and answers a `grad_result` carrying the same values.
 * - `tcp`: raw `node:net` between the same two processes: a length-prefixed payload written from a reused buffer,
 *   its 'data' reads (Node's fresh 64 KiB buffers) copied into a reused buffer, echoed back: raw TCP as `net` is
 *   used, the baseline of `ws_vs_tcp`.
 * - `tcp_in_place`: the same, with each read inside a payload landing in the reused buffer directly (the user
 *   buffer reads of shared/protocol/socket-read-landing.ts, which the ws path uses for chunk data too): no copy
 *   after the kernel's, few reads. The ceiling for any protocol over one TCP stream here; `ws_vs_tcp_in_place`.
 * - `memcpy`: the payload copied there and back in memory (two copies into reused buffers).
 *
 * MB/s = tensor bytes (10^6) / round-trip seconds, medians of `--runs` round trips per path, each block of them
 * after `--warmup` untimed ones (3 by default: JIT and first touch of reused buffers make the first slow, while a
 * training run is thousands of steady-state ones). `ws_vs_tcp` per size: TCP's median time over ws's, with each
 * path measured in its own phases, ws, TCP, TCP in place, TCP in place, TCP, ws (ABCCBA, so that a drift of the
 * machine's load cancels),
 * `--cycles` times (3 by default; medians over all of them, and `ws_vs_tcp_per_cycle` the ratio of each cycle);
 * `ws_vs_tcp_interleaved`: the same with ws and TCP round trips alternating one by one (the order flipping every
 * run), and `ws_vs_tcp_paired` the median of those per-run ratios. Interleaving sees the same moment of load for
 * both, but each round trip then follows the other path's; on this machine that slows ws and speeds TCP at 10 MB
 * (each measured alone, ws is about as fast as TCP there), so it is a second figure, not the headline.
 * `cpu_ms_per_round_trip`: CPU time (user + system) of both processes, in the phases,
 * per timed round trip, for ws and for TCP: the cost of each path, less sensitive than wall time to other load
 * on the machine (the echo process's share is read from /proc: null where there is none);
 * `minor_faults_per_round_trip`: page faults of each process per timed round trip, for ws and for TCP. Node reads
 * a socket into a fresh 64 KiB buffer per read; when glibc has trimmed the top of its heap, each of them is
 * faulted in anew (a few thousand faults per 10 MB), and a path runs far slower. Which state a process is in
 * depends on its history, which is why TCP's figure comes in two levels from one run to the next here.
 * `gc_ms_per_round_trip`: garbage-collection pauses of this (the coordinator's) process per timed round trip of
 * the phases, for ws and for TCP (V8's `gc` performance entries, by when each pause started);
 * `crc32_ms_per_round_trip`: four CRC-32s of the payload (each side checksums what it sends and what it receives),
 * measured alone in this process, for the checksum's share of `ws_ms`; `crc32_implementation` says which
 * implementation the wire uses (shared/checksum.ts: `SWARMTUNE_CRC32` picks one) and `crc32_gb_s` the speed of
 * each that loads here, on a 64 KiB piece in cache (null: not available). The ws path sends tensor bytes as views
 * (no whole-frame pack) in WebSocket fragments, and lands them in a reused reassembly buffer:
 * `ws_reads_in_place` says whether socket reads land there directly (`SWARMTUNE_READS_IN_PLACE=0`: not), and
 * `ws_landed_in_place` which fraction of the tensor bytes the coordinator received that way in the phases.
 * Both processes run as a coordinator and a worker do: this one with the coordinator's garbage-collection
 * setting (incremental marking off, coordinator/gc-settings.ts; `SWARMTUNE_INCREMENTAL_MARKING=1` keeps V8's
 * default, to compare: `coordinator_incremental_marking` says which), the echo process with a worker's
 * (worker/gc-settings.ts, `echo_heap_growing_percent`; `SWARMTUNE_HEAP_GROWING_PERCENT=0` keeps V8's own) and
 * holding what a worker holds while it trains the default run (`--echo-holds`, `echo_holds`: the backend and
 * stories260K by default; `nothing` gives a bare process, whose tiny heap V8 collects far more often).
 * Before the cycles, each size runs `--settle` round trips per path (alternating; `ws_settle_ms`,
 * `tcp_settle_ms`), not in the medians: both paths take some 20-30 round trips to level off here.
 * Progress goes to stderr; the LAST stdout line is one JSON object. Other benchmarks add sections beside
 * `throughput` (`codecs`, per-step bytes...): consumers read `throughput.sizes[i]`.
 *
 * Flags: --runs N (default 21; 7 for 100 MB) per ABCCBA cycle, --warmup N (default 3), --cycles N (default 3),
 * --settle N (default 30; at most 10 for 100 MB), --echo-holds model|backend|nothing (default model),
 * --sizes 1,10,100 (MB), --chunk BYTES (default 4 MiB),
 * --no-reuse (receivers do not hand reassembly buffers back with `release`: every large frame lands in fresh
 * memory), --profile-dir DIR (the echo process writes a CPU profile there; run this one with `node --cpu-prof` too),
 * --no-training (skip the training figures), --training-steps N (default 63, the whole default run),
 * --training-seeds S,S,... (default 42,7,1234: each codec's eval-loss gap to fp32 per seed, mean, SD and largest).
 */
// First: this process plays the coordinator (the echo process is started as a worker, see below).
import { incrementalMarkingOff } from './coordinator-gc-first.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { blobToFloat32, float32Blob, int32Blob } from '../shared/codec.js';
import { makeMessage, makeReply } from '../shared/protocol/build.js';
import type { Message } from '../shared/protocol/messages.js';
import { DEFAULT_CHUNK_SIZE_BYTES, CHUNK_HEADER_SLACK_BYTES } from '../shared/protocol/chunking.js';
import { TSX_IMPORT_URL } from '../shared/tsx-loader.js';
import { CRC32_IMPLEMENTATION, CRC32_IMPLEMENTATIONS, crc32, loadCrc32 } from '../shared/checksum.js';
import { landReadsInPlace } from '../shared/protocol/socket-read-landing.js';
import { READS_IN_PLACE } from '../shared/protocol/ws-attach.js';
import { startWsServer, type ServerConnection } from '../coordinator/transport-ws.js';
import { connectWs } from '../worker/transport-ws.js';
import type { SocketTransport } from '../shared/protocol/socket-transport.js';
import { DEFAULT_MODEL_PATH } from '../shared/config.js';
import { describeBaseModel, loadBaseModel } from '../shared/model/load-model.js';
import { selectBackend } from '../worker/backend.js';
import { applyWorkerGcSettings, workerHeapGrowingPercent } from '../worker/gc-settings.js';

/** Runs a sibling benchmark script and returns the JSON object on its last stdout line. */
function runBenchScript(script: string, args: readonly string[]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', TSX_IMPORT_URL, fileURLToPath(new URL(script, import.meta.url)), ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').at(-1)!)) : reject(new Error(`${script} exited with ${code}`))));
  });
}

const { values: flags } = parseArgs({
  options: {
    runs: { type: 'string', default: '21' },
    warmup: { type: 'string', default: '3' },
    cycles: { type: 'string', default: '3' },
    settle: { type: 'string', default: '30' },
    sizes: { type: 'string', default: '1,10,100' },
    chunk: { type: 'string', default: String(DEFAULT_CHUNK_SIZE_BYTES) },
    echo: { type: 'string' },
    'tcp-port': { type: 'string' },
    'tcp-in-place-port': { type: 'string' },
    'profile-dir': { type: 'string' },
    'no-reuse': { type: 'boolean', default: false },
    'echo-holds': { type: 'string', default: 'model' },
    'training-steps': { type: 'string', default: '63' },
    'training-seeds': { type: 'string', default: '42,7,1234' },
    'no-training': { type: 'boolean', default: false },
  },
});
const chunkSizeBytes = Number(flags.chunk);
const reuse = !flags['no-reuse'];
const maxPayloadBytes = chunkSizeBytes + CHUNK_HEADER_SLACK_BYTES;
const reassembly = { maxReassemblyBytes: 1024 * 1024 * 1024 };

function log(message: string): void {
  process.stderr.write(`[bench:wire] ${message}\n`);
}

/** CPU ms (user + system) used so far by this process plus, on Linux, by process `pid`; NaN for `pid` elsewhere. */
/** Minor page faults so far of this process and of process `pid` (NaN where /proc is absent). */
function minorFaults(pid: number | undefined): { own: number; other: number } {
  let other = Number.NaN;
  try {
    // Field 10 of /proc/PID/stat (after the command name): minflt.
    other = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[7]);
  } catch {
    // No /proc (not Linux): the figure is left out.
  }
  return { own: process.resourceUsage().minorPageFault, other };
}

function cpuMs(pid: number | undefined): number {
  const own = process.cpuUsage();
  let other = Number.NaN;
  try {
    // Fields 14 and 15 of /proc/PID/stat (after the command name): utime and stime in clock ticks (USER_HZ, 100).
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    other = (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    // No /proc (not Linux): the figure is left out.
  }
  return (own.user + own.system) / 1000 + other;
}

/**
 * Garbage-collection pauses of this process, each with its start time and duration (ms), as V8 reports them;
 * {@link gcMsWithin} sums those that started inside given time windows.
 */
function recordGcPauses(): { startTime: number; duration: number }[] {
  const pauses: { startTime: number; duration: number }[] = [];
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) pauses.push({ startTime: entry.startTime, duration: entry.duration });
  }).observe({ entryTypes: ['gc'] });
  return pauses;
}

/** Total duration of the pauses that started inside one of `windows` ([start, end] in performance.now() ms). */
function gcMsWithin(pauses: readonly { startTime: number; duration: number }[], windows: readonly (readonly [number, number])[]): number {
  return pauses.filter((p) => windows.some(([a, b]) => p.startTime >= a && p.startTime < b)).reduce((sum, p) => sum + p.duration, 0);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** The round-trip paths measured: the full stack, raw TCP with Node's 'data' reads, raw TCP with reads in place. */
const PATHS = ['ws', 'tcp', 'tcpInPlace'] as const;
type Path = (typeof PATHS)[number];

/** One `make()` per path. */
function perPath<T>(make: () => T): Record<Path, T> {
  return { ws: make(), tcp: make(), tcpInPlace: make() };
}

const tinyBatch = () => ({
  batchSize: 1,
  seqLen: 1,
  inputIds: int32Blob('inputIds', [1, 1], Int32Array.of(1)),
  attentionMask: int32Blob('attentionMask', [1, 1], Int32Array.of(1)),
  labels: int32Blob('labels', [1], Int32Array.of(0)),
});

/**
 * Length-prefixed frames on a socket, read into one reused buffer (grown only when a frame is larger): with
 * `inPlace`, each read inside a frame's payload lands in that buffer directly (shared/protocol/socket-read-landing.ts),
 * else Node's 'data' reads are copied into it.
 */
function tcpFrames(socket: Socket, onFrame: (payload: Uint8Array) => void, inPlace = false): void {
  let buf = Buffer.allocUnsafe(0);
  let need = -1;
  let filled = 0;
  const header = Buffer.allocUnsafe(4);
  let headerFilled = 0;
  const frameFilled = (): void => {
    need = -1;
    headerFilled = 0;
    onFrame(buf.subarray(0, filled));
  };
  if (inPlace) {
    const installed = landReadsInPlace(socket, {
      next: () => (need > filled ? buf.subarray(filled, need) : undefined),
      landed: (view, n) => {
        if (need <= filled || view.byteOffset !== buf.byteOffset + filled) return false;
        filled += n;
        if (filled === need) frameFilled();
        return true;
      },
    });
    if (!installed) throw new Error('reads in place: not available on this Node');
  }
  socket.on('data', (chunk: Buffer) => {
    let pos = 0;
    while (pos < chunk.length) {
      if (need < 0) {
        const n = Math.min(4 - headerFilled, chunk.length - pos);
        chunk.copy(header, headerFilled, pos, pos + n);
        headerFilled += n;
        pos += n;
        if (headerFilled < 4) return;
        need = header.readUInt32LE(0);
        if (buf.length < need) buf = Buffer.allocUnsafe(need);
        filled = 0;
      }
      const n = Math.min(need - filled, chunk.length - pos);
      chunk.copy(buf, filled, pos, pos + n);
      filled += n;
      pos += n;
      if (filled === need) frameFilled();
    }
  });
}

function writeFrame(socket: Socket, payload: Uint8Array): void {
  const header = Buffer.allocUnsafe(4);
  header.writeUInt32LE(payload.byteLength, 0);
  socket.cork();
  socket.write(header);
  socket.write(payload);
  socket.uncork();
}

/**
 * What the echo process loads before it echoes: `model`, what a worker holds while it trains the default run (its
 * tensor backend, chosen as `swarmtune worker` chooses it, and the base model, stories260K); `backend`, the
 * backend only (what `model` falls back to when the model file is absent); `nothing`, a bare process.
 * V8 sizes a process's garbage collection by its heap: in a bare process (an old generation of about 11 MB)
 * receiving a tensor's socket reads starts incremental marking again and again, a cost no worker has.
 */
const ECHO_HOLDS = ['model', 'backend', 'nothing'] as const;
type EchoHolds = (typeof ECHO_HOLDS)[number];

/** The `--echo-holds` flag, `model` falling back to `backend` when the model file is absent. */
function echoHoldsFlag(value: string | undefined): EchoHolds {
  if (!ECHO_HOLDS.includes(value as EchoHolds)) throw new Error(`--echo-holds must be one of ${ECHO_HOLDS.join(', ')}, got "${value}"`);
  return value === 'model' && !existsSync(DEFAULT_MODEL_PATH) ? 'backend' : (value as EchoHolds);
}

/** Loads what a worker holds (see {@link ECHO_HOLDS}) and returns it, to be kept alive while the echo runs. */
async function loadWorkerState(holds: EchoHolds): Promise<unknown> {
  if (holds === 'nothing') return undefined;
  const backend = await selectBackend('auto');
  const model = holds === 'model' ? await loadBaseModel(DEFAULT_MODEL_PATH) : undefined;
  log(`echo holds: backend ${backend.name}${model ? `, ${describeBaseModel(model)}` : ''}`);
  return model;
}

/** The worker side: echo ws messages (decoded, re-encoded) and TCP frames. */
async function echo(url: string, tcpPort: number, tcpInPlacePort: number): Promise<void> {
  applyWorkerGcSettings();
  const held = await loadWorkerState(echoHoldsFlag(flags['echo-holds']));
  const transport = await connectWs(url, { maxPayloadBytes, chunkSizeBytes, reassembly, pingTimeoutMs: 0 });
  transport.onMessage(async (msg) => {
    if (msg.kind !== 'grad_request' || !msg.params) return;
    const values = blobToFloat32(msg.params[0]);
    const stats = { lossSum: 0, numSamples: 1, numLossItems: 1, numTokens: 1, numCorrect: 0 };
    await transport.send(makeReply('grad_result', msg, { step: msg.step, grads: [float32Blob('t', [values.length], values)], stats, computeMs: 0 }));
    // The reply is encoded (copied out) once send resolves: the request's bytes may be reused.
    if (reuse) (transport as SocketTransport).release(msg);
  });
  const sockets = await Promise.all(
    [tcpPort, tcpInPlacePort].map(async (port, i) => {
      const socket = connect(port, '127.0.0.1');
      socket.setNoDelay(true);
      await new Promise((resolve) => socket.once('connect', resolve));
      tcpFrames(socket, (payload) => writeFrame(socket, payload), i === 1);
      return socket;
    }),
  );
  transport.closed.then(() => {
    // Referenced here so that what the echo holds stays reachable, as a worker's model does, until the link closes.
    void held;
    for (const socket of sockets) socket.destroy();
    process.exit(0);
  });
}

/**
 * GB/s of each CRC-32 implementation that loads here (null: it does not), over a 64 KiB piece in cache, as the
 * receiver checksums each socket read: the median of 15 passes of 32 MiB each.
 */
function measureCrc32Speeds(): Record<string, number | null> {
  const piece = new Uint8Array(64 * 1024).map((_, i) => (i * 2654435761) >>> 24);
  const reps = 512;
  const speeds: Record<string, number | null> = {};
  for (const name of CRC32_IMPLEMENTATIONS) {
    const crc = loadCrc32(name);
    if (typeof crc === 'string') {
      speeds[name] = null;
      continue;
    }
    const times: number[] = [];
    for (let pass = 0; pass < 16; pass++) {
      const t0 = performance.now();
      for (let i = 0; i < reps; i++) crc(piece, i);
      if (pass > 0) times.push(performance.now() - t0);
    }
    speeds[name] = Math.round(((piece.byteLength * reps) / 1e6 / median(times)) * 10) / 10;
  }
  return speeds;
}

async function main(): Promise<void> {
  // This process plays the coordinator, with its garbage-collection setting; the echo process keeps a worker's.
  const incrementalMarking = !incrementalMarkingOff;
  const echoHolds = echoHoldsFlag(flags['echo-holds']);
  if (echoHolds !== flags['echo-holds']) log(`${DEFAULT_MODEL_PATH} is absent: the echo holds its backend only`);
  const sizesMb = flags.sizes!.split(',').map(Number);
  const runs = Number(flags.runs);
  const warmup = Number(flags.warmup);
  const cycles = Number(flags.cycles);
  if (!Number.isInteger(cycles) || cycles < 1) throw new Error(`--cycles must be a positive integer, got "${flags.cycles}"`);
  const settleRoundTrips = Number(flags.settle);
  if (!Number.isInteger(settleRoundTrips) || settleRoundTrips < 0) throw new Error(`--settle must be a non-negative integer, got "${flags.settle}"`);

  let conn!: ServerConnection;
  let connected!: () => void;
  const wsReady = new Promise<void>((r) => (connected = r));
  const server = await startWsServer({
    port: 0,
    maxPayloadBytes,
    chunkSizeBytes,
    reassembly,
    pingIntervalMs: 3_600_000,
    onConnection: (c) => {
      conn = c;
      connected();
    },
  });
  // Two raw TCP connections: Node's 'data' reads (`tcp`), and reads landing in place (`tcp_in_place`).
  const listenOnce = async (): Promise<{ port: number; accepted: Promise<Socket> }> => {
    const tcpServer = createServer();
    const accepted = new Promise<Socket>((resolve) =>
      tcpServer.once('connection', (s) => {
        s.setNoDelay(true);
        tcpServer.close();
        resolve(s);
      }),
    );
    await new Promise<void>((resolve) => tcpServer.listen(0, '127.0.0.1', resolve));
    return { port: (tcpServer.address() as { port: number }).port, accepted };
  };
  const [tcpListener, tcpInPlaceListener] = await Promise.all([listenOnce(), listenOnce()]);
  const prof = flags['profile-dir'] ? ['--cpu-prof', '--cpu-prof-dir', flags['profile-dir']] : [];
  const args = ['--echo', server.url, '--tcp-port', String(tcpListener.port), '--tcp-in-place-port', String(tcpInPlaceListener.port)];
  args.push('--chunk', String(chunkSizeBytes), '--echo-holds', echoHolds, ...(reuse ? [] : ['--no-reuse']));
  const child: ChildProcess = spawn(process.execPath, [...prof, '--import', TSX_IMPORT_URL, fileURLToPath(import.meta.url), ...args], {
    stdio: ['ignore', 'inherit', 'inherit'],
    // A worker keeps V8's incremental marking (coordinator/gc-settings.ts).
    env: { ...process.env, SWARMTUNE_INCREMENTAL_MARKING: '1' },
  });
  const [, tcpSocket, tcpInPlaceSocket] = await Promise.all([wsReady, tcpListener.accepted, tcpInPlaceListener.accepted]);

  let pendingWs: ((m: Message) => void) | undefined;
  conn.onMessage((m) => pendingWs?.(m));
  let pendingTcp: ((p: Uint8Array) => void) | undefined;
  tcpFrames(tcpSocket, (p) => pendingTcp?.(p));
  tcpFrames(tcpInPlaceSocket, (p) => pendingTcp?.(p), true);

  const gcPauses = recordGcPauses();
  const results = [];
  for (const mb of sizesMb) {
    const bytes = mb * 1_000_000;
    const n = bytes / 4;
    const values = new Float32Array(n);
    for (let i = 0; i < n; i++) values[i] = (i % 1000) * 0.001;
    // Medians of many round trips: this shared machine's load comes in bursts of tens of milliseconds.
    const nRuns = mb >= 100 ? Math.min(runs, 7) : runs;

    let zeroCopy = true;
    const wsRoundTrip = async (r: number): Promise<number> => {
      const t0 = performance.now();
      const reply = new Promise<Message>((resolve) => (pendingWs = resolve));
      const msg = makeMessage('grad_request', { step: r, params: [float32Blob('t', [n], values)], paramsVersion: r, batch: tinyBatch(), dropoutSeed: 0 });
      await conn.send(msg);
      const back = await reply;
      if (back.kind !== 'grad_result') throw new Error(`unexpected ${back.kind}`);
      const out = blobToFloat32(back.grads[0]);
      zeroCopy &&= out.buffer === back.grads[0].data.buffer;
      const dt = performance.now() - t0;
      if (out.length !== n || out[n - 1] !== values[n - 1] || out[n >> 1] !== values[n >> 1]) throw new Error('ws echo corrupted the tensor');
      if (reuse) (conn as unknown as SocketTransport).release(back);
      return dt;
    };
    const payload = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
    const tcpRoundTrip = async (socket: Socket): Promise<number> => {
      const t0 = performance.now();
      const reply = new Promise<Uint8Array>((resolve) => (pendingTcp = resolve));
      writeFrame(socket, payload);
      const back = await reply;
      const dt = performance.now() - t0;
      if (back.byteLength !== bytes) throw new Error('tcp echo lost bytes');
      return dt;
    };

    // Two designs, both in this run. Phases (reported as ws_vs_tcp and ws_vs_tcp_in_place): ws, TCP, TCP in place,
    // TCP in place, TCP, ws blocks of round trips (ABCCBA, so a steady drift in load cancels), the first `warmup`
    // of each block untimed: each path measured in its own steady state, as a training run uses it. Interleaved
    // (ws_vs_tcp_interleaved, _paired): ws and TCP round trips alternate one by one, the order flipping every
    // run, so both see the same moment of load; but each round trip then runs right after the other path's (its
    // socket buffers, its garbage, caches holding the other path's code and data: ws's per-message parse and
    // encode cost ~10x more cold), which at 10 MB slows ws and speeds TCP here (both measured alone: ws about
    // equal to TCP), so it is reported beside, not instead.
    const gcWindows = perPath((): [number, number][] => []);
    let r = 0;
    const timed = async <T>(f: () => Promise<T>): Promise<{ value: T; cpu: number; faults: { own: number; other: number }; window: [number, number] }> => {
      const c0 = cpuMs(child.pid);
      const f0 = minorFaults(child.pid);
      const t0 = performance.now();
      const value = await f();
      const window: [number, number] = [t0, performance.now()];
      const f1 = minorFaults(child.pid);
      return { value, cpu: cpuMs(child.pid) - c0, faults: { own: f1.own - f0.own, other: f1.other - f0.other }, window };
    };
    const roundTrip = (path: Path, r: number): Promise<number> =>
      path === 'ws' ? wsRoundTrip(r) : tcpRoundTrip(path === 'tcp' ? tcpSocket : tcpInPlaceSocket);
    // Both paths settle first, alternating, untimed in the figures: on this machine each needs some 20-30 round
    // trips of a size before its time levels off (the kernel growing each socket's buffers, V8 optimising the
    // code and growing its young generation), and the first block would otherwise take that for ws alone.
    const settle = perPath((): number[] => []);
    const settleTrips = mb >= 100 ? Math.min(settleRoundTrips, 10) : settleRoundTrips;
    for (let k = 0; k < settleTrips; k++, r++) {
      for (const path of k % 2 === 0 ? PATHS : [...PATHS].reverse()) settle[path].push(await roundTrip(path, r));
    }
    const phase = { ...perPath((): number[] => []), cpu: perPath(() => 0), faults: perPath(() => ({ own: 0, other: 0 })) };
    const perBlock = Math.ceil(nRuns / 2);
    const cycleRatios: number[] = [];
    const landedBefore = (conn as unknown as SocketTransport).bytesLandedInPlace;
    for (let c = 0; c < cycles; c++) {
      const cycle = perPath((): number[] => []);
      for (const path of [...PATHS, ...[...PATHS].reverse()]) {
        for (let i = 0; i < warmup + perBlock; i++, r++) {
          const { value: dt, cpu, faults, window } = await timed(() => roundTrip(path, r));
          if (i < warmup) continue;
          cycle[path].push(dt);
          phase.cpu[path] += cpu;
          phase.faults[path].own += faults.own;
          phase.faults[path].other += faults.other;
          gcWindows[path].push(window);
        }
      }
      for (const path of PATHS) phase[path].push(...cycle[path]);
      cycleRatios.push(Math.round((median(cycle.tcp) / median(cycle.ws)) * 1000) / 1000);
    }
    // Bytes the coordinator's reads landed in place over every ws round trip of the phases (warm-ups included).
    const landedFraction = ((conn as unknown as SocketTransport).bytesLandedInPlace - landedBefore) / (bytes * cycles * 2 * (warmup + perBlock));
    const wsTimes: number[] = [];
    const tcpTimes: number[] = [];
    for (let k = 0; k < warmup + nRuns; k++, r++) {
      const order = k % 2 === 0 ? (['ws', 'tcp'] as const) : (['tcp', 'ws'] as const);
      for (const path of order) {
        const dt = await roundTrip(path, r);
        if (k >= warmup) (path === 'ws' ? wsTimes : tcpTimes).push(dt);
      }
    }
    const cpuMsPerTrip = (path: Path): number => Math.round((phase.cpu[path] / phase[path].length) * 10) / 10;

    const memTimes: number[] = [];
    const a = new Uint8Array(bytes);
    const b = new Uint8Array(bytes);
    for (let r = 0; r <= nRuns; r++) {
      const t0 = performance.now();
      b.set(payload);
      a.set(b);
      const dt = performance.now() - t0;
      if (r > 0) memTimes.push(dt);
    }

    // The checksum's share: each round trip computes the CRC-32 of the payload four times (each side, sending
    // and verifying), on the critical path at least for the receiving side.
    const crcTimes: number[] = [];
    for (let r = 0; r <= nRuns; r++) {
      const t0 = performance.now();
      crc32(payload);
      if (r > 0) crcTimes.push(performance.now() - t0);
    }

    // V8 reports a pause a little after it ends: wait for the last ones before adding them up.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const gcMsPerTrip = (path: Path): number => Math.round((gcMsWithin(gcPauses, gcWindows[path]) / gcWindows[path].length) * 100) / 100;
    const faultsPerTrip = (path: Path, side: 'own' | 'other'): number | null => {
      const perTrip = phase.faults[path][side] / phase[path].length;
      return Number.isNaN(perTrip) ? null : Math.round(perTrip);
    };
    const mbps = (ms: number): number => Math.round((bytes / 1e6 / (ms / 1000)) * 10) / 10;
    const row = {
      size_mb: mb,
      ws_mb_per_s: mbps(median(phase.ws)),
      tcp_mb_per_s: mbps(median(phase.tcp)),
      tcp_in_place_mb_per_s: mbps(median(phase.tcpInPlace)),
      memcpy_mb_per_s: mbps(median(memTimes)),
      ws_vs_tcp: Math.round((median(phase.tcp) / median(phase.ws)) * 1000) / 1000,
      ws_vs_tcp_per_cycle: cycleRatios,
      ws_vs_tcp_in_place: Math.round((median(phase.tcpInPlace) / median(phase.ws)) * 1000) / 1000,
      ws_landed_in_place: Math.round(landedFraction * 1000) / 1000,
      ws_vs_tcp_interleaved: Math.round((median(tcpTimes) / median(wsTimes)) * 1000) / 1000,
      ws_vs_tcp_paired: Math.round(median(wsTimes.map((t, i) => tcpTimes[i] / t)) * 1000) / 1000,
      settle_round_trips: settleTrips,
      ws_settle_ms: settle.ws.map((t) => Math.round(t * 10) / 10),
      tcp_settle_ms: settle.tcp.map((t) => Math.round(t * 10) / 10),
      tcp_in_place_settle_ms: settle.tcpInPlace.map((t) => Math.round(t * 10) / 10),
      ws_ms: phase.ws.map((t) => Math.round(t * 10) / 10),
      tcp_ms: phase.tcp.map((t) => Math.round(t * 10) / 10),
      tcp_in_place_ms: phase.tcpInPlace.map((t) => Math.round(t * 10) / 10),
      ws_ms_interleaved: wsTimes.map((t) => Math.round(t * 10) / 10),
      tcp_ms_interleaved: tcpTimes.map((t) => Math.round(t * 10) / 10),
      zero_copy_decode: zeroCopy,
      cpu_ms_per_round_trip: Number.isNaN(cpuMsPerTrip('ws')) ? null : { ws: cpuMsPerTrip('ws'), tcp: cpuMsPerTrip('tcp'), tcp_in_place: cpuMsPerTrip('tcpInPlace') },
      gc_ms_per_round_trip: { ws: gcMsPerTrip('ws'), tcp: gcMsPerTrip('tcp'), tcp_in_place: gcMsPerTrip('tcpInPlace') },
      minor_faults_per_round_trip: {
        ws: { coordinator: faultsPerTrip('ws', 'own'), echo: faultsPerTrip('ws', 'other') },
        tcp: { coordinator: faultsPerTrip('tcp', 'own'), echo: faultsPerTrip('tcp', 'other') },
        tcp_in_place: { coordinator: faultsPerTrip('tcpInPlace', 'own'), echo: faultsPerTrip('tcpInPlace', 'other') },
      },
      crc32_ms_per_round_trip: Math.round(4 * median(crcTimes) * 10) / 10,
    };
    log(JSON.stringify(row));
    results.push(row);
  }

  conn.close();
  tcpSocket.destroy();
  tcpInPlaceSocket.destroy();
  await server.close();
  if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve));
  const crc32Speeds = measureCrc32Speeds();
  log(`CRC-32 GB/s on 64 KiB in cache: ${JSON.stringify(crc32Speeds)} (used: ${CRC32_IMPLEMENTATION})`);
  log('codec speed (bench-codecs.ts)');
  const codecs = await runBenchScript('./bench-codecs.ts', ['--reps', '5']);
  // Imported only now: TensorFlow.js in the heap during the throughput runs would make them measure its GC too.
  const seeds = flags['training-seeds']!.split(',').map(Number);
  const training = flags['no-training'] ? null : await (await import('./wire-training.js')).measureCodecTrainingSeeds(Number(flags['training-steps']), seeds, log);
  console.log(
    JSON.stringify({
      codecs,
      training: training === null ? null : { steps: Number(flags['training-steps']), seeds, by_codec: training ?? 'skipped: stories260K absent' },
      throughput: {
        unit: 'MB/s (10^6 bytes of tensor per round-trip second, median)',
        chunk_size_bytes: chunkSizeBytes,
        reassembly_buffer_reuse: reuse,
        coordinator_incremental_marking: incrementalMarking,
        echo_holds: echoHolds,
        echo_heap_growing_percent: workerHeapGrowingPercent(),
        crc32_implementation: CRC32_IMPLEMENTATION,
        ws_reads_in_place: READS_IN_PLACE,
        crc32_gb_s: crc32Speeds,
        runs,
        warmup_runs: warmup,
        sizes: results,
      },
    }),
  );
}

if (flags.echo) {
  void echo(flags.echo, Number(flags['tcp-port']), Number(flags['tcp-in-place-port']));
} else {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
