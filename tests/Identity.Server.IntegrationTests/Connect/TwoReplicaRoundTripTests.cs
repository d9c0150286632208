using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using Identity.Server.IntegrationTests.Infrastructure;

namespace Identity.Server.IntegrationTests.Connect;

/// <summary>
/// Issue 18 item 3: with the user and the account served from each replica's own copies (DirectoryCache), replay
/// detection and revocation stay exact across replicas, and a change made at one replica is honoured at the other
/// within Oidc:UserCacheDuration. Two servers, each with its own memory, on one PostgreSQL database.
/// </summary>
public sealed class TwoReplicaRoundTripTests(ServerFixture<PostgresTestDatabase> fixture) : IClassFixture<ServerFixture<PostgresTestDatabase>>
{
    private const string Redirect = ServerFixture<PostgresTestDatabase>.EuApp + "/signin-oidc";
    private const string Password = "Two-Replicas-Round-Trip-5";
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(2);

    private (IdentityServerHost One, IdentityServerHost Two) Replicas() =>
        (fixture.StartServer(Cached), fixture.StartServer(Cached));

    private static void Cached(Dictionary<string, string?> settings) => settings["Oidc:UserCacheDuration"] = "00:00:02";

    [Fact]
    public async Task CodeReplay_IssuedAtOneRedeemedAtOtherReplayedAtFirst_RefusedAndItsTokensRevoked()
    {
        var (one, two) = Replicas();
        var user = await NewUserAsync(one);
        var browser = new BrowserSession(one);
        var (verifier, challenge) = BrowserSession.Pkce();
        var callback = await browser.AuthorizeAsync(BrowserSession.AuthorizeUrl("web-eu", Redirect, challenge, ("scope", "openid profile offline_access")),
            user.Email, Password);

        var tokens = await ResponseAssert.StatusAsync(
            await two.Start().RedeemCodeAsync(callback, verifier, Redirect, ("web-eu", fixture.WebSecret)), HttpStatusCode.OK);
        var accessToken = tokens.GetProperty("access_token").GetString()!;
        var refreshToken = tokens.GetProperty("refresh_token").GetString()!;
        Assert.True(await ActiveAsync(one, accessToken));

        // RFC 6749 §4.1.2: a code used twice is refused, and the tokens issued from it are revoked (§10.5).
        var replay = await ResponseAssert.StatusAsync(
            await one.Start().RedeemCodeAsync(callback, verifier, Redirect, ("web-eu", fixture.WebSecret)), HttpStatusCode.BadRequest);
        Assert.Equal("invalid_grant", replay.GetProperty("error").GetString());
        Assert.False(await ActiveAsync(two, accessToken));
        Assert.False(await ActiveAsync(one, accessToken));
        var refresh = await ResponseAssert.StatusAsync(await RefreshAsync(two, refreshToken), HttpStatusCode.BadRequest);
        Assert.Equal("invalid_grant", refresh.GetProperty("error").GetString());
    }

    [Fact]
    public async Task RefreshReuse_RotatedAtOneReusedAtOther_RefusedAndTheFamilyRevoked()
    {
        var (one, two) = Replicas();
        var user = await NewUserAsync(one);
        var tokens = await RoundTripAsync(new BrowserSession(one), one, user.Email, "openid profile offline_access");
        var original = tokens.GetProperty("refresh_token").GetString()!;

        var rotated = (await ResponseAssert.StatusAsync(await RefreshAsync(one, original), HttpStatusCode.OK));
        var successor = rotated.GetProperty("refresh_token").GetString()!;
        var accessToken = rotated.GetProperty("access_token").GetString()!;

        // RFC 9700 §4.14.2: the rotated token presented again is reuse: refused, and the active one revoked with its family.
        var reuse = await ResponseAssert.StatusAsync(await RefreshAsync(two, original), HttpStatusCode.BadRequest);
        Assert.Equal("invalid_grant", reuse.GetProperty("error").GetString());
        var next = await ResponseAssert.StatusAsync(await RefreshAsync(one, successor), HttpStatusCode.BadRequest);
        Assert.Equal("invalid_grant", next.GetProperty("error").GetString());
        Assert.False(await ActiveAsync(one, accessToken));
    }

    [Fact]
    public async Task UserDisabled_AtOneReplica_NextRoundTripAtOtherRefusedWithinTheWindow()
    {
        var (one, two) = Replicas();
        var user = await NewUserAsync(one);
        var browser = new BrowserSession(two);
        await RoundTripAsync(browser, two, user.Email, "openid profile"); // replica two now holds the user and the account
        var refresh = (await RoundTripAsync(browser, two, user.Email, "openid profile offline_access")).GetProperty("refresh_token").GetString()!;

        await ResponseAssert.StatusAsync(await user.Admin.PostAsync($"/admin/v1/accounts/{user.Account}/users/{user.Id}/disable", null),
            HttpStatusCode.OK);
        var disabledAt = Stopwatch.StartNew();

        // The next round trip at replica two: once its copy is older than the window, the code is refused (the session
        // is ended: authorize sends the person to the login page) and so is the refresh token. Each request is timed from
        // when it was made (its answer may come a second later on a loaded machine); the 3 s beyond the window are for a
        // copy read just before the change and stored just after it.
        while (true)
        {
            var (_, challenge) = BrowserSession.Pkce();
            var madeAfter = disabledAt.Elapsed;
            var response = await browser.GetAsync(BrowserSession.AuthorizeUrl("web-eu", Redirect, challenge, ("scope", "openid profile")));
            if (!BrowserSession.Location(response).OriginalString.StartsWith(Redirect, StringComparison.Ordinal))
            {
                break;
            }

            Assert.True(madeAfter < Window + TimeSpan.FromSeconds(3), $"still issuing codes to a request made {madeAfter} after the user was disabled");
            await Task.Delay(100);
        }

        Assert.Equal(HttpStatusCode.BadRequest, (await RefreshAsync(two, refresh)).StatusCode);
    }

    private async Task<System.Text.Json.JsonElement> RoundTripAsync(BrowserSession browser, IdentityServerHost server, string email, string scope)
    {
        var (verifier, challenge) = BrowserSession.Pkce();
        var callback = await browser.AuthorizeAsync(BrowserSession.AuthorizeUrl("web-eu", Redirect, challenge, ("scope", scope)), email, Password);
        return await ResponseAssert.StatusAsync(
            await server.Start().RedeemCodeAsync(callback, verifier, Redirect, ("web-eu", fixture.WebSecret)), HttpStatusCode.OK);
    }

    private Task<HttpResponseMessage> RefreshAsync(IdentityServerHost server, string refreshToken) =>
        server.Start().PostFormAsync("/connect/token", [new("grant_type", "refresh_token"), new("refresh_token", refreshToken)],
            ("web-eu", fixture.WebSecret));

    private async Task<bool> ActiveAsync(IdentityServerHost server, string token) =>
        (await ResponseAssert.StatusAsync(
            await server.Start().PostFormAsync("/connect/introspect", [new("token", token)], ("web-eu", fixture.WebSecret)), HttpStatusCode.OK))
        .GetProperty("active").GetBoolean();

    /// <summary>A member of a new account with a policy, created through <paramref name="server"/>'s admin API.</summary>
    private async Task<(string Email, string Id, Guid Account, HttpClient Admin)> NewUserAsync(IdentityServerHost server)
    {
        var token = (await ResponseAssert.StatusAsync(
            await server.Start().ClientCredentialsAsync("platform-admin", fixture.BasicSecret, "identity.admin"), HttpStatusCode.OK))
            .GetProperty("access_token").GetString()!;
        var admin = server.CreateClient();
        admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var account = (await ResponseAssert.StatusAsync(await admin.SendJsonAsync(HttpMethod.Post, "/admin/v1/accounts", """{"name":"Replica Co"}"""),
            HttpStatusCode.Created)).GetProperty("id").GetGuid();
        var email = $"replica-{Guid.NewGuid():n}@example.test";
        var id = (await ResponseAssert.StatusAsync(await admin.SendJsonAsync(HttpMethod.Post, $"/admin/v1/accounts/{account}/users",
            $$"""{"email":"{{email}}","role":"member","password":"{{Password}}"}"""), HttpStatusCode.Created)).GetProperty("user").GetProperty("id").GetString()!;
        return (email, id, account, admin);
    }
}
