// Issue 16 items 4 and 5: a sign-in belongs to the browser that started it, attacked in headless
// Chromium through what a browser really does with cookies, CSP and same-site requests. One
// STS for the file, over https under the name id.signet.test (a leaf certificate of a CA made
// here), and an attacker's https server on the sibling app.signet.test: same site, since .test
// is no public suffix, so the attacker's pages may set cookies for signet.test and their form
// posts carry the victim's SameSite=Lax cookies. Chromium maps *.signet.test to loopback and
// nothing else resolves; Node, which cannot resolve those names, talks to 127.0.0.1 with the
// name as SNI. Each person (attacker, victim) is a browser context of its own.
// Item 2 (the upstream's callback) is in sts-federation.test.mjs, beside its upstream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate, createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as client from 'openid-client';
import { startSts } from './sts.mjs';
import { authorizeInBrowser, browserMissing, inNewContext, launchBrowser, signIn } from './browser.mjs';

const examples = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples');
const alice = { username: 'alice', password: 'correct horse battery staple' };
const aliceSub = '6f1c2a4e-alice';
// The attacker has an account of her own (alice's password hash, reused: no tool here makes
// one), so a session of hers in the victim's browser shows as her sub.
const mallory = { username: 'mallory', password: alice.password };
const mallorySub = '0bad5eed-mallory';
const webApp = 'default.web-app';
const webRedirect = 'https://app.example.com/callback';
const cli = 'default.cli';
const cliRedirect = 'com.example.cli:/callback';
const sibling = 'default.sibling-app';
const deviceGrant = 'urn:ietf:params:oauth:grant-type:device_code';
/** The page every refused form of another browser's interaction shows. */
const anotherBrowser = /^This sign-in was started in another browser/;
const noBrowser = browserMissing();

let pki; // { dir, ca, cert, key, certFile, keyFile, spki }
let attacker;
let sts;
let browser;
let siblingRedirect; // on the attacker's server
let cliConfig; // openid-client's configuration of the cli client

/**
 * A CA and a leaf certificate (P-256) for id.signet.test and app.signet.test, as openssl makes
 * them; the leaf is no CA (rustls refuses a CA certificate as the server's own). Chromium trusts
 * the leaf by its public key's SHA-256 (--ignore-certificate-errors-spki-list), Node by the CA.
 */
function makePki() {
  const dir = mkdtempSync(join(tmpdir(), 'signet-binding-pki-'));
  const file = (name) => join(dir, name);
  const openssl = (...args) => execFileSync('openssl', args, { stdio: 'ignore' });
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', '/CN=Signet test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign',
    '-keyout', file('ca.key'), '-out', file('ca.pem'));
  openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-subj', '/CN=id.signet.test', '-keyout', file('tls.key'), '-out', file('tls.csr'));
  writeFileSync(file('leaf.cnf'), [
    'subjectAltName=DNS:id.signet.test,DNS:app.signet.test',
    'basicConstraints=critical,CA:FALSE',
    'extendedKeyUsage=serverAuth',
  ].join('\n'));
  openssl('x509', '-req', '-in', file('tls.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial',
    '-days', '2', '-extfile', file('leaf.cnf'), '-out', file('tls.crt'));
  const cert = readFileSync(file('tls.crt'));
  const spkiDer = new X509Certificate(cert).publicKey.export({ type: 'spki', format: 'der' });
  return {
    dir,
    ca: readFileSync(file('ca.pem')),
    cert,
    key: readFileSync(file('tls.key')),
    certFile: file('tls.crt'),
    keyFile: file('tls.key'),
    spki: createHash('sha256').update(spkiDer).digest('base64'),
  };
}

/** Every *.signet.test name is 127.0.0.1 for Node, as the host resolver rules make it for Chromium. */
function toLoopback(_hostname, options, callback) {
  if (options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
  else callback(null, '127.0.0.1', 4);
}

/**
 * fetch() for the https STS: to 127.0.0.1, the certificate checked against the test CA under
 * the URL's host name. It is openid-client's customFetch too.
 */
function stsFetch(url, options = {}) {
  const headers = Object.fromEntries(new Headers(options.headers));
  const body = options.body == null ? undefined : String(options.body);
  if (options.body instanceof URLSearchParams) headers['content-type'] ??= 'application/x-www-form-urlencoded';
  return new Promise((resolve, reject) => {
    const req = httpsRequest(new URL(url), { method: options.method ?? 'GET', headers, ca: pki.ca, lookup: toLoopback, signal: options.signal }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.once('error', reject);
      res.once('end', () => {
        const answer = new Headers();
        for (const [name, value] of Object.entries(res.headers)) for (const one of [value].flat()) answer.append(name, one);
        const empty = [204, 304].includes(res.statusCode);
        resolve(new Response(empty ? null : Buffer.concat(chunks), { status: res.statusCode, headers: answer }));
      });
    });
    req.once('error', reject);
    req.end(body);
  });
}

/** A form POST to the STS from Node: status and JSON body. */
async function postForm(path, params) {
  const response = await stsFetch(`${sts.issuer}${path}`, { method: 'POST', body: new URLSearchParams(params) });
  return { status: response.status, body: await response.json() };
}

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * The attacker's https server on app.signet.test: `/callback` (the redirect URI of
 * sibling-app) records every URL that reaches it, which is what a code sent there gives the
 * attacker; `show()` puts up a page (its HTML and the cookies its answer sets) for a victim.
 */
async function startAttacker({ cert, key }) {
  const callbacks = [];
  const pages = new Map();
  let next = 0;
  const server = createServer({ cert, key }, (req, res) => {
    const url = new URL(req.url, 'https://app.signet.test');
    const page = pages.get(url.pathname);
    if (url.pathname === '/callback') {
      callbacks.push(url.search);
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('The attacker has your code.');
    } else if (page) {
      if (page.cookies.length) res.setHeader('set-cookie', page.cookies);
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(page.html);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `https://app.signet.test:${server.address().port}`;
  return {
    origin,
    callbacks,
    /** Serves `html` (and `cookies`, as Set-Cookie values) at a fresh URL, which it returns. */
    show(html, cookies = []) {
      const path = `/page/${next++}`;
      pages.set(path, { html, cookies });
      return `${origin}${path}`;
    },
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

/** A page that posts `fields` to `action` as soon as it loads, as a forged form does. */
function autoPost(action, fields) {
  const inputs = Object.entries(fields).map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`);
  return `<!doctype html><title>Win a prize</title><form method="post" action="${escapeHtml(action)}">${inputs.join('')}</form>`
    + '<script>document.forms[0].submit()</script>';
}

/** The examples' users, and the attacker's account beside alice's (the same hash). */
function users() {
  const yaml = readFileSync(join(examples, 'identity-provider.yaml'), 'utf8');
  const hash = yaml.match(/passwordHash: (\S+)/)[1];
  const withMallory = yaml.replace(/^(\s+)groups: \[developers\]\n/m, (line, indent) => `${line}${indent.slice(2)}- username: mallory
${indent}passwordHash: ${hash}
${indent}sub: ${mallorySub}
${indent}email: mallory@example.com
${indent}emailVerified: true
${indent}name: Mallory
`);
  assert.match(withMallory, /- username: mallory\n\s+passwordHash: \$argon2id/, 'mallory went into users.yaml');
  return withMallory;
}

/** The client whose codes go to the attacker's server; it asks for consent, so a forged one shows. */
const siblingClient = (redirectUri) => `
apiVersion: signet.dev/v1alpha1
kind: OidcClient
metadata:
  name: sibling-app
spec:
  type: confidential
  grantTypes: [authorization_code]
  redirectUris: [${redirectUri}]
  allowedScopes: [openid, profile]
  tokenEndpointAuthMethod: client_secret_basic
  requireConsent: true
`;

before(async () => {
  process.env.SIGNET_METRICS_ADDR ??= '127.0.0.1:0';
  pki = makePki();
  attacker = await startAttacker(pki);
  siblingRedirect = `${attacker.origin}/callback`;
  sts = await startSts({ 'identity-provider.yaml': users(), 'binding-clients.yaml': siblingClient(siblingRedirect) }, {
    tls: { cert: pki.certFile, key: pki.keyFile },
    host: 'id.signet.test',
  });
  cliConfig = await client.discovery(new URL(sts.issuer), cli, undefined, client.None(), { [client.customFetch]: stsFetch });
  cliConfig[client.customFetch] = stsFetch;
  if (!noBrowser) {
    browser = await launchBrowser({
      hostRules: 'MAP *.signet.test 127.0.0.1, EXCLUDE 127.0.0.1, MAP * ~NOTFOUND',
      args: [`--ignore-certificate-errors-spki-list=${pki.spki}`],
    });
  }
});

after(async () => {
  await browser?.close();
  await sts?.stop();
  await attacker?.close();
  if (pki) rmSync(pki.dir, { recursive: true, force: true });
});

/** A page in a browser context of its own (its own cookie jar), closed afterwards. */
const withPage = (fn) => inNewContext(browser, fn);

/** A fresh authorization request (PKCE S256, state, nonce) of `clientId`. */
async function authorizationRequest(clientId, redirectUri, extra = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = new URL(`${sts.issuer}/authorize`);
  const params = {
    client_id: clientId,
    response_type: 'code',
    redirect_uri: redirectUri,
    scope: 'openid profile',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  };
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  return { url, verifier, state, nonce };
}

/** The issuer's cookies in the context, by what they are, whatever their names. */
async function issuerCookies(context) {
  const cookies = await context.cookies(sts.issuer);
  return {
    all: cookies,
    session: cookies.find((c) => /signet_session/.test(c.name) && c.domain === 'id.signet.test'),
    binding: cookies.find((c) => /signet_binding/.test(c.name) && c.domain === 'id.signet.test'),
  };
}

/** The hidden fields of the interaction's form on the page: what an attacker copies. */
async function interactionFields(page) {
  return {
    interaction: await page.locator('input[name="interaction"]').first().inputValue(),
    csrf: await page.locator('input[name="csrf"]').first().inputValue(),
  };
}

/** Signs alice in to Signet in the page (through web-app, which asks for no consent). */
async function signInVictim(page, context) {
  const request = await authorizationRequest(webApp, webRedirect);
  const { shown } = await authorizeInBrowser(page, request.url, webRedirect, { user: alice });
  assert.deepEqual(shown, ['login']);
  const { session } = await issuerCookies(context);
  assert.ok(session, 'the victim has a session');
  // The set-up is real: Chromium keeps the issuer's Secure cookies over this https.
  assert.equal(session.secure, true);
  return session;
}

/**
 * The victim's browser opens an attacker's page that posts `fields` to the STS's `path` at
 * once (a same-site request: the victim's Lax cookies go along). Resolves, once the answer's
 * page has loaded, with the STS's answer (status, Location, Set-Cookie) and where the
 * browser ended up.
 */
async function forgedPost(page, path, fields) {
  const target = `${sts.issuer}${path}`;
  const attack = attacker.show(autoPost(target, fields));
  const answered = page.waitForResponse((r) => r.url() === target && r.request().method() === 'POST');
  // The answer's page: ours, the attacker's callback, or Chromium's error page.
  const settled = page.waitForEvent('load', { predicate: () => page.url() !== attack });
  await page.goto(attack);
  const response = await answered;
  await settled;
  return {
    status: response.status(),
    location: response.headers().location,
    setCookie: await response.headerValues('set-cookie'),
    url: page.url(),
  };
}

/** The STS refused `answer` with the another-browser page and set no session cookie. */
async function assertRefused(page, answer, what) {
  assert.equal(answer.status, 403, `${what} was answered ${answer.status} ${answer.location ?? ''} (the browser is at ${answer.url})`);
  assert.equal(answer.location, undefined);
  assert.match(await page.getByRole('alert').textContent(), anotherBrowser);
  assert.deepEqual(answer.setCookie.filter((c) => /signet_session/.test(c)), [], `${what}: no session cookie`);
}

/** Where the page's browser is sent for `request`: the page it lands on, or the callback it reaches. */
async function landing(page, request) {
  await page.goto(request.url.href).catch((error) => assert.match(error.message, /net::ERR_/));
  const here = new URL(page.url());
  return here.origin === sts.issuer ? here.pathname : here.href;
}

// RFC 8252 §7.1: a native app's redirect with a private-use scheme. Browsers apply the page's
// form-action to the redirect that answers a form, so the scheme must be in it, or Chromium
// blocks the redirect to the app and the person is stuck on the login page.
test('issue 16 item 4: a native app\'s private-use redirect (com.example.cli:) answers the login form with no CSP violation, and its code redeems with PKCE', { skip: noBrowser }, () => withPage(async (page) => {
  const violations = [];
  page.on('console', (m) => /Content Security Policy/.test(m.text()) && violations.push(m.text()));
  const request = await authorizationRequest(cli, cliRedirect);
  // Either Chromium goes on to the app's URL (which it then cannot open), or it reports the
  // blocked form; one of them ends each form post.
  const toApp = page.waitForRequest((r) => r.isNavigationRequest() && r.url().startsWith(`${cliRedirect}?`));
  const blocked = page.waitForEvent('console', (m) => /Content Security Policy/.test(m.text()));
  toApp.catch(() => {});
  blocked.catch(() => {});
  const outcome = (more = []) => Promise.race([toApp.then((r) => ({ request: r })), blocked.then((m) => ({ violation: m.text() })), ...more]);

  await page.goto(request.url.href);
  assert.equal(new URL(page.url()).pathname, '/login');
  // An event, not waitForURL: that fails with the navigation that Chromium blocks or aborts.
  const consent = page.waitForEvent('load', { predicate: () => new URL(page.url()).pathname === '/consent' }).then(() => ({ consent: true }));
  consent.catch(() => {});
  await signIn(page, alice);
  let ended = await outcome([consent]);
  if (ended.consent) {
    await page.getByRole('button', { name: 'Allow' }).click();
    ended = await outcome();
  }
  assert.equal(ended.violation, undefined, `Chromium blocked the redirect to the app: ${ended.violation}`);
  assert.deepEqual(violations, []);

  // The STS answered the form with a 303 to the app, which Chromium tried to follow.
  const posted = ended.request.redirectedFrom();
  assert.equal(posted?.method(), 'POST');
  const answer = await posted.response();
  assert.equal(answer.status(), 303);
  assert.equal(answer.headers().location, ended.request.url());
  const callback = new URL(ended.request.url());
  assert.equal(`${callback.protocol}${callback.pathname}`, cliRedirect);
  assert.deepEqual([...callback.searchParams.keys()].sort(), ['code', 'iss', 'state']);
  assert.equal(callback.searchParams.get('iss'), sts.issuer);

  // The app redeems the code as a public client, with its verifier.
  const tokens = await client.authorizationCodeGrant(cliConfig, callback, {
    pkceCodeVerifier: request.verifier,
    expectedState: request.state,
    expectedNonce: request.nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  assert.equal(claims.iss, sts.issuer);
  assert.equal(claims.aud, cli);
  assert.equal(claims.sub, aliceSub);
}));

// Consent CSRF from a sibling subdomain: the attacker's pending authorization of sibling-app,
// allowed by the victim's signed-in browser, would send the victim's code to the attacker.
test('issue 16 item 5a: a same-site page that posts the attacker\'s consent form from the victim\'s browser gets a 403 page; no code, and consent is still asked', { skip: noBrowser }, async () => {
  const theirs = await withPage(async (page) => {
    const request = await authorizationRequest(sibling, siblingRedirect);
    await page.goto(request.url.href);
    assert.equal(new URL(page.url()).pathname, '/login');
    return interactionFields(page);
  });
  await withPage(async (page, context) => {
    const session = await signInVictim(page, context);
    const before = attacker.callbacks.length;
    const answer = await forgedPost(page, '/consent', { ...theirs, decision: 'allow' });
    await assertRefused(page, answer, 'the forged consent');
    assert.deepEqual(attacker.callbacks.slice(before), [], 'the attacker\'s server got no code');
    assert.equal((await issuerCookies(context)).session?.value, session.value, 'the victim\'s session is kept');
    // Nothing was remembered for the victim: sibling-app still asks.
    assert.equal(await landing(page, await authorizationRequest(sibling, siblingRedirect)), '/consent');
    assert.deepEqual(attacker.callbacks.slice(before), []);
  });
});

// Device approval CSRF: the attacker's user code, approved by the victim's signed-in browser,
// would give the attacker's device the victim's tokens (RFC 8628 §5.4 is about a person
// tricked into typing a code; this is the form posted without the person at all).
test('issue 16 item 5b: a same-site page that posts the attacker\'s device approval from the victim\'s browser gets a 403 page; the device stays pending', { skip: noBrowser }, async () => {
  const authorized = await postForm('/device_authorization', { client_id: cli, scope: 'openid profile' });
  assert.equal(authorized.status, 200, JSON.stringify(authorized.body));
  const device = authorized.body;
  // The attacker opens the code's page; not signed in, she gets the login page of its interaction.
  const theirs = await withPage(async (page) => {
    await page.goto(device.verification_uri_complete);
    assert.equal(new URL(page.url()).pathname, '/login');
    return interactionFields(page);
  });
  await withPage(async (page, context) => {
    const session = await signInVictim(page, context);
    const answer = await forgedPost(page, '/device', { ...theirs, decision: 'allow' });
    await assertRefused(page, answer, 'the forged device approval');
    assert.equal((await issuerCookies(context)).session?.value, session.value, 'the victim\'s session is kept');
  });
  const polled = await postForm('/token', { grant_type: deviceGrant, device_code: device.device_code, client_id: cli });
  assert.equal(polled.body.error, 'authorization_pending', `the device's poll: ${polled.status} ${JSON.stringify(polled.body)}`);
  assert.equal(polled.body.access_token, undefined);
});

// Cookie tossing: a sibling subdomain may set cookies for the parent domain, which the browser
// then sends to the issuer as if they were its own. `__Host-` names are the ones it cannot set.
test('issue 16 item 5c: cookies tossed from a sibling subdomain neither sign the victim in as the attacker nor carry the attacker\'s sign-in', { skip: noBrowser }, async (t) => {
  // The attacker: signed in to sibling-app (her consent remembered), then a pending sign-in of
  // her own; her cookies as they are then.
  const theirs = await withPage(async (page, context) => {
    const first = await authorizationRequest(sibling, siblingRedirect);
    const { shown } = await authorizeInBrowser(page, first.url, siblingRedirect, { user: mallory, consent: 'Allow' });
    assert.deepEqual(shown, ['login', 'consent']);
    assert.equal(await landing(page, await authorizationRequest(sibling, siblingRedirect, { prompt: 'login' })), '/login');
    return { fields: await interactionFields(page), ...(await issuerCookies(context)) };
  });
  assert.ok(theirs.session, 'the attacker has a session');
  const toss = (name, cookie) => `${name}=${cookie.value}; Domain=signet.test; Path=/; Secure`;
  const tossed = [toss('signet_session', theirs.session), toss('__Host-signet_session', theirs.session)];
  if (theirs.binding) tossed.push(toss('signet_binding', theirs.binding), toss('__Host-signet_binding', theirs.binding));
  /** The victim's browser visits the attacker's page, which sets the cookies for signet.test. */
  const tossInto = async (page, context) => {
    await page.goto(attacker.show('<!doctype html><title>Hello</title><p>Nothing to see.', tossed));
    const planted = (await context.cookies(sts.issuer)).filter((c) => c.domain === '.signet.test');
    // Chromium takes the plain names for the parent domain, and refuses __Host- ones with a Domain.
    assert.ok(planted.some((c) => c.name === 'signet_session' && c.value === theirs.session.value), `tossed: ${JSON.stringify(planted)}`);
    assert.deepEqual(planted.filter((c) => c.name.startsWith('__Host-')), [], 'no __Host- cookie from a sibling');
  };

  await t.test('the victim opening an authorization request sees Signet\'s login page', () => withPage(async (page, context) => {
    await tossInto(page, context);
    const before = attacker.callbacks.length;
    const where = await landing(page, await authorizationRequest(sibling, siblingRedirect));
    assert.deepEqual(attacker.callbacks.slice(before), [], `the victim was signed in as the attacker and her code sent to ${where}`);
    assert.equal(where, '/login');
  }));

  await t.test('the attacker\'s pending sign-in, posted from the victim\'s browser with the tossed binding, gets a 403 page', () => withPage(async (page, context) => {
    await tossInto(page, context);
    const before = attacker.callbacks.length;
    const answer = await forgedPost(page, '/login', { ...theirs.fields, username: mallory.username, password: mallory.password });
    await assertRefused(page, answer, 'the attacker\'s login form from the victim\'s browser');
    assert.deepEqual(attacker.callbacks.slice(before), [], 'the attacker\'s server got no code');
    assert.equal((await issuerCookies(context)).session, undefined, 'the victim has no session of its own');
  }));

  await t.test('the issuer\'s own cookies are __Host- ones, which a sibling cannot set', () => {
    assert.equal(theirs.session.name, '__Host-signet_session');
    assert.equal(theirs.binding?.name, '__Host-signet_binding');
    for (const cookie of [theirs.session, theirs.binding]) {
      assert.equal(cookie.secure, true);
      assert.equal(cookie.httpOnly, true);
      assert.equal(cookie.sameSite, 'Lax');
      assert.equal(cookie.path, '/');
    }
  });
});
