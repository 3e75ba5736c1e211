// Refresh-token rotation as the fault harness sees it from the server's side (scripts/faults,
// tests/faults.rs): an in-memory storage adapter for oidc-provider that never evicts (the
// built-in one is an LRU of 1000 entries, which would make a churn test lose live tokens) and
// can play a provider with a reuse grace period, plus counters of what clients presented.
//
// Rotation with reuse detection is oidc-provider's own: `rotateRefreshToken: true` consumes
// the presented refresh token and issues a new one; presenting a consumed one answers
// `invalid_grant` and revokes the whole grant (lib/actions/grants/refresh_token.js).
//
// REFRESH_REUSE_GRACE=<seconds> (default 0) plays Okta's grace period / Auth0's reuse
// interval: for that long after its first use, a consumed refresh token is found as if it were
// not, so presenting it again rotates once more (a second new refresh token) instead of
// revoking the login.

import * as crypto from 'node:crypto';

export const GRACE_MS = (Number.parseFloat(process.env.REFRESH_REUSE_GRACE ?? '0') || 0) * 1000;

// model name -> Map(id -> { payload, expiresAt, consumedAt })
const stores = new Map();
const grantable = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest', 'PreAuthorizedCode']);

function storeOf(model) {
  let store = stores.get(model);
  if (!store) {
    store = new Map();
    stores.set(model, store);
  }
  return store;
}

function live(entry) {
  return entry && (entry.expiresAt === undefined || entry.expiresAt > Date.now());
}

export class RotationAdapter {
  constructor(model) {
    this.model = model;
    this.store = storeOf(model);
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : undefined;
    const previous = this.store.get(id);
    this.store.set(id, { payload, expiresAt, consumedAt: previous?.consumedAt });
    if (this.model === 'Grant') grants.add(id);
  }

  async find(id) {
    // Expired entries are still found: the models check expiry themselves, and some callers
    // look up expired tokens on purpose (`ignoreExpiration`).
    const entry = this.store.get(id);
    if (!entry) return undefined;
    const { payload } = entry;
    if (this.model === 'RefreshToken' && payload.consumed && GRACE_MS > 0
        && Date.now() - entry.consumedAt < GRACE_MS) {
      // Within the grace period a spent refresh token still works once more.
      counts.grace_reuses += 1;
      return { ...payload, consumed: undefined };
    }
    return payload;
  }

  async findByUid(uid) {
    for (const [, entry] of this.store) {
      if (entry.payload.uid === uid) return entry.payload;
    }
    return undefined;
  }

  async findByUserCode(userCode) {
    for (const [, entry] of this.store) {
      if (entry.payload.userCode === userCode) return entry.payload;
    }
    return undefined;
  }

  async consume(id) {
    const entry = this.store.get(id);
    if (!entry) return;
    // The grace period runs from the first use.
    entry.payload.consumed ??= Math.floor(Date.now() / 1000);
    entry.consumedAt ??= Date.now();
  }

  async destroy(id) {
    this.store.delete(id);
  }

  async revokeByGrantId(grantId) {
    if (!grantable.has(this.model)) return;
    for (const [id, entry] of this.store) {
      if (entry.payload.grantId === grantId) this.store.delete(id);
    }
  }
}

// Every grant ever saved, to count the logins still alive.
const grants = new Set();

export const counts = {
  // Refresh-token grant requests that reached the token endpoint's grant handler.
  presented: 0,
  // Presentations of a refresh token value that had been presented before.
  presented_again: 0,
  refreshed: 0,
  invalid_grant: 0,
  grace_reuses: 0,
  revoked_grants: 0,
};
const presentedValues = new Set();
// When the server answered each successful refresh (ms since the epoch), in order.
const rotatedAt = [];

function fingerprint(value) {
  return crypto.createHash('sha256').update(String(value)).digest('base64url').slice(0, 16);
}

/// Hooks the counters into the provider's events.
export function observe(provider) {
  const presented = (ctx) => {
    const params = ctx?.oidc?.params;
    if (params?.grant_type !== 'refresh_token' || !params.refresh_token) return false;
    counts.presented += 1;
    const fp = fingerprint(params.refresh_token);
    if (presentedValues.has(fp)) counts.presented_again += 1;
    presentedValues.add(fp);
    return true;
  };
  provider.on('grant.success', (ctx) => {
    if (presented(ctx)) {
      counts.refreshed += 1;
      rotatedAt.push(Date.now());
    }
  });
  provider.on('grant.error', (ctx, err) => {
    if (presented(ctx) && err?.error === 'invalid_grant') counts.invalid_grant += 1;
  });
  provider.on('grant.revoked', () => {
    counts.revoked_grants += 1;
  });
}

/// A login is alive when its grant exists and holds a refresh token that can still be used:
/// not expired, and not consumed (or consumed within the grace period).
function isAlive(grantId) {
  if (!live(storeOf('Grant').get(grantId))) return false;
  for (const [, entry] of storeOf('RefreshToken')) {
    if (!live(entry) || entry.payload.grantId !== grantId) continue;
    if (!entry.payload.consumed) return true;
    if (GRACE_MS > 0 && Date.now() - entry.consumedAt < GRACE_MS) return true;
  }
  return false;
}

export function report(grantId) {
  const alive = [...grants].filter(isAlive);
  return {
    ...counts,
    alive_logins: alive.length,
    grant_alive: grantId ? isAlive(grantId) : undefined,
    rotated_at: rotatedAt,
    grace_seconds: GRACE_MS / 1000,
  };
}

/// A login made without a browser: a grant for `sub` and `client_id`, with a refresh token
/// and an access token, as a completed sign-in would leave them.
export async function login(provider, clientId, sub, scope) {
  const client = await provider.Client.find(clientId);
  if (!client) throw new Error(`unknown client ${clientId}`);
  const grant = new provider.Grant({ accountId: sub, clientId });
  grant.addOIDCScope(scope);
  const grantId = await grant.save();
  const gty = 'authorization_code';
  const refreshToken = await new provider.RefreshToken({
    accountId: sub, client, grantId, gty, scope, iiat: Math.floor(Date.now() / 1000), rotations: 0,
  }).save();
  const at = new provider.AccessToken({ accountId: sub, client, grantId, gty, scope });
  const accessToken = await at.save();
  return {
    access_token: accessToken,
    token_type: 'Bearer',
    expires_in: at.expiration,
    refresh_token: refreshToken,
    scope,
    grant_id: grantId,
  };
}

export async function revokeGrant(provider, grantId) {
  await Promise.all([provider.AccessToken, provider.RefreshToken]
    .map((model) => model.revokeByGrantId(grantId)));
  await provider.Grant.adapter.destroy(grantId);
  counts.revoked_grants += 1;
}
