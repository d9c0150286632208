using System.Net;
using System.Text.Json;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.IntegrationTests.Connect;

/// <summary>
/// OpenID Connect Core §5.3.2 and §5.4: the userinfo response carries the claims about the user that the ID token of
/// the same scopes carries, with the same values, for a member of a customer account (whose profile adds the account).
/// </summary>
public sealed class UserinfoClaimsTests(ServerFixture<SqliteTestDatabase> fixture) : IClassFixture<ServerFixture<SqliteTestDatabase>>
{
    private const string Redirect = ServerFixture<SqliteTestDatabase>.EuApp + "/signin-oidc";

    /// <summary>The ID token's claims about the token or the sign-in (Core §2, §3.1.3.6), not the user; OpenIddict's oi_*.</summary>
    private static readonly HashSet<string> NotAboutTheUser =
        ["iss", "aud", "exp", "iat", "nbf", "jti", "azp", "nonce", "at_hash", "c_hash", "sid", "auth_time", "amr", "acr"];

    [Theory]
    [InlineData("openid")]
    [InlineData("openid profile")]
    [InlineData("openid email")]
    [InlineData("openid profile email")]
    public async Task Userinfo_ForEachScope_CarriesTheUserClaimsOfTheIdToken(string scope)
    {
        var email = await fixture.UserInAccountWithPolicyAsync("""{"mfa":{"requirement":"optional"}}""", fixture.UserPassword);
        var (verifier, challenge) = BrowserSession.Pkce();
        var callback = await new BrowserSession(fixture.Server).AuthorizeAsync(
            BrowserSession.AuthorizeUrl("web-eu", Redirect, challenge, ("scope", scope)), email, fixture.UserPassword);
        var tokens = await ResponseAssert.StatusAsync(
            await fixture.Client.RedeemCodeAsync(BrowserSession.Query(callback)["code"], verifier, Redirect, ("web-eu", fixture.WebSecret)),
            HttpStatusCode.OK);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/connect/userinfo");
        request.Headers.Authorization = new("Bearer", tokens.GetProperty("access_token").GetString());
        var userinfo = await ResponseAssert.StatusAsync(await fixture.Client.SendAsync(request), HttpStatusCode.OK);

        var idToken = JsonDocument.Parse(Base64UrlEncoder.Decode(tokens.GetProperty("id_token").GetString()!.Split('.')[1])).RootElement;
        var aboutTheUser = idToken.EnumerateObject()
            .Where(p => !NotAboutTheUser.Contains(p.Name) && !p.Name.StartsWith("oi_", StringComparison.Ordinal)).ToList();
        Assert.Equal(aboutTheUser.Select(p => p.Name).Order(), userinfo.EnumerateObject().Select(p => p.Name).Order());
        foreach (var claim in aboutTheUser)
        {
            Assert.True(JsonElement.DeepEquals(claim.Value, userinfo.GetProperty(claim.Name)),
                $"'{claim.Name}': ID token {claim.Value}, userinfo {userinfo.GetProperty(claim.Name)}");
        }

        // The account is the profile scope's (Core §5.4 profile: the person's own details; the account is theirs).
        Assert.Equal(scope.Contains("profile", StringComparison.Ordinal), userinfo.TryGetProperty("account", out var account));
        if (scope.Contains("profile", StringComparison.Ordinal))
        {
            Assert.Equal("Policy Co", account.GetProperty("name").GetString());
            Assert.Equal("member", account.GetProperty("role").GetString());
        }
    }
}
