using System.Buffers.Text;
using System.Security.Cryptography;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Server;
using OpenIddict.Validation;

namespace Identity.Server.Keys;

/// <summary>
/// OpenIddict reads its keys from options fixed at start; these handlers give it the <see cref="SigningKeyRing"/>'s keys
/// instead, so that a key created, activated or retired while the server runs is honoured at once.
/// </summary>
public static class KeyRingHandlers
{
    /// <summary>Tokens presented to Identity (codes, refresh tokens, <c>id_token_hint</c>, introspection) validate against every live key.</summary>
    public static OpenIddictServerHandlerDescriptor ServerValidation { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<OpenIddictServerEvents.ValidateTokenContext>()
            .UseSingletonHandler<ServerTokenKeys>()
            .SetOrder(OpenIddictServerHandlers.Protection.ResolveTokenValidationParameters.Descriptor.Order + 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    /// <summary>Identity's own APIs (admin, sync) validate access tokens against every live key.</summary>
    public static OpenIddictValidationHandlerDescriptor LocalValidation { get; } =
        OpenIddictValidationHandlerDescriptor.CreateBuilder<OpenIddictValidationEvents.ValidateTokenContext>()
            .UseSingletonHandler<ValidationTokenKeys>()
            .SetOrder(OpenIddictValidationHandlers.Protection.ResolveTokenValidationParameters.Descriptor.Order + 1)
            .SetType(OpenIddictValidationHandlerType.Custom)
            .Build();

    /// <summary>The JWKS lists the ring's published keys: the next ones ahead of use, the active ones, the previous ones.</summary>
    public static OpenIddictServerHandlerDescriptor Jwks { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<OpenIddictServerEvents.HandleJsonWebKeySetRequestContext>()
            .UseSingletonHandler<PublishedKeys>()
            .SetOrder(OpenIddictServerHandlers.Discovery.AttachSigningKeys.Descriptor.Order + 1)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    private sealed class ServerTokenKeys(SigningKeyRing ring) : IOpenIddictServerHandler<OpenIddictServerEvents.ValidateTokenContext>
    {
        public ValueTask HandleAsync(OpenIddictServerEvents.ValidateTokenContext context)
        {
            UseRing(context.TokenValidationParameters, ring, internalTokens: true);
            return ValueTask.CompletedTask;
        }
    }

    private sealed class ValidationTokenKeys(SigningKeyRing ring) : IOpenIddictValidationHandler<OpenIddictValidationEvents.ValidateTokenContext>
    {
        public ValueTask HandleAsync(OpenIddictValidationEvents.ValidateTokenContext context)
        {
            UseRing(context.TokenValidationParameters, ring, internalTokens: false);
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>
    /// Keys by the token's <c>kid</c>, read again from the database when the <c>kid</c> is not known here yet; the keys
    /// OpenIddict's options held at start are dropped. A token Identity did not issue — a client's <c>private_key_jwt</c>
    /// assertion, which OpenIddict checks against the client's own JWKS through a key resolver of its own — is left alone.
    /// The internal HS256 keys (decision 0090) verify only OpenIddict's private token types (<c>typ</c> <c>oi_…</c>: codes,
    /// refresh tokens), and only where the server reads its own tokens: an access or ID token is never accepted with them.
    /// </summary>
    private static void UseRing(TokenValidationParameters parameters, SigningKeyRing ring, bool internalTokens)
    {
        if (parameters.IssuerSigningKeyResolver is not null)
        {
            return;
        }

        parameters.IssuerSigningKeys = null;
        parameters.TokenDecryptionKeys = null;
        parameters.IssuerSigningKeyResolver = (_, token, kid, _) => ring.KeysFor(kid,
            internalTokens && IsInternal(token) ? KeyUse.InternalVerification : KeyUse.Verification);
        parameters.TokenDecryptionKeyResolver = (_, _, kid, _) => ring.KeysFor(kid, KeyUse.Decryption);
    }

    /// <summary>
    /// OpenIddict types the tokens only the server itself reads <c>oi_…+jwt</c> (<c>oi_auc+jwt</c> for a code,
    /// <c>oi_reft+jwt</c> for a refresh token); access tokens are <c>at+jwt</c> (RFC 9068 §2.1) and ID tokens <c>JWT</c>.
    /// </summary>
    public static bool IsInternal(SecurityToken? token) =>
        token is JsonWebToken { Typ: { } typ } && typ.StartsWith("oi_", StringComparison.Ordinal);

    private sealed class PublishedKeys(SigningKeyRing ring) : IOpenIddictServerHandler<OpenIddictServerEvents.HandleJsonWebKeySetRequestContext>
    {
        public async ValueTask HandleAsync(OpenIddictServerEvents.HandleJsonWebKeySetRequestContext context)
        {
            // A key created on another replica (a rotation on demand) is listed within seconds, not CheckInterval.
            await ring.RefreshIfStaleAsync(context.CancellationToken);
            context.Keys.Clear();
            foreach (var key in ring.PublishedKeys)
            {
                context.Keys.Add(PublicJwk(key));
            }
        }

        /// <summary>The public half only (RFC 7517 §4, RFC 7518 §6.2.1 and §6.3.1): never a private parameter.</summary>
        private static JsonWebKey PublicJwk(RingKey key)
        {
            var jwk = new JsonWebKey { Use = JsonWebKeyUseNames.Sig, Alg = key.Algorithm, Kid = key.KeyId };
            switch (key.Signing!.Key)
            {
                case RsaSecurityKey { Rsa: { } rsa }:
                    var rsaParameters = rsa.ExportParameters(includePrivateParameters: false);
                    jwk.Kty = JsonWebAlgorithmsKeyTypes.RSA;
                    jwk.E = Base64Url.EncodeToString(rsaParameters.Exponent);
                    jwk.N = Base64Url.EncodeToString(rsaParameters.Modulus);
                    break;
                case ECDsaSecurityKey { ECDsa: { } ec }:
                    var ecParameters = ec.ExportParameters(includePrivateParameters: false);
                    jwk.Kty = JsonWebAlgorithmsKeyTypes.EllipticCurve;
                    jwk.Crv = JsonWebKeyECTypes.P256;
                    jwk.X = Base64Url.EncodeToString(ecParameters.Q.X);
                    jwk.Y = Base64Url.EncodeToString(ecParameters.Q.Y);
                    break;
                default:
                    throw new CryptographicException($"Key {key.KeyId} cannot be published.");
            }

            return jwk;
        }
    }
}
