using System.Net;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Identity.Server.IntegrationTests.Keys;

/// <summary>What rotation looks like from outside: JWKS contents, the <c>kid</c> of new tokens, old tokens still (or no longer) accepted.</summary>
internal static class KeyRotationProbe
{
    public const string FastChecks = "00:00:00.200";

    public static readonly TimeSpan Limit = TimeSpan.FromSeconds(10);

    public static async Task<HashSet<string>> JwksKidsAsync(HttpClient client) =>
        new JsonWebKeySet(await client.GetStringAsync("/.well-known/jwks")).Keys.Select(k => k.Kid).ToHashSet(StringComparer.Ordinal);

    public static string Kid(string jwt) => new JsonWebToken(jwt).Kid;

    /// <summary>Polls until <paramref name="condition"/> holds on what the server publishes, or fails after <see cref="Limit"/>.</summary>
    public static async Task<HashSet<string>> UntilJwksAsync(HttpClient client, Func<HashSet<string>, bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Limit;
        while (true)
        {
            var kids = await JwksKidsAsync(client);
            if (condition(kids))
            {
                return kids;
            }

            Assert.True(DateTime.UtcNow < deadline, $"Not within {Limit}: {what}. JWKS kids: {string.Join(", ", kids)}");
            await Task.Delay(100);
        }
    }

    /// <summary>How a relying party checks a token's signature: with the JWKS it fetches now (lifetime left aside).</summary>
    public static async Task<TokenValidationResult> SignatureAgainstJwksAsync(HttpClient client, string jwt) =>
        await new JsonWebTokenHandler().ValidateTokenAsync(jwt, new TokenValidationParameters
        {
            IssuerSigningKeys = new JsonWebKeySet(await client.GetStringAsync("/.well-known/jwks")).GetSigningKeys(),
            ValidateIssuer = false,
            ValidateAudience = false,
            ValidateLifetime = false,
        });
}

/// <summary>
/// Scheduled rotation on a test clock (rotation every day, published an hour ahead): the next key appears in the JWKS
/// before it signs, takes over on its date, a refresh token from before the rotation still works, and the previous key
/// leaves the JWKS only once everything it signed has expired.
/// </summary>
public abstract class ScheduledKeyRotationTests<TDatabase>(ServerFixture<TDatabase> fixture) : IClassFixture<ServerFixture<TDatabase>>
    where TDatabase : TestDatabase, new()
{
    private const string Redirect = ServerFixture<TDatabase>.EuApp + "/signin-oidc";

    [Fact]
    public async Task NextKeyPublishedAhead_SignsOnItsDate_PreviousAcceptedUntilItsTokensExpired()
    {
        var clock = new TestClock();
        await using var host = fixture.StartServer(settings =>
            {
                settings["Keys:RotationPeriod"] = "1.00:00:00";
                settings["Keys:PublishAhead"] = "01:00:00";
                settings["Keys:CheckInterval"] = KeyRotationProbe.FastChecks;
            });
        await using var clocked = host.WithWebHostBuilder(b => b.ConfigureTestServices(s => s.AddSingleton<TimeProvider>(clock)));
        var client = clocked.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });

        // Day 0: one key per algorithm; a person signs in and gets a refresh token.
        var (verifier, challenge) = BrowserSession.Pkce();
        var browser = new BrowserSession(null, clocked.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true }));
        var callback = await browser.AuthorizeAsync(
            BrowserSession.AuthorizeUrl("web-eu", Redirect, challenge, ("scope", "openid offline_access api.read")),
            ServerFixture<TDatabase>.UserEmail, fixture.UserPassword);
        var first = await ResponseAssert.StatusAsync(await client.RedeemCodeAsync(callback, verifier, Redirect, ("web-eu", fixture.WebSecret)), HttpStatusCode.OK);
        var firstAccess = first.GetProperty("access_token").GetString()!;
        var firstId = first.GetProperty("id_token").GetString()!;
        var day0 = await KeyRotationProbe.JwksKidsAsync(client);
        Assert.Equal(2, day0.Count); // RS256 and ES256; the encryption key is never published
        Assert.Contains(KeyRotationProbe.Kid(firstAccess), day0);
        Assert.Contains(KeyRotationProbe.Kid(firstId), day0);

        // 23 h later the next keys are due: published, but not yet signing.
        clock.Advance(TimeSpan.FromHours(23) + TimeSpan.FromMinutes(1));
        var published = await KeyRotationProbe.UntilJwksAsync(client, kids => kids.Count == 4, "the next keys published an hour ahead");
        Assert.Superset(day0, published);
        var stillOld = await ResponseAssert.StatusAsync(await client.ClientCredentialsAsync("svc-basic", fixture.BasicSecret, "api.read"), HttpStatusCode.OK);
        Assert.Equal(KeyRotationProbe.Kid(firstAccess), KeyRotationProbe.Kid(stillOld.GetProperty("access_token").GetString()!));

        // An hour later they sign; the refresh token of day 0 (encrypted with the previous key) still redeems.
        clock.Advance(TimeSpan.FromHours(1));
        var refreshed = await ResponseAssert.StatusAsync(await client.PostFormAsync("/connect/token",
            [new("grant_type", "refresh_token"), new("refresh_token", first.GetProperty("refresh_token").GetString()!)],
            ("web-eu", fixture.WebSecret)), HttpStatusCode.OK);
        var newAccess = refreshed.GetProperty("access_token").GetString()!;
        var newId = refreshed.GetProperty("id_token").GetString()!;
        Assert.DoesNotContain(KeyRotationProbe.Kid(newAccess), day0);
        Assert.DoesNotContain(KeyRotationProbe.Kid(newId), day0);
        Assert.Contains(KeyRotationProbe.Kid(newAccess), published);
        Assert.NotEqual(new JsonWebToken(first.GetProperty("refresh_token").GetString()!).Kid, new JsonWebToken(refreshed.GetProperty("refresh_token").GetString()!).Kid);
        Assert.True((await KeyRotationProbe.SignatureAgainstJwksAsync(client, firstAccess)).IsValid, "the previous key is still published");
        Assert.True((await KeyRotationProbe.SignatureAgainstJwksAsync(client, newAccess)).IsValid);

        // Past the retention (the refresh-token lifetime plus a day), the day-0 keys are gone from the JWKS and from the database.
        clock.Advance(TimeSpan.FromDays(15) + TimeSpan.FromHours(1));
        await KeyRotationProbe.UntilJwksAsync(client, kids => !kids.Overlaps(day0), "the day-0 keys retired");
        var refused = await KeyRotationProbe.SignatureAgainstJwksAsync(client, firstAccess);
        Assert.False(refused.IsValid);
        Assert.IsType<SecurityTokenSignatureKeyNotFoundException>(refused.Exception);
    }
}

/// <summary>
/// Rotation on demand through the admin API, as after a suspected key compromise: the new key signs at once, the revoked
/// one is refused everywhere (this replica, the others within the check interval, relying parties using the JWKS), audited.
/// </summary>
public abstract class KeyRevocationTests<TDatabase>(ServerFixture<TDatabase> fixture) : IClassFixture<ServerFixture<TDatabase>>
    where TDatabase : TestDatabase, new()
{
    private static readonly Action<Dictionary<string, string?>> FastChecks = s => s["Keys:CheckInterval"] = KeyRotationProbe.FastChecks;

    private async Task<string> TokenAsync(HttpClient client) =>
        (await ResponseAssert.StatusAsync(await client.ClientCredentialsAsync("svc-basic", fixture.BasicSecret, "api.read"), HttpStatusCode.OK))
        .GetProperty("access_token").GetString()!;

    private async Task<bool> ActiveAsync(HttpClient client, string token) =>
        (await ResponseAssert.StatusAsync(await client.PostFormAsync("/connect/introspect", [new("token", token)], ("svc-basic", fixture.BasicSecret)),
            HttpStatusCode.OK)).GetProperty("active").GetBoolean();

    [Fact]
    public async Task RotateWithRevokePrevious_NewKeySignsAtOnce_OldTokensRefusedOnEveryReplica_Audited()
    {
        await using var one = fixture.StartServer(FastChecks);
        await using var two = fixture.StartServer(FastChecks);
        var first = one.Start();
        var second = two.Start();
        var before = await TokenAsync(first);
        var oldKid = KeyRotationProbe.Kid(before);
        Assert.True(await ActiveAsync(second, before));

        var admin = await fixture.PlatformAdminAsync();
        var keys = await ResponseAssert.StatusAsync(
            await admin.SendJsonAsync(HttpMethod.Post, "/admin/v1/keys/rotate", """{"algorithms":["ES256"],"revokePrevious":true}"""),
            HttpStatusCode.OK);
        var es256 = keys.EnumerateArray().Where(k => k.GetProperty("algorithm").GetString() == "ES256").ToList();
        var newKid = Assert.Single(es256).GetProperty("keyId").GetString()!;
        Assert.Equal("active", es256[0].GetProperty("stage").GetString());
        Assert.NotEqual(oldKid, newKid);

        // Every replica: the revoked key leaves the JWKS, its tokens are refused, new tokens carry the new key.
        foreach (var replica in new[] { first, second })
        {
            await KeyRotationProbe.UntilJwksAsync(replica, kids => kids.Contains(newKid) && !kids.Contains(oldKid), "the revoked key replaced");
            Assert.False(await ActiveAsync(replica, before));
            var after = await TokenAsync(replica);
            Assert.Equal(newKid, KeyRotationProbe.Kid(after));
            Assert.True(await ActiveAsync(replica, after));
            Assert.True((await replica.ValidateAccessTokenAsync(after, ServerFixture<TDatabase>.Api)).IsValid);
        }

        var relyingParty = await KeyRotationProbe.SignatureAgainstJwksAsync(second, before);
        Assert.IsType<SecurityTokenSignatureKeyNotFoundException>(relyingParty.Exception);

        // The RS256 key was not named: unchanged. The administrator's own token was ES256-signed: a new one is needed.
        Assert.Equal(HttpStatusCode.Unauthorized, (await admin.GetAsync("/admin/v1/keys")).StatusCode);
        admin = await fixture.PlatformAdminAsync();
        var listed = await ResponseAssert.StatusAsync(await admin.GetAsync("/admin/v1/keys"), HttpStatusCode.OK);
        Assert.Equal(["A256KW", "ES256", "RS256"], listed.EnumerateArray().Select(k => k.GetProperty("algorithm").GetString()!).Order(StringComparer.Ordinal));
        var audit = await ResponseAssert.StatusAsync(await admin.GetAsync("/admin/v1/audit?type=keys.rotated"), HttpStatusCode.OK);
        Assert.Contains(audit.GetProperty("items").EnumerateArray(), entry =>
            entry.GetProperty("details").GetProperty("revokePrevious").GetBoolean()
            && entry.GetProperty("details").GetRawText().Contains(oldKid, StringComparison.Ordinal));
    }

    [Fact]
    public async Task RotateWithoutRevoking_OldTokensStayValid_BothKeysPublished()
    {
        var client = fixture.StartServer(FastChecks).Start();
        var before = await TokenAsync(client);
        var admin = await fixture.PlatformAdminAsync();
        await ResponseAssert.StatusAsync(await admin.SendJsonAsync(HttpMethod.Post, "/admin/v1/keys/rotate", "{}"), HttpStatusCode.OK);

        var kids = await KeyRotationProbe.UntilJwksAsync(client, kids => kids.Count >= 4, "the new keys published next to the previous ones");
        Assert.Contains(KeyRotationProbe.Kid(before), kids);
        Assert.True(await ActiveAsync(client, before));
        Assert.NotEqual(KeyRotationProbe.Kid(before), KeyRotationProbe.Kid(await TokenAsync(client)));
    }

    [Theory]
    [InlineData("""{"algorithms":["HS256"]}""", "algorithms")]
    [InlineData("""{"algorithms":[null]}""", "algorithms")]
    [InlineData("""{"algorithms":"ES256"}""", "algorithms")]
    [InlineData("""{"revoke":true}""", "revoke")]
    public async Task Rotate_BadRequest_ProblemNamingTheFieldAndNoKeyChanged(string body, string field)
    {
        var admin = await fixture.PlatformAdminAsync();
        var before = await KeyRotationProbe.JwksKidsAsync(fixture.Client);
        var problem = await ResponseAssert.StatusAsync(await admin.SendJsonAsync(HttpMethod.Post, "/admin/v1/keys/rotate", body), HttpStatusCode.BadRequest);
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), problem.ToString());
        Assert.Equal(before, await KeyRotationProbe.JwksKidsAsync(fixture.Client));
    }

    [Fact]
    public async Task RotationOnAnotherReplica_TokenWithTheNewKey_AcceptedAtOnceAndJwksUpToDate()
    {
        // A replica that would read the keys only every 5 minutes on its own.
        await using var slow = fixture.StartServer(s => s["Keys:CheckInterval"] = "00:05:00");
        var other = slow.Start();
        Assert.NotEmpty(await KeyRotationProbe.JwksKidsAsync(other));
        await Task.Delay(TimeSpan.FromSeconds(5.5)); // past the on-demand rate limit of its start-up read

        var admin = await fixture.PlatformAdminAsync();
        await ResponseAssert.StatusAsync(
            await admin.SendJsonAsync(HttpMethod.Post, "/admin/v1/keys/rotate", """{"algorithms":["ES256"]}"""), HttpStatusCode.OK);
        var token = await TokenAsync(fixture.Client);
        var newKid = KeyRotationProbe.Kid(token);

        // The slow replica reads the keys when a token names one it does not know, and when asked for its JWKS.
        Assert.True(await ActiveAsync(other, token));
        Assert.Contains(newKid, await KeyRotationProbe.JwksKidsAsync(other));
    }

    [Theory]
    [InlineData("00:00:05", null, "Keys:PublishAhead must be at least twice Keys:CheckInterval")]
    [InlineData("100.00:00:00", "90.00:00:00", "Keys:PublishAhead must be shorter than Keys:RotationPeriod")]
    public async Task Settings_ThatWouldSignWithAnUnpublishedKey_RefuseToStart(string publishAhead, string? rotationPeriod, string message)
    {
        await using var server = fixture.StartServer(s =>
        {
            s["Keys:PublishAhead"] = publishAhead;
            if (rotationPeriod is not null)
            {
                s["Keys:RotationPeriod"] = rotationPeriod;
            }
        });
        var error = Assert.ThrowsAny<Exception>(() => server.Start());
        Assert.Contains(message, error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Keys_WithoutAdminToken_Unauthorized()
    {
        Assert.Equal(HttpStatusCode.Unauthorized, (await fixture.Client.GetAsync("/admin/v1/keys")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized,
            (await fixture.Client.SendJsonAsync(HttpMethod.Post, "/admin/v1/keys/rotate", """{"revokePrevious":true}""")).StatusCode);
    }
}

public sealed class SqliteScheduledKeyRotationTests(ServerFixture<SqliteTestDatabase> fixture) : ScheduledKeyRotationTests<SqliteTestDatabase>(fixture);

public sealed class PostgresScheduledKeyRotationTests(ServerFixture<PostgresTestDatabase> fixture) : ScheduledKeyRotationTests<PostgresTestDatabase>(fixture);

public sealed class SqliteKeyRevocationTests(ServerFixture<SqliteTestDatabase> fixture) : KeyRevocationTests<SqliteTestDatabase>(fixture);

public sealed class PostgresKeyRevocationTests(ServerFixture<PostgresTestDatabase> fixture) : KeyRevocationTests<PostgresTestDatabase>(fixture);
