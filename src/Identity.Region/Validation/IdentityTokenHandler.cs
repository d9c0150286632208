using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Region.Validation;

/// <summary>
/// IdentityModel's <see cref="JsonWebTokenHandler"/> with Identity's keys and two additions: a token signed by an
/// unknown <c>kid</c> is checked again once the keys were fetched anew (rotation), and a token already verified is
/// remembered by its SHA-256 so that its signature is not verified again — its lifetime, its key still being
/// trusted, and (in <see cref="CertificateBinding"/>) its binding are still checked on every call.
/// </summary>
internal sealed class IdentityTokenHandler : JsonWebTokenHandler
{
    private readonly IdentitySigningKeys _keys;
    private readonly TimeProvider _time;
    private readonly TimeSpan _clockSkew;
    private readonly int _cacheSize;
    private readonly ConcurrentDictionary<TokenHash, Verified> _verified = new();

    public IdentityTokenHandler(IdentitySigningKeys keys, TimeProvider time, IdentityTokenValidationOptions options)
    {
        _keys = keys;
        _time = time;
        _clockSkew = options.ClockSkew;
        _cacheSize = options.ValidatedTokenCacheSize;
        MapInboundClaims = false;
    }

    /// <summary>The checks of an Identity access token for this service (RFC 9068 §4), keys resolved from <see cref="IdentitySigningKeys"/>.</summary>
    public static TokenValidationParameters Parameters(IdentityTokenValidationOptions options, IdentitySigningKeys keys, TimeProvider time) => new()
    {
        ValidIssuer = options.Issuer,
        ValidAudiences = options.Audiences,
        // RFC 9068 §4: the resource server MUST check that typ is at+jwt (or application/at+jwt): an ID token or a
        // client assertion signed by the same key is not an access token.
        ValidTypes = ["at+jwt", "application/at+jwt"],
        // Asymmetric algorithms only: never none, never an HMAC keyed with a public key.
        ValidAlgorithms = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"],
        RequireSignedTokens = true,
        RequireExpirationTime = true,
        ClockSkew = options.ClockSkew,
        LifetimeValidator = (notBefore, expires, _, parameters) => LifetimeIsValid(notBefore, expires, time.GetUtcNow().UtcDateTime, parameters.ClockSkew),
        IssuerSigningKeyResolver = (_, _, kid, _) => keys.Current is { } current
            ? kid is not null ? current.ByKeyId.TryGetValue(kid, out var key) ? [key] : [] : current.All
            : [],
        NameClaimType = "sub",
        RoleClaimType = "role",
    };

    public override async Task<TokenValidationResult> ValidateTokenAsync(string token, TokenValidationParameters validationParameters)
    {
        if (_keys.Current is null)
        {
            return Refused(new IdentityKeysUnavailableException(_keys.LastFetchedAt));
        }

        var hash = _cacheSize > 0 ? TokenHash.Of(token) : default;
        if (_cacheSize > 0 && _verified.TryGetValue(hash, out var verified))
        {
            return Repeated(verified, validationParameters);
        }

        var result = await base.ValidateTokenAsync(token, validationParameters);
        if (!result.IsValid && result.Exception is SecurityTokenSignatureKeyNotFoundException
            && await _keys.RefreshForUnknownKeyAsync(KeyId(result.SecurityToken ?? TryRead(token)), CancellationToken.None))
        {
            result = await base.ValidateTokenAsync(token, validationParameters);
        }

        if (result.IsValid && _cacheSize > 0 && result.SecurityToken is JsonWebToken jwt)
        {
            Remember(hash, new Verified(result.ClaimsIdentity, jwt, jwt.ValidTo, jwt.ValidFrom, jwt.Kid));
        }

        return result;
    }

    private TokenValidationResult Repeated(Verified verified, TokenValidationParameters parameters)
    {
        var now = _time.GetUtcNow().UtcDateTime;
        if (!LifetimeIsValid(verified.NotBefore, verified.Expires, now, parameters.ClockSkew))
        {
            return Refused(new SecurityTokenExpiredException($"The token expired at {verified.Expires:O}.") { Expires = verified.Expires });
        }

        // A key Identity withdrew (rotation with revocation) no longer vouches for the tokens it signed.
        if (verified.KeyId is not null && _keys.Current?.ByKeyId.ContainsKey(verified.KeyId) != true)
        {
            return Refused(new SecurityTokenSignatureKeyNotFoundException($"The key {verified.KeyId} that signed the token is no longer Identity's."));
        }

        // A copy: the caller's claims transformation may add claims to it.
        return new TokenValidationResult
        {
            IsValid = true,
            ClaimsIdentity = verified.Identity.Clone(),
            SecurityToken = verified.Token,
            Issuer = verified.Token.Issuer,
            TokenType = verified.Token.Typ,
        };
    }

    private void Remember(TokenHash hash, Verified verified)
    {
        if (_verified.Count >= _cacheSize)
        {
            var now = _time.GetUtcNow().UtcDateTime;
            foreach (var entry in _verified)
            {
                if (entry.Value.Expires + _clockSkew < now)
                {
                    _verified.TryRemove(entry);
                }
            }

            // Still full of live tokens: start over rather than track recency on the hot path.
            if (_verified.Count >= _cacheSize)
            {
                _verified.Clear();
            }
        }

        _verified[hash] = verified;
    }

    private static bool LifetimeIsValid(DateTime? notBefore, DateTime? expires, DateTime now, TimeSpan skew) =>
        expires is { } exp && now <= exp + skew && (notBefore is not { } nbf || now + skew >= nbf);

    private static TokenValidationResult Refused(Exception exception) => new() { IsValid = false, Exception = exception };

    private static string? KeyId(SecurityToken? token) => (token as JsonWebToken)?.Kid;

    private static JsonWebToken? TryRead(string token)
    {
        try
        {
            return new JsonWebToken(token);
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    private sealed record Verified(System.Security.Claims.ClaimsIdentity Identity, JsonWebToken Token, DateTime Expires, DateTime NotBefore, string? KeyId);

    /// <summary>A token's SHA-256: the cache never holds the token itself.</summary>
    private readonly record struct TokenHash(UInt128 High, UInt128 Low)
    {
        public static TokenHash Of(string token)
        {
            Span<byte> hash = stackalloc byte[32];
            var length = Encoding.UTF8.GetMaxByteCount(token.Length);
            var buffer = length <= 4096 ? stackalloc byte[length] : new byte[length];
            SHA256.HashData(buffer[..Encoding.UTF8.GetBytes(token, buffer)], hash);
            var halves = MemoryMarshal.Cast<byte, UInt128>(hash);
            return new TokenHash(halves[0], halves[1]);
        }
    }
}

/// <summary>The keys are too old to trust (Identity unreachable longer than MaxKeyStaleness), or were never fetched.</summary>
public sealed class IdentityKeysUnavailableException(DateTimeOffset? fetchedAt) : SecurityTokenException(
    fetchedAt is { } at
        ? $"Identity's signing keys were last fetched at {at:O}, longer ago than IdentityTokenValidation:MaxKeyStaleness: tokens are refused."
        : "Identity's signing keys have not been fetched: tokens are refused.");
