using System.Net;
using System.Text.Json;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.IdentityModel.Tokens;
using Xunit.Abstractions;

namespace Identity.Server.IntegrationTests.Connect;

/// <summary>
/// The exact claims of the ID token and the access token a relying party receives from an SSO round trip and from a
/// refresh, for a member of a customer account with a policy: the principal the tokens are built from may be built
/// more cheaply (issue 18), never with a claim more or less, nor a value changed.
/// </summary>
public sealed class TokenClaimSetTests(ServerFixture<SqliteTestDatabase> fixture, ITestOutputHelper output)
    : IClassFixture<ServerFixture<SqliteTestDatabase>>
{
    private const string Redirect = ServerFixture<SqliteTestDatabase>.EuApp + "/signin-oidc";

    [Theory]
    [InlineData("openid", "", "")]
    [InlineData("openid profile", "name preferred_username account", "name preferred_username")]
    [InlineData("openid email", "email email_verified", "")]
    [InlineData("openid profile email offline_access", "name preferred_username account email email_verified",
        "name preferred_username")]
    public async Task SsoRoundTripAndRefresh_TokensCarryExactlyTheirClaims(string scope, string idTokenUserClaims, string accessTokenUserClaims)
    {
        var email = await fixture.UserInAccountWithPolicyAsync("""{"mfa":{"requirement":"optional"}}""", fixture.UserPassword);
        var browser = new BrowserSession(fixture.Server);
        var (verifier, challenge) = BrowserSession.Pkce();
        var callback = await browser.AuthorizeAsync(
            BrowserSession.AuthorizeUrl("web-eu", Redirect, challenge, ("scope", scope)), email, fixture.UserPassword);
        var first = await ResponseAssert.StatusAsync(
            await fixture.Client.RedeemCodeAsync(BrowserSession.Query(callback)["code"], verifier, Redirect, ("web-eu", fixture.WebSecret)),
            HttpStatusCode.OK);

        // The SSO round trip proper: the session already exists, no page is shown.
        (verifier, challenge) = BrowserSession.Pkce();
        var url = BrowserSession.AuthorizeUrl("web-eu", Redirect, challenge, ("scope", scope));
        var nonce = BrowserSession.Query(new Uri("http://localhost" + url))["nonce"];
        callback = BrowserSession.Location(await browser.GetAsync(url));
        var tokens = await ResponseAssert.StatusAsync(
            await fixture.Client.RedeemCodeAsync(BrowserSession.Query(callback)["code"], verifier, Redirect, ("web-eu", fixture.WebSecret)),
            HttpStatusCode.OK);

        var idToken = AssertIdToken(tokens, scope, idTokenUserClaims, email, nonce);
        AssertAccessToken(tokens, scope, accessTokenUserClaims, idToken);
        // The same session: the sign-in's claims come from the SSO cookie, unchanged.
        Assert.False(string.IsNullOrEmpty(idToken.GetProperty("sid").GetString()));
        Assert.Equal(Payload(first, "id_token").GetProperty("sid").GetString(), idToken.GetProperty("sid").GetString());
        Assert.Equal(Payload(first, "id_token").GetProperty("auth_time").GetInt64(), idToken.GetProperty("auth_time").GetInt64());

        if (scope.Contains("offline_access", StringComparison.Ordinal))
        {
            var refreshed = await ResponseAssert.StatusAsync(await fixture.Client.PostFormAsync("/connect/token",
                [new("grant_type", "refresh_token"), new("refresh_token", tokens.GetProperty("refresh_token").GetString()!)],
                ("web-eu", fixture.WebSecret)), HttpStatusCode.OK);
            // OpenIddict carries the authorization request's nonce into the refreshed ID token too.
            var refreshedId = AssertIdToken(refreshed, scope, idTokenUserClaims, email, nonce);
            AssertAccessToken(refreshed, scope, accessTokenUserClaims, refreshedId);
            Assert.Equal(idToken.GetProperty("sid").GetString(), refreshedId.GetProperty("sid").GetString());
            Assert.Equal(idToken.GetProperty("auth_time").GetInt64(), refreshedId.GetProperty("auth_time").GetInt64());
        }
    }

    private JsonElement AssertIdToken(JsonElement tokens, string scope, string userClaims, string email, string nonce)
    {
        var payload = Payload(tokens, "id_token");
        string[] expected =
        [
            "iss", "exp", "iat", "aud", "sub", "azp", "oi_au_id", "at_hash",
            "sid", "auth_time", "amr", "acr", "nonce", .. Words(userClaims),
        ];
        output.WriteLine($"id_token ({scope}): {payload}");
        Assert.Equal(expected.Order(StringComparer.Ordinal), payload.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal));

        Assert.Equal(ServerFixture<SqliteTestDatabase>.Issuer, payload.GetProperty("iss").GetString());
        Assert.Equal("web-eu", payload.GetProperty("aud").GetString());
        Assert.Equal("web-eu", payload.GetProperty("azp").GetString());
        Assert.Equal(["pwd"], payload.GetProperty("amr").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("urn:identity:acr:pwd", payload.GetProperty("acr").GetString());
        Assert.Equal(nonce, payload.GetProperty("nonce").GetString());

        if (userClaims.Contains("account", StringComparison.Ordinal))
        {
            var account = payload.GetProperty("account");
            Assert.Equal(["id", "name", "role"], account.EnumerateObject().Select(p => p.Name));
            Assert.Equal("Policy Co", account.GetProperty("name").GetString());
            Assert.Equal("member", account.GetProperty("role").GetString());
            Assert.Equal(email, payload.GetProperty("preferred_username").GetString());
            Assert.Equal(email, payload.GetProperty("name").GetString());
        }

        if (userClaims.Contains("email", StringComparison.Ordinal))
        {
            Assert.Equal(email, payload.GetProperty("email").GetString());
            // A JSON boolean (Core §5.1); the admin API creates users whose address is not yet confirmed.
            Assert.Equal(JsonValueKind.False, payload.GetProperty("email_verified").ValueKind);
        }

        return payload;
    }

    private void AssertAccessToken(JsonElement tokens, string scope, string userClaims, JsonElement idToken)
    {
        var payload = Payload(tokens, "access_token");
        output.WriteLine($"access_token ({scope}): {payload}");
        string[] expected = ["iss", "exp", "iat", "jti", "sub", "client_id", "scope", "oi_prst", "oi_au_id", .. Words(userClaims)];
        Assert.Equal(expected.Order(StringComparer.Ordinal), payload.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal));

        Assert.Equal(idToken.GetProperty("sub").GetString(), payload.GetProperty("sub").GetString());
        Assert.Equal(idToken.GetProperty("oi_au_id").GetString(), payload.GetProperty("oi_au_id").GetString());
        Assert.Equal("web-eu", payload.GetProperty("client_id").GetString());
        Assert.Equal(scope, payload.GetProperty("scope").GetString());
        foreach (var claim in Words(userClaims))
        {
            Assert.Equal(idToken.GetProperty(claim).GetString(), payload.GetProperty(claim).GetString());
        }
    }

    private static string[] Words(string text) => text.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    private static JsonElement Payload(JsonElement tokens, string name) =>
        JsonDocument.Parse(Base64UrlEncoder.Decode(tokens.GetProperty(name).GetString()!.Split('.')[1])).RootElement;
}
