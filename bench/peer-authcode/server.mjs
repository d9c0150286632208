// Benchmark peer for bench/authcode-bench.sh: oidc-provider 9.13.3 (the reference peer version)
// with one confidential authorization-code client, PKCE S256 required, and a server-rendered sign-in page with
// an anti-forgery field, so that AuthCodeBench drives it exactly as it drives Identity: sign in once, then
// authorize (SSO session cookie) -> code -> token. Not a test, not shipped.
//
// Environment:
//   PEER_PORT        listen port on 127.0.0.1                    (default 7283)
//   BENCH_CLIENT_ID  the client                                  (default bench-web)
//   BENCH_CLIENT_SECRET, BENCH_REDIRECT_URI, BENCH_EMAIL, BENCH_PASSWORD: required
//
// State (sessions, interactions, grants, codes) lives in process memory: oidc-provider's default adapter. One
// process: the in-memory state cannot be shared between node:cluster workers.

import { createHash, createHmac, generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const PORT = Number(process.env.PEER_PORT || 7283);
const HOST = '127.0.0.1';
const ISSUER = `http://${HOST}:${PORT}`;
const CLIENT_ID = process.env.BENCH_CLIENT_ID || 'bench-web';
const required = (name) => process.env[name] || (console.error(`${name} is required`), process.exit(2));
const CLIENT_SECRET = required('BENCH_CLIENT_SECRET');
const REDIRECT_URI = required('BENCH_REDIRECT_URI');
const EMAIL = required('BENCH_EMAIL');
const PASSWORD_HASH = createHash('sha256').update(required('BENCH_PASSWORD')).digest();
const ACCOUNT_ID = 'bench-user';
const FORM_KEY = randomBytes(32);

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
const provider = new Provider(ISSUER, {
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: [REDIRECT_URI],
    id_token_signed_response_alg: 'RS256',
  }],
  jwks: { keys: [{ ...rsa, kid: `rs256-${randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' }] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  claims: { openid: ['sub'], profile: ['name'] },
  scopes: ['openid', 'profile'],
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/Account/Login/${interaction.uid}` },
  async findAccount(ctx, id) {
    return { accountId: id, claims: async () => ({ sub: id, name: 'Bench User' }) };
  },
  // A first-party client: the grant (consent) is given once per session, without a screen, as Identity does.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      return ctx.oidc.provider.Grant.find(grantId);
    }
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid profile');
    await grant.save();
    ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId, grant.jti);
    return grant;
  },
  ttl: { AuthorizationCode: 60, IdToken: 300, AccessToken: 600, Grant: 3600, Session: 3600, Interaction: 600 },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

const formToken = (uid) => createHmac('sha256', FORM_KEY).update(uid).digest('base64url');
const escape = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
const same = (a, b) => a.length === b.length && timingSafeEqual(a, b);

function page(res, status, uid, message) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><title>Sign in</title>${message ? `<p role="alert">${escape(message)}</p>` : ''}
<form method="post" action="/Account/Login/${escape(uid)}">
<input type="hidden" name="__RequestVerificationToken" value="${formToken(uid)}">
<label>Email <input name="Input.Email" autocomplete="username"></label>
<label>Password <input name="Input.Password" type="password" autocomplete="current-password"></label>
<button>Sign in</button></form>`);
}

async function signIn(req, res, uid) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    return page(res, 400, uid, 'This sign-in expired; start again.');
  }
  if (req.method === 'GET') {
    return page(res, 200, uid);
  }
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 16_384) return page(res, 413, uid, 'Too large.');
  }
  const form = new URLSearchParams(body);
  if (!same(Buffer.from(form.get('__RequestVerificationToken') || ''), Buffer.from(formToken(uid)))) {
    return page(res, 400, uid, 'The form expired; try again.');
  }
  const passwordHash = createHash('sha256').update(form.get('Input.Password') || '').digest();
  if (form.get('Input.Email') !== EMAIL || !same(passwordHash, PASSWORD_HASH)) {
    return page(res, 200, uid, 'Invalid email or password.');
  }
  return provider.interactionFinished(req, res, { login: { accountId: ACCOUNT_ID } }, { mergeWithLastSubmission: false });
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  const match = /^\/Account\/Login\/([\w-]+)$/.exec(req.url.split('?')[0]);
  if (!match) {
    return callback(req, res);
  }
  return signIn(req, res, match[1]).catch((err) => {
    console.error('sign-in', err);
    if (!res.headersSent) page(res, 400, match[1], 'This sign-in expired; start again.');
  });
});
server.keepAliveTimeout = 65_000;
server.listen(PORT, HOST, () => console.log(`peer ready: ${ISSUER} pid=${process.pid}`));

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
