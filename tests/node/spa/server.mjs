// Serves the example SPA's static files (index.html, app.js, oidc-client-ts's browser build)
// on an origin, with a Content-Security-Policy that admits no inline script and lets the page
// connect to itself and to the STS only.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const oidcClientTs = join(dirname(createRequire(import.meta.url).resolve('oidc-client-ts')), '..', 'browser', 'oidc-client-ts.min.js');

/**
 * Listens on `port` of 127.0.0.1. `config` is what the page reads at /config.json: the STS's
 * issuer (`authority`) and its endpoints (`endpoints`, for the CORS probe).
 */
export async function serveSpa(port, config) {
  const files = {
    '/': ['text/html', readFileSync(join(here, 'index.html'))],
    '/callback': ['text/html', readFileSync(join(here, 'index.html'))],
    '/app.js': ['text/javascript', readFileSync(join(here, 'app.js'))],
    '/oidc-client-ts.min.js': ['text/javascript', readFileSync(oidcClientTs)],
    '/config.json': ['application/json', JSON.stringify(config)],
  };
  const csp = `default-src 'none'; script-src 'self'; connect-src 'self' ${config.authority}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
  const server = createServer((req, res) => {
    const file = files[new URL(req.url, 'http://x').pathname];
    if (!file || req.method !== 'GET') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': file[0], 'Content-Security-Policy': csp, 'Cache-Control': 'no-store' });
    res.end(file[1]);
  });
  // The port is the one the example client registers, so it cannot be chosen freely; another
  // run of these tests on the machine may hold it for a while.
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      await new Promise((resolve, reject) => {
        const listening = () => {
          server.off('error', failed);
          resolve();
        };
        const failed = (error) => {
          server.off('listening', listening);
          reject(error);
        };
        server.once('listening', listening).once('error', failed).listen(port, '127.0.0.1');
      });
      break;
    } catch (error) {
      if (error.code !== 'EADDRINUSE' || Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  return {
    origin: `http://127.0.0.1:${port}`,
    stop: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
