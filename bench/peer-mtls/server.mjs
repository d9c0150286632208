// Benchmark peer for bench/mtls-bench.sh: oidc-provider 9.13.3 (the version of the shared reference peer, with its
// package-lock.json) in its mTLS mode (RFC 8705): Node's https server asks every client for a certificate
// (requestCert) and verifies it against the bench CA without refusing the handshake (rejectUnauthorized: false, the
// provider decides: certificateAuthorized), `tls_client_auth` matched on the subject DN, certificate-bound access tokens
// (cnf.x5t#S256). The rest is the shared peer's configuration: client_credentials, resource indicators making ES256 JWT
// access tokens (typ at+jwt, aud https://api.bench.test, TTL 300 s), the in-memory adapter, node:cluster workers
// sharing the keys. The workers also share the TLS session-ticket keys, so that a session resumes on either worker.
// Not a test, not shipped.
//
// Environment:
//   PEER_PORT            listen port on 127.0.0.1                       (default 7286)
//   PEER_WORKERS         node:cluster workers sharing the port          (default 1)
//   PEER_TLS_CERT, PEER_TLS_KEY  PEM server certificate and key         (required)
//   PEER_CLIENT_CA       PEM CA bundle that issues client certificates  (required)
//   BENCH_MTLS_CLIENT_ID, BENCH_MTLS_SUBJECT_DN   the tls_client_auth client  (default bench-mtls, CN=bench-mtls)
//   BENCH_CLIENT_ID, BENCH_CLIENT_SECRET          the client_secret_basic client (required secret)
//   BENCH_RESOURCE       resource indicator / JWT audience              (default https://api.bench.test)

import cluster from 'node:cluster';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';

import Provider, { errors } from 'oidc-provider';

const required = (name) => process.env[name] || (console.error(`${name} is required`), process.exit(2));
const PORT = Number(process.env.PEER_PORT || 7286);
const HOST = '127.0.0.1';
const ISSUER = `https://${HOST}:${PORT}`;
const WORKERS = Math.max(1, Number(process.env.PEER_WORKERS || 1));
const MTLS_CLIENT_ID = process.env.BENCH_MTLS_CLIENT_ID || 'bench-mtls';
const MTLS_SUBJECT_DN = process.env.BENCH_MTLS_SUBJECT_DN || 'CN=bench-mtls';
const CLIENT_ID = process.env.BENCH_CLIENT_ID || 'bench-client';
const CLIENT_SECRET = required('BENCH_CLIENT_SECRET');
const RESOURCE = process.env.BENCH_RESOURCE || 'https://api.bench.test';
const tls = {
  cert: readFileSync(required('PEER_TLS_CERT')),
  key: readFileSync(required('PEER_TLS_KEY')),
  ca: readFileSync(required('PEER_CLIENT_CA')),
};

function makeSecrets() {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  return {
    jwks: { keys: [{ ...ec, kid: `es256-${randomBytes(4).toString('hex')}`, alg: 'ES256', use: 'sig' }] },
    cookieKeys: [randomBytes(32).toString('base64url')],
    ticketKeys: randomBytes(48).toString('base64'),
  };
}

// Node prints a subject one RDN per line; the registered DN is an RFC 4514 string (comma-separated, last RDN first):
// compared as sets of RDNs, which is enough for the bench's subject (no escaped commas, no multi-valued RDNs).
const rdns = (dn, separator) => dn.split(separator).map((s) => s.trim()).filter(Boolean).sort().join(',');

if (WORKERS > 1 && cluster.isPrimary) {
  const secrets = JSON.stringify(makeSecrets());
  for (let i = 0; i < WORKERS; i += 1) cluster.fork({ PEER_SECRETS: secrets });
  let up = 0;
  cluster.on('listening', () => {
    up += 1;
    if (up === WORKERS) console.log(`peer ready: ${ISSUER} mTLS workers=${WORKERS}`);
  });
  cluster.on('exit', (w, code, signal) => console.error(`worker ${w.process.pid} exited (${signal || code})`));
  const stop = () => {
    for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  const { jwks, cookieKeys, ticketKeys } = process.env.PEER_SECRETS ? JSON.parse(process.env.PEER_SECRETS) : makeSecrets();
  const provider = new Provider(ISSUER, {
    clients: [
      {
        client_id: MTLS_CLIENT_ID,
        token_endpoint_auth_method: 'tls_client_auth',
        tls_client_auth_subject_dn: MTLS_SUBJECT_DN,
        tls_client_certificate_bound_access_tokens: true,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: 'api:read api:write',
        id_token_signed_response_alg: 'ES256', // only an EC key is made: the tokens are ES256 access tokens
      },
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: 'api:read api:write',
        id_token_signed_response_alg: 'ES256', // only an EC key is made: the tokens are ES256 access tokens
      },
    ],
    jwks,
    cookies: { keys: cookieKeys },
    scopes: ['openid', 'offline_access', 'api:read', 'api:write'],
    clientAuthMethods: ['client_secret_basic', 'tls_client_auth', 'self_signed_tls_client_auth'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      mTLS: {
        enabled: true,
        certificateBoundAccessTokens: true,
        tlsClientAuth: true,
        selfSignedTlsClientAuth: true,
        getCertificate: (ctx) => ctx.socket.getPeerX509Certificate?.(),
        certificateAuthorized: (ctx) => ctx.socket.authorized === true,
        certificateSubjectMatches(ctx, property, expected) {
          const certificate = ctx.socket.getPeerX509Certificate();
          return property === 'tls_client_auth_subject_dn' && rdns(certificate.subject, '\n') === rdns(expected, ',');
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo(ctx, resourceIndicator) {
          if (resourceIndicator !== RESOURCE) throw new errors.InvalidTarget();
          return {
            scope: 'api:read api:write',
            audience: RESOURCE,
            accessTokenTTL: 300,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
    ttl: { AccessToken: 300, ClientCredentials: 300 },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));

  const server = https.createServer({
    ...tls,
    requestCert: true,
    rejectUnauthorized: false,
    ticketKeys: Buffer.from(ticketKeys, 'base64'),
  }, provider.callback());
  server.keepAliveTimeout = 65_000;
  server.listen(PORT, HOST, () => {
    if (WORKERS === 1) console.log(`peer ready: ${ISSUER} mTLS pid=${process.pid}`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
