// Issue 9, federation: signing in to Signet through an upstream OpenID provider that Signet
// did not write (panva's oidc-provider, over HTTPS with a certificate the STS trusts through
// SSL_CERT_FILE), in headless Chromium. The relying party is openid-client; the claims checked
// are those of Signet's ID token, mapped from the upstream's. One STS for the file, with three
// upstream providers: two oidc-providers (one with the claims in its ID tokens, one with them at
// userinfo only) and one at a closed port. Each sign-in has its own browser context, so its
// own cookies at both ends. At the end, issue 16 item 2: the upstream's callback belongs to the
// browser that started the sign-in.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as client from 'openid-client';
import { startSts } from './sts.mjs';
import { startUpstream } from './upstream.mjs';
import { blockRequests, browserMissing, captureRedirect, inNewContext, launchBrowser } from './browser.mjs';

const examples = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples');
const upstreamSecret = 'upstream-client-secret-for-signet';
const fedApp = 'default.fed-app';
const fedRedirect = 'https://fed-app.example.com/callback';

// People at the upstream, by login name (their upstream sub).
const accounts = {
  bob: { email: 'bob@example.com', email_verified: true, name: 'Bob Upstream', groups: ['developers', 'oncall'] },
  carol: { email: 'carol@example.com', email_verified: true, name: 'Carol Upstream', groups: ['auditors'] },
  mallory: { email: 'mallory@elsewhere.example.org', email_verified: true, name: 'Mallory', groups: ['developers'] },
  // In an allowed domain, but the upstream does not vouch for the address.
  eve: { email: 'eve@example.com', email_verified: false, name: 'Eve', groups: ['developers'] },
  // An attacker with an account of her own, in an allowed domain.
  trudy: { email: 'trudy@example.com', email_verified: true, name: 'Trudy', groups: ['developers'] },
};

/** A port nothing listens on (bound, then released). */
function closedPort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Signet's manifests: the example TokenService with the upstream providers, and a client. */
function manifests(issuers) {
  const tokenService = readFileSync(join(examples, 'token-service.yaml'), 'utf8')
    .replace('identityProviders: [local-users]', 'identityProviders: [local-users, upstream, userinfo-sso, offline]')
    .replace(/^spec:\n/m, 'spec:\n  # The upstreams of this test listen on 127.0.0.1.\n  allowPrivateNetworkTargets: true\n');
  assert.match(tokenService, /identityProviders: \[local-users, upstream, userinfo-sso, offline\]/);
  const provider = (name, displayName, issuer) => `
apiVersion: signet.dev/v1alpha1
kind: IdentityProvider
metadata:
  name: ${name}
spec:
  type: oidc
  displayName: ${displayName}
  oidc:
    issuer: ${issuer}
    clientId: signet
    clientSecretRef:
      name: ${name}
      key: client-secret
    scopes: [openid, email, profile, groups]
    claimMappings:
      groups: groups
    allowedEmailDomains: [example.com]
---
apiVersion: v1
kind: Secret
metadata:
  name: ${name}
type: Opaque
stringData:
  client-secret: ${upstreamSecret}
`;
  const federation = `${provider('upstream', 'Upstream SSO', issuers.upstream)}---${provider('userinfo-sso', 'Userinfo SSO', issuers.userinfo)}---${provider('offline', 'Offline SSO', issuers.offline)}---
# Trusted (no consent page), may ask for groups.
apiVersion: signet.dev/v1alpha1
kind: OidcClient
metadata:
  name: fed-app
spec:
  type: confidential
  grantTypes: [authorization_code]
  redirectUris: [${fedRedirect}]
  allowedScopes: [openid, profile, email, groups]
  trusted: true
`;
  return { 'token-service.yaml': tokenService, 'federation.yaml': federation };
}

const noBrowser = browserMissing();
let upstream; // puts the scopes' claims in its ID tokens
let userinfoUpstream; // oidc-provider's defaults: the scopes' claims only at its userinfo
let sts;
let browser;
let config; // openid-client's configuration of fed-app

before(async () => {
  process.env.SIGNET_METRICS_ADDR ??= '127.0.0.1:0';
  upstream = await startUpstream(accounts);
  userinfoUpstream = await startUpstream(accounts);
  // rustls-native-certs reads the roots from SSL_CERT_FILE when it is set; the STS inherits
  // this environment. Both upstreams' certificates, in one file.
  const roots = join(mkdtempSync(join(tmpdir(), 'signet-roots-')), 'roots.pem');
  writeFileSync(roots, [upstream, userinfoUpstream].map((u) => readFileSync(u.certFile, 'utf8')).join(''));
  process.env.SSL_CERT_FILE = roots;
  sts = await startSts(manifests({ upstream: upstream.issuer, userinfo: userinfoUpstream.issuer, offline: `https://127.0.0.1:${await closedPort()}` }));
  const registration = { redirectUri: `${sts.issuer}/federate/callback`, clientSecret: upstreamSecret };
  // OIDC Core 5.4 lets a provider return the scopes' claims from userinfo only, when it issues
  // an access token, which is what oidc-provider does by default; this one puts them in the
  // ID token too, as many providers do.
  upstream.serve({ ...registration, providerOptions: { conformIdTokenClaims: false } });
  userinfoUpstream.serve(registration);
  config = await client.discovery(new URL(sts.issuer), fedApp, undefined, client.ClientSecretBasic(sts.credentials(fedApp).client_secret), {
    execute: [client.allowInsecureRequests],
  });
  if (!noBrowser) browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await sts?.stop();
  await upstream?.stop();
  await userinfoUpstream?.stop();
});

/** A fresh authorization request of fed-app (PKCE S256, state, nonce). */
async function authorizationRequest() {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: fedRedirect,
    scope: 'openid profile email groups',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  return { url, verifier, state, nonce };
}

/**
 * A page in a browser context of its own (its own cookies), closed afterwards. The upstream's
 * certificate is self-signed: Chromium is told to accept it (the STS trusts it by SSL_CERT_FILE).
 * The pages' Content-Security-Policy applies, as in any browser.
 */
const withPage = (fn) => inNewContext(browser, fn, { ignoreHTTPSErrors: true });

/**
 * Starts fed-app's sign-in, chooses `button` on Signet's login page, and at the upstream signs
 * in as `login` and consents, as a person would. Resolves with where the walk ended: the
 * callback URL at fed-app (a code), or the page Signet showed instead (its status, URL and
 * text). Every navigation is kept in `seen`, so a test can tell that no code was sent.
 */
async function signInUpstream(page, login, { button = 'Sign in with Upstream SSO', at = upstream } = {}) {
  const request = await authorizationRequest();
  const seen = [];
  let status; // of the last document the page loaded
  page.on('request', (r) => r.isNavigationRequest() && seen.push(r.url()));
  page.on('response', (r) => r.request().isNavigationRequest() && r.frame() === page.mainFrame() && (status = r.status()));
  let callback;
  captureRedirect(page, fedRedirect).then((url) => (callback = url), () => {});
  // Runs `action` and waits for the page it leads to (fed-app's is Chromium's error page).
  const settle = async (action) => {
    const loaded = page.waitForEvent('load');
    await action().catch((error) => {
      if (!/net::ERR_/.test(error.message)) throw error;
    });
    await loaded;
  };
  await settle(() => page.goto(String(request.url)));
  assert.equal(new URL(page.url()).pathname, '/login', `Signet's login page, not ${page.url()}`);
  await settle(() => page.getByRole('button', { name: button }).click());
  const shown = [];
  const upstreamLogin = page.locator('input[name="login"]');
  const upstreamConsent = page.getByRole('button', { name: 'Continue' });
  while (!callback) {
    const here = new URL(page.url());
    if (here.origin === at.issuer && !shown.includes('login') && (await upstreamLogin.count()) === 1) {
      shown.push('login');
      await upstreamLogin.fill(login);
      await page.locator('input[name="password"]').fill('any password will do');
      await settle(() => page.getByRole('button', { name: 'Sign-in' }).click());
    } else if (here.origin === at.issuer && !shown.includes('consent') && (await upstreamConsent.count()) === 1) {
      shown.push('consent');
      await settle(() => upstreamConsent.click());
    } else if (here.origin === sts.issuer && here.pathname.startsWith('/federate')) {
      return { ...request, status, url: page.url(), text: await page.locator('body').innerText(), seen, shown };
    } else {
      throw new Error(`unexpected page ${page.url()} (${status}) after ${JSON.stringify(shown)}: ${await page.locator('body').innerText()}`);
    }
  }
  return { ...request, callback, seen, shown };
}

/** Redeems the code with openid-client, checking state, nonce and Signet's ID token. */
async function redeem(flow) {
  assert.ok(flow.callback, `a code at fed-app, not a page: ${flow.status} ${flow.url} ${flow.text}`);
  const tokens = await client.authorizationCodeGrant(config, flow.callback, {
    pkceCodeVerifier: flow.verifier,
    expectedState: flow.state,
    expectedNonce: flow.nonce,
    idTokenExpected: true,
  });
  return { tokens, claims: tokens.claims() };
}

// Browsers apply form-action to the redirect that answers a form post, so the login page's
// Content-Security-Policy must name the upstreams its buttons lead to.
test('issue 9: the login page\'s upstream button reaches the upstream in a browser that enforces the page\'s CSP', {
  skip: noBrowser,
}, async () => {
  await withPage(async (page) => {
    const violations = [];
    page.on('console', (m) => /Content Security Policy/.test(m.text()) && violations.push(m.text()));
    const request = await authorizationRequest();
    await page.goto(String(request.url));
    assert.equal(new URL(page.url()).pathname, '/login');
    // Either the upstream's login page comes, or the browser reports the blocked form.
    const login = page.locator('input[name="login"]');
    const blocked = page.waitForEvent('console', (m) => /Content Security Policy/.test(m.text()));
    blocked.catch(() => {});
    await page.getByRole('button', { name: 'Sign in with Upstream SSO' }).click();
    await Promise.race([login.waitFor(), blocked]);
    assert.deepEqual(violations, []);
    assert.equal(new URL(page.url()).origin, upstream.issuer);
    assert.equal(await login.count(), 1);
  });
});

test('issue 9: sign-in through an upstream oidc-provider maps its claims into Signet\'s ID token, under a stable sub of Signet\'s', { skip: noBrowser }, async () => {
  const first = await withPage((page) => signInUpstream(page, 'bob'));
  assert.deepEqual(first.shown, ['login', 'consent'], 'the upstream\'s own login and consent pages');
  const { tokens, claims } = await redeem(first);
  assert.equal(claims.iss, sts.issuer);
  assert.equal(claims.aud, fedApp);
  assert.equal(claims.email, 'bob@example.com');
  assert.equal(claims.email_verified, true);
  assert.equal(claims.name, 'Bob Upstream');
  assert.deepEqual(claims.groups, ['developers', 'oncall']);
  // Signet's own subject, not the upstream's; the same at the next sign-in.
  assert.equal(typeof claims.sub, 'string');
  assert.notEqual(claims.sub, 'bob');
  assert.ok(!claims.sub.includes('bob'), `sub ${claims.sub} is derived, not the upstream's`);
  // Userinfo answers for the same person.
  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert.equal(info.email, 'bob@example.com');
  assert.deepEqual(info.groups, ['developers', 'oncall']);

  const again = await redeem(await withPage((page) => signInUpstream(page, 'bob')));
  assert.equal(again.claims.sub, claims.sub, 'the same upstream person gets the same sub');
  const other = await redeem(await withPage((page) => signInUpstream(page, 'carol')));
  assert.notEqual(other.claims.sub, claims.sub, 'another upstream person gets another sub');
  assert.deepEqual(other.claims.groups, ['auditors']);
  // Signet went to the upstream's token endpoint (code exchange), not only its pages.
  assert.ok(upstream.requests.includes('POST /token'), JSON.stringify(upstream.requests));
});

test('issue 9: an upstream person outside the allowed email domains, or with an unverified address, is refused with Signet\'s page and no code', { skip: noBrowser }, async () => {
  for (const login of ['mallory', 'eve']) {
    const flow = await withPage((page) => signInUpstream(page, login));
    assert.equal(flow.callback, undefined, `${login} got a code`);
    assert.equal(flow.status, 403, `${login}: ${flow.status} ${flow.text}`);
    assert.equal(new URL(flow.url).origin, sts.issuer);
    assert.match(flow.text, /You signed in with Upstream SSO, but accounts of your email domain may not sign in here/);
    assert.ok(!flow.seen.some((url) => url.startsWith(fedRedirect)), `${login}: nothing sent to fed-app`);
  }
});

test('issue 9: an upstream that is down gives Signet\'s error page, and no code', { skip: noBrowser }, async () => {
  const flow = await withPage((page) => signInUpstream(page, 'bob', { button: 'Sign in with Offline SSO' }));
  assert.equal(flow.callback, undefined);
  assert.equal(new URL(flow.url).origin, sts.issuer);
  assert.equal(flow.status, 502, `${flow.status} ${flow.text}`);
  assert.match(flow.text, /Signing in with Offline SSO did not work/);
  assert.ok(!flow.seen.some((url) => url.startsWith(fedRedirect)));
});

test('issue 9: an upstream that fails at the code exchange gives Signet\'s error page, and no code', { skip: noBrowser }, async () => {
  upstream.drop.add('/token');
  const before = upstream.requests.length;
  try {
    const flow = await withPage((page) => signInUpstream(page, 'bob'));
    assert.deepEqual(flow.shown, ['login', 'consent']);
    assert.equal(flow.callback, undefined);
    assert.equal(new URL(flow.url).origin, sts.issuer);
    assert.equal(flow.status, 502, `${flow.status} ${flow.text}`);
    assert.match(flow.text, /Signing in with Upstream SSO did not work/);
    assert.ok(upstream.requests.slice(before).includes('POST /token'), 'Signet tried the exchange');
  } finally {
    upstream.drop.delete('/token');
  }
});

test('issue 9: an upstream that returns the scopes\' claims from userinfo only (oidc-provider\'s default) signs in with the mapped claims, under a sub of its own', {
  skip: noBrowser,
}, async () => {
  const flow = await withPage((page) => signInUpstream(page, 'bob', { button: 'Sign in with Userinfo SSO', at: userinfoUpstream }));
  const { claims } = await redeem(flow);
  assert.equal(claims.email, 'bob@example.com');
  assert.equal(claims.email_verified, true);
  assert.equal(claims.name, 'Bob Upstream');
  assert.deepEqual(claims.groups, ['developers', 'oncall']);
  // The same upstream subject at another upstream issuer is another person.
  const viaUpstream = await redeem(await withPage((page) => signInUpstream(page, 'bob')));
  assert.notEqual(claims.sub, viaUpstream.claims.sub);
});

// RFC 9700 §4.7: the state of a sign-in at an upstream belongs to the browser that started
// it. An attacker who signs in upstream and hands the callback URL to a victim (a link, an
// image) must not sign the victim in to Signet as the attacker.
test('issue 16 item 2: an upstream callback opened in another browser gets a 403 page, no session and no code', { skip: noBrowser }, async () => {
  const callback = await withPage(async (page) => {
    const request = await authorizationRequest();
    // The attacker stops at Signet's callback: the browser never sends it, so the single-use
    // state is still there for the victim.
    await blockRequests(page, `${sts.issuer}/federate/callback?*`);
    const stopped = page.waitForRequest((r) => r.url().startsWith(`${sts.issuer}/federate/callback?`));
    await page.goto(String(request.url));
    assert.equal(new URL(page.url()).pathname, '/login', `Signet's login page, not ${page.url()}`);
    await page.getByRole('button', { name: 'Sign in with Upstream SSO' }).click();
    await page.locator('input[name="login"]').fill('trudy');
    await page.locator('input[name="password"]').fill('any password will do');
    await page.getByRole('button', { name: 'Sign-in' }).click();
    await page.getByRole('button', { name: 'Continue' }).click();
    const url = new URL((await stopped).url());
    assert.ok(url.searchParams.get('code') && url.searchParams.get('state'), `an upstream code and state in ${url}`);
    return url;
  });
  await withPage(async (page) => {
    const seen = [];
    page.on('request', (r) => r.isNavigationRequest() && seen.push(r.url()));
    const answered = page.waitForResponse((r) => r.url() === callback.href);
    // Before the fix the victim ends at fed-app, which does not resolve.
    await page.goto(callback.href).catch((error) => assert.match(error.message, /net::ERR_/));
    const response = await answered;
    assert.equal(response.status(), 403, `the victim's callback was answered ${response.status()} ${response.headers().location ?? ''}`);
    assert.match(await page.getByRole('alert').textContent(), /^This sign-in was started in another browser/);
    const sessions = (await page.context().cookies(sts.issuer)).filter((c) => /signet_session/.test(c.name));
    assert.deepEqual(sessions, [], 'no session at Signet');
    assert.ok(!seen.some((url) => url.startsWith(fedRedirect)), `nothing sent to fed-app: ${seen}`);
  });
});
