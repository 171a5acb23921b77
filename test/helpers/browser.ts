/**
 * Headless Chromium for browser tests: Debian's `chromium` package driven by playwright-core (no
 * bundled browser download; the machines only reach Debian mirrors and npm).
 *
 * `launchBrowser()` installs the package first when /usr/bin/chromium is missing (through the
 * project's own scripts/install-deps.sh), launches it, and finds the PID of the process it
 * started, so `close()` can always get rid of it: a polite `browser.close()` first, and when that
 * fails or hangs, SIGKILL to the browser's whole process group (playwright starts it as a group
 * leader, so renderers and the zygote go with it). A process 'exit' hook does the same for a
 * test that dies without closing.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/**
 * Flags for a quiet, deterministic headless run: no sandbox (tests run as root in a container),
 * no GPU, and nothing that phones home or updates itself mid-test.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

const ROOT = resolve(import.meta.dirname, '../..');

/** Process-group ids of browsers launched by this process and not yet closed. */
const liveGroups = new Set<number>();
process.on('exit', () => {
  for (const pgid of liveGroups) killGroup(pgid);
});

export interface TestBrowser {
  readonly browser: Browser;
  /** PID of the launched browser process (the /usr/bin/chromium wrapper), when found. */
  readonly pid: number | undefined;
  /** Close the browser; kills its process group when closing fails or takes over 5 s. Idempotent. */
  close(): Promise<void>;
}

/** Install Debian's chromium when missing. Throws with the installer's message when that fails. */
export function ensureChromium(): void {
  if (existsSync(CHROMIUM)) return;
  const r = spawnSync('sh', [resolve(ROOT, 'scripts/install-deps.sh'), 'chromium'], { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0 || !existsSync(CHROMIUM)) {
    throw new Error(`cannot install chromium (scripts/install-deps.sh chromium exited ${r.status}): ${r.stderr ?? ''}`);
  }
}

export async function launchBrowser(): Promise<TestBrowser> {
  ensureChromium();
  const before = chromiumChildren();
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS], timeout: 60_000 });
  // playwright-core runs its driver in this process, so the browser is our direct child: the new
  // child whose command line names chromium.
  const pid = chromiumChildren().find((p) => !before.includes(p));
  if (pid !== undefined) liveGroups.add(pid);
  let closed = false;
  return {
    browser,
    pid,
    async close() {
      if (closed) return;
      closed = true;
      let timer: NodeJS.Timeout | undefined;
      const polite = await Promise.race([
        browser.close().then(
          () => true,
          () => false,
        ),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 5000))),
      ]);
      clearTimeout(timer);
      if (pid !== undefined) {
        // Even after a polite close, make sure nothing of the group lingers.
        if (!polite || isAlive(pid)) killGroup(pid);
        liveGroups.delete(pid);
      }
    },
  };
}

/** PIDs of this process's children whose command line mentions chromium (Linux /proc). */
function chromiumChildren(): number[] {
  const out: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may contain spaces, so parse after the last ')'
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== process.pid) continue;
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').includes('chromium')) out.push(Number(e));
    } catch {
      // the process exited while we looked
    }
  }
  return out;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    try {
      process.kill(pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
