// Starts signet-sts standalone on a copy of examples/ (plus what a test adds) and stops it.
import { spawn } from 'node:child_process';
import { mkdtempSync, cpSync, writeFileSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitReady(url, child, log) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`signet-sts exited: ${log()}`);
    try {
      const response = await fetch(url);
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`signet-sts not ready: ${log()}`);
}

/** Starts the STS; `extra` maps file names to YAML added to the manifests. */
export async function startSts(extra = {}) {
  const bin = process.env.SIGNET_STS_BIN ?? join(root, 'target', 'debug', 'signet-sts');
  const dir = mkdtempSync(join(tmpdir(), 'signet-manifests-'));
  cpSync(join(root, 'examples'), dir, { recursive: true });
  for (const [name, yaml] of Object.entries(extra)) writeFileSync(join(dir, name), yaml);
  const state = mkdtempSync(join(tmpdir(), 'signet-state-'));
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  let output = '';
  const child = spawn(bin, ['--manifests', dir, '--state-dir', state, '--listen', `127.0.0.1:${port}`, '--issuer', issuer, '--metrics-addr', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  await waitReady(`${issuer}/readyz`, child, () => output);
  return {
    issuer,
    output: () => output,
    credentials: (clientId) => JSON.parse(readFileSync(join(state, 'clients', `${clientId}.json`), 'utf8')),
    stop: () => new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGTERM'); }),
  };
}
