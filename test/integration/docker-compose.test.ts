/**
 * docker-compose.yml as CI checks it (`docker-compose config -q`, Debian's docker-compose), with the gpu profile
 * and the TLS override, and what it promises: workers publish no port (they only dial the coordinator), the
 * coordinator's health check reads /healthz, GPU workers build from Dockerfile.gpu. Skipped with the reason where
 * docker-compose is not installed (.ci/run installs it).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const ROOT = join(import.meta.dirname, '..', '..');
const hasCompose = spawnSync('docker-compose', ['version'], { encoding: 'utf8' }).status === 0;
if (!hasCompose) console.warn('SKIPPED docker-compose test: docker-compose is not installed (apt-get install -y docker-compose)');

function compose(...args: string[]) {
  return spawnSync('docker-compose', args, { cwd: ROOT, encoding: 'utf8', env: { ...process.env, SWARMTUNE_WORKERS: '3' } });
}

interface Service {
  build?: { dockerfile?: string };
  ports?: unknown[];
  command?: string[];
  healthcheck?: { test?: string[] };
  deploy?: { replicas?: number };
  secrets?: unknown[];
}

describe.skipIf(!hasCompose)('docker-compose.yml', () => {
  it('validates alone, with the gpu profile and with the TLS override', () => {
    for (const args of [['config', '-q'], ['--profile', 'gpu', 'config', '-q'], ['-f', 'docker-compose.yml', '-f', 'docker-compose.tls.yml', '--profile', 'gpu', 'config', '-q']]) {
      const result = compose(...args);
      expect(result.status, `docker-compose ${args.join(' ')}: ${result.stderr}`).toBe(0);
    }
  });

  it('workers only dial out; the coordinator is health-checked on /healthz; GPU workers use Dockerfile.gpu', () => {
    const services = (parse(compose('--profile', 'gpu', 'config').stdout) as { services: Record<string, Service> }).services;
    expect(Object.keys(services).sort()).toEqual(['coordinator', 'worker', 'worker-gpu']);
    for (const name of ['worker', 'worker-gpu']) {
      expect(services[name].ports).toBeUndefined();
      expect(services[name].command).toContain('ws://coordinator:7070');
      expect(services[name].healthcheck?.test?.[0]).toBe('CMD');
    }
    expect(services.worker.deploy?.replicas).toBe(3);
    expect(services['worker-gpu'].build?.dockerfile).toBe('Dockerfile.gpu');
    expect(services.coordinator.healthcheck?.test?.join(' ')).toContain("path:'/healthz'");
    const tls = (parse(compose('-f', 'docker-compose.yml', '-f', 'docker-compose.tls.yml', 'config').stdout) as { services: Record<string, Service> }).services;
    expect(tls.worker.command).toEqual(expect.arrayContaining(['wss://coordinator:7070', '--ca', '--token-file']));
    expect(tls.coordinator.secrets).toHaveLength(3);
  });
});
