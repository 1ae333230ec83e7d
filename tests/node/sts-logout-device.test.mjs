// Acceptance items 27-30 and 33 (acceptance.md) and back-channel logout: signing out with
// openid-client's end-session URL followed in headless Chromium, a logout token delivered to a
// client's https receiver, the device flow driven by openid-client and raw polls with the
// approval on the STS's pages, and refresh-token revocation. One STS for the file; each browser
// test has its own browser context, so its own cookies.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as client from 'openid-client';
import * as jose from 'jose';
import { startSts } from './sts.mjs';
import { authorizeInBrowser, browserMissing, captureRedirect, inNewContext, launchBrowser, signIn } from './browser.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const alice = { username: 'alice', password: 'correct horse battery staple' };
const aliceSub = '6f1c2a4e-alice';
const webApp = 'default.web-app';
const webRedirect = 'https://app.example.com/callback';
const webLogout = 'https://app.example.com/';
const bclApp = 'default.bcl-app';
const bclRedirect = 'https://bcl-app.example.com/callback';
const cli = 'default.cli';
const tv = 'default.tv';
const deviceGrant = 'urn:ietf:params:oauth:grant-type:device_code';
const backChannelEvent = 'http://schemas.openid.net/event/backchannel-logout';
const noBrowser = browserMissing();

// Clients of this file, beside the examples' web-app and cli. The receiver's port is known
// only once it listens, so the manifest is made then.
const extraClients = (receiverPort) => `
# Confidential, trusted (no consent page), told about logouts over the back channel.
apiVersion: signet.dev/v1alpha1
kind: OidcClient
metadata:
  name: bcl-app
spec:
  type: confidential
  grantTypes: [authorization_code]
  redirectUris: [${bclRedirect}]
  allowedScopes: [openid, profile]
  tokenEndpointAuthMethod: client_secret_basic
  trusted: true
  backChannelLogoutUri: https://127.0.0.1:${receiverPort}/logout
---
# A device whose codes expire after 2 s, to watch expired_token.
apiVersion: signet.dev/v1alpha1
kind: OidcClient
metadata:
  name: tv
spec:
  type: public
  grantTypes: ["${deviceGrant}"]
  allowedScopes: [openid, profile]
  lifetimes:
    deviceCode: 2s
`;

// The examples' TokenService, allowed to call the receiver on loopback.
const tokenService = readFileSync(join(root, 'examples', 'token-service.yaml'), 'utf8')
  .replace(/^spec:\n/m, 'spec:\n  allowPrivateNetworkTargets: true\n');
assert.match(tokenService, /allowPrivateNetworkTargets: true/, 'the TokenService override took');

let sts;
let browser;
let receiver;
let pki;
let meta; // the discovery document
let jwks;
const configs = new Map(); // openid-client configurations by client id
const exchanges = []; // url, status, headers and body of every token, device_authorization and revocation answer openid-client saw

/**
 * An https server on loopback that records form POSTs, as a client's back-channel logout
 * endpoint would receive them. `next()` resolves with the next POST (or one already waiting).
 */
async function startReceiver(key, cert) {
  const received = [];
  const waiting = [];
  const server = createServer({ key, cert }, (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const post = { method: req.method, path: req.url, contentType: req.headers['content-type'], form: new URLSearchParams(body) };
      res.writeHead(200, { 'cache-control': 'no-store' });
      res.end();
      const waiter = waiting.shift();
      if (waiter) waiter(post);
      else received.push(post);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    next: () => (received.length ? Promise.resolve(received.shift()) : new Promise((resolve) => waiting.push(resolve))),
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

before(async () => {
  // The receiver's certificate: self-signed for 127.0.0.1, an end-entity one (CA:FALSE) as a
  // server's should be. The STS trusts only it (it calls no other https server in this file).
  pki = mkdtempSync(join(tmpdir(), 'signet-bcl-pki-'));
  const [key, cert] = [join(pki, 'tls.key'), join(pki, 'tls.crt')];
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-keyout', key, '-out', cert, '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-addext', 'basicConstraints=critical,CA:FALSE',
  ], { stdio: 'ignore' });
  receiver = await startReceiver(readFileSync(key), readFileSync(cert));
  // startSts spawns the STS with this process's environment.
  process.env.SSL_CERT_FILE = cert;
  sts = await startSts({ 'token-service.yaml': tokenService, 'logout-device-clients.yaml': extraClients(receiver.port) });
  meta = (await configFor(webApp)).serverMetadata();
  jwks = jose.createRemoteJWKSet(new URL(meta.jwks_uri));
  if (!noBrowser) browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await sts?.stop();
  await receiver?.close();
  if (pki) rmSync(pki, { recursive: true, force: true });
});

const secretOf = (id) => sts.credentials(id).client_secret;

/** openid-client's configuration for a client: confidential ones by client_secret_basic. */
async function configFor(id) {
  if (!configs.has(id)) {
    const auth = [webApp, bclApp].includes(id) ? client.ClientSecretBasic(secretOf(id)) : client.None();
    const config = await client.discovery(new URL(sts.issuer), id, undefined, auth, { execute: [client.allowInsecureRequests] });
    config[client.customFetch] = async (url, options) => {
      const response = await fetch(url, options);
      const { token_endpoint: token, device_authorization_endpoint: device, revocation_endpoint: revocation } = config.serverMetadata();
      if ([token, device, revocation].includes(url)) {
        exchanges.push({ url, status: response.status, headers: response.headers, body: await response.clone().text() });
      }
      return response;
    };
    configs.set(id, config);
  }
  return configs.get(id);
}

/** A fresh authorization request (PKCE S256, state, nonce) for a client, built by openid-client. */
async function authorizationRequest(id, redirectUri, extra = {}) {
  const config = await configFor(id);
  const verifier = client.randomPKCECodeVerifier();
  const request = {
    redirect_uri: redirectUri,
    scope: 'openid profile',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state: client.randomState(),
    nonce: client.randomNonce(),
    ...extra,
  };
  return { config, verifier, state: request.state, nonce: request.nonce, url: client.buildAuthorizationUrl(config, request) };
}

/** Redeems the code in `callback` with openid-client, checking state, nonce and the ID token. */
function redeem(request, callback) {
  return client.authorizationCodeGrant(request.config, callback, {
    pkceCodeVerifier: request.verifier,
    expectedState: request.state,
    expectedNonce: request.nonce,
    idTokenExpected: true,
  });
}

/** Signs in (when `user` is given and asked) in the page and redeems the code. */
async function codeFlow(page, id, redirectUri, { extra, user = alice, consent = 'Allow' } = {}) {
  const request = await authorizationRequest(id, redirectUri, extra);
  const { callback, shown } = await authorizeInBrowser(page, request.url, redirectUri, { user, consent });
  const tokens = await redeem(request, callback);
  return { config: request.config, shown, tokens, claims: tokens.claims() };
}

/** Where prompt=none gets the page now: the callback's code, or its OAuth error. */
async function silentAuthorize(page, id = webApp, redirectUri = webRedirect) {
  const request = await authorizationRequest(id, redirectUri, { prompt: 'none' });
  const { callback } = await authorizeInBrowser(page, request.url, redirectUri);
  if (callback.searchParams.get('code')) return { code: (await redeem(request, callback)).claims() };
  return { error: await errorOf(redeem(request, callback)) };
}

/** A page in a browser context of its own (its own cookie jar), closed afterwards. */
const withPage = (fn) => inNewContext(browser, fn);

/** The `signet_session` cookie of the context, as a Cookie header value, or undefined. */
async function sessionCookie(context) {
  const cookie = (await context.cookies(sts.issuer)).find((c) => c.name === 'signet_session');
  return cookie && `${cookie.name}=${cookie.value}`;
}

/** The OAuth error code of a rejected openid-client call; `what` names the call in a failure. */
async function errorOf(promise, what = 'the call') {
  try {
    await promise;
  } catch (error) {
    assert.ok(error.error, `not an OAuth error: ${error.stack}`);
    return error.error;
  }
  assert.fail(`expected an OAuth error from ${what}, but it succeeded`);
}

/** The error page answer: 400 HTML, no Location. */
async function assertErrorPage(response, why) {
  assert.equal(response.status, 400, why);
  assert.equal(response.headers.get('location'), null, `${why}: redirected to ${response.headers.get('location')}`);
  assert.match(response.headers.get('content-type'), /^text\/html/, why);
}

/** Sleeps until the wall clock reaches `epochSeconds` (a lifetime running out is the scenario). */
async function untilEpoch(epochSeconds) {
  const ms = epochSeconds * 1000 - Date.now();
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
}

/** `promise`, or a failure naming `what` once `ms` have passed without it (a deadline, not a wait). */
async function within(promise, ms, what) {
  let timer;
  const deadline = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** One raw device-code poll by a public client: status and JSON body. */
async function poll(id, deviceCode) {
  const response = await fetch(meta.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: deviceGrant, device_code: deviceCode, client_id: id }),
  });
  return { status: response.status, body: await response.json() };
}

/** Asserts a poll answered 400 with `error`. */
function assertPollError({ status, body }, error, why) {
  assert.equal(body.error, error, `${why}: ${JSON.stringify(body)}`);
  assert.equal(status, 400, why);
  assert.equal(body.access_token, undefined, why);
}

/**
 * A person opens verification_uri_complete, signs in when asked, checks the code and presses
 * Allow or Deny. Returns the pages seen and the heading of the last one.
 */
async function answerDevice(page, authorization, decision, user = alice) {
  const shown = [];
  await page.goto(authorization.verification_uri_complete);
  if (new URL(page.url()).pathname === '/login') {
    shown.push('login');
    await Promise.all([page.waitForURL((url) => url.pathname === '/device'), signIn(page, user)]);
  }
  assert.equal(new URL(page.url()).pathname, '/device');
  shown.push('device');
  const heading = await page.getByRole('heading', { level: 1 }).textContent();
  assert.match(heading, /^Connect .+\?$/, `the confirmation page, not ${heading}`);
  assert.match(await page.locator('main, body').first().textContent(), new RegExp(authorization.user_code), 'the page shows the code to compare');
  const answered = page.waitForResponse((r) => r.url() === `${sts.issuer}/device` && r.request().method() === 'POST');
  await page.getByRole('button', { name: decision }).click();
  assert.equal((await answered).status(), 200);
  return { shown, heading: await page.getByRole('heading', { level: 1 }).textContent() };
}

// ---- Logout ----

test('27 end_session with id_token_hint, registered post_logout_redirect_uri and state: redirect with state; then prompt=none is login_required', { skip: noBrowser }, () => withPage(async (page, context) => {
  const { config, tokens, claims, shown } = await codeFlow(page, webApp, webRedirect);
  assert.deepEqual(shown, ['login']);
  // Control: the session answers prompt=none with a code while it lasts.
  const before = await silentAuthorize(page);
  assert.equal(before.code?.sid, claims.sid, `prompt=none before logout: ${JSON.stringify(before)}`);
  const oldCookie = await sessionCookie(context);
  assert.ok(oldCookie, 'a session cookie');

  const state = client.randomState();
  const url = client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token, post_logout_redirect_uri: webLogout, state });
  assert.equal(`${url.origin}${url.pathname}`, meta.end_session_endpoint);
  const answered = page.waitForResponse((r) => r.url().startsWith(meta.end_session_endpoint));
  const caught = captureRedirect(page, webLogout);
  // The browser ends on Chromium's error page for the unserved app.example.com.
  await page.goto(url.href).catch((error) => assert.match(error.message, /net::ERR_/));
  const redirect = await caught;
  const response = await answered;
  assert.equal(response.status(), 303);
  assert.equal(response.headers().location, redirect.href);
  assert.equal(`${redirect.origin}${redirect.pathname}`, webLogout);
  assert.deepEqual([...redirect.searchParams.keys()], ['state']);
  assert.equal(redirect.searchParams.get('state'), state);
  assert.match(await response.headerValue('set-cookie'), /^signet_session=;.*Max-Age=0/);
  assert.equal(await sessionCookie(context), undefined, 'the browser no longer has the session cookie');

  assert.deepEqual(await silentAuthorize(page), { error: 'login_required' });
  // The session ended at the STS too: the old cookie value, replayed, is no session.
  const replay = await authorizationRequest(webApp, webRedirect, { prompt: 'none' });
  const replayed = await fetch(replay.url, { redirect: 'manual', headers: { cookie: oldCookie } });
  assert.equal(replayed.status, 303);
  assert.equal(new URL(replayed.headers.get('location')).searchParams.get('error'), 'login_required');
}));

test('28 an unregistered post_logout_redirect_uri, or a hint signed by another key: an error page, no redirect', { skip: noBrowser }, () => withPage(async (page, context) => {
  const { tokens, claims } = await codeFlow(page, webApp, webRedirect);
  const cookie = await sessionCookie(context);
  const endSession = (params) => {
    const url = new URL(meta.end_session_endpoint);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    return fetch(url, { redirect: 'manual', headers: { cookie } });
  };
  const hinted = { id_token_hint: tokens.id_token, client_id: webApp, state: 's28' };

  for (const uri of [
    'https://app.example.com/evil',
    'https://app.example.com',
    'https://app.example.com/?next=x',
    'https://APP.example.com/',
    'http://app.example.com/',
    'https://evil.example/',
    'http://127.0.0.1:5173/', // the spa's, not web-app's
  ]) {
    await assertErrorPage(await endSession({ ...hinted, post_logout_redirect_uri: uri }), uri);
  }
  // Without a hint, client_id alone does not make an unregistered address acceptable either.
  await assertErrorPage(await endSession({ client_id: webApp, post_logout_redirect_uri: 'https://evil.example/' }), 'no hint');

  // The same claims and header, signed by a key that is not the STS's.
  const { privateKey } = await jose.generateKeyPair('RS256');
  const header = jose.decodeProtectedHeader(tokens.id_token);
  const forged = await new jose.SignJWT(jose.decodeJwt(tokens.id_token)).setProtectedHeader(header).sign(privateKey);
  assert.deepEqual(jose.decodeJwt(forged), claims);
  const refused = await endSession({ ...hinted, id_token_hint: forged, post_logout_redirect_uri: webLogout });
  await assertErrorPage(refused, 'forged hint');
  assert.equal(refused.headers.getSetCookie().some((c) => c.startsWith('signet_session=')), false, 'the cookie is left alone');

  // None of these signed anyone out: prompt=none still gets a code in the same session.
  assert.equal((await silentAuthorize(page)).code?.sid, claims.sid);
  // Control: the genuine hint with the registered address redirects.
  const accepted = await endSession({ ...hinted, post_logout_redirect_uri: webLogout });
  assert.equal(accepted.status, 303);
  assert.equal(accepted.headers.get('location'), `${webLogout}?state=s28`);
}));

// Without a hint the person confirms on Signet's page, and the answer to that form redirects
// to the client: browsers apply the page's form-action to that redirect, so it must name the
// post_logout_redirect_uri's origin.
test('a logout confirmed on Signet\'s page reaches the registered post_logout_redirect_uri in a browser that enforces the page\'s CSP', { skip: noBrowser }, () => withPage(async (page) => {
  await codeFlow(page, webApp, webRedirect);
  const violations = [];
  page.on('console', (m) => /Content Security Policy/.test(m.text()) && violations.push(m.text()));
  const url = new URL(meta.end_session_endpoint);
  url.search = new URLSearchParams({ client_id: webApp, post_logout_redirect_uri: webLogout, state: 'confirmed' });
  await page.goto(url.href);
  assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Sign out?');
  const caught = captureRedirect(page, webLogout);
  const blocked = page.waitForEvent('console', (m) => /Content Security Policy/.test(m.text()));
  blocked.catch(() => {});
  await page.getByRole('button', { name: 'Sign out' }).click();
  const redirect = await Promise.race([caught, blocked.then((m) => assert.fail(`blocked: ${m.text()}`))]);
  assert.deepEqual(violations, []);
  assert.equal(redirect.searchParams.get('state'), 'confirmed');
  assert.deepEqual(await silentAuthorize(page), { error: 'login_required' });
}));

test('back-channel logout: a client in the session gets a logout token for that session at its https endpoint', { skip: noBrowser }, () => withPage(async (page) => {
  // Two clients in one session: web-app (no back channel) and bcl-app (with one).
  const web = await codeFlow(page, webApp, webRedirect);
  const bcl = await codeFlow(page, bclApp, bclRedirect, { user: null, consent: null });
  assert.equal(bcl.shown.length, 0, 'the session signs bcl-app in without a page');
  assert.equal(bcl.claims.sid, web.claims.sid);
  assert.ok(bcl.claims.sid, 'the ID token has a sid');

  // web-app signs the person out; bcl-app must hear of it.
  const delivered = receiver.next();
  const url = client.buildEndSessionUrl(web.config, { id_token_hint: web.tokens.id_token });
  const answered = page.waitForResponse((r) => r.url().startsWith(meta.end_session_endpoint));
  await page.goto(url.href);
  assert.equal((await answered).status(), 200);
  assert.match(await page.getByRole('heading', { level: 1 }).textContent(), /signed out/i);
  // The STS tries four times over about seven seconds.
  const post = await within(delivered, 20_000, 'logout token at the receiver');
  assert.equal(post.method, 'POST');
  assert.equal(post.path, '/logout');
  assert.match(post.contentType, /^application\/x-www-form-urlencoded/);
  assert.deepEqual([...post.form.keys()], ['logout_token']);

  const token = post.form.get('logout_token');
  const { payload, protectedHeader } = await jose.jwtVerify(token, jwks, {
    issuer: sts.issuer,
    audience: bclApp,
    typ: 'logout+jwt',
    algorithms: ['RS256'],
    requiredClaims: ['iat', 'exp', 'jti', 'sub', 'sid', 'events'],
  });
  assert.equal(protectedHeader.typ, 'logout+jwt');
  assert.ok(protectedHeader.kid);
  assert.equal(payload.aud, bclApp);
  assert.equal(payload.sub, aliceSub);
  assert.equal(payload.sub, bcl.claims.sub);
  assert.equal(payload.sid, bcl.claims.sid);
  assert.deepEqual(Object.keys(payload.events), [backChannelEvent]);
  assert.deepEqual(payload.events[backChannelEvent], {});
  assert.equal('nonce' in payload, false, 'a logout token has no nonce');
  assert.equal(typeof payload.jti, 'string');
  assert.ok(payload.jti.length >= 16, `jti ${payload.jti}`);
  const now = Math.floor(Date.now() / 1000);
  assert.ok(Math.abs(payload.iat - now) <= 30, `iat ${payload.iat} is about now (${now})`);
  assert.equal(payload.exp - payload.iat, 120);
}));

// ---- Device flow ----

test('29 device_authorization: device_code, user_code, verification_uri(_complete), expires_in, interval', async () => {
  const config = await configFor(cli);
  assert.equal(config.serverMetadata().device_authorization_endpoint, `${sts.issuer}/device_authorization`);
  const before = exchanges.length;
  const authorization = await client.initiateDeviceAuthorization(config, { scope: 'openid profile' });
  const [exchange] = exchanges.slice(before);
  assert.equal(exchange.status, 200);
  assert.equal(exchange.headers.get('cache-control'), 'no-store');

  assert.match(authorization.device_code, /^[A-Za-z0-9_-]{43,}$/, '256 random bits');
  assert.match(authorization.user_code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
  assert.equal(authorization.verification_uri, `${sts.issuer}/device`);
  const complete = new URL(authorization.verification_uri_complete);
  assert.equal(`${complete.origin}${complete.pathname}`, authorization.verification_uri);
  assert.equal(complete.searchParams.get('user_code'), authorization.user_code);
  assert.equal(authorization.expires_in, 600, 'the default deviceCode lifetime');
  assert.equal(authorization.interval, 5);

  // Each request gets its own codes.
  const second = await client.initiateDeviceAuthorization(config, { scope: 'openid' });
  assert.notEqual(second.device_code, authorization.device_code);
  assert.notEqual(second.user_code, authorization.user_code);
  // The short-lived client's lifetime is its own.
  assert.equal((await client.initiateDeviceAuthorization(await configFor(tv), { scope: 'openid' })).expires_in, 2);
  // A client without the device grant is refused.
  assert.equal(await errorOf(client.initiateDeviceAuthorization(await configFor(webApp), { scope: 'openid' })), 'unauthorized_client');
});

test('30 device polling: authorization_pending, slow_down, tokens once approved (once), access_denied, expired_token', { skip: noBrowser }, async (t) => {
  const config = await configFor(cli);

  await t.test('pending, then slow_down when polled sooner than the interval', async () => {
    const { device_code: code } = await client.initiateDeviceAuthorization(config, { scope: 'openid' });
    assertPollError(await poll(cli, code), 'authorization_pending', 'first poll');
    assertPollError(await poll(cli, code), 'slow_down', 'a poll at once after');
    assertPollError(await poll(cli, code), 'slow_down', 'again too soon (the interval grew)');
    // Another client may not poll this device code.
    assertPollError(await poll(tv, code), 'invalid_grant', 'another client');
    assertPollError(await poll(cli, 'no-such-code'), 'invalid_grant', 'an unknown code');
  });

  await t.test('approved in the browser: tokens, once', () => withPage(async (page) => {
    const authorization = await client.initiateDeviceAuthorization(config, { scope: 'openid profile' });
    // The device polls (openid-client waits the interval first) while the person approves.
    const before = exchanges.length;
    // Polling stops at a deadline, or at once when the approval fails.
    const giveUp = new AbortController();
    const signal = AbortSignal.any([giveUp.signal, AbortSignal.timeout(30_000)]);
    const polled = client.pollDeviceAuthorizationGrant(config, authorization, undefined, { signal });
    polled.catch(() => {}); // awaited below; a rejection while the browser works is reported there
    let shown;
    let heading;
    try {
      ({ shown, heading } = await answerDevice(page, authorization, 'Allow'));
    } catch (error) {
      giveUp.abort();
      throw error;
    }
    assert.deepEqual(shown, ['login', 'device']);
    assert.equal(heading, 'Device connected');
    const tokens = await polled;
    // Every poll before the tokens was pending: openid-client kept the interval, so no slow_down.
    const polls = exchanges.slice(before).filter((e) => e.url === meta.token_endpoint);
    assert.ok(polls.length >= 1);
    for (const e of polls.slice(0, -1)) assert.equal(JSON.parse(e.body).error, 'authorization_pending', e.body);
    assert.equal(polls.at(-1).status, 200);

    assert.equal(tokens.token_type.toLowerCase(), 'bearer');
    assert.ok(tokens.access_token);
    assert.deepEqual(new Set(tokens.scope.split(' ')), new Set(['openid', 'profile']));
    const { payload } = await jose.jwtVerify(tokens.id_token, jwks, { issuer: sts.issuer, audience: cli, requiredClaims: ['sub', 'auth_time', 'sid'] });
    assert.equal(payload.sub, aliceSub);
    assert.equal(payload.preferred_username, 'alice');
    assert.deepEqual(tokens.claims(), payload);
    const info = await client.fetchUserInfo(config, tokens.access_token, aliceSub);
    assert.equal(info.preferred_username, 'alice');

    // Redeemed once: the next poll finds nothing, and the user code is spent.
    assertPollError(await poll(cli, authorization.device_code), 'invalid_grant', 'a second redemption');
    const reused = await fetch(authorization.verification_uri_complete);
    assert.equal(reused.status, 400);
    assert.match(await reused.text(), /role="alert"/);
  }));

  await t.test('denied in the browser: access_denied', () => withPage(async (page) => {
    const authorization = await client.initiateDeviceAuthorization(config, { scope: 'openid' });
    // Answered before the first poll, so the poll is not too soon.
    const { shown, heading } = await answerDevice(page, authorization, 'Deny');
    assert.deepEqual(shown, ['login', 'device']);
    assert.equal(heading, 'Request denied');
    assertPollError(await poll(cli, authorization.device_code), 'access_denied', 'after Deny');
  }));

  await t.test('expired: expired_token', async () => {
    const tvConfig = await configFor(tv);
    const authorization = await client.initiateDeviceAuthorization(tvConfig, { scope: 'openid' });
    const issuedBy = Math.floor(Date.now() / 1000); // the STS issued it at this second or before
    assert.equal(authorization.expires_in, 2);
    assertPollError(await poll(tv, authorization.device_code), 'authorization_pending', 'while fresh');
    await untilEpoch(issuedBy + authorization.expires_in); // the scenario: the 2 s lifetime runs out
    assertPollError(await poll(tv, authorization.device_code), 'expired_token', 'after expiry');
    // openid-client gives up with the same error.
    assert.equal(await errorOf(client.pollDeviceAuthorizationGrant(tvConfig, { ...authorization, interval: 0 })), 'expired_token');
    // The person can no longer enter the code either.
    assert.equal((await fetch(authorization.verification_uri_complete)).status, 400);
  });
});

// ---- Revocation ----

test('33 revoking a refresh token: 200, then refreshing with it is invalid_grant; revoking garbage: 200', {
  skip: noBrowser,
}, () => withPage(async (page) => {
  const scope = 'openid profile offline_access';
  // Two grants in one session: two independent refresh token families.
  const first = await codeFlow(page, webApp, webRedirect, { extra: { scope } });
  const second = await codeFlow(page, webApp, webRedirect, { extra: { scope } });
  assert.ok(first.tokens.refresh_token, 'offline_access gives a refresh token');
  assert.ok(second.tokens.refresh_token);
  assert.notEqual(first.tokens.refresh_token, second.tokens.refresh_token);
  const config = first.config;

  const revocations = () => exchanges.filter((e) => e.url === meta.revocation_endpoint);
  const before = revocations().length;
  await client.tokenRevocation(config, first.tokens.refresh_token, { token_type_hint: 'refresh_token' });
  assert.equal(revocations().length, before + 1);
  assert.equal(revocations().at(-1).status, 200);
  assert.equal(await errorOf(client.refreshTokenGrant(config, first.tokens.refresh_token), 'refreshing with the revoked token'), 'invalid_grant');

  // Control: the other family still refreshes.
  const refreshed = await client.refreshTokenGrant(config, second.tokens.refresh_token);
  assert.equal(refreshed.claims().sub, aliceSub);
  // Revoked without a hint: the same.
  await client.tokenRevocation(config, refreshed.refresh_token);
  assert.equal(revocations().at(-1).status, 200);
  assert.equal(await errorOf(client.refreshTokenGrant(config, refreshed.refresh_token), 'refreshing with the token revoked without a hint'), 'invalid_grant');

  // Garbage, and the already revoked token again: 200 all the same (RFC 7009 §2.2).
  for (const [token, hint] of [['not-a-token', undefined], ['not-a-token', 'refresh_token'], [`${first.tokens.refresh_token}x`, 'access_token'], [first.tokens.refresh_token, undefined]]) {
    const count = revocations().length;
    await client.tokenRevocation(config, token, hint ? { token_type_hint: hint } : {});
    assert.equal(revocations().length, count + 1);
    assert.equal(revocations().at(-1).status, 200, `${token} ${hint}`);
  }
}));
