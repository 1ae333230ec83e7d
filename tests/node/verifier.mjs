// A relying party as deployed: gets a token every 200 ms for `seconds` and verifies it with
// jose's remote JWKS set, whose cache lives `maxAge` seconds (refreshed earlier only for an
// unknown kid, at most every 30 s: jose's cooldown). Prints one JSON summary line.
//
//   node verifier.mjs ISSUER CLIENT_ID CLIENT_SECRET AUDIENCE SECONDS MAX_AGE_SECONDS
import * as jose from 'jose';

const [issuer, clientId, clientSecret, audience, seconds, maxAge] = process.argv.slice(2);
const jwks = jose.createRemoteJWKSet(new URL(`${issuer}/jwks`), { cacheMaxAge: Number(maxAge) * 1000 });
const deadline = Date.now() + Number(seconds) * 1000;
const summary = { verified: 0, failed: 0, kids: [], errors: [] };
while (Date.now() < deadline) {
  const response = await fetch(`${issuer}/token`, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }),
  });
  if (response.status !== 200) {
    summary.errors.push(`token endpoint: ${response.status}`);
  } else {
    const { access_token } = await response.json();
    const { kid } = jose.decodeProtectedHeader(access_token);
    if (!summary.kids.includes(kid)) summary.kids.push(kid);
    try {
      await jose.jwtVerify(access_token, jwks, { issuer, audience, typ: 'at+jwt' });
      summary.verified += 1;
    } catch (error) {
      summary.failed += 1;
      if (summary.errors.length < 5) summary.errors.push(`${kid}: ${error.code ?? error.message}`);
    }
  }
  await new Promise((r) => setTimeout(r, 200));
}
console.log(JSON.stringify(summary));
