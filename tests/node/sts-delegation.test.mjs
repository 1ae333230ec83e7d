// Delegation by token exchange (RFC 8693, docs/delegation.md), driven by oauth4webapi's generic
// grant request against the standalone STS on examples/ with examples/delegation/: alice signs
// in to the shop in Chromium; orders-api exchanges her token for a payments token, payments-api
// one hop further for a ledger token. Every refusal the owners' rules imply, each with its
// RFC 8693 §2.2.2 error, and revocation following the chain at introspection.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as oauth from 'oauth4webapi';
import * as client from 'openid-client';
import * as jose from 'jose';
import { startSts } from './sts.mjs';
import { authorizeInBrowser, browserMissing, inNewContext, launchBrowser } from './browser.mjs';

const examples = join(import.meta.dirname, '..', '..', 'examples', 'delegation');
const delegationFiles = Object.fromEntries(
  readdirSync(examples).map((name) => [`delegation-${name}`, readFileSync(join(examples, name), 'utf8')]),
);

// Three more shops: one whose people's tokens live two seconds, one with refresh tokens (a
// family to revoke), one with reference access tokens. All trusted, so no consent page.
const extraClients = `
apiVersion: signet.dev/v1alpha1
kind: OidcClient
metadata:
  name: short-shop
spec:
  grantTypes: [authorization_code]
  redirectUris: [https://shop.example.com/callback]
  allowedScopes: [openid, orders.place, payments.charge]
  trusted: true
  lifetimes: {accessToken: 2s}
---
apiVersion: signet.dev/v1alpha1
kind: OidcClient
metadata:
  name: family-shop
spec:
  grantTypes: [authorization_code, refresh_token]
  redirectUris: [https://shop.example.com/callback]
  allowedScopes: [openid, offline_access, orders.place, payments.charge, ledger.write]
  trusted: true
---
apiVersion: signet.dev/v1alpha1
kind: OidcClient
metadata:
  name: ref-shop
spec:
  grantTypes: [authorization_code]
  redirectUris: [https://shop.example.com/callback]
  allowedScopes: [openid, orders.place, payments.charge]
  accessTokenFormat: reference
  trusted: true
`;

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token';
const REFRESH_TOKEN = 'urn:ietf:params:oauth:token-type:refresh_token';
const JWT = 'urn:ietf:params:oauth:token-type:jwt';
const PAYMENTS = 'https://payments.example.com';
const LEDGER = 'https://ledger.example.com';
const callback = 'https://shop.example.com/callback';
const alice = { username: 'alice', password: 'correct horse battery staple' };
const ordersApi = 'default.orders-api';
const paymentsApi = 'default.payments-api';
const allowHttp = { [oauth.allowInsecureRequests]: true };
const noBrowser = browserMissing();

let sts;
let browser;
let as;
let jwks;

before(async () => {
  process.env.SIGNET_METRICS_ADDR ??= '127.0.0.1:0';
  sts = await startSts({ ...delegationFiles, 'delegation-test-clients.yaml': extraClients });
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

/** Alice signs in to `shop` in Chromium (openid-client builds and redeems the request). */
async function signIn(shop, scope) {
  const auth = client.ClientSecretBasic(secretOf(shop));
  const config = await client.discovery(new URL(sts.issuer), shop, undefined, auth, { execute: [client.allowInsecureRequests] });
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: callback,
    scope,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
  });
  const consent = shop === 'default.shop' ? 'Allow' : undefined;
  const { callback: back } = await inNewContext(browser, (page) => authorizeInBrowser(page, url, callback, { user: alice, consent }));
  return client.authorizationCodeGrant(config, back, { pkceCodeVerifier: verifier, expectedState: state });
}

/** A token exchange by `id` (client_secret_post) with oauth4webapi's generic token endpoint request. */
function exchangeRequest(id, parameters) {
  return oauth.genericTokenEndpointRequest(as, { client_id: id }, oauth.ClientSecretPost(secretOf(id)), TOKEN_EXCHANGE, new URLSearchParams(parameters), allowHttp);
}

/** A successful exchange, processed by oauth4webapi. */
async function exchange(id, parameters) {
  return oauth.processGenericTokenEndpointResponse(as, { client_id: id }, await exchangeRequest(id, parameters));
}

/** The error of a refused exchange (HTTP 400 with an RFC 6749 §5.2 body). */
async function refusal(id, parameters) {
  const response = await exchangeRequest(id, parameters);
  const body = await response.json();
  assert.equal(response.status, body.error === 'invalid_client' ? 401 : 400, JSON.stringify(body));
  return body.error;
}

/** Introspection by `id`, which authenticates with client_secret_post. */
async function introspect(id, token) {
  const response = await oauth.introspectionRequest(as, { client_id: id }, oauth.ClientSecretPost(secretOf(id)), token, allowHttp);
  return oauth.processIntrospectionResponse(as, { client_id: id }, response);
}

const subject = (token, type = ACCESS_TOKEN) => ({ subject_token: token, subject_token_type: type });

test('discovery lists token exchange', () => {
  assert.ok(as.grant_types_supported.includes(TOKEN_EXCHANGE));
});

test('orders-api acts for alice towards payments, and payments-api one hop further', { skip: noBrowser }, async () => {
  const person = await signIn('default.shop', 'openid email orders.place payments.charge ledger.write');
  const personClaims = person.claims();

  const payments = await exchange(ordersApi, { ...subject(person.access_token), audience: PAYMENTS, scope: 'payments.charge ledger.write' });
  assert.equal(payments.issued_token_type, ACCESS_TOKEN);
  assert.equal(payments.token_type, 'bearer');
  assert.equal(payments.scope, 'payments.charge ledger.write');
  const { payload: p } = await jose.jwtVerify(payments.access_token, jwks, { issuer: sts.issuer, audience: PAYMENTS, typ: 'at+jwt' });
  assert.equal(p.sub, personClaims.sub);
  assert.equal(p.aud, PAYMENTS, 'addressed to the target only');
  assert.equal(p.client_id, ordersApi);
  assert.deepEqual(p.act, { sub: ordersApi });
  assert.equal(p.email, 'alice@example.com', "the target's userClaims");
  const { payload: original } = await jose.jwtVerify(person.access_token, jwks, { issuer: sts.issuer });
  assert.ok(p.exp <= original.exp, 'no longer than the subject token');
  assert.ok(original.scope.split(' ').length > p.scope.split(' ').length, 'narrower');

  const ledger = await exchange(paymentsApi, { ...subject(payments.access_token), resource: LEDGER });
  const { payload: l } = await jose.jwtVerify(ledger.access_token, jwks, { issuer: sts.issuer, audience: LEDGER });
  assert.equal(l.sub, personClaims.sub);
  assert.equal(l.scope, 'ledger.write');
  assert.deepEqual(l.act, { sub: paymentsApi, act: { sub: ordersApi } }, 'the chain nests, the current actor outermost');
});

test('each refusal carries its RFC 8693 error', { skip: noBrowser }, async () => {
  const full = await signIn('default.shop', 'openid email orders.place payments.charge');
  const ordersOnly = await signIn('default.shop', 'openid orders.place');

  // Not addressed to the exchanging client: payments-api is no resource server of the orders API.
  assert.equal(await refusal(paymentsApi, { ...subject(ordersOnly.access_token), audience: LEDGER }), 'invalid_request');
  // The ledger's owner allows payments-api only.
  assert.equal(await refusal(ordersApi, { ...subject(full.access_token), audience: LEDGER }), 'invalid_target');
  assert.equal(await refusal(ordersApi, { ...subject(full.access_token), audience: 'https://nowhere.example.com' }), 'invalid_target');
  // Widening: a scope alice never granted, or one of another API that was not granted either.
  assert.equal(await refusal(ordersApi, { ...subject(ordersOnly.access_token), audience: PAYMENTS, scope: 'payments.charge' }), 'invalid_scope');
  assert.equal(await refusal(ordersApi, { ...subject(full.access_token), audience: PAYMENTS, scope: 'payments.charge ledger.write' }), 'invalid_scope');
  // An ID token, by its type or disguised as an access token or a JWT.
  for (const type of [ID_TOKEN, ACCESS_TOKEN, JWT]) {
    assert.equal(await refusal(ordersApi, { ...subject(full.id_token, type), audience: PAYMENTS }), 'invalid_request', type);
  }
  // An untrusted issuer: a well-formed access token signed by someone else, with our issuer or its own.
  const { privateKey } = await jose.generateKeyPair('ES256');
  for (const iss of [sts.issuer, 'https://evil.example.com']) {
    const forged = await new jose.SignJWT({ sub: 'mallory', scope: 'orders.place payments.charge', client_id: 'default.shop', jti: 'x' })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'evil' })
      .setIssuer(iss).setAudience('https://orders-api.example.com').setIssuedAt().setExpirationTime('5m')
      .sign(privateKey);
    for (const type of [ACCESS_TOKEN, JWT]) {
      assert.equal(await refusal(ordersApi, { ...subject(forged, type), audience: PAYMENTS }), 'invalid_request', `${iss} ${type}`);
    }
  }
  // A client without the grant.
  const webApp = 'default.web-app';
  const response = await oauth.genericTokenEndpointRequest(as, { client_id: webApp }, oauth.ClientSecretBasic(secretOf(webApp)), TOKEN_EXCHANGE, new URLSearchParams({ ...subject(full.access_token), audience: PAYMENTS }), allowHttp);
  assert.equal((await response.json()).error, 'unauthorized_client');
  // An actor token is not taken: the authenticated client is the actor.
  assert.equal(await refusal(ordersApi, { ...subject(full.access_token), audience: PAYMENTS, actor_token: full.access_token, actor_token_type: ACCESS_TOKEN }), 'invalid_request');
  // The same request without the faults succeeds, so each refusal above is the rule's.
  assert.equal((await exchange(ordersApi, { ...subject(full.access_token), audience: PAYMENTS })).scope, 'payments.charge');
});

test('an expired subject token is refused', { skip: noBrowser }, async () => {
  const person = await signIn('default.short-shop', 'openid orders.place payments.charge');
  const { exp } = jose.decodeJwt(person.access_token);
  // Wait for the condition (the token's expiry has passed), not for a fixed time.
  while (Date.now() / 1000 < exp + 1) await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(await refusal(ordersApi, { ...subject(person.access_token), audience: PAYMENTS }), 'invalid_request');
});

test('introspection shows who acts, and ending the original family ends every exchanged token', { skip: noBrowser }, async () => {
  const person = await signIn('default.family-shop', 'openid offline_access orders.place payments.charge ledger.write');
  assert.ok(person.refresh_token);
  // A refresh token is no subject token, whatever type it is sent as.
  for (const type of [REFRESH_TOKEN, ACCESS_TOKEN]) {
    assert.equal(await refusal(ordersApi, { ...subject(person.refresh_token, type), audience: PAYMENTS }), 'invalid_request', type);
  }
  const payments = await exchange(ordersApi, { ...subject(person.access_token), audience: PAYMENTS, scope: 'payments.charge ledger.write' });
  const ledger = await exchange(paymentsApi, { ...subject(payments.access_token), audience: LEDGER });

  const seen = await introspect(paymentsApi, payments.access_token);
  assert.equal(seen.active, true);
  assert.deepEqual(seen.act, { sub: ordersApi });
  assert.equal(seen.client_id, ordersApi);
  const seenLedger = await introspect(paymentsApi, ledger.access_token);
  assert.deepEqual(seenLedger.act, { sub: paymentsApi, act: { sub: ordersApi } });

  // The shop revokes alice's refresh token: the family ends, and with it what was derived from it.
  const shop = 'default.family-shop';
  const revoked = await oauth.revocationRequest(as, { client_id: shop }, oauth.ClientSecretBasic(secretOf(shop)), person.refresh_token, allowHttp);
  await oauth.processRevocationResponse(revoked);
  assert.equal((await introspect(paymentsApi, payments.access_token)).active, false);
  assert.equal((await introspect(paymentsApi, ledger.access_token)).active, false, 'two hops away too');
  assert.equal(await refusal(ordersApi, { ...subject(person.access_token), audience: PAYMENTS }), 'invalid_request');
});

test('a reference token is a subject too, and revoking it ends what was exchanged from it', { skip: noBrowser }, async () => {
  const person = await signIn('default.ref-shop', 'openid orders.place payments.charge');
  assert.equal(person.access_token.split('.').length, 1, 'an opaque reference token');
  const payments = await exchange(ordersApi, { ...subject(person.access_token), audience: PAYMENTS });
  assert.equal((await introspect(paymentsApi, payments.access_token)).active, true);
  const shop = 'default.ref-shop';
  const revoked = await oauth.revocationRequest(as, { client_id: shop }, oauth.ClientSecretBasic(secretOf(shop)), person.access_token, allowHttp);
  await oauth.processRevocationResponse(revoked);
  assert.equal((await introspect(paymentsApi, payments.access_token)).active, false);
});
