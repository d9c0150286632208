// A relying party built only on openid-client (an OpenID-certified library). It reads one request per line on stdin
// and answers each with one line of JSON on stdout, in order, until stdin closes:
//
//   {"step":"discovery","issuer":"http://127.0.0.1:5000/","client":{"id":"spa","auth":"none"}}
//
// A request names the issuer exactly as configured and the client ({ id, auth, secret | privateJwk }); each step adds
// its own fields. Identity.InteropTests plays the browser between steps and asserts on the answers. A protocol error
// (an OAuth error, a failed check) is an answer, {"ok":false,"error":{...}}; anything else ends the process.
import * as readline from 'node:readline';
import * as client from 'openid-client';

const steps = {
  // OpenID Connect Discovery 1.0 §4: openid-client's own discovery, which checks the issuer it is given.
  async discovery(config) {
    return { metadata: config.serverMetadata() };
  },

  // RFC 6749 §4.4 with the client's authentication method, then RFC 7662 introspection of the token it got.
  async client_credentials(config, input) {
    const tokens = await client.clientCredentialsGrant(config, { scope: input.scope });
    const introspection = await client.tokenIntrospection(config, tokens.access_token);
    return { tokens, accessTokenClaims: jwtPayload(tokens.access_token), introspection };
  },

  // The request half of the code flow: PKCE S256, state and nonce made by the library.
  async authorization_url(config, input) {
    const codeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const parameters = {
      redirect_uri: input.redirectUri,
      scope: input.scope,
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      ...input.parameters,
    };
    return { url: client.buildAuthorizationUrl(config, parameters).href, state, nonce, codeVerifier };
  },

  // The response half: state, RFC 9207 iss, the code exchange with the verifier, the ID token (signature, iss, aud,
  // nonce, and auth_time against max_age when one was asked for).
  async authorization_code(config, input) {
    const tokens = await client.authorizationCodeGrant(config, new URL(input.callbackUrl), {
      pkceCodeVerifier: input.codeVerifier,
      expectedState: input.state,
      expectedNonce: input.nonce,
      maxAge: input.maxAge ?? undefined,
      idTokenExpected: true,
    });
    return { tokens, claims: tokens.claims() };
  },

  async refresh(config, input) {
    const tokens = await client.refreshTokenGrant(config, input.refreshToken);
    return { tokens, claims: tokens.claims() ?? null };
  },

  async userinfo(config, input) {
    return { userinfo: await client.fetchUserInfo(config, input.accessToken, input.expectedSubject) };
  },

  // OpenID Connect RP-Initiated Logout 1.0 §2.
  async end_session_url(config, input) {
    return { url: client.buildEndSessionUrl(config, input.parameters).href };
  },
};

async function clientAuthentication({ auth, secret, privateJwk }) {
  switch (auth) {
    case 'client_secret_basic':
      return client.ClientSecretBasic(secret);
    case 'client_secret_post':
      return client.ClientSecretPost(secret);
    case 'private_key_jwt': {
      // The library's assertion: no typ header, aud = the issuer (RFC 7523 §3, as most libraries send it).
      const { kid, ...jwk } = privateJwk;
      const key = await crypto.subtle.importKey('jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
      return client.PrivateKeyJwt({ key, kid });
    }
    case 'none':
      return client.None();
    default:
      throw new Error(`unknown client authentication method ${auth}`);
  }
}

function jwtPayload(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

function describe(error) {
  // An OAuth error arrives in the body (ResponseBodyError), the redirect (AuthorizationResponseError), or a
  // WWW-Authenticate challenge (a 401 from the token endpoint, RFC 6749 §5.2: its parameters are in cause).
  const challenge = Array.isArray(error.cause) ? error.cause[0]?.parameters : undefined;
  return {
    name: error.name,
    code: error.code,
    message: error.message,
    error: error.error ?? challenge?.error ?? error.cause?.error,
    error_description: error.error_description ?? challenge?.error_description ?? error.cause?.error_description,
    status: error.status ?? error.cause?.status,
    cause: error.cause instanceof Error ? error.cause.message : undefined,
  };
}

async function answer({ step: name, ...input }) {
  const step = steps[name];
  if (!step) {
    throw new Error(`unknown step ${name} (one of ${Object.keys(steps).join(', ')})`);
  }

  try {
    // Loopback over plain HTTP: the one thing relaxed, and only because the tests' server has no certificate.
    const config = await client.discovery(new URL(input.issuer), input.client.id, undefined,
      await clientAuthentication(input.client), { execute: [client.allowInsecureRequests] });
    return { ok: true, ...(await step(config, input)) };
  } catch (error) {
    return { ok: false, error: describe(error) };
  }
}

for await (const line of readline.createInterface({ input: process.stdin })) {
  if (line.trim()) {
    process.stdout.write(JSON.stringify(await answer(JSON.parse(line))) + '\n');
  }
}
