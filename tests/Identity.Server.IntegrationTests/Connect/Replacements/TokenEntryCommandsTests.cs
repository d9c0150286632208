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

    /// <summary>
    /// Whether the read of a code's entry redeems it (PostgreSQL, decision 0101): a request of the code's own client that
    /// then fails a check in the code's payload (PKCE verifier, redirect_uri) has consumed it. Elsewhere the code is
    /// redeemed after every check, as OpenIddict does.
    /// </summary>
    protected abstract bool ReadRedeemsCode { get; }

    private Task<HttpResponseMessage> RedeemAsync(Uri callback, string verifier) =>
        fixture.Client.RedeemCodeAsync(callback, verifier, Redirect, ("web-eu", fixture.WebSecret));

    private async Task<string?> AuthorizationStatusOfCodeAsync(Uri callback)
    {
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var tokens = scope.ServiceProvider.GetRequiredService<IOpenIddictTokenManager>();
        var authorizations = scope.ServiceProvider.GetRequiredService<IOpenIddictAuthorizationManager>();
        var entry = await tokens.FindByReferenceIdAsync(BrowserSession.Query(callback)["code"]);
        Assert.NotNull(entry);
        var authorization = await authorizations.FindByIdAsync((await tokens.GetAuthorizationIdAsync(entry))!);
        Assert.NotNull(authorization);
        return await authorizations.GetStatusAsync(authorization);
    }

    // A request that fails client authentication (RFC 6749 §2.3) is refused before the code's entry is read (OpenIddict
    // authenticates the client first): it must not consume the code of the client it pretends to be.
    [Fact]
    public async Task Code_WithWrongClientSecret_InvalidClient_CodeStillRedeemable()
    {
        var (callback, verifier) = await CodeAsync();

        var forged = await fixture.Client.RedeemCodeAsync(callback, verifier, Redirect, ("web-eu", "not-" + fixture.WebSecret));

        Assert.Equal("invalid_client", (await ResponseAssert.StatusAsync(forged, HttpStatusCode.Unauthorized)).GetProperty("error").GetString());
        await ResponseAssert.StatusAsync(await RedeemAsync(callback, verifier), HttpStatusCode.OK);
    }

    // Another client, authenticated with its own credentials, presenting a code issued to web-eu: refused (RFC 6749
    // §4.1.3: the code must have been issued to the authenticated client) and the code stays web-eu's to redeem.
    [Fact]
    public async Task Code_PresentedByAnotherClient_InvalidGrant_CodeStillRedeemable()
    {
        var (callback, verifier) = await CodeAsync();

        var stolen = await fixture.Client.RedeemCodeAsync(callback, verifier, Redirect, ("web-us", fixture.WebSecret));

        Assert.Equal("invalid_grant", (await ResponseAssert.StatusAsync(stolen, HttpStatusCode.BadRequest)).GetProperty("error").GetString());
        await ResponseAssert.StatusAsync(await RedeemAsync(callback, verifier), HttpStatusCode.OK);
    }

    // The code's own client with a wrong PKCE verifier (RFC 7636 §4.6) or redirect_uri (RFC 6749 §4.1.3) is refused.
    // Where the read redeems the code, that request consumed it: the right request afterwards is a replay, refused, and
    // the code's authorization revoked (RFC 6749 §4.1.2); elsewhere the code is still redeemable.
    [Theory]
    [InlineData("code_verifier")]
    [InlineData("redirect_uri")]
    public async Task Code_WithWrongParameterThenRightOne_RefusedThenReplayOrRedeemed(string wrongParameter)
    {
        var (callback, verifier) = await CodeAsync();

        var wrong = wrongParameter == "code_verifier"
            ? await RedeemAsync(callback, BrowserSession.Pkce().Verifier)
            : await fixture.Client.RedeemCodeAsync(callback, verifier, ServerFixture<TDatabase>.EuApp + "/elsewhere", ("web-eu", fixture.WebSecret));
        Assert.Equal("invalid_grant", (await ResponseAssert.StatusAsync(wrong, HttpStatusCode.BadRequest)).GetProperty("error").GetString());
        var right = await RedeemAsync(callback, verifier);

        if (ReadRedeemsCode)
        {
            Assert.Equal("invalid_grant", (await ResponseAssert.StatusAsync(right, HttpStatusCode.BadRequest)).GetProperty("error").GetString());
            Assert.Equal(OpenIddictConstants.Statuses.Revoked, await AuthorizationStatusOfCodeAsync(callback));
        }
        else
        {
            await ResponseAssert.StatusAsync(right, HttpStatusCode.OK);
            Assert.Equal(OpenIddictConstants.Statuses.Valid, await AuthorizationStatusOfCodeAsync(callback));
        }
    }

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
        // This code's entry only: the other tests redeem codes of the same user.
        await using var after = fixture.Server.Services.CreateAsyncScope();
        var tokens = after.ServiceProvider.GetRequiredService<IOpenIddictTokenManager>();
        var entry = await tokens.FindByReferenceIdAsync(BrowserSession.Query(callback)["code"]);
        Assert.NotNull(entry);
        Assert.Equal(OpenIddictConstants.Statuses.Valid, await tokens.GetStatusAsync(entry));
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
    : TokenEntryCommandsTests<SqliteTestDatabase>(fixture)
{
    protected override bool ReadRedeemsCode => false;
}

public sealed class PostgresTokenEntryCommandsTests(ServerFixture<PostgresTestDatabase> fixture)
    : TokenEntryCommandsTests<PostgresTestDatabase>(fixture)
{
    protected override bool ReadRedeemsCode => true;
}
