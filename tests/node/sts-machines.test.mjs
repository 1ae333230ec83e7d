// Acceptance items 1, 2, 13, 14, 18, 19, 31, 32 (acceptance.md) and revocation of JWT and
// reference access tokens, driven by oauth4webapi, openid-client and jose against the
// standalone STS on examples/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';
import * as client from 'openid-client';
import * as jose from 'jose';
import { startSts } from './sts.mjs';

const referenceClient = `
apiVersion: signet.dev/v1alpha1
kind: OidcClient
metadata:
  name: orders-reporter
spec:
  grantTypes: [client_credentials]
  allowedScopes: [orders.read]
  accessTokenFormat: reference
`;

const jwtClientManifest = (jwk) => `
apiVersion: signet.dev/v1alpha1
kind: OidcClient
metadata:
  name: orders-signer
spec:
  grantTypes: [client_credentials]
  allowedScopes: [orders.read]
  tokenEndpointAuthMethod: private_key_jwt
  jwks:
    keys:
    - ${JSON.stringify(jwk)}
`;

let sts;
let as;
let signerKey;
const signer = 'default.orders-signer';
const worker = 'default.orders-worker';
const reporter = 'default.orders-reporter';
const allowHttp = { [oauth.allowInsecureRequests]: true };

before(async () => {
  const { privateKey, publicKey } = await jose.generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'signer-1', alg: 'ES256', use: 'sig' };
  signerKey = { key: privateKey, kid: 'signer-1' };
  sts = await startSts({ 'reference-client.yaml': referenceClient, 'jwt-client.yaml': jwtClientManifest(jwk) });
  const issuer = new URL(sts.issuer);
  as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...allowHttp, algorithm: 'oidc' }));
});

after(async () => sts?.stop());

const secretOf = (id) => sts.credentials(id).client_secret;

async function clientCredentials(id, auth, parameters = {}) {
  const c = { client_id: id };
  return oauth.clientCredentialsGrantRequest(as, c, auth, new URLSearchParams(parameters), allowHttp);
}

// orders-worker is registered for client_secret_post, orders-reporter for client_secret_basic.
const authOf = (id) => (id === worker ? oauth.ClientSecretPost(secretOf(id)) : oauth.ClientSecretBasic(secretOf(id)));

async function tokenFor(id, parameters) {
  const response = await clientCredentials(id, authOf(id), parameters);
  return oauth.processClientCredentialsResponse(as, { client_id: id }, response);
}

async function introspect(token, id = worker) {
  const response = await oauth.introspectionRequest(as, { client_id: id }, authOf(id), token, allowHttp);
  assert.equal(response.status, 200);
  return response.json();
}

test('1 discovery: issuer byte-equal, every required field, S256 only, RFC 9207', async () => {
  assert.equal(as.issuer, sts.issuer);
  const config = await client.discovery(new URL(sts.issuer), worker, secretOf(worker), undefined, { execute: [client.allowInsecureRequests] });
  assert.equal(config.serverMetadata().issuer, sts.issuer);
  for (const field of [
    'authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri', 'end_session_endpoint',
    'revocation_endpoint', 'introspection_endpoint', 'device_authorization_endpoint',
    'response_types_supported', 'subject_types_supported', 'id_token_signing_alg_values_supported',
    'scopes_supported', 'grant_types_supported', 'code_challenge_methods_supported',
    'token_endpoint_auth_methods_supported', 'claims_supported',
  ]) {
    assert.ok(as[field], `discovery lacks ${field}`);
  }
  for (const endpoint of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'end_session_endpoint', 'device_authorization_endpoint']) {
    assert.ok(as[endpoint].startsWith(`${sts.issuer}/`), endpoint);
  }
  assert.ok(as.id_token_signing_alg_values_supported.includes('RS256'));
  assert.ok(as.scopes_supported.includes('openid'));
  assert.deepEqual(as.response_types_supported, ['code']);
  assert.deepEqual(as.code_challenge_methods_supported, ['S256']);
  assert.deepEqual([...as.grant_types_supported].sort(), [
    'authorization_code', 'client_credentials', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code',
    'urn:ietf:params:oauth:grant-type:token-exchange',
  ]);
  assert.equal(as.authorization_response_iss_parameter_supported, true);
  assert.equal(as.backchannel_logout_supported, true);
});

test('2 JWKS: public parts only, unique kid, use and alg set, Cache-Control max-age', async () => {
  const response = await fetch(as.jwks_uri);
  assert.match(response.headers.get('cache-control'), /max-age=600/);
  const { keys } = await response.json();
  assert.equal(keys.length, 2);
  assert.equal(new Set(keys.map((k) => k.kid)).size, keys.length);
  for (const key of keys) {
    assert.equal(key.use, 'sig');
    assert.ok(['RS256', 'ES256'].includes(key.alg));
    for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi']) assert.equal(key[member], undefined, `private member ${member}`);
    await jose.importJWK(key, key.alg);
  }
});

test('13 client_secret_basic and client_secret_post give a no-store Bearer token', async () => {
  for (const id of [worker, reporter]) {
    const auth = authOf(id);
    const response = await clientCredentials(id, auth);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    const body = await oauth.processClientCredentialsResponse(as, { client_id: id }, response);
    assert.equal(body.token_type, 'bearer');
    assert.ok(body.expires_in > 0);
  }
  // web-app is registered for client_secret_basic; it may not use client_credentials.
  const basic = await clientCredentials('default.web-app', oauth.ClientSecretBasic(secretOf('default.web-app')));
  assert.equal(basic.status, 400);
  assert.equal((await basic.json()).error, 'unauthorized_client', 'basic authentication succeeded; the grant is refused');
});

test('14 a wrong secret is 401 invalid_client with WWW-Authenticate', async () => {
  const response = await clientCredentials(worker, oauth.ClientSecretPost('wrong'));
  assert.equal(response.status, 401);
  assert.match(response.headers.get('www-authenticate'), /^Basic/);
  assert.equal((await response.clone().json()).error, 'invalid_client');
  // oauth4webapi surfaces the 401 as the challenge it carries.
  await assert.rejects(
    oauth.processClientCredentialsResponse(as, { client_id: worker }, response),
    (e) => e instanceof oauth.WWWAuthenticateChallengeError && e.status === 401,
  );
});

test('18 client_credentials gives an RFC 9068 JWT that verifies with the JWKS', async () => {
  const { access_token } = await tokenFor(worker);
  const jwks = jose.createRemoteJWKSet(new URL(as.jwks_uri));
  const { payload, protectedHeader } = await jose.jwtVerify(access_token, jwks, {
    issuer: sts.issuer,
    audience: 'https://orders.example.com',
    typ: 'at+jwt',
  });
  assert.equal(protectedHeader.alg, 'ES256');
  assert.equal(payload.sub, worker);
  assert.equal(payload.client_id, worker);
  assert.equal(payload.scope, 'orders.read');
  for (const claim of ['exp', 'iat', 'jti']) assert.ok(payload[claim], `missing ${claim}`);
});

test('19 a scope the client may not have is invalid_scope; an unknown resource invalid_target', async () => {
  const scope = await clientCredentials(worker, oauth.ClientSecretPost(secretOf(worker)), { scope: 'openid' });
  await assert.rejects(oauth.processClientCredentialsResponse(as, { client_id: worker }, scope), (e) => e.error === 'invalid_scope');
  const target = await clientCredentials(worker, oauth.ClientSecretPost(secretOf(worker)), { resource: 'https://evil.example' });
  await assert.rejects(oauth.processClientCredentialsResponse(as, { client_id: worker }, target), (e) => e.error === 'invalid_target');
});

test('31 introspection of an active token, and only for an authenticated caller', async () => {
  const { access_token } = await tokenFor(worker);
  const body = await introspect(access_token);
  assert.equal(body.active, true);
  assert.equal(body.client_id, worker);
  assert.equal(body.sub, worker);
  assert.equal(body.scope, 'orders.read');
  assert.equal(body.iss, sts.issuer);
  assert.equal(body.aud, 'https://orders.example.com');
  assert.ok(body.exp > Date.now() / 1000);
  const anonymous = await fetch(as.introspection_endpoint, { method: 'POST', body: new URLSearchParams({ token: access_token }) });
  assert.equal(anonymous.status, 401);
});

test('32 and revocation: revoked, tampered and garbage tokens are exactly {"active":false}', async () => {
  const { access_token } = await tokenFor(worker);
  const [h, p, s] = access_token.split('.');
  const tampered = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url')), scope: 'admin' })).toString('base64url')}.${s}`;
  for (const token of [tampered, 'garbage', 'a.b.c']) assert.deepEqual(await introspect(token), { active: false });
  const revoke = await oauth.revocationRequest(as, { client_id: worker }, oauth.ClientSecretPost(secretOf(worker)), access_token, allowHttp);
  await oauth.processRevocationResponse(revoke);
  assert.deepEqual(await introspect(access_token), { active: false }, 'a revoked JWT is denied by jti');
});

test('reference tokens: introspection resolves them; revocation deletes them; others may not revoke', async () => {
  const { access_token } = await tokenFor(reporter);
  assert.equal(access_token.split('.').length, 1, 'an opaque token');
  assert.equal((await introspect(access_token, reporter)).active, true);
  // Another client's revocation is answered 200 and changes nothing.
  const foreign = await oauth.revocationRequest(as, { client_id: worker }, oauth.ClientSecretPost(secretOf(worker)), access_token, allowHttp);
  await oauth.processRevocationResponse(foreign);
  assert.equal((await introspect(access_token, reporter)).active, true);
  const own = await oauth.revocationRequest(as, { client_id: reporter }, authOf(reporter), access_token, allowHttp);
  await oauth.processRevocationResponse(own);
  assert.deepEqual(await introspect(access_token, reporter), { active: false });
  // Revoking garbage is 200 too (RFC 7009 §2.2).
  const garbage = await oauth.revocationRequest(as, { client_id: reporter }, authOf(reporter), 'garbage', allowHttp);
  await oauth.processRevocationResponse(garbage);
});

test('the credentials file is private and the console never shows the secret', async () => {
  const { statSync } = await import('node:fs');
  const secret = secretOf(worker);
  assert.ok(!sts.output().includes(secret));
  assert.match(sts.output(), /client credentials/);
  const files = sts.output().match(/file=(\S+default\.orders-worker\.json)/);
  assert.equal(statSync(files[1]).mode & 0o777, 0o600);
});

test('15 private_key_jwt authenticates; a replayed assertion and one made for the token endpoint are refused', async () => {
  const response = await clientCredentials(signer, oauth.PrivateKeyJwt(signerKey));
  const body = await oauth.processClientCredentialsResponse(as, { client_id: signer }, response);
  assert.ok(body.access_token);

  const assertion = (aud) =>
    new jose.SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'signer-1' })
      .setIssuer(signer)
      .setSubject(signer)
      .setAudience(aud)
      .setJti(crypto.randomUUID())
      .setIssuedAt()
      .setExpirationTime('2m')
      .sign(signerKey.key);
  const post = (clientAssertion) =>
    fetch(as.token_endpoint, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: clientAssertion,
      }),
    });
  const once = await assertion(sts.issuer);
  assert.equal((await post(once)).status, 200);
  const replay = await post(once);
  assert.equal(replay.status, 401);
  assert.equal((await replay.json()).error, 'invalid_client');
  const wrongAudience = await post(await assertion(as.token_endpoint));
  assert.equal(wrongAudience.status, 401);
});
