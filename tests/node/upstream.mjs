// An upstream OpenID provider that Signet did not write: panva's oidc-provider over HTTPS on
// 127.0.0.1, with a self-signed certificate made by openssl, its development login and consent
// pages (any login name, any password), and the accounts a test gives it.
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Provider from 'oidc-provider';

// The upstream's ID-token key (ES256), made once per process.
const signingKey = {
  ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }),
  kid: 'upstream-es256',
  use: 'sig',
  alg: 'ES256',
};

/** A key and a self-signed certificate for 127.0.0.1 (P-256), as PEM files. */
function selfSigned() {
  const dir = mkdtempSync(join(tmpdir(), 'signet-upstream-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '2',
    // rustls (webpki) refuses a CA certificate as the server's own (CaUsedAsEndEntity), and
    // openssl marks self-signed certificates as CAs unless told otherwise.
    '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'extendedKeyUsage=serverAuth',
    '-keyout', keyFile, '-out', certFile,
  ], { stdio: 'ignore' });
  return { certFile, keyFile };
}

/**
 * Listens at once, so its issuer (https://127.0.0.1:PORT) can go into Signet's manifests
 * before Signet runs; answers 503 until `serve()` registers Signet, whose redirect URI is
 * known only once Signet runs. `accounts` maps login names to claims (sub is the login name).
 */
export async function startUpstream(accounts) {
  const { certFile, keyFile } = selfSigned();
  const server = createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) });
  let handler = (_req, res) => {
    res.statusCode = 503;
    res.end();
  };
  server.on('request', (req, res) => handler(req, res));
  const sockets = new Set(); // every connection, open or mid-handshake, so stop() ends them all
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const issuer = `https://127.0.0.1:${server.address().port}`;
  const requests = []; // method and path of every request, for the tests to check what Signet sent
  const drop = new Set(); // paths whose requests get their connection cut, as by a crash

  return {
    issuer,
    /** The certificate Signet must trust (PEM). */
    certFile,
    requests,
    drop,
    /** Registers Signet as client `signet` (client_secret_basic, code, PKCE) and starts. */
    serve({ redirectUri, clientSecret, providerOptions = {} }) {
      const provider = new Provider(issuer, {
        clients: [{
          client_id: 'signet',
          client_secret: clientSecret,
          redirect_uris: [redirectUri],
          grant_types: ['authorization_code'],
          response_types: ['code'],
          token_endpoint_auth_method: 'client_secret_basic',
          id_token_signed_response_alg: 'ES256',
        }],
        async findAccount(_ctx, id) {
          const claims = accounts[id];
          if (!claims) return undefined;
          return { accountId: id, claims: async () => ({ sub: id, ...claims }) };
        },
        claims: {
          openid: ['sub'],
          email: ['email', 'email_verified'],
          profile: ['name'],
          groups: ['groups'],
        },
        scopes: ['openid', 'email', 'profile', 'groups'],
        pkce: { required: () => true },
        features: { devInteractions: { enabled: true } },
        cookies: { keys: ['signet-acceptance-upstream'] },
        jwks: { keys: [signingKey] },
        ...providerOptions,
      });
      const callback = provider.callback();
      handler = (req, res) => {
        const path = req.url.split('?')[0];
        requests.push(`${req.method} ${path}`);
        if (drop.has(path)) req.socket.destroy();
        else callback(req, res);
      };
      return provider;
    },
    /** Closes the port and every open connection: the upstream is down. */
    stop: () => new Promise((resolve) => {
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    }),
  };
}
