using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.IdentityModel.JsonWebTokens;

namespace Identity.Server.IntegrationTests.Hosting;

/// <summary>
/// Two Identity.Server processes on one PostgreSQL database, sharing nothing else (issue 19 item 6): what one replica
/// issued, the other honours, and what one replica used up, the other refuses. The in-process server of the fixture
/// only migrates the database and seeds the user; every request of these tests goes to one of the two processes.
/// </summary>
public sealed class TwoProcessReplicaTests(TwoProcessReplicaTests.Replicas replicas) : IClassFixture<TwoProcessReplicaTests.Replicas>
{
    private const string Redirect = ServerFixture<PostgresTestDatabase>.EuApp + "/signin-oidc";

    [Fact]
    public async Task SessionCookie_SignedInAtOne_HonouredAtOtherWithoutTheLoginPage()
    {
        var cookies = new CookieContainer();
        var atOne = new BrowserSession(null, replicas.One.CreateClient(cookies));
        var atTwo = new BrowserSession(null, replicas.Two.CreateClient(cookies));
        await SignInAsync(atOne);

        var (_, challenge) = BrowserSession.Pkce();
        var response = await atTwo.GetAsync(BrowserSession.AuthorizeUrl("web-eu", Redirect, challenge, ("scope", "openid profile")));

        // The cookie protected by replica one's data-protection keys (in the database) is read by replica two.
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        var location = BrowserSession.Location(response);
        Assert.StartsWith(Redirect, location.OriginalString, StringComparison.Ordinal);
        Assert.True(BrowserSession.Query(location).ContainsKey("code"), location.OriginalString);
    }

    [Fact]
    public async Task Code_IssuedAtOneRedeemedAtOther_ThenReplayedAtFirst_Refused()
    {
        var atOne = new BrowserSession(null, replicas.One.CreateClient(new CookieContainer()));
        var (verifier, challenge) = BrowserSession.Pkce();
        var callback = await atOne.AuthorizeAsync(BrowserSession.AuthorizeUrl("web-eu", Redirect, challenge, ("scope", "openid profile")),
            ServerFixture<PostgresTestDatabase>.UserEmail, replicas.Arranger.UserPassword);

        using var two = replicas.Two.CreateClient();
        var tokens = await ResponseAssert.StatusAsync(await two.RedeemCodeAsync(callback, verifier, Redirect, WebEu), HttpStatusCode.OK);
        Assert.Equal(replicas.Arranger.UserId, new JsonWebToken(tokens.GetProperty("id_token").GetString()).Subject);

        // RFC 6749 §4.1.2: a code is used once, whichever replica sees it again.
        using var one = replicas.One.CreateClient();
        var replay = await ResponseAssert.StatusAsync(await one.RedeemCodeAsync(callback, verifier, Redirect, WebEu), HttpStatusCode.BadRequest);
        Assert.Equal("invalid_grant", replay.GetProperty("error").GetString());
    }

    [Fact]
    public async Task RefreshToken_RotatedAtOne_ReusedAtOther_RefusedAsReplayAndFamilyRevoked()
    {
        var atOne = new BrowserSession(null, replicas.One.CreateClient(new CookieContainer()));
        var (verifier, challenge) = BrowserSession.Pkce();
        var callback = await atOne.AuthorizeAsync(
            BrowserSession.AuthorizeUrl("web-eu", Redirect, challenge, ("scope", "openid profile offline_access")),
            ServerFixture<PostgresTestDatabase>.UserEmail, replicas.Arranger.UserPassword);
        using var one = replicas.One.CreateClient();
        using var two = replicas.Two.CreateClient();
        var original = (await ResponseAssert.StatusAsync(await one.RedeemCodeAsync(callback, verifier, Redirect, WebEu), HttpStatusCode.OK))
            .GetProperty("refresh_token").GetString()!;

        var successor = (await ResponseAssert.StatusAsync(await RefreshAsync(one, original), HttpStatusCode.OK))
            .GetProperty("refresh_token").GetString()!;

        // RFC 9700 §4.14.2: the rotated token presented again (at the other replica) is reuse: refused, family revoked.
        var reuse = await ResponseAssert.StatusAsync(await RefreshAsync(two, original), HttpStatusCode.BadRequest);
        Assert.Equal("invalid_grant", reuse.GetProperty("error").GetString());
        var next = await ResponseAssert.StatusAsync(await RefreshAsync(one, successor), HttpStatusCode.BadRequest);
        Assert.Equal("invalid_grant", next.GetProperty("error").GetString());
    }

    [Fact]
    public async Task SigningKey_RotatedAtOne_PublishedAndUsedByBoth()
    {
        using var one = replicas.One.CreateClient();
        using var two = replicas.Two.CreateClient();
        var admin = (await ResponseAssert.StatusAsync(
            await one.ClientCredentialsAsync("platform-admin", replicas.Arranger.BasicSecret, "identity.admin"), HttpStatusCode.OK))
            .GetProperty("access_token").GetString()!;

        using var rotate = new HttpRequestMessage(HttpMethod.Post, "/admin/v1/keys/rotate")
        {
            Content = new StringContent("""{"algorithms":["ES256"],"revokePrevious":false}""", System.Text.Encoding.UTF8, "application/json"),
        };
        rotate.Headers.Authorization = new AuthenticationHeaderValue("Bearer", admin);
        var keys = await ResponseAssert.StatusAsync(await one.SendAsync(rotate), HttpStatusCode.OK);
        var active = keys.EnumerateArray()
            .Single(k => k.GetProperty("algorithm").GetString() == "ES256" && k.GetProperty("stage").GetString() == "active")
            .GetProperty("keyId").GetString()!;

        // Each replica reloads the keys every Keys:CheckInterval (1 s here): within a few seconds both publish the new
        // key in their JWKS (found through their discovery documents) and sign their access tokens with it.
        foreach (var replica in new[] { one, two })
        {
            await EventuallyAsync(async () =>
            {
                var discovery = await replica.GetFromJsonAsync<JsonElement>("/.well-known/openid-configuration");
                var jwks = await replica.GetFromJsonAsync<JsonElement>(new Uri(discovery.GetProperty("jwks_uri").GetString()!).PathAndQuery);
                var published = jwks.GetProperty("keys").EnumerateArray().Any(k => k.GetProperty("kid").GetString() == active);
                var token = (await replica.ClientCredentialsAsync("svc-basic", replicas.Arranger.BasicSecret, "api.read")).JsonAsync();
                return published && new JsonWebToken((await token).GetProperty("access_token").GetString()).Kid == active;
            }, $"replica {(replica == one ? 1 : 2)} publishes and signs with key {active}");
        }

        // A token signed by one validates against the other's JWKS.
        var fromOne = (await (await one.ClientCredentialsAsync("svc-basic", replicas.Arranger.BasicSecret, "api.read")).JsonAsync())
            .GetProperty("access_token").GetString()!;
        Assert.True((await two.ValidateAccessTokenAsync(fromOne, ServerFixture<PostgresTestDatabase>.Api)).IsValid);
    }

    private (string, string) WebEu => ("web-eu", replicas.Arranger.WebSecret);

    private Task SignInAsync(BrowserSession browser)
    {
        var (_, challenge) = BrowserSession.Pkce();
        return browser.AuthorizeAsync(BrowserSession.AuthorizeUrl("web-eu", Redirect, challenge, ("scope", "openid profile")),
            ServerFixture<PostgresTestDatabase>.UserEmail, replicas.Arranger.UserPassword);
    }

    private Task<HttpResponseMessage> RefreshAsync(HttpClient server, string refreshToken) =>
        server.PostFormAsync("/connect/token", [new("grant_type", "refresh_token"), new("refresh_token", refreshToken)], WebEu);

    private static async Task EventuallyAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not within 20 s: {what}");
            await Task.Delay(250);
        }
    }

    /// <summary>A PostgreSQL database prepared by an in-process server, and two server processes on it.</summary>
    public sealed class Replicas : IAsyncLifetime
    {
        public ServerFixture<PostgresTestDatabase> Arranger { get; } = new();

        public ServerProcess One { get; private set; } = null!;

        public ServerProcess Two { get; private set; } = null!;

        public async Task InitializeAsync()
        {
            await Arranger.InitializeAsync(); // migrations, keys, clients, the user
            var settings = Arranger.Settings();
            settings["Database:AutoMigrate"] = "false";
            settings["Keys:CheckInterval"] = "00:00:01";
            settings["Oidc:UserCacheDuration"] = "00:00:02";
            settings["Logging:LogLevel:Default"] = "Warning";
            One = new ServerProcess(settings);
            Two = new ServerProcess(settings);
            await Task.WhenAll(One.StartAsync(), Two.StartAsync());
        }

        public async Task DisposeAsync()
        {
            await One.DisposeAsync();
            await Two.DisposeAsync();
            await Arranger.DisposeAsync();
        }
    }
}
