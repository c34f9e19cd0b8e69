/**
 * A headless Debian `chromium` driven by playwright-core, for the dashboard tests: a fresh profile folder, no
 * network beyond what the page asks for, a laptop-sized viewport (1366x768).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/** Where Debian's `chromium` package installs the browser. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Flags that keep a test browser quiet and offline. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A launched browser with one page. */
export interface TestBrowser {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Messages the page logged as errors, and uncaught page exceptions. */
  readonly pageErrors: string[];
  close(): Promise<void>;
}

/**
 * Launches chromium with a fresh `--user-data-dir` and opens one page of 1366x768.
 * @throws Error saying how to install chromium when `executablePath` does not exist
 */
export async function launchChromium(executablePath: string = CHROMIUM_PATH): Promise<TestBrowser> {
  if (!existsSync(executablePath)) {
    throw new Error(`chromium not found at ${executablePath}: the dashboard tests need Debian's chromium; install it with \`apt-get install -y chromium\` (as root; .ci/run does)`);
  }
  const profile = mkdtempSync(join(tmpdir(), 'swarmtune-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1366, height: 768 },
    timeout: 60_000,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') pageErrors.push(`console error: ${msg.text()}`);
  });
  return {
    context,
    page,
    pageErrors,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
