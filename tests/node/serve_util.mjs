// serve_util.mjs — start a real `emosteer serve` for a test and stop it afterwards.
//   const srv = await startServer({ args: ['--parallel', '4'] });  // srv.url = 'http://127.0.0.1:PORT'
//   ... await srv.stop();   // SIGTERM, waits for exit, returns the exit code
// The binary is $EMOSTEER_BIN (CTest sets it), else build/emosteer from the repository root.
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..');
export const emosteerBin = process.env.EMOSTEER_BIN || path.join(repoRoot, 'build', 'emosteer');

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export async function startServer({ args = [], env = {}, port, timeoutMs = 60000 } = {}) {
  port = port || (await freePort());
  const proc = spawn(emosteerBin, ['serve', '--port', String(port), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  proc.stdout.on('data', (d) => (log += d));
  proc.stderr.on('data', (d) => (log += d));
  let exited = null;
  const exitPromise = new Promise((resolve) => proc.on('exit', (code, sig) => {
    exited = { code, sig };
    resolve(exited);
  }));
  const url = `http://127.0.0.1:${port}`;
  const t0 = Date.now();
  for (;;) {
    if (exited) throw new Error(`emosteer serve exited (${JSON.stringify(exited)}) before it was ready:\n${log}`);
    try {
      const r = await fetch(url + '/health');
      if (r.ok) break;
    } catch { /* not yet listening */ }
    if (Date.now() - t0 > timeoutMs) {
      proc.kill('SIGKILL');
      throw new Error(`emosteer serve did not answer /health within ${timeoutMs} ms:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    port,
    proc,
    log: () => log,
    exited: () => exited,
    async stop(signal = 'SIGTERM') {
      if (!exited) proc.kill(signal);
      const e = await exitPromise;
      return e.code;
    },
  };
}
