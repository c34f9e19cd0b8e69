/**
 * Three hosts on one machine: the coordinator and two workers each in its own Linux network namespace, joined by
 * veth pairs through a bridge (itself in a fourth, "switch" namespace, so the host's own interfaces and firewall are
 * never touched), talking over 10.77.0.0/24 and not loopback. Real processes (`ip netns exec NS node
 * bin/swarmtune.mjs ...`) complete a data-parallel run and a federated round; `/metrics` and `/healthz` are read
 * across the network from a worker's namespace; the coordinator's stderr is JSON logs (pino) whose train lines
 * equal metrics.jsonl. Needs root (`ip netns add`); skipped with the reason where that is not permitted.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { makeDpFixture, type DpFixture } from '../helpers/dp-fixture.js';
import { parsePrometheusStrict, valueOf } from '../helpers/prometheus-strict.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'swarmtune.mjs');
// Interface names are limited to 15 characters: a short unique tag per test process.
const TAG = `k${(process.pid % 10000).toString(36)}${Math.floor(Math.random() * 36 ** 3).toString(36)}`;
const SWITCH_NS = `swarmtune-${TAG}-sw`;
const HOSTS = [
  { role: 'coordinator', ns: `swarmtune-${TAG}-co`, address: '10.77.0.1' },
  { role: 'worker-a', ns: `swarmtune-${TAG}-wa`, address: '10.77.0.2' },
  { role: 'worker-b', ns: `swarmtune-${TAG}-wb`, address: '10.77.0.3' },
] as const;
const COORDINATOR = HOSTS[0];

function ip(...args: string[]): void {
  const result = spawnSync('ip', args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`ip ${args.join(' ')}: ${result.error?.message ?? result.stderr.trim()}`);
}

/** Why namespaces cannot be made here, or undefined when they can (probed by making and deleting one). */
function netnsUnavailable(): string | undefined {
  const probe = `swarmtune-${TAG}-probe`;
  const made = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (made.error || made.status !== 0) return `\`ip netns add\` is not permitted here (${made.error?.message ?? made.stderr.trim()}); run as root with iproute2`;
  spawnSync('ip', ['netns', 'del', probe]);
  return undefined;
}

const unavailable = netnsUnavailable();
if (unavailable) console.warn(`SKIPPED multi-host test: ${unavailable}`);

const children: ChildProcess[] = [];
let fixture: DpFixture;

function setUpNetwork(): void {
  ip('netns', 'add', SWITCH_NS);
  ip('-n', SWITCH_NS, 'link', 'add', 'br0', 'type', 'bridge');
  ip('-n', SWITCH_NS, 'link', 'set', 'br0', 'up');
  HOSTS.forEach((host, i) => {
    ip('netns', 'add', host.ns);
    // The pair is made in the switch namespace; one end moves to the host as eth0.
    ip('-n', SWITCH_NS, 'link', 'add', `port${i}`, 'type', 'veth', 'peer', 'name', `eth${i}`);
    ip('-n', SWITCH_NS, 'link', 'set', `eth${i}`, 'netns', host.ns);
    ip('-n', host.ns, 'link', 'set', `eth${i}`, 'name', 'eth0');
    ip('-n', SWITCH_NS, 'link', 'set', `port${i}`, 'master', 'br0');
    ip('-n', SWITCH_NS, 'link', 'set', `port${i}`, 'up');
    ip('-n', host.ns, 'addr', 'add', `${host.address}/24`, 'dev', 'eth0');
    ip('-n', host.ns, 'link', 'set', 'eth0', 'up');
    ip('-n', host.ns, 'link', 'set', 'lo', 'up');
  });
}

function tearDownNetwork(): void {
  // Deleting a namespace deletes the interfaces in it (and so both ends of each veth pair).
  for (const ns of [...HOSTS.map((h) => h.ns), SWITCH_NS]) spawnSync('ip', ['netns', 'del', ns]);
}

/** A process in namespace `ns`, its output collected; `line(re)` resolves at the first stderr line matching `re`. */
function inNamespace(ns: string, args: string[]) {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  const watchers: { re: RegExp; resolve: (line: string) => void }[] = [];
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    for (const w of [...watchers]) {
      const line = stderr.split('\n').find((l) => w.re.test(l));
      if (line !== undefined) {
        watchers.splice(watchers.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  const exited = new Promise<number>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : -1))));
  return {
    exited,
    stdout: () => stdout,
    stderr: () => stderr,
    line: (re: RegExp) =>
      new Promise<string>((resolve, reject) => {
        watchers.push({ re, resolve });
        void exited.then((code) => reject(new Error(`exited ${code} before a line matching ${re}:\n${stderr.slice(-3000)}`)));
      }),
  };
}

/** GETs `url` with node's fetch from a process in namespace `ns`; `status` 0 when it answered 200. */
function fetchFrom(ns: string, url: string): Promise<{ status: number; stdout: string; stderr: string }> {
  const script = `fetch(${JSON.stringify(url)}).then(async (r) => { process.stdout.write(await r.text()); process.exitCode = r.status === 200 ? 0 : 1; })`;
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ status: code ?? -1, stdout, stderr })));
}

/** Runs the coordinator's health check of docker-compose.yml (which dials port 7070) in namespace `ns`; its exit code. */
function composeHealthcheck(ns: string): Promise<number> {
  const compose = parse(readFileSync(join(import.meta.dirname, '..', '..', 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, { healthcheck: { test: string[] } }> };
  const [form, command, ...args] = compose.services.coordinator.healthcheck.test;
  expect([form, command]).toEqual(['CMD', 'node']);
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, ...args], { stdio: 'ignore' });
  children.push(child);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code ?? -1)));
}

/** Runs a coordinator and two workers across the namespaces; resolves with the coordinator's output and records. */
async function runAcrossHosts(port: number, outputDir: string, sets: Record<string, string | number>) {
  const setArgs = Object.entries({
    model: fixture.modelPath,
    dataset: `jsonl:${fixture.dataPath}`,
    eval_split_size: 10,
    max_train_samples: -1,
    max_eval_samples: -1,
    max_length: 20,
    per_device_train_batch_size: 3,
    logging_steps: 1,
    'peft.r': 4,
    seed: 11,
    ...sets,
  }).flatMap(([k, v]) => ['--set', `${k}=${v}`]);
  const coordinator = inNamespace(COORDINATOR.ns, ['coordinator', '--host', '0.0.0.0', '--port', String(port), '--workers', '2', '-o', outputDir, '--log-format', 'json', ...setArgs]);
  // Every interface of its namespace, as in docker-compose.yml: eth0 (10.77.0.1) and its own loopback.
  await coordinator.line(/listening on ws:\/\/0\.0\.0\.0:/);
  const startWorker = (host: (typeof HOSTS)[number]) => inNamespace(host.ns, ['worker', '--connect', `ws://${COORDINATOR.address}:${port}`, '--backend', 'auto']);
  const workers = [startWorker(HOSTS[1])];
  await coordinator.line(/joined from 10\.77\.0\.2:/);
  // One of two workers in: the coordinator waits for the second, so these reads (across the network, from worker
  // B's namespace) see a run that is still serving.
  const scrape = await fetchFrom(HOSTS[2].ns, `http://${COORDINATOR.address}:${port}/metrics`);
  const health = await fetchFrom(HOSTS[2].ns, `http://${COORDINATOR.address}:${port}/healthz`);
  const composeHealth = port === 7070 ? await composeHealthcheck(COORDINATOR.ns) : undefined;
  workers.push(startWorker(HOSTS[2]));
  const codes = await Promise.all([coordinator.exited, ...workers.map((w) => w.exited)]);
  const records = readFileSync(join(outputDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  return { codes, coordinator, workers, records, scrape, health, composeHealth };
}

describe.skipIf(unavailable !== undefined)('multi-host: three network namespaces over a bridge', () => {
  beforeAll(async () => {
    fixture = await makeDpFixture();
    setUpNetwork();
  });

  afterAll(() => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    tearDownNetwork();
  });

  it('each host has one interface on 10.77.0.0/24 and no other route (the host\'s network is out of reach)', () => {
    for (const host of HOSTS) {
      const routes = spawnSync('ip', ['-n', host.ns, 'route'], { encoding: 'utf8' }).stdout;
      expect(routes.trim()).toBe(`10.77.0.0/24 dev eth0 proto kernel scope link src ${host.address}`);
    }
  });

  it('a data-parallel run completes across hosts; JSON logs and /metrics agree with metrics.jsonl', async () => {
    const maxSteps = 4;
    const run = await runAcrossHosts(7070, join(fixture.dir, 'dp-run'), { max_steps: maxSteps });
    expect(run.codes, run.coordinator.stderr().slice(-3000)).toEqual([0, 0, 0]);
    expect(JSON.parse(run.coordinator.stdout().trim().split('\n').at(-1)!).steps).toBe(maxSteps);
    // Each worker joined from its own namespace address, not loopback.
    const peers = run.records.filter((r) => r.event === 'worker_joined').map((r) => String(r.peer).split(':')[0]);
    expect(peers.sort()).toEqual([HOSTS[1].address, HOSTS[2].address]);

    const logLines = run.coordinator.stderr().trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    const trainLogs = logLines.filter((l) => l.event === 'train');
    const trainRecords = run.records.filter((r) => r.event === 'train');
    expect(trainLogs).toHaveLength(maxSteps);
    expect(trainLogs.map((l) => [l.step, l.loss, l.samples_per_s])).toEqual(trainRecords.map((r) => [r.step, r.loss, r.samples_per_s]));

    expect(run.scrape.status, run.scrape.stderr).toBe(0);
    const families = parsePrometheusStrict(run.scrape.stdout);
    expect(valueOf(families, 'swarmtune_workers_connected')).toBe(1);
    expect(valueOf(families, 'swarmtune_steps_total')).toBe(0);
    const workerA = String(run.records.find((r) => r.event === 'worker_joined' && String(r.peer).startsWith(`${HOSTS[1].address}:`))!.worker_id);
    expect(valueOf(families, 'swarmtune_worker_received_bytes_total', { worker: workerA })).toBeGreaterThan(0);
    expect(JSON.parse(run.health.stdout)).toEqual({ status: 'ok', workers_ready: 1 });
    expect(run.composeHealth, 'the health check of docker-compose.yml').toBe(0);
  });

  it('a federated round completes across hosts', async () => {
    const run = await runAcrossHosts(7071, join(fixture.dir, 'fed-run'), { mode: 'federated', num_rounds: 1, num_clients: 2, fraction_fit: 1, min_fit_clients: 2, min_available_clients: 2, local_steps: 1 });
    expect(run.codes, run.coordinator.stderr().slice(-3000)).toEqual([0, 0, 0]);
    const rounds = run.records.filter((r) => r.event === 'round');
    expect(rounds).toHaveLength(1);
    expect(rounds[0]).toMatchObject({ round: 1, completed: 2, aggregated: true });
    const peers = run.records.filter((r) => r.event === 'worker_joined').map((r) => String(r.peer).split(':')[0]);
    expect(peers.sort()).toEqual([HOSTS[1].address, HOSTS[2].address]);
    expect(JSON.parse(run.coordinator.stdout().trim().split('\n').at(-1)!).rounds).toBe(1);
  });
});
