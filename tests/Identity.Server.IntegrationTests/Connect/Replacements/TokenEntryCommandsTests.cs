using System.Net;
using System.Text.Json;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using OpenIddict.Abstractions;

namespace Identity.Server.IntegrationTests.Connect.Replacements;

/// <summary>
/// The token endpoint's read of a code's entry and its redemption (the replay check), where the way they reach the
/// database could diverge from OpenIddict's: many redemptions of one code at once, and a code whose authorization was
/// revoked between issuance and redemption. Run on each provider, whose locking differs (row locks on PostgreSQL, one
/// writer at a time on SQLite).
/// </summary>
public abstract class TokenEntryCommandsTests<TDatabase>(ServerFixture<TDatabase> fixture)
    : IClassFixture<ServerFixture<TDatabase>> where TDatabase : TestDatabase, new()
{
    private const string Redirect = ServerFixture<TDatabase>.EuApp + "/signin-oidc";

    private async Task<(Uri Callback, string Verifier)> CodeAsync()
    {
        var (verifier, challenge) = BrowserSession.Pkce();
        var callback = await new BrowserSession(fixture.Server).AuthorizeAsync(
            BrowserSession.AuthorizeUrl("web-eu", Redirect, challenge, ("scope", "openid profile offline_access")),
            ServerFixture<TDatabase>.UserEmail, fixture.UserPassword);
        return (callback, verifier);
    }

    private Task<HttpResponseMessage> RedeemAsync(Uri callback, string verifier) =>
        fixture.Client.RedeemCodeAsync(callback, verifier, Redirect, ("web-eu", fixture.WebSecret));

    private async Task<bool> ActiveAsync(string token) =>
        (await (await fixture.Client.PostFormAsync("/connect/introspect", [new("token", token)], ("web-eu", fixture.WebSecret))).JsonAsync())
        .GetProperty("active").GetBoolean();

    // RFC 6749 §4.1.2: a code is used once. Thirty requests carrying it at the same moment reach the database together;
    // the conditional update lets exactly one through, the others are refused as a replay (RFC 6749 §5.2 invalid_grant),
    // never a 500 (a lost race or a busy database is a refusal too).
    [Fact]
    public async Task Code_RedeemedThirtyTimesAtOnce_ExactlyOneSucceeds_ReplayRevokesItsTokens()
    {
        var (callback, verifier) = await CodeAsync();

        var responses = await Task.WhenAll(Enumerable.Range(0, 30).Select(_ => Task.Run(() => RedeemAsync(callback, verifier))));

        var bodies = await Task.WhenAll(responses.Select(async r => (r.StatusCode, Body: await r.Content.ReadAsStringAsync())));
        var winners = bodies.Where(b => b.StatusCode == HttpStatusCode.OK).ToList();
        Assert.Single(winners);
        Assert.All(bodies.Where(b => b.StatusCode != HttpStatusCode.OK), b =>
        {
            Assert.Equal(HttpStatusCode.BadRequest, b.StatusCode);
            Assert.Equal("invalid_grant", JsonDocument.Parse(b.Body).RootElement.GetProperty("error").GetString());
        });

        // A loser that read the entry after the winner's update saw a replay and revoked the winner's tokens already;
        // one that lost the race at the update was only refused. One more presentation is a replay for certain.
        var tokens = JsonDocument.Parse(winners[0].Body).RootElement;
        var replay = await ResponseAssert.StatusAsync(await RedeemAsync(callback, verifier), HttpStatusCode.BadRequest);
        Assert.Equal("invalid_grant", replay.GetProperty("error").GetString());
        Assert.False(await ActiveAsync(tokens.GetProperty("access_token").GetString()!));
        var refresh = await fixture.Client.PostFormAsync("/connect/token",
            [new("grant_type", "refresh_token"), new("refresh_token", tokens.GetProperty("refresh_token").GetString()!)], ("web-eu", fixture.WebSecret));
        Assert.Equal("invalid_grant", (await ResponseAssert.StatusAsync(refresh, HttpStatusCode.BadRequest)).GetProperty("error").GetString());
    }

    // The code's entry is still valid, but the authorization it belongs to was revoked after it was issued (sessions
    // revoked, user disabled): the code is refused (OpenIddict's ValidateAuthorizationEntry), and stays unredeemed.
    [Fact]
    public async Task Code_AfterItsAuthorizationWasRevoked_InvalidGrant()
    {
        var (callback, verifier) = await CodeAsync();
        await using (var scope = fixture.Server.Services.CreateAsyncScope())
        {
            var authorizations = scope.ServiceProvider.GetRequiredService<IOpenIddictAuthorizationManager>();
            Assert.True(await authorizations.RevokeBySubjectAsync(fixture.UserId) > 0);
        }

        var response = await RedeemAsync(callback, verifier);

        var body = await ResponseAssert.StatusAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal("invalid_grant", body.GetProperty("error").GetString());
        await using (var scope = fixture.Server.Services.CreateAsyncScope())
        {
            var tokens = scope.ServiceProvider.GetRequiredService<IOpenIddictTokenManager>();
            var entries = new List<object>();
            await foreach (var entry in tokens.FindBySubjectAsync(fixture.UserId))
            {
                entries.Add(entry);
            }

            var codes = new List<string?>();
            foreach (var entry in entries)
            {
                if (await tokens.HasTypeAsync(entry, OpenIddictConstants.TokenTypeIdentifiers.Private.AuthorizationCode))
                {
                    codes.Add(await tokens.GetStatusAsync(entry));
                }
            }

            Assert.NotEmpty(codes);
            Assert.DoesNotContain(OpenIddictConstants.Statuses.Redeemed, codes);
        }
    }

    // A redeemed code's entry keeps what it was issued with: the redemption rewrites only its status, redemption date
    // and concurrency token (the client, the authorization and the dates stay, or introspection and pruning would lose them).
    [Fact]
    public async Task Code_Redeemed_EntryKeepsItsClientAuthorizationAndDates()
    {
        var (callback, verifier) = await CodeAsync();
        var code = BrowserSession.Query(callback)["code"];
        await ResponseAssert.StatusAsync(await RedeemAsync(callback, verifier), HttpStatusCode.OK);

        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var tokens = scope.ServiceProvider.GetRequiredService<IOpenIddictTokenManager>();
        var entry = await tokens.FindByReferenceIdAsync(code);
        Assert.NotNull(entry);
        Assert.Equal(OpenIddictConstants.Statuses.Redeemed, await tokens.GetStatusAsync(entry));
        Assert.NotNull(await tokens.GetRedemptionDateAsync(entry));
        Assert.False(string.IsNullOrEmpty(await tokens.GetApplicationIdAsync(entry)));
        Assert.False(string.IsNullOrEmpty(await tokens.GetAuthorizationIdAsync(entry)));
        Assert.Equal(fixture.UserId, await tokens.GetSubjectAsync(entry));
        var created = await tokens.GetCreationDateAsync(entry);
        var expires = await tokens.GetExpirationDateAsync(entry);
        Assert.InRange(created!.Value, DateTimeOffset.UtcNow.AddMinutes(-2), DateTimeOffset.UtcNow.AddSeconds(5));
        Assert.True(expires > created);
        Assert.False(string.IsNullOrEmpty(await tokens.GetPayloadAsync(entry)));
    }
}

public sealed class SqliteTokenEntryCommandsTests(ServerFixture<SqliteTestDatabase> fixture)
    : TokenEntryCommandsTests<SqliteTestDatabase>(fixture);

public sealed class PostgresTokenEntryCommandsTests(ServerFixture<PostgresTestDatabase> fixture)
    : TokenEntryCommandsTests<PostgresTestDatabase>(fixture);
