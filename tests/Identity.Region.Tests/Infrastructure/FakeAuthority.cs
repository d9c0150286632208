using System.Security.Claims;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Region.Tests.Infrastructure;

/// <summary>
/// Identity's discovery document and JWKS on a real Kestrel socket, with signing keys made here; it mints access tokens
/// as a test asks (right or wrong in one respect), can be taken down (503) and can rotate its key.
/// </summary>
public sealed class FakeAuthority : IAsyncDisposable
{
    public const string Audience = "https://orders.eu.example";

    private readonly WebApplication _app;
    private readonly List<(string Kid, SecurityKey Key, string Algorithm)> _published = [];
    private int _jwksRequests;

    private FakeAuthority(WebApplication app) => _app = app;

    public Uri Authority => new(_app.Urls.Single().TrimEnd('/') + "/");

    public string Issuer => Authority.AbsoluteUri;

    /// <summary>When true, discovery and the JWKS answer 503.</summary>
    public bool Down { get; set; }

    public int JwksRequests => Volatile.Read(ref _jwksRequests);

    /// <summary>The key that signs by default: the last published.</summary>
    public (string Kid, SecurityKey Key, string Algorithm) Signing => _published[^1];

    public static async Task<FakeAuthority> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var fake = new FakeAuthority(app);
        fake._published.Add(("rs-1", new RsaSecurityKey(RSA.Create(2048)) { KeyId = "rs-1" }, SecurityAlgorithms.RsaSha256));
        fake._published.Add(("es-1", new ECDsaSecurityKey(ECDsa.Create(ECCurve.NamedCurves.nistP256)) { KeyId = "es-1" }, SecurityAlgorithms.EcdsaSha256));
        app.MapGet("/.well-known/openid-configuration", () => fake.Down
            ? Results.StatusCode(503)
            : Results.Json(new { issuer = fake.Issuer, jwks_uri = fake.Issuer + "jwks" }));
        app.MapGet("/jwks", () =>
        {
            Interlocked.Increment(ref fake._jwksRequests);
            return fake.Down ? Results.StatusCode(503) : Results.Text(fake.Jwks(), "application/json");
        });
        await app.StartAsync();
        return fake;
    }

    /// <summary>Publishes a new ES256 key and signs with it from now on (the old keys stay published unless told).</summary>
    public string Rotate(bool withdrawOld = false)
    {
        var kid = "es-" + (_published.Count + 1);
        if (withdrawOld)
        {
            _published.Clear();
        }

        _published.Add((kid, new ECDsaSecurityKey(ECDsa.Create(ECCurve.NamedCurves.nistP256)) { KeyId = kid }, SecurityAlgorithms.EcdsaSha256));
        return kid;
    }

    /// <summary>
    /// An access token as Identity issues it (RFC 9068), bound to <paramref name="boundTo"/> when given; each
    /// optional argument makes it wrong in one way.
    /// </summary>
    public string Token(
        X509Certificate2? boundTo = null, string? audience = null, string? issuer = null, string type = "at+jwt",
        DateTimeOffset? expires = null, DateTimeOffset? now = null, SecurityKey? key = null, string? algorithm = null, string? kid = null)
    {
        var issuedAt = now ?? DateTimeOffset.UtcNow;
        var signing = Signing;
        var claims = new Dictionary<string, object>
        {
            ["client_id"] = "orders-us",
            ["sub"] = "orders-us",
            ["scope"] = "orders.read",
            ["jti"] = Guid.NewGuid().ToString("N"),
        };
        if (boundTo is not null)
        {
            claims["cnf"] = new Dictionary<string, object> { ["x5t#S256"] = TestCertificates.Thumbprint(boundTo) };
        }

        var signingKey = key ?? signing.Key;
        if (kid is not null)
        {
            signingKey.KeyId = kid;
        }

        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer ?? Issuer,
            Audience = audience ?? Audience,
            TokenType = type,
            IssuedAt = issuedAt.UtcDateTime,
            NotBefore = issuedAt.UtcDateTime,
            Expires = (expires ?? issuedAt.AddMinutes(10)).UtcDateTime,
            Claims = claims,
            Subject = new ClaimsIdentity(),
            SigningCredentials = new SigningCredentials(signingKey, algorithm ?? signing.Algorithm),
        });
    }

    private string Jwks() => System.Text.Json.JsonSerializer.Serialize(new
    {
        keys = _published.Select(p => p.Key switch
        {
            RsaSecurityKey rsa => (object)new
            {
                kty = "RSA", use = "sig", alg = p.Algorithm, kid = p.Kid,
                n = Base64UrlEncoder.Encode(rsa.Rsa.ExportParameters(false).Modulus), e = Base64UrlEncoder.Encode(rsa.Rsa.ExportParameters(false).Exponent),
            },
            ECDsaSecurityKey ec => new
            {
                kty = "EC", use = "sig", alg = p.Algorithm, kid = p.Kid, crv = "P-256",
                x = Base64UrlEncoder.Encode(ec.ECDsa.ExportParameters(false).Q.X), y = Base64UrlEncoder.Encode(ec.ECDsa.ExportParameters(false).Q.Y),
            },
            _ => throw new NotSupportedException(),
        }),
    });

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
