using System.Diagnostics;
using System.Net;
using Identity.Core.Data;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.IntegrationTests.Account;

/// <summary>
/// Forgot password, end to end over HTTP: the page, the email read from a real SMTP server, the link, the new password
/// under the account's rules, and what the reset ends (refresh tokens) and records (audit, UserChanged). Known and
/// unknown addresses get the same page, status and response-time distribution.
/// </summary>
public abstract class ForgotPasswordTests<TDatabase>(ServerFixture<TDatabase> fixture) : IClassFixture<ServerFixture<TDatabase>>, IAsyncLifetime
    where TDatabase : TestDatabase, new()
{
    private const string Password = "Correct-Horse-Battery-9";
    private const string NewPassword = "Another-Horse-Battery-7";
    private static readonly string Redirect = ServerFixture<TDatabase>.EuApp + "/signin-oidc";
    private readonly TestSmtpServer _smtp = new TestSmtpServer().Start();
    private IdentityServerHost _server = null!;
    private HttpClient _client = null!;

    public Task InitializeAsync()
    {
        _server = fixture.StartServer(s =>
        {
            _smtp.AddTo(s);
            s["Throttling:PasswordResetPerAddressPerHour"] = "1000";
        });
        _client = _server.Start();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _smtp.DisposeAsync();
    }

    [Fact]
    public async Task ForgotPassword_LinkFromTheEmail_NewPasswordSignsInOldRefreshTokenInvalidAuditedUserChanged()
    {
        var email = await UserInRegionAsync("""{"password":{"history":2}}""");
        var refreshToken = await RefreshTokenAsync(email, Password);
        var login = await ResponseAssert.HtmlAsync(await _client.GetAsync("/Account/Login"), HttpStatusCode.OK);
        Assert.Contains("href=\"/Account/ForgotPassword\"", login, StringComparison.Ordinal);

        await RequestResetAsync(new BrowserSession(_server), email);
        var link = TestSmtpServer.LinkIn(await _smtp.WaitForAsync(email), "/Account/ResetPassword");
        var browser = new BrowserSession(_server);
        var reused = await SetPasswordAsync(browser, link, Password); // the history refuses the current one
        Assert.Contains("Choose a password different from your last 2.", reused, StringComparison.Ordinal);
        var done = await SetPasswordAsync(browser, link, NewPassword);

        Assert.Equal("/Account/Login", done);
        Assert.Equal(HttpStatusCode.Redirect, (await new BrowserSession(_server).SignInAsync("/Account/Login", email, NewPassword)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await new BrowserSession(_server).SignInAsync("/Account/Login", email, Password)).StatusCode); // refused: the page again
        var refresh = await ResponseAssert.StatusAsync(await _client.PostFormAsync("/connect/token",
            [new("grant_type", "refresh_token"), new("refresh_token", refreshToken)], ("web-eu", fixture.WebSecret)), HttpStatusCode.BadRequest);
        Assert.Equal("invalid_grant", refresh.GetProperty("error").GetString());
        var again = await ResponseAssert.HtmlAsync(await browser.GetAsync(link.PathAndQuery), HttpStatusCode.OK);
        Assert.Contains("This link cannot be used", again, StringComparison.Ordinal); // single use
        await using var scope = _server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var user = await db.Users.AsNoTracking().SingleAsync(u => u.Email == email);
        Assert.Equal(2, user.Version);
        Assert.True(await db.AuditEntries.AnyAsync(a => a.SubjectId == user.Id && a.EventType == "user.password_reset"));
        Assert.True(await db.Outbox.AnyAsync(m => m.UserId == user.Id && m.MessageType == "UserChanged"));
        Assert.True(await db.Outbox.AnyAsync(m => m.UserId == user.Id && m.MessageType == "SessionsRevoked"));
        Assert.Equal("Your password was reset · Contoso Cloud", (await _smtp.WaitForAsync(email, where: m => m.Subject?.StartsWith("Your password", StringComparison.Ordinal) == true)).Subject);
    }

    [Fact]
    public async Task ResetLink_Expired_ClearPageAndThePasswordStays()
    {
        var email = await fixture.UserInAccountWithPolicyAsync("{}", Password);
        await RequestResetAsync(new BrowserSession(_server), email);
        var link = TestSmtpServer.LinkIn(await _smtp.WaitForAsync(email), "/Account/ResetPassword");
        var browser = new BrowserSession(_server);
        var form = await ResponseAssert.HtmlAsync(await browser.GetAsync(link.PathAndQuery), HttpStatusCode.OK); // still valid
        await using (var scope = _server.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
            var userId = await db.Users.Where(u => u.Email == email).Select(u => u.Id).SingleAsync();
            await db.UserLinks.Where(l => l.UserId == userId).ExecuteUpdateAsync(l => l.SetProperty(x => x.ExpiresAt, DateTimeOffset.UtcNow.AddSeconds(-1)));
        }

        var page = await ResponseAssert.HtmlAsync(await browser.GetAsync(link.PathAndQuery), HttpStatusCode.OK);
        var posted = await ResponseAssert.HtmlAsync(await browser.SubmitAsync("/Account/ResetPassword", form,
            new Dictionary<string, string> { ["Input.NewPassword"] = NewPassword, ["Input.ConfirmPassword"] = NewPassword }), HttpStatusCode.OK);

        Assert.Contains("Choose a new password", form, StringComparison.Ordinal);
        Assert.Contains("This link cannot be used", page, StringComparison.Ordinal);
        Assert.Contains("This link cannot be used", posted, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Redirect, (await new BrowserSession(_server).SignInAsync("/Account/Login", email, Password)).StatusCode);
    }

    [Fact]
    public async Task ForgotPassword_KnownAndUnknownAddresses_SamePageStatusAndResponseTimes()
    {
        var known = await fixture.UserInAccountWithPolicyAsync("{}", Password);
        var browser = new BrowserSession(_server);
        await RequestResetAsync(browser, known); // warm both paths up
        await RequestResetAsync(browser, $"nobody-{Guid.NewGuid():n}@example.test");
        var knownTimes = new List<double>();
        var unknownTimes = new List<double>();
        string? knownPage = null, unknownPage = null;

        for (var i = 0; i < 30; i++)
        {
            var (knownStatus, knownBody, knownMs) = await TimedResetAsync(browser, known);
            var (unknownStatus, unknownBody, unknownMs) = await TimedResetAsync(browser, $"nobody-{Guid.NewGuid():n}@example.test");
            Assert.Equal(HttpStatusCode.OK, knownStatus);
            Assert.Equal(HttpStatusCode.OK, unknownStatus);
            knownPage ??= knownBody;
            unknownPage ??= unknownBody;
            knownTimes.Add(knownMs);
            unknownTimes.Add(unknownMs);
        }

        Assert.Equal(knownPage, unknownPage);
        knownTimes.Sort();
        unknownTimes.Sort();
        double Quantile(List<double> sorted, double q) => sorted[(int)(q * (sorted.Count - 1))];
        var summary = $"known p25/p50/p75 {Quantile(knownTimes, .25):F1}/{Quantile(knownTimes, .5):F1}/{Quantile(knownTimes, .75):F1} ms, " +
            $"unknown {Quantile(unknownTimes, .25):F1}/{Quantile(unknownTimes, .5):F1}/{Quantile(unknownTimes, .75):F1} ms";
        // The distributions overlap: each median lies within the other's interquartile range widened by 10 %.
        Assert.True(Quantile(knownTimes, .5) <= Quantile(unknownTimes, .75) * 1.1 && Quantile(unknownTimes, .5) <= Quantile(knownTimes, .75) * 1.1
            && Quantile(knownTimes, .5) >= Quantile(unknownTimes, .25) * 0.9 && Quantile(unknownTimes, .5) >= Quantile(knownTimes, .25) * 0.9, summary);
    }

    [Fact]
    public async Task ForgotPassword_MoreRequestsForOneAddressThanTheLimit_OnlyTheLimitIsSent()
    {
        await using var limited = fixture.StartServer(s =>
        {
            _smtp.AddTo(s);
            s["Throttling:PasswordResetPerAddressPerHour"] = "2";
        });
        limited.Start();
        var email = await fixture.UserInAccountWithPolicyAsync("{}", Password);
        var browser = new BrowserSession(limited);

        for (var i = 0; i < 4; i++)
        {
            await RequestResetAsync(browser, email); // the same page each time
        }

        await _smtp.WaitForAsync(email, 2); // the worker sends them one after the other, each when it gets to it
        await Task.Delay(1_000); // a third, were one queued, would arrive now
        Assert.Equal(2, _smtp.Received.Count(m => m.To.Mailboxes.Any(b => b.Address == email)));
        await using var scope = limited.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        Assert.Equal(2, await db.AuditEntries.CountAsync(a => a.EventType == "user.password_reset_refused" && a.Details!.Contains("throttled")
            && a.SubjectId == db.Users.Single(u => u.Email == email).Id));
    }

    [Fact]
    public async Task ForgotPassword_AccountWithoutSelfServiceReset_SamePageEmailSaysAskTheAdmin()
    {
        var email = await fixture.UserInAccountWithPolicyAsync("""{"password":{"selfServiceReset":false}}""", Password);

        await RequestResetAsync(new BrowserSession(_server), email);

        var message = await _smtp.WaitForAsync(email);
        Assert.Contains("ask your account's administrator", message.TextBody, StringComparison.Ordinal);
        Assert.DoesNotContain("/Account/ResetPassword", message.TextBody, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ForgotPassword_WithoutEmail_HiddenFromTheSignInPageAndNotFound()
    {
        var login = await ResponseAssert.HtmlAsync(await fixture.Client.GetAsync("/Account/Login"), HttpStatusCode.OK);

        Assert.DoesNotContain("ForgotPassword", login, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await fixture.Client.GetAsync("/Account/ForgotPassword")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await fixture.Client.GetAsync("/Account/ResetPassword?token=x")).StatusCode);
    }

    /// <summary>A member of a new account living in region eu, with these settings; returns the email.</summary>
    private async Task<string> UserInRegionAsync(string policyJson)
    {
        var platform = await fixture.PlatformAdminAsync();
        await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Put, "/admin/v1/regions/eu", """{"displayName":"Europe"}"""), HttpStatusCode.OK);
        var account = (await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Post, "/admin/v1/accounts",
            """{"name":"Reset Co","regions":["eu"]}"""), HttpStatusCode.Created)).GetProperty("id").GetGuid();
        var etag = (await platform.GetAsync($"/admin/v1/accounts/{account}")).Headers.ETag!.Tag;
        await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Put, $"/admin/v1/accounts/{account}/settings", policyJson, etag), HttpStatusCode.OK);
        var email = $"reset-{Guid.NewGuid():n}@example.test";
        await ResponseAssert.StatusAsync(await platform.SendJsonAsync(HttpMethod.Post, $"/admin/v1/accounts/{account}/users",
            $$"""{"email":"{{email}}","role":"member","password":"{{Password}}"}"""), HttpStatusCode.Created);
        return email;
    }

    private static async Task RequestResetAsync(BrowserSession browser, string email)
    {
        var page = await ResponseAssert.HtmlAsync(await browser.GetAsync("/Account/ForgotPassword"), HttpStatusCode.OK);
        var sent = await ResponseAssert.HtmlAsync(await browser.SubmitAsync("/Account/ForgotPassword", page,
            new Dictionary<string, string> { ["Input.Email"] = email }), HttpStatusCode.OK);
        Assert.Contains("If this address belongs to an account", sent, StringComparison.Ordinal);
    }

    private static async Task<(HttpStatusCode, string, double)> TimedResetAsync(BrowserSession browser, string email)
    {
        var page = await (await browser.GetAsync("/Account/ForgotPassword")).Content.ReadAsStringAsync();
        var started = Stopwatch.GetTimestamp();
        var response = await browser.SubmitAsync("/Account/ForgotPassword", page, new Dictionary<string, string> { ["Input.Email"] = email });
        var body = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, body, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
    }

    /// <summary>Posts the reset form of <paramref name="link"/>; returns where it redirected, or the page shown.</summary>
    private static async Task<string> SetPasswordAsync(BrowserSession browser, Uri link, string password)
    {
        var page = await ResponseAssert.HtmlAsync(await browser.GetAsync(link.PathAndQuery), HttpStatusCode.OK);
        var response = await browser.SubmitAsync("/Account/ResetPassword", page,
            new Dictionary<string, string> { ["Input.NewPassword"] = password, ["Input.ConfirmPassword"] = password });
        return response.StatusCode == HttpStatusCode.Redirect ? BrowserSession.Location(response).OriginalString : await response.Content.ReadAsStringAsync();
    }

    private async Task<string> RefreshTokenAsync(string email, string password)
    {
        var (verifier, challenge) = BrowserSession.Pkce();
        var callback = await new BrowserSession(_server).AuthorizeAsync(
            BrowserSession.AuthorizeUrl("web-eu", Redirect, challenge, ("scope", "openid offline_access")), email, password);
        var tokens = await ResponseAssert.StatusAsync(await _client.RedeemCodeAsync(callback, verifier, Redirect, ("web-eu", fixture.WebSecret)), HttpStatusCode.OK);
        return tokens.GetProperty("refresh_token").GetString()!;
    }
}

public sealed class SqliteForgotPasswordTests(ServerFixture<SqliteTestDatabase> fixture) : ForgotPasswordTests<SqliteTestDatabase>(fixture);

public sealed class PostgresForgotPasswordTests(ServerFixture<PostgresTestDatabase> fixture) : ForgotPasswordTests<PostgresTestDatabase>(fixture);
