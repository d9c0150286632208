using System.Diagnostics;
using System.Net;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.IntegrationTests.Account;

/// <summary>The account's policy, enforced at sign-in: required MFA forces enrolment before any code; the IP allow-list.</summary>
public sealed class AccountPolicyTests(ServerFixture<SqliteTestDatabase> fixture) : IClassFixture<ServerFixture<SqliteTestDatabase>>
{
    private const string Password = "Correct-Horse-Battery-9";
    private const string Redirect = ServerFixture<SqliteTestDatabase>.EuApp + "/signin-oidc";

    private Task<string> UserInAccountWithPolicyAsync(string policyJson) => fixture.UserInAccountWithPolicyAsync(policyJson, Password);

    [Fact]
    public async Task MfaRequired_UserWithoutFactor_MustEnrolBeforeAnyCode()
    {
        var email = await UserInAccountWithPolicyAsync("""{"mfa":{"requirement":"requiredForEveryone"}}""");
        var browser = new BrowserSession(fixture.Server);
        await browser.SignInAsync("/Account/Login", email, Password);

        var response = await browser.GetAsync(BrowserSession.AuthorizeUrl("web-eu", Redirect, BrowserSession.Pkce().Challenge));

        var location = BrowserSession.Location(response).OriginalString;
        Assert.StartsWith("/Account/Totp", location, StringComparison.Ordinal);
        Assert.DoesNotContain("code=", location, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MfaOptional_UserWithoutFactor_GetsACode()
    {
        var email = await UserInAccountWithPolicyAsync("""{"mfa":{"requirement":"optional"}}""");

        var callback = await new BrowserSession(fixture.Server).AuthorizeAsync(
            BrowserSession.AuthorizeUrl("web-eu", Redirect, BrowserSession.Pkce().Challenge), email, Password);

        Assert.True(BrowserSession.Query(callback).ContainsKey("code"));
    }

    [Theory]
    [InlineData("10.1.2.3", true)]
    [InlineData("::ffff:10.200.0.1", true)]
    [InlineData("192.168.1.10", false)]
    [InlineData("2001:db8::1", false)]
    public async Task IpAllowList_SignInOnlyFromTheAccountsNetworks(string from, bool allowed)
    {
        var email = await UserInAccountWithPolicyAsync("""{"ipAllowList":{"ranges":["10.0.0.0/8"]}}""");
        await using var host = fixture.Server.WithWebHostBuilder(builder => builder.ConfigureTestServices(services =>
            services.AddSingleton<IStartupFilter>(new RemoteAddress(IPAddress.Parse(from)))));
        var browser = new BrowserSession(null, host.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false }));

        var response = await browser.SignInAsync("/Account/Login", email, Password);

        if (allowed)
        {
            Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        }
        else
        {
            Assert.Contains("Invalid email or password.", await ResponseAssert.HtmlAsync(response, HttpStatusCode.OK), StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData(3, true)]
    [InlineData(5, false)]
    public async Task Lockout_AfterTheAccountsMaxFailedAttempts_RightPasswordRefusedToo(int maxFailedAttempts, bool lockedOut)
    {
        var email = await UserInAccountWithPolicyAsync("{\"lockout\":{\"maxFailedAttempts\":" + maxFailedAttempts + ",\"duration\":\"00:10:00\"}}");
        for (var i = 0; i < 3; i++)
        {
            await new BrowserSession(fixture.Server).SignInAsync("/Account/Login", email, "Wrong-password-" + i);
        }

        var response = await new BrowserSession(fixture.Server).SignInAsync("/Account/Login", email, Password);

        if (lockedOut)
        {
            Assert.Contains("Invalid email or password.", await ResponseAssert.HtmlAsync(response, HttpStatusCode.OK), StringComparison.Ordinal);
        }
        else
        {
            Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        }
    }

    [Fact]
    public async Task Throttle_OnTheRealApp_ThirdSignInAndTokenRequestFromOneAddressGet429()
    {
        await using var host = fixture.Server.WithWebHostBuilder(builder =>
        {
            builder.UseSetting("Throttling:SignInPerMinute", "2");
            builder.UseSetting("Throttling:TokenPerSecond", "2");
            builder.ConfigureTestServices(services => services.AddSingleton<IStartupFilter>(new RemoteAddress(IPAddress.Parse("203.0.113.7"))));
        });
        var client = host.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });

        var signIns = new List<HttpResponseMessage>();
        for (var i = 0; i < 3; i++)
        {
            signIns.Add(await new BrowserSession(null, client).SignInAsync("/Account/Login", "nobody@example.test", "wrong-password-123"));
        }

        // The token budget is a bucket of 2 refilled with 2 a second: requests made one after another on a slow machine
        // can each find a refilled bucket, so a burst is sent at once and judged by the time it took.
        var burst = Stopwatch.StartNew();
        var tokens = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => client.ClientCredentialsAsync("svc-basic", fixture.BasicSecret, "api.read")));
        var passedAtMost = 2 + 2 * (int)Math.Ceiling(burst.Elapsed.TotalSeconds);

        Assert.Equal(HttpStatusCode.TooManyRequests, signIns[^1].StatusCode);
        Assert.NotNull(signIns[^1].Headers.RetryAfter);
        Assert.InRange(tokens.Count(t => t.StatusCode == HttpStatusCode.OK), 1, passedAtMost);
        var refused = await ResponseAssert.StatusAsync(tokens.First(t => t.StatusCode != HttpStatusCode.OK), HttpStatusCode.TooManyRequests);
        Assert.Equal("invalid_request", refused.GetProperty("error").GetString());
    }

    /// <summary>Gives every request a client address, as Kestrel would (the test server has none).</summary>
    private sealed class RemoteAddress(IPAddress address) : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((context, nextMiddleware) =>
            {
                context.Connection.RemoteIpAddress = address;
                return nextMiddleware(context);
            });
            next(app);
        };
    }
}
