// Starts signet-sts standalone on a copy of examples/ (plus what a test adds) and stops it.
import { spawn } from 'node:child_process';
import { mkdtempSync, cpSync, writeFileSync, readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { createServer, isIP } from 'node:net';
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

/**
 * The status of GET `url` at the STS listening on 127.0.0.1:`port`. Over TLS it goes to
 * 127.0.0.1 whatever the issuer's host name (which need not resolve here), with that name as
 * SNI; the certificate is not checked, this only asks whether the STS is up.
 */
function statusOf(url, port) {
  if (url.protocol !== 'https:') return fetch(url).then((response) => response.status);
  return new Promise((resolve, reject) => {
    const servername = isIP(url.hostname) ? undefined : url.hostname;
    const req = httpsRequest({ host: '127.0.0.1', port, path: url.pathname, servername, headers: { host: url.host }, rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.once('error', reject);
    req.end();
  });
}

async function waitReady(url, port, child, log) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`signet-sts exited: ${log()}`);
    try {
      if ((await statusOf(new URL(url), port)) === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`signet-sts not ready: ${log()}`);
}

/**
 * Starts the STS; `extra` maps file names to YAML added to the manifests. It listens on
 * 127.0.0.1; with `tls` ({ cert, key }: PEM files) it serves HTTPS, and `host` names the
 * issuer's host (default 127.0.0.1), e.g. a name the browser maps to loopback.
 */
export async function startSts(extra = {}, { tls, host = '127.0.0.1' } = {}) {
  const bin = process.env.SIGNET_STS_BIN ?? join(root, 'target', 'debug', 'signet-sts');
  const dir = mkdtempSync(join(tmpdir(), 'signet-manifests-'));
  cpSync(join(root, 'examples'), dir, { recursive: true });
  for (const [name, yaml] of Object.entries(extra)) writeFileSync(join(dir, name), yaml);
  const state = mkdtempSync(join(tmpdir(), 'signet-state-'));
  const port = await freePort();
  const issuer = `${tls ? 'https' : 'http'}://${host}:${port}`;
  const args = ['--manifests', dir, '--state-dir', state, '--listen', `127.0.0.1:${port}`, '--issuer', issuer, '--metrics-addr', '127.0.0.1:0'];
  if (tls) args.push('--tls-cert', tls.cert, '--tls-key', tls.key);
  let output = '';
  const child = spawn(bin, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  await waitReady(`${issuer}/readyz`, port, child, () => output);
  return {
    issuer,
    /** The port on 127.0.0.1 it listens on. */
    port,
    output: () => output,
    credentials: (clientId) => JSON.parse(readFileSync(join(state, 'clients', `${clientId}.json`), 'utf8')),
    stop: () => new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGTERM'); }),
  };
}
