// Acceptance items 4-13, 16, 17 and 20-25 (acceptance.md): signing people in with the
// authorization code flow and PKCE, refresh tokens and userinfo, driven by openid-client,
// oauth4webapi and plain HTTP, with headless Chromium (Playwright) on the login and consent
// pages, against the standalone STS on examples/. One STS for the file; each browser test has
// its own browser context, so its own cookies.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import * as oauth from 'oauth4webapi';
import * as client from 'openid-client';
import * as jose from 'jose';
import { startSts } from './sts.mjs';
import { authorizeInBrowser, browserMissing, captureRedirect, inNewContext, launchBrowser, signIn } from './browser.mjs';

// Clients of this file, beside the examples' web-app, spa and cli.
const extraClients = `
# Confidential, client_secret_post, trusted (no consent page), may ask for groups.
apiVersion: signet.dev/v1alpha1
kind: OidcClient
metadata:
  name: post-app
spec:
  type: confidential
  grantTypes: [authorization_code, refresh_token]
  redirectUris: [https://post-app.example.com/callback]
  allowedScopes: [openid, profile, email, groups, offline_access]
  tokenEndpointAuthMethod: client_secret_post
  trusted: true
---
# Lifetimes short enough to watch a code and an access token expire.
apiVersion: signet.dev/v1alpha1
kind: OidcClient
metadata:
  name: short-app
spec:
  type: confidential
  grantTypes: [authorization_code]
  redirectUris: [https://short-app.example.com/callback]
  allowedScopes: [openid, profile]
  lifetimes:
    accessToken: 2s
    authorizationCode: 3s
`;

const alice = { username: 'alice', password: 'correct horse battery staple' };
const aliceSub = '6f1c2a4e-alice';
const webApp = 'default.web-app';
const webRedirect = 'https://app.example.com/callback';
const postApp = 'default.post-app';
const postRedirect = 'https://post-app.example.com/callback';
const shortApp = 'default.short-app';
const shortRedirect = 'https://short-app.example.com/callback';
const cli = 'default.cli';
const spa = 'default.spa';
const allowHttp = { [oauth.allowInsecureRequests]: true };
const noBrowser = browserMissing();

let sts;
let browser;
let as; // oauth4webapi's view of the discovery document
let jwks;
const configs = new Map(); // openid-client configurations by client id
const tokenResponses = []; // status and headers of every token response openid-client saw

before(async () => {
  // A metrics port of its own, so this file's STS can run beside another test's.
  process.env.SIGNET_METRICS_ADDR ??= '127.0.0.1:0';
  sts = await startSts({ 'signin-clients.yaml': extraClients });
  const issuer = new URL(sts.issuer);
  as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...allowHttp, algorithm: 'oidc' }));
  jwks = jose.createRemoteJWKSet(new URL(as.jwks_uri));
  if (!noBrowser) browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await sts?.stop();
});

const secretOf = (id) => sts.credentials(id).client_secret;

/** openid-client's configuration for a client, with the auth method it is registered for. */
async function configFor(id) {
  if (!configs.has(id)) {
    const auth = {
      [webApp]: () => client.ClientSecretBasic(secretOf(webApp)),
      [shortApp]: () => client.ClientSecretBasic(secretOf(shortApp)),
      [postApp]: () => client.ClientSecretPost(secretOf(postApp)),
    }[id] ?? (() => client.None());
    const config = await client.discovery(new URL(sts.issuer), id, undefined, auth(), { execute: [client.allowInsecureRequests] });
    config[client.customFetch] = async (url, options) => {
      const response = await fetch(url, options);
      if (url === as.token_endpoint) tokenResponses.push({ status: response.status, headers: response.headers });
      return response;
    };
    configs.set(id, config);
  }
  return configs.get(id);
}

/** oauth4webapi's client authentication for a client. */
function o4Auth(id) {
  if (id === webApp || id === shortApp) return oauth.ClientSecretBasic(secretOf(id));
  if (id === postApp) return oauth.ClientSecretPost(secretOf(id));
  return oauth.None();
}

/** A fresh authorization request (PKCE S256, state, nonce) for a client, built by openid-client. */
async function authorizationRequest(id, redirectUri, extra = {}) {
  const config = await configFor(id);
  const verifier = client.randomPKCECodeVerifier();
  const request = {
    redirect_uri: redirectUri,
    scope: 'openid profile email',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state: client.randomState(),
    nonce: client.randomNonce(),
    ...extra,
  };
  for (const [k, v] of Object.entries(request)) if (v === undefined) delete request[k];
  return { config, id, redirectUri, verifier, state: request.state, nonce: request.nonce, url: client.buildAuthorizationUrl(config, request) };
}

/** Redeems the code in `callback` with openid-client, checking state, nonce and the ID token. */
function redeem(request, callback, checks = {}) {
  return client.authorizationCodeGrant(request.config, callback, {
    pkceCodeVerifier: request.verifier,
    expectedState: request.state,
    expectedNonce: request.nonce,
    idTokenExpected: true,
    ...checks,
  });
}

/** A page in a browser context of its own (its own cookie jar), closed afterwards. */
const withPage = (fn) => inNewContext(browser, fn, { timeout: 10_000 });

/** Signs in (if asked) in the page and redeems the code: tokens, callback URL, pages shown. */
async function codeFlow(page, id, redirectUri, { extra, user = alice, consent = 'Allow', checks } = {}) {
  const request = await authorizationRequest(id, redirectUri, extra);
  const { callback, shown } = await authorizeInBrowser(page, request.url, redirectUri, { user, consent });
  const tokens = await redeem(request, callback, checks);
  return { request, config: request.config, callback, shown, tokens, claims: tokens.claims() };
}

/** Signs in and returns a code, not redeemed, with its request. */
async function codeOnly(page, id, redirectUri, extra) {
  const request = await authorizationRequest(id, redirectUri, extra);
  const { callback } = await authorizeInBrowser(page, request.url, redirectUri, { user: alice, consent: 'Allow' });
  const code = callback.searchParams.get('code');
  assert.ok(code, `no code in ${callback}`);
  return { request, callback, code };
}

// ---- plain HTTP ----

const formType = { 'content-type': 'application/x-www-form-urlencoded' };
const basic = (id) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secretOf(id))}`).toString('base64')}`;

/** GET (or POST) /authorize without following the redirect. */
function rawAuthorize(params, { method = 'GET', cookie } = {}) {
  const headers = cookie ? { cookie } : {};
  const url = new URL(as.authorization_endpoint);
  if (method === 'POST') {
    return fetch(url, { method, redirect: 'manual', headers: { ...headers, ...formType }, body: new URLSearchParams(params) });
  }
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return fetch(url, { redirect: 'manual', headers });
}

/**
 * Follows `started` (the answer of /authorize) to the login page and posts its form as a
 * browser would: with the binding cookie `started` set, without which the sign-in is another
 * browser's and refused.
 */
async function rawLogin(started, user = alice) {
  const binding = started.headers.getSetCookie().find((c) => c.startsWith('signet_binding='))?.split(';')[0];
  assert.ok(binding, 'the interaction binds this client with a cookie');
  const page = await fetch(new URL(started.headers.get('location'), sts.issuer), { headers: { cookie: binding } });
  assert.equal(page.status, 200);
  const html = await page.text();
  const field = (name) => html.match(new RegExp(`name="${name}" value="([^"]*)"`))?.[1];
  const response = await fetch(new URL('/login', sts.issuer), {
    method: 'POST',
    redirect: 'manual',
    headers: { ...formType, cookie: binding },
    body: new URLSearchParams({ interaction: field('interaction'), csrf: field('csrf'), username: user.username, password: user.password }),
  });
  const cookie = response.headers.getSetCookie().find((c) => c.startsWith('signet_session='))?.split(';')[0];
  return { response, cookie };
}

/** A PKCE pair. */
async function pkce() {
  const verifier = oauth.generateRandomCodeVerifier();
  return { verifier, challenge: await oauth.calculatePKCECodeChallenge(verifier) };
}

/** Signs alice in over plain HTTP for web-app: the session cookie. */
async function rawSession() {
  const { challenge } = await pkce();
  const started = await rawAuthorize({ client_id: webApp, response_type: 'code', redirect_uri: webRedirect, scope: 'openid', code_challenge: challenge, code_challenge_method: 'S256' });
  assert.equal(started.status, 303);
  const { response, cookie } = await rawLogin(started);
  assert.equal(response.status, 303);
  assert.ok(cookie, 'no session cookie');
  return cookie;
}

/** POST /token with the client's registered authentication; public clients send client_id. */
async function rawToken(id, params) {
  const headers = { ...formType };
  const body = new URLSearchParams(params);
  if (id === webApp || id === shortApp) {
    headers.authorization = basic(id);
  } else {
    body.set('client_id', id);
    if (id === postApp) body.set('client_secret', secretOf(id));
  }
  const response = await fetch(as.token_endpoint, { method: 'POST', headers, body });
  return { status: response.status, body: await response.json() };
}

/** Introspection with web-app's credentials. */
async function introspect(token) {
  const response = await fetch(as.introspection_endpoint, { method: 'POST', headers: { ...formType, authorization: basic(webApp) }, body: new URLSearchParams({ token }) });
  assert.equal(response.status, 200);
  return response.json();
}

function userinfo(token, method = 'GET') {
  return fetch(as.userinfo_endpoint, { method, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
}

/** The OAuth error code of a rejected openid-client or oauth4webapi call. */
async function errorOf(promise) {
  try {
    await promise;
  } catch (error) {
    assert.ok(error.error, `not an OAuth error: ${error.stack}`);
    return error.error;
  }
  assert.fail('expected an OAuth error');
}

/** The error page answer: 400 HTML, no Location. */
async function assertErrorPage(response, why) {
  assert.equal(response.status, 400, why);
  assert.equal(response.headers.get('location'), null, `${why}: redirected to ${response.headers.get('location')}`);
  assert.match(response.headers.get('content-type'), /^text\/html/, why);
}

const atHash = (accessToken) => Buffer.from(createHash('sha256').update(accessToken).digest().subarray(0, 16)).toString('base64url');

/** Sleeps until the wall clock reaches `epochSeconds` (a lifetime running out is the scenario). */
async function untilEpoch(epochSeconds) {
  const ms = epochSeconds * 1000 - Date.now();
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
}

/** A one-shot loopback HTTP server for a native client's callback, as a CLI would run. */
async function loopbackCallback() {
  let received;
  const got = new Promise((resolve) => (received = resolve));
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('Signed in. You can close this window.');
    received(req.url);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    redirectUri: `http://127.0.0.1:${server.address().port}/callback`,
    got,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

// ---- Authorization endpoint ----

test('4 code + PKCE S256 + state + nonce: redirect to the exact redirect_uri with code, state and iss', { skip: noBrowser }, async (t) => {
  await t.test('confidential web-app, through the login page', () => withPage(async (page, context) => {
    const request = await authorizationRequest(webApp, webRedirect);
    await page.goto(request.url.href);
    const login = new URL(page.url());
    assert.equal(`${login.origin}${login.pathname}`, `${sts.issuer}/login`);
    assert.ok(login.searchParams.get('interaction'));
    const form = page.locator('form');
    assert.equal(await form.getAttribute('method'), 'post');
    assert.equal(await form.getAttribute('action'), '/login');

    // A wrong password: the same page again, 401, with an alert.
    const refused = page.waitForResponse((r) => r.url() === `${sts.issuer}/login` && r.request().method() === 'POST');
    await signIn(page, { ...alice, password: 'wrong horse' });
    assert.equal((await refused).status(), 401);
    assert.match(await page.getByRole('alert').textContent(), /not right/);
    assert.equal(await page.getByLabel('Username').inputValue(), 'alice');

    const accepted = page.waitForResponse((r) => r.url() === `${sts.issuer}/login` && r.request().method() === 'POST');
    const caught = captureRedirect(page, webRedirect);
    await signIn(page, alice);
    const callback = await caught;
    const response = await accepted;
    assert.equal(response.status(), 303);
    assert.equal(response.headers().location, callback.href);
    assert.equal(`${callback.origin}${callback.pathname}`, webRedirect);
    assert.deepEqual([...callback.searchParams.keys()].sort(), ['code', 'iss', 'state']);
    assert.equal(callback.searchParams.get('state'), request.state);
    assert.equal(callback.searchParams.get('iss'), sts.issuer);

    const session = (await context.cookies(sts.issuer)).find((c) => c.name === 'signet_session');
    assert.ok(session, 'no session cookie');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Lax');
    assert.equal(session.secure, false, 'Secure on loopback http would be dropped by browsers');

    const tokens = await redeem(request, callback);
    assert.equal(tokens.claims().sub, aliceSub);
    assert.equal(tokens.claims().nonce, request.nonce);
  }));

  await t.test('public native cli on a random loopback port', () => withPage(async (page) => {
    const loopback = await loopbackCallback();
    try {
      const request = await authorizationRequest(cli, loopback.redirectUri, { scope: 'openid profile' });
      const { callback, shown } = await authorizeInBrowser(page, request.url, loopback.redirectUri, { user: alice });
      assert.deepEqual(shown, ['login']);
      assert.equal(await loopback.got, `${callback.pathname}${callback.search}`, 'the CLI received the callback');
      assert.equal(callback.searchParams.get('state'), request.state);
      assert.equal(callback.searchParams.get('iss'), sts.issuer);
      const tokens = await redeem(request, callback);
      assert.equal(tokens.claims().sub, aliceSub);
      assert.equal(tokens.claims().aud, cli);
      assert.equal(tokens.claims().preferred_username, 'alice');
    } finally {
      await loopback.close();
    }
  }));
});

test('5 a missing or unsupported response_type is an error for the client, never a code', async () => {
  const cookie = await rawSession();
  const { challenge } = await pkce();
  const params = { client_id: webApp, redirect_uri: webRedirect, scope: 'openid', state: 's5', code_challenge: challenge, code_challenge_method: 'S256' };
  const unsupported = 'unsupported_response_type';
  const cases = [[undefined, 'invalid_request'], ['token', unsupported], ['id_token', unsupported], ['code id_token', unsupported], ['code token', unsupported]];
  for (const [responseType, expected] of cases) {
    const response = await rawAuthorize(responseType ? { ...params, response_type: responseType } : params, { cookie });
    assert.equal(response.status, 303, `response_type=${responseType}`);
    const location = new URL(response.headers.get('location'));
    assert.equal(`${location.origin}${location.pathname}`, webRedirect);
    assert.equal(location.searchParams.get('error'), expected, `response_type=${responseType}`);
    assert.equal(location.searchParams.get('state'), 's5');
    assert.equal(location.searchParams.get('code'), null);
  }
  // The same session and request with response_type=code does get a code.
  const control = await rawAuthorize({ ...params, response_type: 'code' }, { cookie });
  assert.ok(new URL(control.headers.get('location')).searchParams.get('code'));
});

test('6 unregistered, altered or extended redirect_uri: error page, no redirect; a native loopback port may vary', async () => {
  const cookie = await rawSession();
  const { challenge } = await pkce();
  const base = { response_type: 'code', scope: 'openid', state: 's6', code_challenge: challenge, code_challenge_method: 'S256' };
  const refused = {
    [webApp]: [
      'https://app.example.com/callback/extra',
      'https://app.example.com/callback?next=/admin',
      'https://app.example.com/callback#x',
      'https://app.example.com/Callback',
      'https://app.example.com/callbac',
      'https://app.example.com:443/callback',
      'http://app.example.com/callback',
      'https://app.example.com.evil.example/callback',
      'https://evil.example/callback',
      'http://127.0.0.1:3001/callback', // a confidential client's loopback port is exact
    ],
    [cli]: [
      'http://localhost:51004/callback',
      'http://127.0.0.1:51004/callback/x',
      'http://127.0.0.1:51004/other',
      'http://127.0.0.1.evil.example:51004/callback',
      'https://127.0.0.1:51004/callback',
      'com.example.cli:/other',
    ],
  };
  for (const [id, uris] of Object.entries(refused)) {
    for (const uri of uris) await assertErrorPage(await rawAuthorize({ ...base, client_id: id, redirect_uri: uri }, { cookie }), `${id} ${uri}`);
  }
  await assertErrorPage(await rawAuthorize({ ...base, client_id: 'default.nobody', redirect_uri: webRedirect }, { cookie }), 'unknown client');
  await assertErrorPage(await rawAuthorize({ ...base, client_id: webApp }, { cookie }), 'no redirect_uri');

  // RFC 8252 §7.3: the native client's loopback redirect on any port; with the session, a code.
  for (const port of [51004, 8400]) {
    const redirectUri = `http://127.0.0.1:${port}/callback`;
    const response = await rawAuthorize({ ...base, client_id: cli, redirect_uri: redirectUri }, { cookie });
    assert.equal(response.status, 303);
    const location = new URL(response.headers.get('location'));
    assert.equal(`${location.origin}${location.pathname}`, redirectUri);
    assert.ok(location.searchParams.get('code'));
  }
  // And the registered URIs themselves, the control.
  for (const [id, uri] of [[webApp, webRedirect], [webApp, 'http://127.0.0.1:3000/callback'], [cli, 'com.example.cli:/callback']]) {
    const response = await rawAuthorize({ ...base, client_id: id, redirect_uri: uri }, { cookie });
    assert.equal(response.status, 303, uri);
    assert.ok(response.headers.get('location').startsWith(`${uri}?code=`), response.headers.get('location'));
  }
});

test('7 a public client without code_challenge, or with method plain, gets invalid_request', async () => {
  for (const [id, redirectUri] of [[spa, 'http://127.0.0.1:5173/callback'], [cli, 'http://127.0.0.1:42000/callback']]) {
    const { verifier, challenge } = await pkce();
    const state = oauth.generateRandomState();
    const base = { client_id: id, response_type: 'code', redirect_uri: redirectUri, scope: 'openid', state };
    const cases = {
      'no code_challenge': base,
      'method plain': { ...base, code_challenge: verifier, code_challenge_method: 'plain' },
      'no method (plain by default)': { ...base, code_challenge: challenge },
    };
    for (const [name, params] of Object.entries(cases)) {
      const response = await rawAuthorize(params);
      assert.equal(response.status, 303, `${id} ${name}`);
      const error = await errorOf((async () => oauth.validateAuthResponse(as, { client_id: id }, new URL(response.headers.get('location')), state))());
      assert.equal(error, 'invalid_request', `${id} ${name}`);
    }
    // With S256 the same request goes on to the login page.
    const control = await rawAuthorize({ ...base, code_challenge: challenge, code_challenge_method: 'S256' });
    assert.equal(control.status, 303);
    assert.match(control.headers.get('location'), /^\/login\?interaction=/);
  }
});

test('8 prompt=none without a session: login_required, state echoed', async () => {
  const request = await authorizationRequest(webApp, webRedirect, { prompt: 'none' });
  const response = await fetch(request.url, { redirect: 'manual' });
  assert.equal(response.status, 303);
  const callback = new URL(response.headers.get('location'));
  assert.equal(`${callback.origin}${callback.pathname}`, webRedirect);
  assert.equal(callback.searchParams.get('state'), request.state);
  assert.equal(callback.searchParams.get('code'), null);
  // openid-client checks state and iss before it reports the error.
  assert.equal(await errorOf(redeem(request, callback)), 'login_required');
});

test('9 prompt=none with a session, and with id_token_hint: a code, same sub and auth_time', { skip: noBrowser }, () => withPage(async (page) => {
  const first = await codeFlow(page, webApp, webRedirect);
  assert.deepEqual(first.shown, ['login']);

  const silent = await codeFlow(page, webApp, webRedirect, { extra: { prompt: 'none' }, user: null, consent: null });
  assert.deepEqual(silent.shown, []);
  assert.equal(silent.claims.sub, first.claims.sub);
  assert.equal(silent.claims.auth_time, first.claims.auth_time);
  assert.equal(silent.claims.sid, first.claims.sid);

  const hinted = await codeFlow(page, webApp, webRedirect, { extra: { prompt: 'none', id_token_hint: first.tokens.id_token }, user: null, consent: null });
  assert.deepEqual(hinted.shown, []);
  assert.equal(hinted.claims.sub, first.claims.sub);
  assert.equal(hinted.claims.auth_time, first.claims.auth_time);

  // A hint that is not one of our ID tokens gives no code.
  const { privateKey } = await jose.generateKeyPair('RS256');
  const { kid } = jose.decodeProtectedHeader(first.tokens.id_token);
  const forged = await new jose.SignJWT({ sub: aliceSub }).setProtectedHeader({ alg: 'RS256', kid })
    .setIssuer(sts.issuer).setAudience(webApp).setIssuedAt().setExpirationTime('5m').sign(privateKey);
  const request = await authorizationRequest(webApp, webRedirect, { prompt: 'none', id_token_hint: forged });
  const { callback } = await authorizeInBrowser(page, request.url, webRedirect);
  assert.equal(callback.searchParams.get('code'), null);
  assert.ok(callback.searchParams.get('error'), `no error in ${callback}`);
}));

test('10 max_age=1 after 2 s and prompt=login: the login page again, later auth_time', { skip: noBrowser }, () => withPage(async (page) => {
  const first = await codeFlow(page, webApp, webRedirect);
  // The scenario itself: the session must be more than max_age=1 s old, so wait until 2 s
  // after its auth_time (the STS counts whole seconds).
  await untilEpoch(first.claims.auth_time + 2);
  const aged = await codeFlow(page, webApp, webRedirect, { extra: { max_age: '1' }, checks: { maxAge: 1 } });
  assert.deepEqual(aged.shown, ['login']);
  assert.ok(aged.claims.auth_time > first.claims.auth_time, `${aged.claims.auth_time} > ${first.claims.auth_time}`);

  // Control: without prompt=login the fresh session gives a code at once.
  const quiet = await codeFlow(page, webApp, webRedirect, { user: null });
  assert.deepEqual(quiet.shown, []);
  assert.equal(quiet.claims.auth_time, aged.claims.auth_time);

  const asked = Math.floor(Date.now() / 1000);
  const again = await codeFlow(page, webApp, webRedirect, { extra: { prompt: 'login' } });
  assert.deepEqual(again.shown, ['login']);
  assert.ok(again.claims.auth_time >= asked, 'auth_time is of the new sign-in');
  assert.ok(again.claims.auth_time >= aged.claims.auth_time);
  assert.notEqual(again.claims.sid, aged.claims.sid, 'a new sign-in starts a new session');
}));

test('11 unknown parameters, login_hint, ui_locales, acr_values and scope order still work', { skip: noBrowser }, () => withPage(async (page) => {
  const request = await authorizationRequest(webApp, webRedirect, {
    scope: 'email profile openid',
    login_hint: 'alice',
    ui_locales: 'de-CH fr en',
    acr_values: 'urn:example:loa:1',
    claims_locales: 'de',
    display: 'page',
    x_tracking: 'abc',
    foo: 'bar',
  });
  await page.goto(request.url.href);
  assert.equal(new URL(page.url()).pathname, '/login');
  assert.equal(await page.getByLabel('Username').inputValue(), 'alice', 'login_hint prefills the username');
  const caught = captureRedirect(page, webRedirect);
  await page.getByLabel('Password').fill(alice.password);
  await page.getByRole('button', { name: 'Sign in' }).click().catch(() => {});
  const callback = await caught;
  const tokens = await redeem(request, callback);
  const claims = tokens.claims();
  assert.equal(claims.sub, aliceSub);
  assert.equal(claims.email, 'alice@example.com');
  assert.equal(claims.name, 'Alice Example');
  assert.deepEqual(new Set(tokens.scope.split(' ')), new Set(['openid', 'profile', 'email']));
}));

test('12 an authorization request sent by POST works', async () => {
  const { verifier, challenge } = await pkce();
  const started = await rawAuthorize(
    { client_id: webApp, response_type: 'code', redirect_uri: webRedirect, scope: 'openid email', state: 's12', nonce: 'n12', code_challenge: challenge, code_challenge_method: 'S256', unknown: 'x' },
    { method: 'POST' },
  );
  assert.equal(started.status, 303);
  assert.match(started.headers.get('location'), /^\/login\?interaction=/);
  const { response, cookie } = await rawLogin(started);
  assert.ok(cookie);
  assert.equal(response.status, 303);
  const callback = new URL(response.headers.get('location'));
  assert.equal(`${callback.origin}${callback.pathname}`, webRedirect);
  assert.equal(callback.searchParams.get('state'), 's12');
  assert.equal(callback.searchParams.get('iss'), sts.issuer);
  const { status, body } = await rawToken(webApp, { grant_type: 'authorization_code', code: callback.searchParams.get('code'), redirect_uri: webRedirect, code_verifier: verifier });
  assert.equal(status, 200, JSON.stringify(body));
  const claims = jose.decodeJwt(body.id_token);
  assert.equal(claims.nonce, 'n12');
  assert.equal(claims.email, 'alice@example.com');

  // With the session, a POSTed request gets a code at once.
  const again = await rawAuthorize(
    { client_id: webApp, response_type: 'code', redirect_uri: webRedirect, scope: 'openid', code_challenge: challenge, code_challenge_method: 'S256' },
    { method: 'POST', cookie },
  );
  assert.ok(new URL(again.headers.get('location')).searchParams.get('code'));
});

// ---- Token endpoint ----

test('13 client_secret_basic and client_secret_post: no-store Bearer tokens, an ID token that passes every check', { skip: noBrowser }, () => withPage(async (page) => {
  for (const [id, redirectUri] of [[webApp, webRedirect], [postApp, postRedirect]]) {
    const before = tokenResponses.length;
    const { request, tokens, claims } = await codeFlow(page, id, redirectUri);
    const [response] = tokenResponses.slice(before);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    assert.equal(tokens.token_type.toLowerCase(), 'bearer');
    assert.ok(tokens.expires_in > 0);

    const now = Math.floor(Date.now() / 1000);
    const { payload, protectedHeader } = await jose.jwtVerify(tokens.id_token, jwks, {
      issuer: sts.issuer,
      audience: id,
      algorithms: ['RS256'],
      requiredClaims: ['sub', 'exp', 'iat', 'auth_time', 'nonce', 'at_hash', 'sid'],
    });
    assert.ok(protectedHeader.kid, 'kid in the header');
    assert.equal(payload.sub, aliceSub);
    assert.equal(payload.nonce, request.nonce);
    assert.equal(payload.at_hash, atHash(tokens.access_token));
    assert.ok(Math.abs(payload.iat - now) <= 5, 'iat is now');
    assert.ok(payload.exp > payload.iat);
    assert.ok(payload.auth_time <= payload.iat);
    if (Array.isArray(payload.aud) && payload.aud.length > 1) assert.equal(payload.azp, id);
    assert.deepEqual(claims, payload);
    assert.equal(payload.email, 'alice@example.com');
    assert.equal(payload.email_verified, true);
    assert.equal(payload.preferred_username, 'alice');
  }
}));

test('16 a code used twice is invalid_grant, and the tokens of its first use stop working', { skip: noBrowser }, () => withPage(async (page) => {
  const { request, code } = await codeOnly(page, webApp, webRedirect, { scope: 'openid profile offline_access' });
  const exchange = { grant_type: 'authorization_code', code, redirect_uri: webRedirect, code_verifier: request.verifier };
  const first = await rawToken(webApp, exchange);
  assert.equal(first.status, 200, JSON.stringify(first.body));
  const { access_token: accessToken, refresh_token: refreshToken } = first.body;
  assert.ok(refreshToken, 'offline_access gives a refresh token');
  assert.equal((await introspect(accessToken)).active, true);
  assert.equal((await userinfo(accessToken)).status, 200);

  const second = await rawToken(webApp, exchange);
  assert.equal(second.status, 400);
  assert.equal(second.body.error, 'invalid_grant');

  assert.deepEqual(await introspect(accessToken), { active: false });
  assert.equal((await userinfo(accessToken)).status, 401);
  const refresh = await rawToken(webApp, { grant_type: 'refresh_token', refresh_token: refreshToken });
  assert.equal(refresh.status, 400);
  assert.equal(refresh.body.error, 'invalid_grant');
}));

test('17 wrong or missing code_verifier, another client\'s code, mismatched redirect_uri, expired code: invalid_grant', { skip: noBrowser }, () => withPage(async (page) => {
  const o4Redeem = async (id, { request, callback }, { verifier = request.verifier, redirectUri = request.redirectUri } = {}) => {
    const params = oauth.validateAuthResponse(as, { client_id: request.id }, callback, request.state);
    const response = await oauth.authorizationCodeGrantRequest(as, { client_id: id }, o4Auth(id), params, redirectUri, verifier, allowHttp);
    return oauth.processAuthorizationCodeResponse(as, { client_id: id }, response, { expectedNonce: request.nonce, requireIdToken: true });
  };

  // short-app's codes live 3 s: one redeemed at once works; one taken now is redeemed last,
  // after the other cases, once its lifetime has surely run out.
  const fresh = await codeOnly(page, shortApp, shortRedirect, { scope: 'openid' });
  assert.ok((await o4Redeem(shortApp, fresh)).access_token);
  const stale = await codeOnly(page, shortApp, shortRedirect, { scope: 'openid' });
  const staleBy = Math.floor(Date.now() / 1000); // the STS issued it at this second or before

  const wrongVerifier = await codeOnly(page, webApp, webRedirect);
  assert.equal(await errorOf(o4Redeem(webApp, wrongVerifier, { verifier: oauth.generateRandomCodeVerifier() })), 'invalid_grant', 'wrong verifier');

  const noVerifier = await codeOnly(page, webApp, webRedirect);
  const missing = await rawToken(webApp, { grant_type: 'authorization_code', code: noVerifier.code, redirect_uri: webRedirect });
  assert.equal(missing.status, 400);
  assert.equal(missing.body.error, 'invalid_grant', 'missing verifier');

  const stolen = await codeOnly(page, webApp, webRedirect);
  assert.equal(await errorOf(o4Redeem(postApp, stolen)), 'invalid_grant', 'another client\'s code');
  const stolenByPublic = await codeOnly(page, webApp, webRedirect);
  const publicTry = await rawToken(cli, { grant_type: 'authorization_code', code: stolenByPublic.code, redirect_uri: webRedirect, code_verifier: stolenByPublic.request.verifier });
  assert.equal(publicTry.body.error, 'invalid_grant', 'a public client with another client\'s code');

  const otherRedirect = await codeOnly(page, webApp, webRedirect);
  assert.equal(await errorOf(o4Redeem(webApp, otherRedirect, { redirectUri: 'http://127.0.0.1:3000/callback' })), 'invalid_grant', 'another registered redirect_uri');

  // Control: the same construction with everything right succeeds.
  const good = await codeOnly(page, webApp, webRedirect);
  assert.equal((await o4Redeem(webApp, good)).token_type.toLowerCase(), 'bearer');

  await untilEpoch(staleBy + 3); // the scenario: the code's 3 s lifetime runs out (if it has not yet)
  assert.equal(await errorOf(o4Redeem(shortApp, stale)), 'invalid_grant', 'expired code');
}));

// ---- Refresh ----

test('20 offline_access gives a refresh token; refreshing keeps iss, sub, aud and auth_time', { skip: noBrowser }, () => withPage(async (page) => {
  const scope = 'openid profile offline_access';
  // web-app is not trusted: offline_access asks for consent. Deny first, then allow.
  const denied = await authorizationRequest(webApp, webRedirect, { scope, prompt: 'consent' });
  const refusal = await authorizeInBrowser(page, denied.url, webRedirect, { user: alice, consent: 'Deny' });
  assert.deepEqual(refusal.shown, ['login', 'consent']);
  assert.equal(refusal.callback.searchParams.get('state'), denied.state);
  assert.equal(refusal.callback.searchParams.get('code'), null);
  assert.equal(await errorOf(redeem(denied, refusal.callback)), 'access_denied');

  const allowed = await codeFlow(page, webApp, webRedirect, { extra: { scope, prompt: 'consent' } });
  assert.deepEqual(allowed.shown, ['consent']);
  assert.ok(allowed.tokens.refresh_token);
  // Consent is remembered: no page the next time.
  const remembered = await codeFlow(page, webApp, webRedirect, { extra: { scope } });
  assert.deepEqual(remembered.shown, []);

  const { config, tokens, claims } = allowed;
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.ok(refreshed.access_token);
  assert.notEqual(refreshed.access_token, tokens.access_token);
  assert.ok(refreshed.refresh_token, 'rotation gives a new refresh token');
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
  const renewed = refreshed.claims();
  assert.ok(renewed, 'a new ID token');
  for (const claim of ['iss', 'sub', 'aud', 'auth_time']) assert.deepEqual(renewed[claim], claims[claim], claim);
  assert.ok(renewed.iat >= claims.iat);
  await jose.jwtVerify(refreshed.id_token, jwks, { issuer: sts.issuer, audience: webApp });
  // The rotated token goes on working.
  const again = await client.refreshTokenGrant(config, refreshed.refresh_token);
  assert.equal(again.claims().sub, aliceSub);
}));

test('21 another client\'s refresh token is invalid_grant', { skip: noBrowser }, () => withPage(async (page) => {
  const { tokens } = await codeFlow(page, postApp, postRedirect, { extra: { scope: 'openid offline_access' } });
  // Control: it refreshes for its own client.
  const own = await rawToken(postApp, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
  assert.equal(own.status, 200, JSON.stringify(own.body));
  for (const id of [webApp, cli]) {
    const other = await rawToken(id, { grant_type: 'refresh_token', refresh_token: own.body.refresh_token });
    assert.equal(other.status, 400, id);
    assert.equal(other.body.error, 'invalid_grant', id);
  }
}));

test('22 replaying a rotated refresh token is invalid_grant and revokes the whole family', { skip: noBrowser }, () => withPage(async (page) => {
  const { tokens } = await codeFlow(page, postApp, postRedirect, { extra: { scope: 'openid offline_access' } });
  const c = { client_id: postApp };
  const refresh = async (token) => oauth.processRefreshTokenResponse(as, c, await oauth.refreshTokenGrantRequest(as, c, o4Auth(postApp), token, allowHttp));
  const rotated = await refresh(tokens.refresh_token);
  assert.ok(rotated.refresh_token);
  assert.notEqual(rotated.refresh_token, tokens.refresh_token);
  assert.equal(await errorOf(refresh(tokens.refresh_token)), 'invalid_grant', 'replay');
  assert.equal(await errorOf(refresh(rotated.refresh_token)), 'invalid_grant', 'the newest token of the family');
}));

// ---- UserInfo ----

test('23 userinfo by GET: sub equals the ID token\'s, claims by scope', { skip: noBrowser }, () => withPage(async (page) => {
  const full = await codeFlow(page, postApp, postRedirect, { extra: { scope: 'openid profile email groups' } });
  assert.deepEqual(full.claims.groups, ['developers']);
  const info = await client.fetchUserInfo(full.config, full.tokens.access_token, full.claims.sub);
  assert.deepEqual(info, {
    sub: aliceSub,
    name: 'Alice Example',
    preferred_username: 'alice',
    email: 'alice@example.com',
    email_verified: true,
    groups: ['developers'],
  });

  const email = await codeFlow(page, webApp, webRedirect, { extra: { scope: 'openid email' } });
  assert.deepEqual(await client.fetchUserInfo(email.config, email.tokens.access_token, aliceSub), { sub: aliceSub, email: 'alice@example.com', email_verified: true });
  const bare = await codeFlow(page, webApp, webRedirect, { extra: { scope: 'openid' } });
  assert.deepEqual(await client.fetchUserInfo(bare.config, bare.tokens.access_token, aliceSub), { sub: aliceSub });

  // web-app may not ask for groups at all.
  const groups = await authorizationRequest(webApp, webRedirect, { scope: 'openid groups' });
  const { callback } = await authorizeInBrowser(page, groups.url, webRedirect);
  assert.equal(callback.searchParams.get('error'), 'invalid_scope');
}));

test('24 userinfo by POST with the Bearer header', { skip: noBrowser }, () => withPage(async (page) => {
  const { tokens } = await codeFlow(page, webApp, webRedirect);
  const response = await userinfo(tokens.access_token, 'POST');
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type'), /^application\/json/);
  const body = await response.json();
  assert.deepEqual(body, await (await userinfo(tokens.access_token)).json());
  assert.equal(body.sub, aliceSub);
  assert.equal(body.email, 'alice@example.com');
}));

test('25 userinfo with a missing, garbage, expired, revoked or machine token: 401 Bearer invalid_token', { skip: noBrowser }, () => withPage(async (page) => {
  const invalidToken = /^Bearer error="invalid_token"/;
  // short-app's access tokens live 2 s: valid at once, refused after their exp, which is
  // checked last, after the other cases.
  const short = await codeFlow(page, shortApp, shortRedirect, { extra: { scope: 'openid' } });
  assert.equal((await userinfo(short.tokens.access_token)).status, 200);
  const { exp } = jose.decodeJwt(short.tokens.access_token);

  const missing = await userinfo(undefined);
  assert.equal(missing.status, 401);
  // RFC 6750 §3.1: a request without credentials gets the challenge but no error code.
  assert.match(missing.headers.get('www-authenticate'), /^Bearer/);

  const garbage = await userinfo('not-a-token');
  assert.equal(garbage.status, 401);
  assert.match(garbage.headers.get('www-authenticate'), invalidToken);

  const { tokens } = await codeFlow(page, webApp, webRedirect, { user: null });
  assert.equal((await userinfo(tokens.access_token)).status, 200);
  const revoked = await fetch(as.revocation_endpoint, {
    method: 'POST',
    headers: { ...formType, authorization: basic(webApp) },
    body: new URLSearchParams({ token: tokens.access_token }),
  });
  assert.equal(revoked.status, 200);
  const afterRevoke = await userinfo(tokens.access_token);
  assert.equal(afterRevoke.status, 401);
  assert.match(afterRevoke.headers.get('www-authenticate'), invalidToken);

  const worker = 'default.orders-worker';
  const machine = await fetch(as.token_endpoint, {
    method: 'POST',
    headers: formType,
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: worker, client_secret: secretOf(worker) }),
  });
  assert.equal(machine.status, 200);
  const machineResponse = await userinfo((await machine.json()).access_token);
  assert.equal(machineResponse.status, 401);
  assert.match(machineResponse.headers.get('www-authenticate'), invalidToken);

  await untilEpoch(exp); // the scenario: the token's lifetime runs out (if it has not yet)
  const expired = await userinfo(short.tokens.access_token);
  assert.equal(expired.status, 401);
  assert.match(expired.headers.get('www-authenticate'), invalidToken);
}));
