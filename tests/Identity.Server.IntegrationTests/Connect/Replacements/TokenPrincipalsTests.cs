using System.Security.Claims;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Identity.Server.Connect.Replacements;
using Microsoft.Extensions.Logging.Abstractions;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.IntegrationTests.Connect.Replacements;

/// <summary>
/// <see cref="PrepareAccessTokenClaims"/> and <see cref="PrepareIdentityTokenClaims"/> stand in for OpenIddict's
/// <c>PrepareAccessTokenPrincipal</c> and <c>PrepareIdentityTokenPrincipal</c> (decision 0103): from the same sign-in,
/// each token's principal is OpenIddict's, claim for claim (type, value, value type, issuers, properties, order).
/// </summary>
public sealed class TokenPrincipalsTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeSeconds(1764900000);

    /// <summary>The client's certificate of an mTLS token request (RFC 8705), the same for both handlers.</summary>
    private static readonly X509Certificate2 Certificate = CreateCertificate();

    public static TheoryData<string> Requests => ["code", "refresh narrowed", "refresh", "certificate", "authorize"];

    [Theory]
    [MemberData(nameof(Requests))]
    public async Task AccessToken_SameSignIn_SamePrincipalAsOpenIddict(string request)
    {
        var openIddict = Context(request);
        await new OpenIddictServerHandlers.PrepareAccessTokenPrincipal().HandleAsync(openIddict);
        var ours = Context(request);

        await new PrepareAccessTokenClaims(null!).HandleAsync(ours);

        Assert.Equal(Describe(openIddict.AccessTokenPrincipal!), Describe(ours.AccessTokenPrincipal!));
    }

    [Theory]
    [MemberData(nameof(Requests))]
    public async Task IdentityToken_SameSignIn_SamePrincipalAsOpenIddict(string request)
    {
        var openIddict = Context(request);
        await new OpenIddictServerHandlers.PrepareIdentityTokenPrincipal().HandleAsync(openIddict);
        var ours = Context(request);

        await new PrepareIdentityTokenClaims(null!).HandleAsync(ours);

        Assert.Equal(Describe(openIddict.IdentityTokenPrincipal!), Describe(ours.IdentityTokenPrincipal!));
    }

    [Fact]
    public async Task AccessToken_DestinationsParsedOnce_StillReadPerClaim()
    {
        // The cache of parsed destinations is keyed by the JSON itself: a claim whose destinations differ is judged on its own.
        var context = Context("code");
        context.Principal!.Identities.First().AddClaim(new Claim("only_id", "x").SetDestinations(Destinations.IdentityToken));
        context.Principal!.Identities.First().AddClaim(new Claim("both", "y").SetDestinations(Destinations.IdentityToken, Destinations.AccessToken));

        await new PrepareAccessTokenClaims(null!).HandleAsync(context);

        Assert.Null(context.AccessTokenPrincipal!.FindFirst("only_id"));
        Assert.Equal("y", context.AccessTokenPrincipal!.FindFirst("both")?.Value);
        Assert.All(context.AccessTokenPrincipal!.Claims, claim => Assert.DoesNotContain(".destinations", claim.Properties.Keys));
    }

    private static ProcessSignInContext Context(string kind)
    {
        var options = new OpenIddictServerOptions
        {
            Issuer = new Uri("https://issuer.test/"),
            TimeProvider = new FixedTime(),
            UseClientCertificateBoundAccessTokens = kind == "certificate",
        };
        var transaction = new OpenIddictServerTransaction
        {
            Options = options,
            Logger = NullLogger.Instance,
            EndpointType = kind == "authorize" ? OpenIddictServerEndpointType.Authorization : OpenIddictServerEndpointType.Token,
            Request = kind switch
            {
                "authorize" => new OpenIddictRequest { ClientId = "web", Nonce = "n-authorize", Scope = "openid profile" },
                "refresh narrowed" => new OpenIddictRequest { ClientId = "web", GrantType = GrantTypes.RefreshToken, Scope = "openid" },
                "refresh" => new OpenIddictRequest { ClientId = "web", GrantType = GrantTypes.RefreshToken },
                _ => new OpenIddictRequest { ClientId = "web", GrantType = GrantTypes.AuthorizationCode, Code = "code" },
            },
        };
        if (kind == "certificate")
        {
            transaction.RemoteCertificate = Certificate;
        }

        return new ProcessSignInContext(transaction) { Principal = SignIn() };
    }

    /// <summary>A sign-in as Identity builds one: user claims with destinations, session claims, OpenIddict's private claims.</summary>
    private static ClaimsPrincipal SignIn()
    {
        var identity = new ClaimsIdentity("OpenIddict.Server.AspNetCore", Claims.Name, Claims.Role) { Label = "user" };
        identity.AddClaim(new Claim(Claims.Subject, "user-1"));
        identity.AddClaim(new Claim(Claims.Name, "Ada").SetDestinations(Destinations.AccessToken, Destinations.IdentityToken));
        identity.AddClaim(new Claim(Claims.Email, "ada@example.test").SetDestinations(Destinations.IdentityToken));
        identity.AddClaim(new Claim(Claims.Role, "admin").SetDestinations(Destinations.AccessToken));
        identity.AddClaim(new Claim("account", "{\"id\":\"a1\"}", "JSON").SetDestinations(Destinations.IdentityToken));
        identity.AddClaim(new Claim(Claims.AuthenticationTime, "1764890000", ClaimValueTypes.Integer64).SetDestinations(Destinations.IdentityToken));
        identity.AddClaim(new Claim("sid", "s-1").SetDestinations(Destinations.IdentityToken, Destinations.AccessToken));
        identity.AddClaim(new Claim("no_destination", "dropped"));
        identity.AddClaim(new Claim(Claims.JwtId, "old-jti").SetDestinations(Destinations.AccessToken));
        identity.AddClaim(new Claim("OI_custom", "private").SetDestinations(Destinations.AccessToken));
        var issued = new Claim("issued_elsewhere", "v", ClaimValueTypes.String, "https://other.test/", "https://origin.test/");
        issued.Properties["note"] = "kept";
        identity.AddClaim(issued.SetDestinations(Destinations.AccessToken));
        var principal = new ClaimsPrincipal(identity);
        principal.SetScopes(Scopes.OpenId, Scopes.Profile, Scopes.OfflineAccess);
        principal.SetResources("api-1", "api-2");
        principal.SetPresenters("web");
        principal.SetAuthorizationId("authorization-1");
        principal.SetTokenId("code-entry");
        principal.SetClaim(Claims.Private.Nonce, "n-code");
        principal.SetAccessTokenLifetime(TimeSpan.FromMinutes(5));
        principal.SetIdentityTokenLifetime(TimeSpan.FromMinutes(7));
        return principal;
    }

    private static string[] Describe(ClaimsPrincipal principal) =>
    [
        .. principal.Identities.Select(identity =>
            $"identity {identity.AuthenticationType}|{identity.NameClaimType}|{identity.RoleClaimType}|{identity.Label}"),
        .. principal.Claims.Select(claim =>
            $"{claim.Type}|{claim.Value}|{claim.ValueType}|{claim.Issuer}|{claim.OriginalIssuer}|"
            + string.Join(",", claim.Properties.Select(property => $"{property.Key}={property.Value}"))),
    ];

    private static X509Certificate2 CreateCertificate()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return new CertificateRequest("CN=client", key, HashAlgorithmName.SHA256).CreateSelfSigned(Now.AddDays(-1), Now.AddDays(1));
    }

    private sealed class FixedTime : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => Now;
    }
}
