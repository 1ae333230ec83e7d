// Acceptance items 26 and 34 (acceptance.md): a browser app written with oidc-client-ts, served
// from http://127.0.0.1:5173 (the examples' default.spa), signs in with code + PKCE, calls
// userinfo, renews with its refresh token and signs out, in headless Chromium; its calls to the
// STS are cross-origin, so they work only with the CORS grants of its registered origin. The
// same page served from http://127.0.0.1:5174, an origin no client lists, gets no grant.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as jose from 'jose';
import { startSts } from './sts.mjs';
import { browserMissing, inNewContext, launchBrowser, signIn } from './browser.mjs';
import { serveSpa } from './spa/server.mjs';

const alice = { username: 'alice', password: 'correct horse battery staple' };
const aliceSub = '6f1c2a4e-alice';
const spaClient = 'default.spa';
const noBrowser = browserMissing();

let sts;
let metadata;
let endpoints; // the five CORS endpoints by name
let spa; // http://127.0.0.1:5173, the origin default.spa registers
let stranger; // http://127.0.0.1:5174, the same page where no client lists the origin
let browser;

before(async () => {
  process.env.SIGNET_METRICS_ADDR ??= '127.0.0.1:0';
  sts = await startSts();
  metadata = await (await fetch(`${sts.issuer}/.well-known/openid-configuration`)).json();
  endpoints = {
    discovery: `${sts.issuer}/.well-known/openid-configuration`,
    jwks: metadata.jwks_uri,
    token: metadata.token_endpoint,
    userinfo: metadata.userinfo_endpoint,
    revocation: metadata.revocation_endpoint,
  };
  const config = { authority: sts.issuer, endpoints };
  spa = await serveSpa(5173, config);
  stranger = await serveSpa(5174, config);
  if (!noBrowser) browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await spa?.stop();
  await stranger?.stop();
  await sts?.stop();
});

/** A page in a browser context of its own (its own cookie jar), closed afterwards. */
const withPage = (fn) => inNewContext(browser, fn);

/** Waits until the app's step is `step`, or fails with the step it reached (an error, say). */
async function reached(page, step) {
  await page.waitForFunction((s) => window.spa?.step === s || window.spa?.step.startsWith('error'), step);
  const state = await page.evaluate(() => window.spa);
  assert.equal(state.step, step);
  assert.deepEqual(state.violations, [], 'no Content-Security-Policy violation in the app');
  return state;
}

/**
 * The page's requests to the STS that carried an Origin (cross-origin fetches), with the
 * response's status and headers; `responses()` resolves once all have been read.
 */
function corsLog(page) {
  const pending = [];
  page.on('response', (r) => {
    if (!r.url().startsWith(sts.issuer)) return;
    pending.push(r.request().allHeaders().then(({ origin }) => ({ url: r.url(), origin, method: r.request().method(), status: r.status(), headers: r.headers() })));
  });
  return { responses: async () => (await Promise.all(pending)).filter((r) => r.origin) };
}

test('acceptance 26: the registered SPA origin gets CORS grants from discovery, JWKS, token, userinfo and revocation; another origin gets none', async (t) => {
  await t.test('preflights (raw HTTP)', async () => {
    const methods = { discovery: 'GET', jwks: 'GET', token: 'POST', userinfo: 'GET', revocation: 'POST' };
    for (const [name, url] of Object.entries(endpoints)) {
      const method = methods[name];
      const preflight = (origin) => fetch(url, {
        method: 'OPTIONS',
        headers: { Origin: origin, 'Access-Control-Request-Method': method, 'Access-Control-Request-Headers': 'authorization' },
      });
      const granted = await preflight('http://127.0.0.1:5173');
      assert.equal(granted.status, 204, name);
      assert.equal(granted.headers.get('access-control-allow-origin'), 'http://127.0.0.1:5173', name);
      assert.match(granted.headers.get('access-control-allow-methods') ?? '', new RegExp(method), name);
      assert.match(granted.headers.get('access-control-allow-headers') ?? '', /authorization/i, name);
      assert.equal(granted.headers.get('access-control-allow-credentials'), null, `${name}: no credentials cross-origin`);
      const refused = await preflight('http://127.0.0.1:5174');
      assert.equal(refused.status, 403, name);
      assert.equal(refused.headers.get('access-control-allow-origin'), null, name);
      assert.equal(refused.headers.get('access-control-allow-methods'), null, name);
    }
  });

  await t.test('fetch() from the registered origin in Chromium', { skip: noBrowser }, async () => {
    await withPage(async (page) => {
      const log = corsLog(page);
      await page.goto(`${spa.origin}/`);
      await reached(page, 'signed out');
      await page.getByRole('button', { name: 'Probe endpoints' }).click();
      const { probes } = await reached(page, 'probed');
      assert.equal(probes.results.length, 10);
      for (const probe of probes.results) {
        assert.equal(probe.outcome, 'response', `${probe.endpoint} ${probe.kind}: ${probe.message}`);
      }
      // Errors are readable too, so the app can tell what went wrong.
      const status = (endpoint, kind) => probes.results.find((p) => p.endpoint === endpoint && p.kind === kind).status;
      assert.equal(status('discovery', 'simple'), 200);
      assert.equal(status('jwks', 'simple'), 200);
      assert.equal(status('userinfo', 'preflighted'), 401);
      assert.equal(status('token', 'simple'), 400);
      const responses = await log.responses();
      // Chromium may answer a repeated GET from its cache, unseen here; each endpoint is seen.
      assert.deepEqual(new Set(responses.map((r) => r.url)), new Set(Object.values(endpoints)));
      for (const response of responses) {
        assert.equal(response.headers['access-control-allow-origin'], spa.origin, `${response.method} ${response.url}`);
        assert.match(response.headers.vary ?? '', /origin/i, `${response.method} ${response.url}`);
      }
    });
  });

  await t.test('fetch() from another origin in Chromium', { skip: noBrowser }, async () => {
    await withPage(async (page) => {
      const log = corsLog(page);
      await page.goto(`${stranger.origin}/`);
      await reached(page, 'signed out');
      await page.getByRole('button', { name: 'Probe endpoints' }).click();
      const { probes } = await reached(page, 'probed');
      assert.equal(probes.results.length, 10);
      for (const probe of probes.results) {
        assert.equal(probe.outcome, 'TypeError', `${probe.endpoint} ${probe.kind} answered ${probe.status}`);
      }
      // The STS is reachable from this page (CSP allows it): only the missing grant refuses.
      assert.equal(probes.control, 'opaque');
      for (const response of await log.responses()) {
        assert.equal(response.headers['access-control-allow-origin'], undefined, `${response.method} ${response.url}`);
      }
    });
  });
});

test('acceptance 34: an SPA using oidc-client-ts signs in with code + PKCE, calls userinfo, renews with a refresh token and signs out, in headless Chromium', { skip: noBrowser }, async () => {
  await withPage(async (page) => {
    const log = corsLog(page);
    const visited = []; // every navigation
    page.on('request', (r) => r.isNavigationRequest() && visited.push(r.url()));
    await page.goto(`${spa.origin}/`);
    await reached(page, 'signed out');

    // Sign in: the app sends the browser to the STS; a person signs in and allows the app.
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((url) => url.origin === sts.issuer && url.pathname === '/login');
    await signIn(page, alice);
    await page.waitForURL((url) => url.origin === sts.issuer && url.pathname === '/consent');
    await page.getByRole('button', { name: 'Allow' }).click();
    const signedIn = await reached(page, 'signed in');
    assert.equal(page.url(), `${spa.origin}/`);
    const authorization = new URL(visited.find((url) => url.startsWith(`${metadata.authorization_endpoint}?`)));
    assert.equal(authorization.searchParams.get('client_id'), spaClient);
    assert.equal(authorization.searchParams.get('response_type'), 'code');
    assert.equal(authorization.searchParams.get('code_challenge_method'), 'S256');
    assert.ok(authorization.searchParams.get('code_challenge'));
    const first = signedIn.user;
    assert.equal(first.profile.sub, aliceSub);
    assert.equal(first.profile.email, 'alice@example.com');
    assert.deepEqual(first.scope.split(' ').sort(), ['email', 'offline_access', 'openid', 'profile']);
    assert.ok(first.refresh_token, 'a refresh token for offline_access');
    // oidc-client-ts does not check the ID token's signature; jose does.
    const jwks = jose.createRemoteJWKSet(new URL(metadata.jwks_uri));
    const { payload } = await jose.jwtVerify(first.id_token, jwks, { issuer: sts.issuer, audience: spaClient });
    assert.equal(payload.sub, aliceSub);
    // The code was redeemed by the page, cross-origin.
    assert.ok((await log.responses()).some((r) => r.url === metadata.token_endpoint && r.method === 'POST' && r.status === 200 && r.headers['access-control-allow-origin'] === spa.origin));

    // Userinfo with the access token, cross-origin (the Authorization header means a preflight).
    await page.getByRole('button', { name: 'Call userinfo' }).click();
    const { userinfo } = await reached(page, 'userinfo');
    assert.equal(userinfo.status, 200);
    assert.equal(userinfo.body.sub, aliceSub);
    assert.equal(userinfo.body.email, 'alice@example.com');
    assert.equal(userinfo.body.name, 'Alice Example');

    // Renew: a refresh-token grant from the page; new tokens, the refresh token rotated.
    await page.getByRole('button', { name: 'Renew' }).click();
    const { renewed } = await reached(page, 'renewed');
    assert.equal(renewed.before.access_token, first.access_token);
    assert.notEqual(renewed.after.access_token, first.access_token, 'a new access token');
    assert.ok(renewed.after.refresh_token);
    assert.notEqual(renewed.after.refresh_token, first.refresh_token, 'the refresh token rotated');
    assert.equal(renewed.after.profile.sub, aliceSub);
    await page.getByRole('button', { name: 'Call userinfo' }).click();
    const again = await reached(page, 'userinfo');
    assert.equal(again.userinfo.status, 200, 'the renewed access token works');

    // Sign out: the app revokes its tokens (cross-origin) and sends the browser to end_session,
    // which sends it back to the post-logout URI.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL((url) => url.origin === spa.origin && url.searchParams.has('state'));
    const signedOut = await reached(page, 'signed out');
    assert.equal(signedOut.user, null);
    assert.deepEqual(signedOut.signedOut, { state: 'signed out by the app' }, 'the state came back and matched');
    assert.equal(page.url(), `${spa.origin}/`);
    assert.ok(visited.some((url) => url.startsWith(metadata.end_session_endpoint)), 'end_session was visited');
    // Revocation was called from the page, with the grant of its origin.
    assert.ok((await log.responses()).some((r) => r.url === metadata.revocation_endpoint && r.status === 200 && r.headers['access-control-allow-origin'] === spa.origin));
    // Revoked: the renewed refresh token no longer works (logout alone would not end it).
    const refresh = await fetch(metadata.token_endpoint, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: renewed.after.refresh_token, client_id: spaClient }),
    });
    assert.equal(refresh.status, 400);
    assert.equal((await refresh.json()).error, 'invalid_grant');
    // The session is over: signing in again asks for the password.
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((url) => url.origin === sts.issuer && url.pathname === '/login');
  });
});
