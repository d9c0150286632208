using System.Net;
using Identity.Core.Data;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.IntegrationTests.Account;

/// <summary>
/// The account's password and session rules, enforced: password length, common passwords and history wherever a
/// password is set; the SSO session's lifetime and idle timeout, measured on a <see cref="TestClock"/>.
/// </summary>
public abstract class PasswordAndSessionPolicyTests<TDatabase>(ServerFixture<TDatabase> fixture) : IClassFixture<ServerFixture<TDatabase>>
    where TDatabase : TestDatabase, new()
{
    private const string Password = "Correct-Horse-Battery-9";
    private static readonly string Redirect = ServerFixture<TDatabase>.EuApp + "/signin-oidc";

    private static string Authorize() => BrowserSession.AuthorizeUrl("web-eu", Redirect, BrowserSession.Pkce().Challenge);

    private static string NewEmail() => $"pw-{Guid.NewGuid():n}@example.test";

    private async Task<Guid> AccountWithPolicyAsync(HttpClient platform, string policyJson)
    {
        var account = (await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Post, "/admin/v1/accounts", """{"name":"Password Co"}"""),
            HttpStatusCode.Created)).GetProperty("id").GetGuid();
        await SetPolicyAsync(platform, account, policyJson);
        return account;
    }

    private static async Task SetPolicyAsync(HttpClient platform, Guid account, string policyJson)
    {
        var etag = (await platform.GetAsync($"/admin/v1/accounts/{account}")).Headers.ETag!.Tag;
        await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Put, $"/admin/v1/accounts/{account}/settings", policyJson, etag),
            HttpStatusCode.OK);
    }

    private static Task<HttpResponseMessage> CreateUserAsync(HttpClient platform, Guid account, string email, string password) =>
        platform.SendJsonAsync(HttpMethod.Post, $"/admin/v1/accounts/{account}/users",
            $$"""{"email":"{{email}}","role":"member","password":"{{password}}"}""");

    /// <summary>Posts the change-password form of a signed-in session; returns the response.</summary>
    private static async Task<HttpResponseMessage> ChangePasswordAsync(BrowserSession browser, string current, string next)
    {
        var page = await ResponseAssert.HtmlAsync(await browser.GetAsync("/Account/Password"), HttpStatusCode.OK);
        return await browser.SubmitAsync("/Account/Password", page, new Dictionary<string, string>
        {
            ["Input.CurrentPassword"] = current,
            ["Input.NewPassword"] = next,
            ["Input.ConfirmPassword"] = next,
        });
    }

    /// <summary>The same server on the same database, its clock the test's.</summary>
    private WebApplicationFactory<Program> WithClock(TestClock clock) =>
        fixture.Server.WithWebHostBuilder(builder => builder.ConfigureTestServices(services => services.AddSingleton<TimeProvider>(clock)));

    private static BrowserSession BrowserOn(WebApplicationFactory<Program> host) =>
        new(null, host.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true }));

    /// <summary>A user of a new account with <paramref name="policyJson"/>, signed in at a server on a test clock.</summary>
    private async Task<ClockedSession> SignedInAsync(string policyJson)
    {
        var platform = await fixture.PlatformAdminAsync();
        var account = await AccountWithPolicyAsync(platform, policyJson);
        var email = NewEmail();
        await ResponseAssert.StatusAsync(await CreateUserAsync(platform, account, email, Password), HttpStatusCode.Created);
        var clock = new TestClock();
        var host = WithClock(clock);
        var browser = BrowserOn(host);
        await browser.AuthorizeAsync(Authorize(), email, Password);
        return new ClockedSession(platform, account, clock, host, browser);
    }

    private sealed record ClockedSession(HttpClient Platform, Guid Account, TestClock Clock, WebApplicationFactory<Program> Host, BrowserSession Browser)
        : IAsyncDisposable
    {
        /// <summary>The app asks again: where the authorize request sends the browser.</summary>
        public async Task<string> AuthorizeAgainAsync() => BrowserSession.Location(await Browser.GetAsync(Authorize())).OriginalString;

        public ValueTask DisposeAsync() => Host.DisposeAsync();
    }

    /// <summary>The authorize request went back to the app with a code: the session was still valid.</summary>
    private static void AssertCode(string location)
    {
        Assert.StartsWith(Redirect + "?", location, StringComparison.Ordinal);
        Assert.True(BrowserSession.Query(new Uri(location)).ContainsKey("code"), location);
    }

    [Theory]
    [InlineData("Short-pw-9", "Use at least 12 characters.")]
    [InlineData("UNBELIEVABLE", "This password is one of the most commonly used; choose another.")]
    public async Task CreateUser_PasswordAgainstTheAccountsRules_ProblemNamingPasswordAndNoUser(string password, string message)
    {
        var platform = await fixture.PlatformAdminAsync();
        var account = await AccountWithPolicyAsync(platform, """{"password":{"minimumLength":12,"rejectCommon":true}}""");
        var email = NewEmail();

        var response = await CreateUserAsync(platform, account, email, password);

        var problem = await ResponseAssert.StatusAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains(message, problem.GetProperty("errors").GetProperty("password").EnumerateArray().Select(e => e.GetString()));
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        Assert.False(await scope.ServiceProvider.GetRequiredService<AuthorityDbContext>().Users.AnyAsync(u => u.Email == email));
    }

    [Fact]
    public async Task CreateUser_AccountAllowsShorterPasswords_CreatedWithHistoryAndDate()
    {
        var platform = await fixture.PlatformAdminAsync();
        var account = await AccountWithPolicyAsync(platform, """{"password":{"minimumLength":8,"history":3}}""");

        var created = await ResponseAssert.StatusAsync(await CreateUserAsync(platform, account, NewEmail(), "Ok-pw-94"), HttpStatusCode.Created);

        var id = created.GetProperty("user").GetProperty("id").GetString();
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        Assert.NotNull((await db.Users.SingleAsync(u => u.Id == id)).PasswordChangedAt);
        Assert.Equal(1, await db.PasswordHistory.CountAsync(h => h.UserId == id));
    }

    [Fact]
    public async Task ChangePassword_OneOfTheLastN_RefusedAndTheOneBeforeAllowed()
    {
        var platform = await fixture.PlatformAdminAsync();
        var account = await AccountWithPolicyAsync(platform, """{"password":{"history":2}}""");
        var email = NewEmail();
        await ResponseAssert.StatusAsync(await CreateUserAsync(platform, account, email, "First-password-1"), HttpStatusCode.Created);
        var browser = new BrowserSession(fixture.Server);
        await browser.SignInAsync("/Account/Login", email, "First-password-1");
        await ResponseAssert.HtmlAsync(await ChangePasswordAsync(browser, "First-password-1", "Second-password-2"), HttpStatusCode.OK);
        await ResponseAssert.HtmlAsync(await ChangePasswordAsync(browser, "Second-password-2", "Third-password-3"), HttpStatusCode.OK);

        var reused = await ResponseAssert.HtmlAsync(await ChangePasswordAsync(browser, "Third-password-3", "Second-password-2"), HttpStatusCode.OK);
        var older = await ResponseAssert.HtmlAsync(await ChangePasswordAsync(browser, "Third-password-3", "First-password-1"), HttpStatusCode.OK);

        Assert.Contains("Choose a password different from your last 2.", reused, StringComparison.Ordinal);
        Assert.Contains("Your password was changed.", older, StringComparison.Ordinal);
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var user = await db.Users.SingleAsync(u => u.Email == email);
        Assert.Equal(2, await db.PasswordHistory.CountAsync(h => h.UserId == user.Id));
        Assert.Equal(3, await db.AuditEntries.CountAsync(e => e.SubjectId == user.Id && e.EventType == "user.password_changed"));
    }

    [Fact]
    public async Task ChangePassword_RevokesTheAppsRefreshTokens_ThisSessionStaysSignedIn()
    {
        var platform = await fixture.PlatformAdminAsync();
        var account = await AccountWithPolicyAsync(platform, """{"password":{"history":1}}""");
        var email = NewEmail();
        await ResponseAssert.StatusAsync(await CreateUserAsync(platform, account, email, Password), HttpStatusCode.Created);
        var browser = new BrowserSession(fixture.Server);
        var (verifier, challenge) = BrowserSession.Pkce();
        var callback = await browser.AuthorizeAsync(BrowserSession.AuthorizeUrl("web-eu", Redirect, challenge), email, Password);
        var tokens = await ResponseAssert.StatusAsync(
            await fixture.Client.RedeemCodeAsync(callback, verifier, Redirect, ("web-eu", fixture.WebSecret)), HttpStatusCode.OK);
        var refreshToken = tokens.GetProperty("refresh_token").GetString()!;

        await ResponseAssert.HtmlAsync(await ChangePasswordAsync(browser, Password, "Another-Horse-Battery-7"), HttpStatusCode.OK);

        var refresh = await ResponseAssert.StatusAsync(await fixture.Client.PostFormAsync("/connect/token",
            [new("grant_type", "refresh_token"), new("refresh_token", refreshToken)], ("web-eu", fixture.WebSecret)), HttpStatusCode.BadRequest);
        Assert.Equal("invalid_grant", refresh.GetProperty("error").GetString());
        // The session that changed the password goes on: the app gets a code without a prompt.
        AssertCode(BrowserSession.Location(await browser.GetAsync(Authorize())).OriginalString);
    }

    [Fact]
    public async Task Authorize_ExpiredPassword_ChangePasswordFirstThenCode()
    {
        var platform = await fixture.PlatformAdminAsync();
        var account = await AccountWithPolicyAsync(platform, """{"password":{"maximumAge":"30.00:00:00"}}""");
        var email = NewEmail();
        await ResponseAssert.StatusAsync(await CreateUserAsync(platform, account, email, Password), HttpStatusCode.Created);
        var clock = new TestClock();
        await using var host = WithClock(clock);
        var browser = BrowserOn(host);
        clock.Advance(TimeSpan.FromDays(30));

        var login = BrowserSession.Location(await browser.GetAsync(Authorize())).OriginalString;
        var detour = BrowserSession.Location(await browser.SignInAsync(login, email, Password)).OriginalString;
        var forced = BrowserSession.Location(await browser.GetAsync(detour)).OriginalString;
        var page = await ResponseAssert.HtmlAsync(await browser.GetAsync(forced), HttpStatusCode.OK);
        var back = BrowserSession.Location(await browser.SubmitAsync(forced, page, new Dictionary<string, string>
        {
            ["Input.CurrentPassword"] = Password,
            ["Input.NewPassword"] = "A-brand-new-password-7",
            ["Input.ConfirmPassword"] = "A-brand-new-password-7",
        })).OriginalString;
        var callback = BrowserSession.Location(await browser.GetAsync(back));

        Assert.StartsWith("/Account/Password", forced, StringComparison.Ordinal);
        Assert.Contains("Your password has expired.", page, StringComparison.Ordinal);
        Assert.StartsWith("/connect/authorize", back, StringComparison.Ordinal);
        Assert.True(BrowserSession.Query(callback).ContainsKey("code"));
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var user = await db.Users.SingleAsync(u => u.Email == email);
        Assert.True(await db.AuditEntries.AnyAsync(e => e.SubjectId == user.Id && e.EventType == "user.password_expired_forced_change"));
    }

    [Fact]
    public async Task Session_UnusedForTheIdleTimeout_NextAuthorizeShowsSignIn()
    {
        await using var session = await SignedInAsync("""{"session":{"lifetime":"01:00:00","idleTimeout":"00:05:00"}}""");

        session.Clock.Advance(TimeSpan.FromMinutes(4));
        var used = await session.AuthorizeAgainAsync();
        session.Clock.Advance(TimeSpan.FromMinutes(6));
        var idle = await session.AuthorizeAgainAsync();

        AssertCode(used);
        Assert.Contains("/Account/Login?", idle, StringComparison.Ordinal);
        Assert.Equal(["idle_timeout"], await SessionEndsAsync(session.Account));
    }

    [Fact]
    public async Task Session_UsedButPastItsLifetime_NextAuthorizeShowsSignIn()
    {
        await using var session = await SignedInAsync("""{"session":{"lifetime":"00:10:00","idleTimeout":"00:05:00"}}""");

        var uses = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            session.Clock.Advance(TimeSpan.FromMinutes(4));
            uses.Add(await session.AuthorizeAgainAsync());
        }

        AssertCode(uses[0]);
        AssertCode(uses[1]);
        Assert.Contains("/Account/Login?", uses[2], StringComparison.Ordinal);
        Assert.Equal(["lifetime"], await SessionEndsAsync(session.Account));
    }

    /// <summary>The reasons of the account's audited <c>session.ended</c> entries, oldest first.</summary>
    private async Task<List<string>> SessionEndsAsync(Guid account)
    {
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var details = await db.AuditEntries.Where(e => e.AccountId == account && e.EventType == "session.ended")
            .OrderBy(e => e.Id).Select(e => e.Details!).ToListAsync();
        return [.. details.Select(d => System.Text.Json.JsonDocument.Parse(d).RootElement.GetProperty("reason").GetString()!)];
    }

    [Fact]
    public async Task Session_IdleTimeoutShortenedWhileSignedIn_AppliesAtNextUse()
    {
        await using var session = await SignedInAsync("""{"session":{"lifetime":"08:00:00","idleTimeout":"01:00:00"}}""");
        session.Clock.Advance(TimeSpan.FromMinutes(6));
        var before = await session.AuthorizeAgainAsync();
        session.Clock.Advance(TimeSpan.FromMinutes(6));

        await SetPolicyAsync(session.Platform, session.Account, """{"session":{"lifetime":"08:00:00","idleTimeout":"00:05:00"}}""");
        var after = await session.AuthorizeAgainAsync();

        AssertCode(before);
        Assert.Contains("/Account/Login?", after, StringComparison.Ordinal);
    }
}

public sealed class SqlitePasswordAndSessionPolicyTests(ServerFixture<SqliteTestDatabase> fixture)
    : PasswordAndSessionPolicyTests<SqliteTestDatabase>(fixture);

public sealed class PostgresPasswordAndSessionPolicyTests(ServerFixture<PostgresTestDatabase> fixture)
    : PasswordAndSessionPolicyTests<PostgresTestDatabase>(fixture);
