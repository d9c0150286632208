using System.Diagnostics;
using System.Net;
using Identity.Core.Data;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.IntegrationTests.Account;

/// <summary>The sign-in page: accessible markup, security headers, generic failures, no open redirect.</summary>
public sealed class SignInPageTests(ServerFixture<SqliteTestDatabase> fixture) : IClassFixture<ServerFixture<SqliteTestDatabase>>
{
    [Fact]
    public async Task LoginPage_Always_HasLabelledAutocompleteInputsAndStrictHeaders()
    {
        var response = await fixture.Client.GetAsync("/Account/Login");

        var html = await ResponseAssert.HtmlAsync(response, HttpStatusCode.OK);
        Assert.Matches("<label[^>]*for=\"Input_Email\"[^>]*>Email</label>", html);
        Assert.Matches("<label[^>]*for=\"Input_Password\"[^>]*>Password</label>", html);
        Assert.Matches("<input[^>]*autocomplete=\"username\"[^>]*id=\"Input_Email\"|<input[^>]*id=\"Input_Email\"[^>]*autocomplete=\"username\"", html);
        Assert.Matches("autocomplete=\"current-password\"", html);
        Assert.Contains("__RequestVerificationToken", html, StringComparison.Ordinal);

        var csp = response.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("frame-ancestors 'none'", csp, StringComparison.Ordinal);
        Assert.DoesNotContain("unsafe-inline", csp, StringComparison.Ordinal);
        Assert.Equal("no-referrer", response.Headers.GetValues("Referrer-Policy").Single());
        Assert.Equal("DENY", response.Headers.GetValues("X-Frame-Options").Single());
    }

    [Theory]
    [InlineData(ServerFixture<SqliteTestDatabase>.UserEmail, "wrong-password-123456")]
    [InlineData("nobody@example.test", "wrong-password-123456")]
    public async Task WrongCredentials_ShowSameGenericError(string email, string password)
    {
        var browser = new BrowserSession(fixture.Server);

        var response = await browser.SignInAsync("/Account/Login", email, password);

        var html = await ResponseAssert.HtmlAsync(response, HttpStatusCode.OK);
        Assert.Contains("Invalid email or password.", html, StringComparison.Ordinal);
        Assert.DoesNotContain("not found", html, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>On Kestrel, which refuses non-ASCII header values: the right password with such a return URL answered 500, without a session.</summary>
    [Fact]
    public async Task LoginReturnUrl_LocalWithNonAsciiOnKestrel_RedirectsWithASession()
    {
        var port = TestPorts.Next();
        var host = fixture.StartServer();
        host.UseKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port));
        host.StartServer();
        using var client = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri($"http://127.0.0.1:{port}/") };

        var response = await new BrowserSession(null, client).SignInAsync("/Account/Login?ReturnUrl=%2Fcaf%C3%A9",
            ServerFixture<SqliteTestDatabase>.UserEmail, fixture.UserPassword);

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("/caf%C3%A9", BrowserSession.Location(response).OriginalString);
        Assert.Contains(response.Headers.GetValues("Set-Cookie"), c => c.StartsWith("identity.session", StringComparison.Ordinal));
    }

    /// <summary>
    /// Whether an email has an account must not show in how long the answer takes: an unknown email (or a locked-out
    /// user, refused before any password check) costs what a wrong password of a real user costs (here: a hash ~45 ms,
    /// the rest of the page ~12 ms). Samples alternate, so load on the machine weighs on both sides alike; medians, so
    /// a stall does not decide.
    /// </summary>
    [Theory]
    [InlineData("unknown")]
    [InlineData("locked out")]
    public async Task LoginPost_UnknownOrLockedOutEmail_TakesAsLongAsAWrongPassword(string kind)
    {
        var known = await UserAsync(lockedOut: false);
        var other = kind == "unknown" ? $"nobody-{Guid.NewGuid():n}@example.test" : await UserAsync(lockedOut: true);
        var knownForm = await FormAsync();
        var otherForm = await FormAsync();
        var knownTimes = new List<double>();
        var otherTimes = new List<double>();

        for (var i = 0; i < 23; i++)
        {
            var knownTime = await TimeAsync(knownForm, known);
            var otherTime = await TimeAsync(otherForm, other);
            if (i >= 2) // the first ones warm both paths up
            {
                knownTimes.Add(knownTime);
                otherTimes.Add(otherTime);
            }
        }

        var ratio = Median(knownTimes) / Median(otherTimes);
        Assert.True(ratio is > 0.5 and < 2,
            $"median {Median(knownTimes):F1} ms for a wrong password, {Median(otherTimes):F1} ms for a {kind} email (ratio {ratio:F1})");

        // The known user is never locked out, so that every sample checks its hash.
        async Task<string> UserAsync(bool lockedOut)
        {
            var email = $"timing-{Guid.NewGuid():n}@example.test";
            await using var scope = fixture.Server.Services.CreateAsyncScope();
            var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
            var user = new ApplicationUser { UserName = email, Email = email, EmailConfirmed = true };
            Assert.True((await users.CreateAsync(user, fixture.UserPassword)).Succeeded);
            Assert.True((lockedOut
                ? await users.SetLockoutEndDateAsync(user, DateTimeOffset.UtcNow.AddDays(1))
                : await users.SetLockoutEnabledAsync(user, false)).Succeeded);
            return email;
        }

        async Task<(BrowserSession Browser, string Page)> FormAsync()
        {
            var browser = new BrowserSession(fixture.Server);
            return (browser, await (await browser.GetAsync("/Account/Login")).Content.ReadAsStringAsync());
        }

        static async Task<double> TimeAsync((BrowserSession Browser, string Page) form, string email)
        {
            var clock = Stopwatch.StartNew();
            var response = await form.Browser.SubmitAsync("/Account/Login", form.Page,
                new Dictionary<string, string> { ["Input.Email"] = email, ["Input.Password"] = "Wrong-password-123" });
            var elapsed = clock.Elapsed.TotalMilliseconds;
            Assert.Contains("Invalid email or password.", await ResponseAssert.HtmlAsync(response, HttpStatusCode.OK), StringComparison.Ordinal);
            return elapsed;
        }

        static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);
    }

    [Fact]
    public async Task LoginPost_WithoutAntiforgeryToken_Refused()
    {
        var response = await fixture.Client.PostAsync("/Account/Login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Input.Email"] = ServerFixture<SqliteTestDatabase>.UserEmail,
            ["Input.Password"] = fixture.UserPassword,
        }));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var cookies = response.Headers.TryGetValues("Set-Cookie", out var values) ? values : [];
        Assert.DoesNotContain(cookies, c => c.StartsWith("identity.session", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("https://evil.example/")]
    [InlineData("//evil.example/")]
    [InlineData("/\\evil.example/")]
    [InlineData("%2F%2Fevil.example%2F")]
    [InlineData("http:evil.example")]
    [InlineData("\\\\evil.example")]
    public async Task LoginReturnUrl_NotLocal_RedirectsHomeInstead(string returnUrl)
    {
        var browser = new BrowserSession(fixture.Server);

        var response = await browser.SignInAsync("/Account/Login?ReturnUrl=" + Uri.EscapeDataString(Uri.UnescapeDataString(returnUrl)),
            ServerFixture<SqliteTestDatabase>.UserEmail, fixture.UserPassword);

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("/", BrowserSession.Location(response).OriginalString);
    }

    [Fact]
    public async Task LoginReturnUrl_Local_IsFollowed()
    {
        var browser = new BrowserSession(fixture.Server);

        var response = await browser.SignInAsync("/Account/Login?ReturnUrl=%2Fconnect%2Fauthorize%3Fx%3D1",
            ServerFixture<SqliteTestDatabase>.UserEmail, fixture.UserPassword);

        Assert.Equal("/connect/authorize?x=1", BrowserSession.Location(response).OriginalString);
    }

    [Theory]
    [InlineData("%2Fcaf%C3%A9", "/caf%C3%A9")]
    [InlineData("%2Fcaf%C3%A9%3Fq%3D%F0%9F%94%91%20x", "/caf%C3%A9?q=%F0%9F%94%91%20x")]
    [InlineData("%2Fcaf%25C3%25A9", "/caf%C3%A9")] // already encoded: followed as it is
    public async Task LoginReturnUrl_LocalWithNonAscii_FollowedEncodedWithASession(string returnUrl, string expected)
    {
        var browser = new BrowserSession(fixture.Server);

        var response = await browser.SignInAsync("/Account/Login?ReturnUrl=" + returnUrl,
            ServerFixture<SqliteTestDatabase>.UserEmail, fixture.UserPassword);

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal(expected, BrowserSession.Location(response).OriginalString);
        Assert.Contains(response.Headers.GetValues("Set-Cookie"), c => c.StartsWith("identity.session", StringComparison.Ordinal));
    }
}
