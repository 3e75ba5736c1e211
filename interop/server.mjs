// Interop test authorization server for `authed`, built on oidc-provider 9.x.
//
// Contract (see README.md): binds 127.0.0.1:$PORT (default 0 = ephemeral), prints exactly one
// line `READY issuer=http://127.0.0.1:<port>` to stdout when it accepts requests, and runs until
// SIGTERM/SIGINT (or until stdin closes when EXIT_ON_STDIN_CLOSE=1).
// Everything else (oidc-provider notices and warnings) goes to stderr.

import * as http from 'node:http';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';

import { calculateJwkThumbprint, EmbeddedJWK, jwtVerify } from 'jose';

// oidc-provider prints NOTICEs with console.info (stdout); keep stdout for the READY line only.
console.info = console.error;
console.log = console.error;

const { default: Provider, errors } = await import('oidc-provider');

const HOST = '127.0.0.1';
const PORT = Number.parseInt(process.env.PORT ?? '0', 10) || 0;
const ACCESS_TOKEN_TTL = Number.parseInt(process.env.ACCESS_TOKEN_TTL ?? '2', 10) || 2;
const REFRESH_TOKEN_TTL = Number.parseInt(process.env.REFRESH_TOKEN_TTL ?? `${14 * 24 * 3600}`, 10);
const DEVICE_CODE_TTL = Number.parseInt(process.env.DEVICE_CODE_TTL ?? '600', 10);
const ACCOUNT_ID = 'alice';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const SCOPES = ['openid', 'offline_access', 'api:read'];
// OpenID Connect relying-party clients (userinfo, RP-Initiated Logout) also ask for these.
const OIDC_SCOPES = [...SCOPES, 'profile', 'email', 'address', 'phone'];
// Where the RP clients' browsers go after a logout.
const SIGNED_OUT = 'http://127.0.0.1/signed-out';
// RFC 7591: registering needs this initial access token (a test fixture, not a secret).
const INITIAL_ACCESS_TOKEN = 'interop-initial-access-token';

// A public JWK from tests/support/keys, with a kid.
function clientJwk(name, kid) {
  const url = new URL(`../tests/support/keys/${name}.pub.jwk.json`, import.meta.url);
  return { ...JSON.parse(fs.readFileSync(url, 'utf8')), kid, use: 'sig' };
}

// Test fixtures (not secrets). The first id/secret deliberately contain ':', '@', '%' and spaces.
const clients = [
  {
    client_id: 'authed-conf:id@x% y',
    client_secret: 's3cr:et@%20 pass',
    token_endpoint_auth_method: 'client_secret_basic',
    application_type: 'native',
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials', DEVICE_GRANT],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback'],
    scope: SCOPES.join(' '),
  },
  {
    client_id: 'authed-post',
    client_secret: 'post-secret',
    token_endpoint_auth_method: 'client_secret_post',
    application_type: 'native',
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials', DEVICE_GRANT],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback'],
    scope: SCOPES.join(' '),
  },
  // private_key_jwt: the public half of tests/support/keys/rsa_pkcs8.pem (a test fixture),
  // registered in the client metadata as its JWKS.
  {
    client_id: 'authed-pkjwt',
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: { keys: [clientJwk('rsa_pkcs8', 'authed-pkjwt-rsa')] },
    application_type: 'native',
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials', DEVICE_GRANT],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback'],
    scope: SCOPES.join(' '),
  },
  // client_secret_jwt: HS256 needs a secret of at least 32 bytes (RFC 7518 §3.2).
  {
    client_id: 'authed-secretjwt',
    client_secret: 'interop-client-secret-jwt-0123456789abcdef',
    token_endpoint_auth_method: 'client_secret_jwt',
    application_type: 'native',
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials', DEVICE_GRANT],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback'],
    scope: SCOPES.join(' '),
  },
  {
    client_id: 'authed-public',
    token_endpoint_auth_method: 'none',
    application_type: 'native',
    grant_types: ['authorization_code', 'refresh_token', DEVICE_GRANT],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback'],
    scope: SCOPES.join(' '),
  },
  {
    // DPoP (RFC 9449): a public client whose access tokens must be DPoP-bound; its refresh
    // tokens are bound to the key too (public client, §5).
    client_id: 'authed-dpop',
    token_endpoint_auth_method: 'none',
    application_type: 'native',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback'],
    scope: SCOPES.join(' '),
    dpop_bound_access_tokens: true,
  },
  // OpenID Connect relying parties: userinfo as JSON, or signed (RS256, the JWT-secured
  // userinfo of Core §5.3.2); RP-Initiated Logout back to SIGNED_OUT.
  ...[['authed-rp', {}], ['authed-rp-jwt', { userinfo_signed_response_alg: 'RS256' }]].map(
    ([client_id, extra]) => ({
      client_id,
      client_secret: `${client_id}-secret`,
      token_endpoint_auth_method: 'client_secret_basic',
      application_type: 'native',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/callback'],
      post_logout_redirect_uris: [SIGNED_OUT],
      scope: OIDC_SCOPES.join(' '),
      ...extra,
    }),
  ),
];

// Fresh signing key at every start (all state is in memory anyway).
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: 'interop-rs256', use: 'sig', alg: 'RS256' };

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(PORT, HOST, resolve);
});
const { port } = server.address();
const issuer = `http://${HOST}:${port}`;

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [signingJwk] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  scopes: OIDC_SCOPES,
  responseTypes: ['code'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username', 'locale', 'zoneinfo', 'updated_at'],
    email: ['email', 'email_verified'],
    address: ['address'],
    phone: ['phone_number', 'phone_number_verified'],
  },
  // The provider releases only the claims the granted scopes name.
  findAccount: async (_ctx, sub) => (sub === ACCOUNT_ID
    ? {
      accountId: sub,
      claims: async () => ({
        sub,
        name: 'Alice Example',
        given_name: 'Alice',
        family_name: 'Example',
        preferred_username: 'alice',
        locale: 'en-GB',
        zoneinfo: 'Europe/London',
        updated_at: 1700000000,
        email: 'alice@example.com',
        email_verified: true,
        address: { locality: 'London', country: 'United Kingdom' },
        phone_number: '+44 20 7946 0000',
        phone_number_verified: false,
      }),
    }
    : undefined),
  pkce: { required: () => true }, // S256 is the only method 9.x supports
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    deviceFlow: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    userinfo: { enabled: true },
    // RFC 8707: resource servers at <issuer>/rs/<name>, opaque tokens (their audience is the
    // resource) checked at /rs/<name>/... below. A request without `resource` gets a token for
    // no resource (userinfo), as before.
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => undefined,
      useGrantedResource: async () => false,
      getResourceServerInfo: async (_ctx, resource) => {
        if (!resource.startsWith(`${issuer}/rs/`)) throw new errors.InvalidTarget();
        return {
          scope: 'api:read',
          audience: resource,
          accessTokenTTL: ACCESS_TOKEN_TTL,
          accessTokenFormat: 'opaque',
        };
      },
    },
    jwtUserinfo: { enabled: true },
    registration: { enabled: true, initialAccessToken: INITIAL_ACCESS_TOKEN },
    rpInitiatedLogout: { enabled: true },
    // DPoP with nonces required for every proof (use_dpop_nonce until the client sends one).
    dPoP: { enabled: true, nonceSecret: crypto.randomBytes(32), requireNonce: () => true },
  },
  // Refresh tokens for every client allowed the refresh_token grant, with or without
  // offline_access / prompt=consent (the authorization endpoint strips offline_access unless
  // prompt=consent is sent).
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true,
  // Do not tie tokens to the browser-ish session cookie of the headless login.
  expiresWithSession: async () => false,
  ttl: {
    AccessToken: ACCESS_TOKEN_TTL,
    ClientCredentials: ACCESS_TOKEN_TTL,
    RefreshToken: REFRESH_TOKEN_TTL,
    DeviceCode: DEVICE_CODE_TTL,
    AuthorizationCode: 60,
    IdToken: 3600,
    Interaction: 3600,
    Session: 14 * 24 * 3600,
    Grant: 14 * 24 * 3600,
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  renderError: async (ctx, out) => {
    ctx.type = 'json';
    ctx.body = out;
  },
});

// ---------------------------------------------------------------------------------------------
// helpers

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

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const raw = Buffer.concat(chunks).toString('utf8');
  const type = req.headers['content-type'] ?? '';
  if (type.includes('application/json')) {
    try { return new Map(Object.entries(JSON.parse(raw))); } catch { return new Map(); }
  }
  return new Map(new URLSearchParams(raw));
}

function scopeSet(scope) {
  return new Set(String(scope ?? '').split(' ').filter(Boolean));
}

// Headless login + consent: log in `alice` and grant everything that was requested.
async function handleInteraction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  const result = {};

  if (prompt.name === 'login' || !session?.accountId) {
    result.login = { accountId: ACCOUNT_ID };
  }

  let grant;
  if (details.grantId) {
    grant = await provider.Grant.find(details.grantId);
  }
  if (!grant) {
    grant = new provider.Grant({ accountId: ACCOUNT_ID, clientId: params.client_id });
  }
  const requested = [...scopeSet(params.scope)];
  const missingScope = prompt.details?.missingOIDCScope ?? [];
  grant.addOIDCScope([...new Set([...requested, ...missingScope])].join(' '));
  if (prompt.details?.missingOIDCClaims?.length) {
    grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  }
  for (const [indicator, scopes] of Object.entries(prompt.details?.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  result.consent = { grantId: await grant.save() };

  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

// Test-only device approval/denial by user_code (no HTML scraping).
async function handleDevice(req, res, action) {
  const form = await readForm(req);
  const userCode = form.get('user_code');
  if (!userCode) {
    return sendJson(res, 400, { error: 'invalid_request', error_description: 'user_code missing' });
  }
  // Same normalisation as the built-in /device form (uppercase, drop non-word chars like '-').
  const normalized = String(userCode).replace(/[a-z]/g, (c) => c.toUpperCase()).replace(/\W/g, '');
  const code = await provider.DeviceCode.findByUserCode(normalized, { ignoreExpiration: true });
  if (!code) {
    return sendJson(res, 404, { error: 'not_found', error_description: 'user_code not found' });
  }
  if (code.isExpired) {
    return sendJson(res, 400, { error: 'expired_token', error_description: 'user_code expired' });
  }
  if (code.error || code.accountId || code.inFlight) {
    return sendJson(res, 409, { error: 'already_used', error_description: 'user_code already used' });
  }

  if (action === 'deny') {
    code.error = 'access_denied';
    code.errorDescription = 'End-User aborted interaction';
    await code.save();
    return sendJson(res, 200, { ok: true, user_code: userCode, result: 'denied' });
  }

  const requested = scopeSet(code.params?.scope ?? code.scope);
  const grant = new provider.Grant({ accountId: ACCOUNT_ID, clientId: code.clientId });
  if (requested.size) grant.addOIDCScope([...requested].join(' '));
  const grantId = await grant.save();

  Object.assign(code, {
    accountId: ACCOUNT_ID,
    authTime: Math.floor(Date.now() / 1000),
    grantId,
    scope: [...requested].join(' ') || undefined,
  });
  await code.save();
  return sendJson(res, 200, { ok: true, user_code: userCode, result: 'approved', sub: ACCOUNT_ID });
}

// Protected resource: Bearer opaque access token (user or client-credentials), validated
// against the provider's own storage.
async function handleResource(req, res) {
  const unauthorized = (description, status = 401) => sendJson(
    res,
    status,
    { error: 'invalid_token', error_description: description },
    { 'WWW-Authenticate': `Bearer error="invalid_token", error_description="${description}"` },
  );

  const auth = req.headers.authorization;
  if (!auth) return unauthorized('no access token provided');
  const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
  if (!m) return unauthorized('malformed Authorization header');
  const value = m[1];

  let token = await provider.AccessToken.find(value, { ignoreExpiration: true });
  if (!token) token = await provider.ClientCredentials.find(value, { ignoreExpiration: true });
  if (!token) return unauthorized('access token not found (unknown or revoked)');
  if (token.isExpired) return unauthorized('access token expired');
  if (token.isSenderConstrained?.()) return unauthorized('sender-constrained tokens not supported here');

  const client = await provider.Client.find(token.clientId);
  if (!client) return unauthorized('associated client not found');

  if (token.grantId) {
    const grant = await provider.Grant.find(token.grantId, { ignoreExpiration: true });
    if (!grant) return unauthorized('grant not found (revoked)');
    if (grant.isExpired) return unauthorized('grant is expired');
    if (grant.clientId !== token.clientId || grant.accountId !== token.accountId) {
      return unauthorized('grant mismatch');
    }
  }

  return sendJson(res, 200, {
    ok: true,
    sub: token.accountId ?? null,
    client_id: token.clientId,
    scope: token.scope ?? null,
    kind: token.kind,
    exp: token.exp,
  });
}

// RFC 8707 resource servers at /rs/<name>/...: only an access token issued for exactly
// <issuer>/rs/<name> (its audience) is accepted.
async function handleResourceServer(req, res, name) {
  const unauthorized = (description) => sendJson(
    res,
    401,
    { error: 'invalid_token', error_description: description },
    { 'WWW-Authenticate': `Bearer error="invalid_token", error_description="${description}"` },
  );
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (!m) return unauthorized('no access token provided');
  const token = await provider.AccessToken.find(m[1]);
  if (!token) return unauthorized('access token not found, expired or revoked');
  const resource = `${issuer}/rs/${name}`;
  if (token.aud !== resource) return unauthorized('the access token is for another resource');
  return sendJson(res, 200, { ok: true, sub: token.accountId, resource: token.aud, scope: token.scope ?? null });
}

// DPoP-protected resource at /api/dpop, checked here with jose as a resource server would:
// proof signature by its embedded jwk, typ, htm, htu, iat, jti replay, ath, its own nonce
// (rotated by POST /test/dpop/rotate-nonce), and the key thumbprint against the token's
// cnf.jkt from the provider's own token lookup. Reach it as http://localhost:<port> so that
// its nonce is another origin's than the token endpoint's (clients keep one per origin).
const dpopResource = { nonce: crypto.randomBytes(16).toString('base64url'), jtis: new Set(), lastProof: null };

async function handleDpopResource(req, res) {
  const challenge = (error, description, extra = {}) => sendJson(
    res,
    401,
    { error, error_description: description },
    { 'WWW-Authenticate': `DPoP error="${error}", error_description="${description}"`, ...extra },
  );
  const m = /^DPoP\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (!m) return challenge('invalid_token', 'a DPoP-bound token is required');
  const value = m[1];
  const proof = req.headers.dpop;
  if (typeof proof !== 'string') return challenge('invalid_dpop_proof', 'no DPoP proof');
  let payload;
  let protectedHeader;
  try {
    ({ payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, {
      typ: 'dpop+jwt', algorithms: ['ES256', 'EdDSA'],
    }));
  } catch {
    return challenge('invalid_dpop_proof', 'the proof does not verify');
  }
  const htu = `http://${req.headers.host}/api/dpop`;
  if (payload.htm !== req.method) return challenge('invalid_dpop_proof', 'htm mismatch');
  if (payload.htu !== htu) return challenge('invalid_dpop_proof', 'htu mismatch');
  if (typeof payload.iat !== 'number' || Math.abs(Date.now() / 1000 - payload.iat) > 300) {
    return challenge('invalid_dpop_proof', 'iat outside the window');
  }
  if (payload.ath !== crypto.hash('sha256', value, 'base64url')) {
    return challenge('invalid_dpop_proof', 'ath mismatch');
  }
  if (payload.nonce !== dpopResource.nonce) {
    counts.resource_nonce += 1;
    return challenge('use_dpop_nonce', 'a DPoP nonce is required', { 'DPoP-Nonce': dpopResource.nonce });
  }
  if (typeof payload.jti !== 'string' || dpopResource.jtis.has(payload.jti)) {
    return challenge('invalid_dpop_proof', 'jti replayed');
  }
  dpopResource.jtis.add(payload.jti);
  const token = await provider.AccessToken.find(value);
  if (!token) return challenge('invalid_token', 'access token not found, expired or revoked');
  const jkt = await calculateJwkThumbprint(protectedHeader.jwk);
  if (!token.jkt || token.jkt !== jkt) return challenge('invalid_token', 'the token is not bound to this key');
  dpopResource.lastProof = proof;
  return sendJson(res, 200, { ok: true, sub: token.accountId ?? null, client_id: token.clientId, jkt, cnf_jkt: token.jkt });
}

// ---------------------------------------------------------------------------------------------
// routing

const providerCallback = provider.callback();

// How many token and JWKS requests arrived, for tests that assert nothing was (re)sent.
const counts = { token: 0, jwks: 0, dpop_nonce: 0, resource_nonce: 0, refresh: 0, invalid_grant: 0 };
// use_dpop_nonce and invalid_grant answers of the token endpoint.
provider.on('grant.error', (_ctx, err) => {
  if (err?.error === 'use_dpop_nonce') counts.dpop_nonce += 1;
  if (err?.error === 'invalid_grant') counts.invalid_grant += 1;
});
// Refreshes the token endpoint answered with tokens (refused ones count as invalid_grant).
provider.on('grant.success', (ctx) => {
  if (ctx.oidc.params.grant_type === 'refresh_token') counts.refresh += 1;
});

server.on('request', async (req, res) => {
  const { pathname } = new URL(req.url, issuer);
  if (req.method === 'POST' && pathname === '/token') counts.token += 1;
  if (req.method === 'GET' && pathname === '/jwks') counts.jwks += 1;
  try {
    if (req.method === 'GET' && pathname === '/test/counts') {
      return sendJson(res, 200, counts);
    }
    if (req.method === 'GET' && /^\/interaction\/[^/]+\/?$/.test(pathname)) {
      return await handleInteraction(req, res);
    }
    if (req.method === 'POST' && pathname === '/test/device/approve') {
      return await handleDevice(req, res, 'approve');
    }
    if (req.method === 'POST' && pathname === '/test/device/deny') {
      return await handleDevice(req, res, 'deny');
    }
    if (req.method === 'POST' && pathname === '/test/dpop/rotate-nonce') {
      dpopResource.nonce = crypto.randomBytes(16).toString('base64url');
      return sendJson(res, 200, { ok: true });
    }
    if (req.method === 'GET' && pathname === '/test/dpop/last-proof') {
      return sendJson(res, 200, { proof: dpopResource.lastProof });
    }
    const rs = /^\/rs\/([^/]+)\//.exec(pathname);
    if (rs) {
      return await handleResourceServer(req, res, rs[1]);
    }
    if (pathname === '/api/dpop') {
      return await handleDpopResource(req, res);
    }
    if (pathname === '/api/resource') {
      if (req.method !== 'GET') return sendJson(res, 405, { error: 'method_not_allowed' }, { Allow: 'GET' });
      return await handleResource(req, res);
    }
  } catch (err) {
    if (res.headersSent) { res.destroy(); return undefined; }
    if (err instanceof errors.OIDCProviderError) {
      return sendJson(res, err.statusCode ?? 400, { error: err.error, error_description: err.error_description });
    }
    console.error('interop server: handler error', err);
    return sendJson(res, 500, { error: 'server_error', error_description: String(err?.message ?? err) });
  }
  return providerCallback(req, res);
});

provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error:', err));

// ---------------------------------------------------------------------------------------------
// lifecycle

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

if (provider.issuer !== issuer) {
  console.error(`issuer mismatch: ${provider.issuer} !== ${issuer}`);
  process.exit(1);
}
process.stdout.write(`READY issuer=${issuer}\n`);
