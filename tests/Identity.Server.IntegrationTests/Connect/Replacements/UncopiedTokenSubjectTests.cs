using System.Security.Claims;
using Identity.Server.Connect.Replacements;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.IdentityModel.JsonWebTokens;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace Identity.Server.IntegrationTests.Connect.Replacements;

/// <summary>
/// <see cref="UncopiedTokenSubject"/> stands in for OpenIddict's <c>AttachTokenSubject</c> (decision 0102): for every
/// kind of token Identity issues, the claims it hands IdentityModel, and the payload IdentityModel writes from them, are
/// OpenIddict's own, for a principal carrying each claim OpenIddict treats apart.
/// </summary>
public sealed class UncopiedTokenSubjectTests
{
    [Theory]
    [InlineData(TokenTypeIdentifiers.AccessToken)]
    [InlineData(TokenTypeIdentifiers.IdentityToken)]
    [InlineData(TokenTypeIdentifiers.Private.AuthorizationCode)]
    [InlineData(TokenTypeIdentifiers.RefreshToken)]
    public async Task HandleAsync_EachTokenType_SameClaimsAndPayloadAsOpenIddict(string tokenType)
    {
        var principal = Principal();
        var openIddict = Context(principal, tokenType);
        await new OpenIddictServerHandlers.Protection.AttachTokenSubject().HandleAsync(openIddict);
        var ours = Context(principal, tokenType);

        await new UncopiedTokenSubject().HandleAsync(ours);

        Assert.Equal(Describe(openIddict), Describe(ours));
        Assert.Equal(Payload(openIddict), Payload(ours));
        Assert.NotEmpty(Describe(ours));
    }

    [Fact]
    public async Task HandleAsync_PrincipalChangedAfterwards_SubjectKeepsTheClaimsItTook()
    {
        // OpenIddict's copy is taken once: a claim added to the token's principal later is not in the payload.
        var principal = Principal();
        var context = Context(principal, TokenTypeIdentifiers.AccessToken);
        await new UncopiedTokenSubject().HandleAsync(context);

        principal.SetClaim("late", "value");

        Assert.DoesNotContain(context.SecurityTokenDescriptor.Subject.Claims, claim => claim.Type == "late");
    }

    private static ClaimsPrincipal Principal()
    {
        var identity = new ClaimsIdentity("test", Claims.Name, Claims.Role);
        identity.AddClaim(new Claim(Claims.Subject, "user-1"));
        identity.AddClaim(new Claim(Claims.Name, "Ada").SetDestinations(Destinations.AccessToken, Destinations.IdentityToken));
        identity.AddClaim(new Claim(Claims.Email, "ada@example.test").SetDestinations(Destinations.IdentityToken));
        identity.AddClaim(new Claim(Claims.AuthenticationTime, "1764900000", ClaimValueTypes.Integer64));
        identity.AddClaim(new Claim(Claims.AuthenticationMethodReference, "pwd"));
        identity.AddClaim(new Claim(Claims.AuthenticationMethodReference, "mfa"));
        identity.AddClaim(new Claim("sid", "session-1"));
        // Case matters to OpenIddict's rule: only the exact private claim types are left out.
        identity.AddClaim(new Claim("OI_ISS", "kept"));
        var principal = new ClaimsPrincipal(identity);
        principal.SetScopes(Scopes.OpenId, Scopes.Profile);
        principal.SetAudiences("api-1", "api-2");
        principal.SetResources("api-1");
        principal.SetPresenters("web");
        principal.SetCreationDate(DateTimeOffset.FromUnixTimeSeconds(1764900000));
        principal.SetExpirationDate(DateTimeOffset.FromUnixTimeSeconds(1764903600));
        principal.SetClaim(Claims.Private.Issuer, "https://issuer.test/");
        principal.SetClaim(Claims.Private.TokenType, "access_token");
        principal.SetTokenId("entry-1");
        principal.SetAuthorizationId("authorization-1");
        return principal;
    }

    private static GenerateTokenContext Context(ClaimsPrincipal principal, string tokenType) =>
        new(new OpenIddictServerTransaction { Options = new OpenIddictServerOptions(), Logger = NullLogger.Instance })
        {
            Principal = principal,
            TokenType = tokenType,
        };

    private static string[] Describe(GenerateTokenContext context) =>
        [.. context.SecurityTokenDescriptor.Subject.Claims.Select(claim => $"{claim.Type}|{claim.Value}|{claim.ValueType}|{claim.Issuer}")];

    /// <summary>The unsigned JWT IdentityModel writes from the descriptor (no default dates: both runs write the same instant).</summary>
    private static string Payload(GenerateTokenContext context) =>
        new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(context.SecurityTokenDescriptor);
}
