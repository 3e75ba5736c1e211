// A second interop issuer for `authed`: oidc-provider 9.x in its FAPI 2.0 profile.
//
// Same contract as server.mjs (see README.md): binds 127.0.0.1:$PORT (default 0), prints one
// line `READY issuer=http://127.0.0.1:<port>` to stdout when it accepts requests, runs until
// SIGTERM/SIGINT (or stdin closes when EXIT_ON_STDIN_CLOSE=1); everything else goes to stderr.
//
// What it enforces: the FAPI 2.0 Security Profile (PKCE S256, iss on responses, PS256 / ES256 /
// EdDSA only, confidential clients, sender-constrained tokens), pushed authorization requests
// required, DPoP with nonces (at PAR too), private_key_jwt, request objects (JAR) and JWT
// responses (JARM), rich authorization requests with a `payment_initiation` type, resource
// indicators (RAR needs a resource), and acr values for step-up. Clients, types and resources
// are the tables below: add to them.

import * as http from 'node:http';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';

import {
  calculateJwkThumbprint, CompactSign, decodeJwt, decodeProtectedHeader, EmbeddedJWK, jwtVerify,
} from 'jose';

console.info = console.error;
console.log = console.error;

const { default: Provider, errors } = await import('oidc-provider');

const HOST = '127.0.0.1';
const PORT = Number.parseInt(process.env.PORT ?? '0', 10) || 0;
const ACCESS_TOKEN_TTL = Number.parseInt(process.env.ACCESS_TOKEN_TTL ?? '600', 10) || 600;
const ACCOUNT_ID = 'alice';
const SCOPES = ['openid', 'offline_access', 'api:read'];
const LOA1 = 'urn:authed:loa:1';
const LOA2 = 'urn:authed:loa:2';
const API = 'https://api.authed.example/';
const REDIRECT_URI = 'https://client.authed.example/callback';

// A public JWK from tests/support/keys, with a kid.
function clientJwk(name, kid) {
  const url = new URL(`../tests/support/keys/${name}.pub.jwk.json`, import.meta.url);
  return { ...JSON.parse(fs.readFileSync(url, 'utf8')), kid, use: 'sig' };
}

// Test fixtures (not secrets): the public halves of tests/support/keys.
const fapiClient = {
  client_id: 'authed-fapi',
  token_endpoint_auth_method: 'private_key_jwt',
  jwks: { keys: [clientJwk('rsa_pkcs8', 'authed-fapi-rsa'), clientJwk('ec_pkcs8', 'authed-fapi-ec')] },
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  redirect_uris: [REDIRECT_URI],
  scope: SCOPES.join(' '),
  dpop_bound_access_tokens: true,
  authorization_signed_response_alg: 'PS256',
  id_token_signed_response_alg: 'PS256',
  authorization_details_types: ['payment_initiation'],
};
const clients = [
  fapiClient,
  // FAPI 2.0 Message Signing: every request a signed request object.
  { ...fapiClient, client_id: 'authed-fapi-ms', require_signed_request_object: true },
];

// The payment_initiation authorization details type (RFC 9396 §2): its own fields checked.
const detailTypes = {
  payment_initiation: {
    validate(_ctx, detail) {
      const amount = detail.instructedAmount;
      if (typeof amount?.currency !== 'string' || typeof amount?.amount !== 'string') {
        throw new errors.InvalidAuthorizationDetails('payment_initiation needs instructedAmount {currency, amount}');
      }
    },
  },
};

// ID tokens and JARM responses: PS256 with a key made at every start.
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: 'fapi-ps256', use: 'sig', alg: 'PS256' };

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(PORT, HOST, resolve);
});
const { port } = server.address();
const issuer = `http://${HOST}:${port}`;

// How long ago the headless user "logged in" (auth_time), set by POST /test/login-age.
let loginAge = 0;

const parse = (json) => { try { return JSON.parse(json); } catch { return undefined; } };
const types = (details) => (details ?? []).map((d) => d.type);

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [signingJwk] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  scopes: SCOPES,
  responseTypes: ['code'],
  acrValues: [LOA1, LOA2],
  claims: { openid: ['sub'] },
  findAccount: async (_ctx, sub) => (sub === ACCOUNT_ID
    ? { accountId: sub, claims: async () => ({ sub }) }
    : undefined),
  features: {
    fapi: { enabled: true, profile: '2.0' },
    devInteractions: { enabled: false },
    pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: true },
    requestObjects: { enabled: true },
    jwtResponseModes: { enabled: true },
    dPoP: { enabled: true, nonceSecret: crypto.randomBytes(32), requireNonce: () => true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    userinfo: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => API,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({ scope: 'api:read', accessTokenFormat: 'opaque' }),
    },
    richAuthorizationRequests: {
      enabled: true,
      types: detailTypes,
      // What the code records: the details asked for (the consent granted them all).
      authorizationDetailsForGrantSource: (ctx) => parse(ctx.oidc.params.authorization_details)
        ?? ctx.oidc.grant.rar,
      // A token gets what its request asks for when each type was granted (RFC 9396 §6, §7),
      // else everything its code or refresh token carries.
      authorizationDetailsForAccessToken: (ctx, _token, source) => {
        const asked = parse(ctx.oidc.params.authorization_details);
        if (asked === undefined) return source?.rar;
        const granted = types(source?.rar);
        if (types(asked).some((t) => !granted.includes(t))) {
          throw new errors.InvalidAuthorizationDetails('authorization_details asks for more than was granted');
        }
        return asked;
      },
      authorizationDetailsForIntrospection: (_ctx, token) => token.rar,
    },
  },
  // The acr of the sign-in travels with the access token, for the step-up resource.
  extraTokenClaims: (ctx) => {
    const source = ctx.oidc.entities.AuthorizationCode ?? ctx.oidc.entities.RefreshToken;
    return source?.acr ? { acr: source.acr } : undefined;
  },
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  expiresWithSession: async () => false,
  ttl: {
    AccessToken: ACCESS_TOKEN_TTL,
    RefreshToken: 14 * 24 * 3600,
    AuthorizationCode: 60,
    IdToken: 3600,
    Interaction: 3600,
    Session: 14 * 24 * 3600,
    Grant: 14 * 24 * 3600,
    PushedAuthorizationRequest: 60,
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  renderError: async (ctx, out) => {
    ctx.type = 'json';
    ctx.body = out;
  },
});

function sendJson(res, status, body, headers = {}) {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(data),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(data);
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return parse(Buffer.concat(chunks).toString('utf8')) ?? {};
}

// Headless login and consent: alice, at the first acr asked for (LOA1 otherwise), who logged
// in `loginAge` seconds ago; everything asked for is granted, authorization details included.
async function handleInteraction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  const result = {};
  if (prompt.name === 'login' || !session?.accountId) {
    const acr = String(params.acr_values ?? '').split(' ').find(Boolean) ?? LOA1;
    result.login = { accountId: ACCOUNT_ID, acr, amr: ['pwd'], ts: Math.floor(Date.now() / 1000) - loginAge };
  }
  const grant = (details.grantId && await provider.Grant.find(details.grantId))
    || new provider.Grant({ accountId: ACCOUNT_ID, clientId: params.client_id });
  grant.addOIDCScope(String(params.scope ?? ''));
  if (prompt.details?.missingOIDCClaims?.length) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(prompt.details?.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  for (const detail of prompt.details?.rar ?? []) grant.addRar(detail);
  result.consent = { grantId: await grant.save() };
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

// The protected API, DPoP only: the proof (signature by its embedded key, htm, htu, ath, iat,
// jti) and the key's thumbprint against the token's. /api/stepup also wants LOA2 and answers
// RFC 9470's challenge otherwise.
const seenJti = new Set();
async function handleApi(req, res, pathname) {
  const challenge = (error, description, extra = '') => sendJson(
    res,
    401,
    { error, error_description: description },
    { 'WWW-Authenticate': `DPoP error="${error}", error_description="${description}"${extra}` },
  );
  const m = /^DPoP\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (!m || typeof req.headers.dpop !== 'string') return challenge('invalid_token', 'a DPoP-bound token and proof are required');
  let payload;
  let protectedHeader;
  try {
    ({ payload, protectedHeader } = await jwtVerify(req.headers.dpop, EmbeddedJWK, { typ: 'dpop+jwt' }));
  } catch {
    return challenge('invalid_dpop_proof', 'the proof does not verify');
  }
  if (payload.htm !== req.method || payload.htu !== `${issuer}${pathname}`
    || Math.abs(Date.now() / 1000 - payload.iat) > 300
    || payload.ath !== crypto.hash('sha256', m[1], 'base64url')
    || typeof payload.jti !== 'string' || seenJti.has(payload.jti)) {
    return challenge('invalid_dpop_proof', 'htm, htu, iat, ath or jti is wrong');
  }
  seenJti.add(payload.jti);
  const token = await provider.AccessToken.find(m[1]);
  if (!token) return challenge('invalid_token', 'access token not found, expired or revoked');
  if (token.jkt !== await calculateJwkThumbprint(protectedHeader.jwk)) {
    return challenge('invalid_token', 'the token is not bound to this key');
  }
  const acr = token.extra?.acr ?? null;
  if (pathname === '/api/stepup' && acr !== LOA2) {
    counts.step_up += 1;
    return challenge('insufficient_user_authentication', 'a stronger authentication is required', `, acr_values="${LOA2}", max_age="300"`);
  }
  return sendJson(res, 200, {
    ok: true, sub: token.accountId, client_id: token.clientId, acr, authorization_details: token.rar ?? null,
  });
}

// Test-only: a JARM response re-signed with this issuer's own key (so that only the claim is
// wrong) with iss, aud or exp changed, or signed by another key under the published kid.
const otherKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
async function forgeJarm(req, res) {
  const { response, kind } = await readJson(req);
  const claims = decodeJwt(response);
  const header = decodeProtectedHeader(response);
  let key = privateKey;
  if (kind === 'wrong_iss') claims.iss = `${issuer}/`;
  else if (kind === 'wrong_aud') claims.aud = 'another-client';
  else if (kind === 'expired') claims.exp = Math.floor(Date.now() / 1000) - 120;
  else if (kind === 'bad_signature') key = otherKey;
  else return sendJson(res, 400, { error: 'invalid_request', error_description: 'unknown kind' });
  const forged = await new CompactSign(Buffer.from(JSON.stringify(claims)))
    .setProtectedHeader(header)
    .sign(key);
  return sendJson(res, 200, { response: forged });
}

const counts = { token: 0, par: 0, jwks: 0, step_up: 0 };
const providerCallback = provider.callback();

server.on('request', async (req, res) => {
  const { pathname, searchParams } = new URL(req.url, issuer);
  if (req.method === 'POST' && pathname === '/token') counts.token += 1;
  if (req.method === 'POST' && pathname === '/request') counts.par += 1;
  if (req.method === 'GET' && pathname === '/jwks') counts.jwks += 1;
  try {
    if (req.method === 'GET' && pathname === '/test/counts') return sendJson(res, 200, counts);
    if (req.method === 'POST' && pathname === '/test/login-age') {
      loginAge = Number.parseInt(searchParams.get('seconds') ?? '0', 10) || 0;
      return sendJson(res, 200, { ok: true });
    }
    if (req.method === 'POST' && pathname === '/test/jarm/forge') return await forgeJarm(req, res);
    if (req.method === 'GET' && /^\/interaction\/[^/]+\/?$/.test(pathname)) return await handleInteraction(req, res);
    if (pathname === '/api/resource' || pathname === '/api/stepup') return await handleApi(req, res, pathname);
  } catch (err) {
    if (res.headersSent) { res.destroy(); return undefined; }
    if (err instanceof errors.OIDCProviderError) {
      return sendJson(res, err.statusCode ?? 400, { error: err.error, error_description: err.error_description });
    }
    console.error('fapi interop server: handler error', err);
    return sendJson(res, 500, { error: 'server_error', error_description: String(err?.message ?? err) });
  }
  return providerCallback(req, res);
});

provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error:', err));

let stopping = false;
function shutdown(code = 0) {
  if (stopping) return;
  stopping = true;
  server.close(() => process.exit(code));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(code), 1000).unref();
}
process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
if (process.env.EXIT_ON_STDIN_CLOSE === '1') {
  process.stdin.on('end', () => shutdown(0));
  process.stdin.on('close', () => shutdown(0));
  process.stdin.on('error', () => shutdown(0));
  process.stdin.resume();
}
process.stdout.write(`READY issuer=${issuer}\n`);
