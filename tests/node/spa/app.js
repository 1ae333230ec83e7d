// The example SPA (client default.spa of examples/clients.yaml) as a browser app would be
// written with oidc-client-ts: code + PKCE, userinfo with the access token, renewal with the
// refresh token, sign-out with revocation. The page shows each step's outcome, and keeps it in
// `window.spa` for the test; `spa.step` ends in 'error: ...' when a step throws.
'use strict';

const spa = (window.spa = { step: 'loading', user: null, userinfo: null, renewed: null, probes: null, violations: [] });
const statusOutput = document.getElementById('status');
const resultOutput = document.getElementById('result');

// Content-Security-Policy violations, so a fetch refused by CSP is not taken for a CORS refusal.
document.addEventListener('securitypolicyviolation', (e) => spa.violations.push(`${e.violatedDirective} ${e.blockedURI}`));

function show(step, result) {
  spa.step = step;
  statusOutput.textContent = step;
  if (result !== undefined) resultOutput.textContent = JSON.stringify(result, null, 2);
}

/** The user's tokens and claims, as the test reads them. */
function summary(user) {
  if (!user) return null;
  const { access_token, refresh_token, id_token, scope, profile, expires_at } = user;
  return { access_token, refresh_token, id_token, scope, profile, expires_at };
}

async function step(fn) {
  try {
    await fn();
  } catch (error) {
    show(`error: ${error.name}: ${error.message}`);
  }
}

/**
 * Each endpoint fetched as an app would (a simple request), and with an Authorization header
 * (which makes the browser send a preflight first). A fetch that the browser refuses for want
 * of a CORS grant rejects with TypeError. A no-cors fetch of discovery, which needs no grant,
 * shows the STS is reachable from this page.
 */
async function probe(endpoints) {
  const form = (fields) => new URLSearchParams({ client_id: 'default.spa', ...fields });
  const requests = {
    discovery: () => ({ url: endpoints.discovery }),
    jwks: () => ({ url: endpoints.jwks }),
    userinfo: () => ({ url: endpoints.userinfo }),
    token: () => ({ url: endpoints.token, init: { method: 'POST', body: form({ grant_type: 'refresh_token', refresh_token: 'not-a-token' }) } }),
    revocation: () => ({ url: endpoints.revocation, init: { method: 'POST', body: form({ token: 'not-a-token' }) } }),
  };
  const results = [];
  for (const [endpoint, request] of Object.entries(requests)) {
    for (const kind of ['simple', 'preflighted']) {
      const { url, init = {} } = request();
      if (kind === 'preflighted') init.headers = { Authorization: 'Bearer not-a-token' };
      try {
        const response = await fetch(url, init);
        results.push({ endpoint, kind, outcome: 'response', status: response.status });
      } catch (error) {
        results.push({ endpoint, kind, outcome: error.name, message: error.message });
      }
    }
  }
  const control = await fetch(endpoints.discovery, { mode: 'no-cors' }).then((r) => r.type, (e) => e.name);
  return { results, control };
}

(async () => {
  const config = await (await fetch('/config.json')).json();
  const origin = window.location.origin;
  const manager = new oidc.UserManager({
    authority: config.authority,
    client_id: 'default.spa',
    redirect_uri: `${origin}/callback`,
    post_logout_redirect_uri: `${origin}/`,
    response_type: 'code',
    scope: 'openid profile email offline_access',
    automaticSilentRenew: false,
    revokeTokensOnSignout: true,
  });

  const on = (id, fn) => document.getElementById(id).addEventListener('click', () => step(fn));
  on('sign-in', () => manager.signinRedirect());
  on('userinfo', async () => {
    const user = await manager.getUser();
    const endpoint = await manager.metadataService.getUserInfoEndpoint();
    const response = await fetch(endpoint, { headers: { Authorization: `Bearer ${user.access_token}` } });
    spa.userinfo = { status: response.status, body: await response.json() };
    show('userinfo', spa.userinfo);
  });
  on('renew', async () => {
    const before = await manager.getUser();
    // With a refresh token, signinSilent uses it (a token request), not an iframe.
    const after = await manager.signinSilent();
    spa.user = summary(after);
    spa.renewed = { before: summary(before), after: spa.user };
    show('renewed', spa.renewed);
  });
  // The state comes back with the browser at the post-logout URI.
  on('sign-out', () => manager.signoutRedirect({ state: 'signed out by the app' }));
  on('probe', async () => {
    spa.probes = await probe(config.endpoints);
    show('probed', spa.probes);
  });

  const here = new URL(window.location.href);
  if (here.pathname === '/callback') {
    spa.user = summary(await manager.signinRedirectCallback());
    window.history.replaceState(null, '', '/');
    show('signed in', spa.user.profile);
  } else if (here.searchParams.has('state')) {
    const response = await manager.signoutRedirectCallback();
    window.history.replaceState(null, '', '/');
    spa.user = summary(await manager.getUser());
    spa.signedOut = { state: response.userState };
    show('signed out');
  } else {
    spa.user = summary(await manager.getUser());
    show(spa.user ? 'signed in' : 'signed out');
  }
})().catch((error) => show(`error: ${error.name}: ${error.message}`));
