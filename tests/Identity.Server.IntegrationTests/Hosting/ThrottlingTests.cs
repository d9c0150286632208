using System.Net;
using System.Text.Json;
using Identity.Server.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Identity.Server.IntegrationTests.Hosting;

/// <summary>
/// The per-address throttle of sign-in and token requests (<see cref="RateLimitingExtensions"/>), on a minimal host
/// with stand-ins for the two endpoints: the throttle runs before either, so what they do does not matter, and a
/// test can set each request's client address.
/// </summary>
public sealed class ThrottlingTests
{
    private const string Client = "198.51.100.7";

    [Fact]
    public async Task SignIn_MoreAttemptsThanTheLimit_Returns429WithRetryAfter()
    {
        await using var host = await ThrottledHost.StartAsync(signInPerMinute: 3);

        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(StatusCodes.Status200OK, (await host.PostAsync("/Account/Login", Client)).Response.StatusCode);
        }

        var refused = (await host.PostAsync("/Account/Login", Client)).Response;

        Assert.Equal(StatusCodes.Status429TooManyRequests, refused.StatusCode);
        Assert.Equal("60", refused.Headers.RetryAfter); // by then the whole window has slid past
        Assert.StartsWith("text/plain", refused.ContentType, StringComparison.Ordinal);
        Assert.Contains("Too many sign-in attempts", await ThrottledHost.BodyAsync(refused), StringComparison.Ordinal);
    }

    [Fact]
    public async Task SignIn_LimitReachedFromOneAddress_OtherAddressesStillSignIn()
    {
        await using var host = await ThrottledHost.StartAsync(signInPerMinute: 2);
        await host.PostAsync("/Account/Login", Client);
        await host.PostAsync("/Account/Login", Client);

        Assert.Equal(StatusCodes.Status429TooManyRequests, (await host.PostAsync("/Account/Login", Client)).Response.StatusCode);
        Assert.Equal(StatusCodes.Status200OK, (await host.PostAsync("/Account/Login", "203.0.113.9")).Response.StatusCode);
    }

    [Fact]
    public async Task PasswordReset_MoreRequestsFromOneAddressThanTheLimit_429WithRetryAfterOthersUnaffected()
    {
        // OWASP Forgot Password cheat sheet: reset requests are throttled per client as well as per account address.
        await using var host = await ThrottledHost.StartAsync(settings: new() { ["Throttling:PasswordResetPerHour"] = "2" });
        for (var i = 0; i < 2; i++)
        {
            Assert.Equal(StatusCodes.Status200OK, (await host.PostAsync("/Account/ForgotPassword", Client)).Response.StatusCode);
        }

        var refused = (await host.PostAsync("/account/forgotpassword/", Client)).Response;

        Assert.Equal(StatusCodes.Status429TooManyRequests, refused.StatusCode);
        Assert.Equal("3600", refused.Headers.RetryAfter); // a sliding window's refusal names no earlier time than the window
        Assert.Contains("Too many password-reset requests", await ThrottledHost.BodyAsync(refused), StringComparison.Ordinal);
        Assert.Equal(StatusCodes.Status200OK, (await host.PostAsync("/Account/ForgotPassword", "203.0.113.9")).Response.StatusCode);
        Assert.Equal(StatusCodes.Status200OK, (await host.PostAsync("/Account/Login", Client)).Response.StatusCode); // its own budget
        Assert.Equal(StatusCodes.Status200OK, (await host.SendAsync(HttpMethods.Get, "/Account/ForgotPassword", Client)).Response.StatusCode);
    }

    [Fact]
    public async Task SignIn_PathInAnotherCaseOrWithTrailingSlash_CountsAgainstTheSameLimit()
    {
        await using var host = await ThrottledHost.StartAsync(signInPerMinute: 2);
        await host.PostAsync("/account/login", Client);
        await host.PostAsync("/ACCOUNT/LOGIN/", Client);

        Assert.Equal(StatusCodes.Status429TooManyRequests, (await host.PostAsync("/Account/Login", Client)).Response.StatusCode);
    }

    [Fact]
    public async Task SignIn_ShowingTheSignInPage_IsNotCounted()
    {
        await using var host = await ThrottledHost.StartAsync(signInPerMinute: 1);
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(StatusCodes.Status200OK, (await host.SendAsync(HttpMethods.Get, "/Account/Login", Client)).Response.StatusCode);
        }

        Assert.Equal(StatusCodes.Status200OK, (await host.PostAsync("/Account/Login", Client)).Response.StatusCode);
    }

    [Fact]
    public async Task Token_MoreRequestsThanTheLimit_Returns429WithAnOAuthError()
    {
        await using var host = await ThrottledHost.StartAsync(tokenPerSecond: 3);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(StatusCodes.Status200OK, (await host.PostAsync("/connect/token", Client)).Response.StatusCode);
        }

        // The bucket refills every second: a few more requests make sure one lands before a refill.
        HttpResponse? refused = null;
        for (var i = 0; i < 20 && refused is null; i++)
        {
            var response = (await host.PostAsync("/connect/token", Client)).Response;
            refused = response.StatusCode == StatusCodes.Status429TooManyRequests ? response : null;
        }

        Assert.NotNull(refused);
        Assert.Equal("1", refused.Headers.RetryAfter);
        Assert.Equal("no-store", refused.Headers.CacheControl);
        Assert.StartsWith("application/json", refused.ContentType, StringComparison.Ordinal);
        using var body = JsonDocument.Parse(await ThrottledHost.BodyAsync(refused));
        Assert.Equal("invalid_request", body.RootElement.GetProperty("error").GetString());
        Assert.Equal("Too many requests from this address.", body.RootElement.GetProperty("error_description").GetString());
    }

    [Fact]
    public async Task SignInLimitReached_TokenEndpointOfTheSameAddress_IsNotAffected()
    {
        await using var host = await ThrottledHost.StartAsync(signInPerMinute: 1);
        await host.PostAsync("/Account/Login", Client);
        Assert.Equal(StatusCodes.Status429TooManyRequests, (await host.PostAsync("/Account/Login", Client)).Response.StatusCode);

        Assert.Equal(StatusCodes.Status200OK, (await host.PostAsync("/connect/token", Client)).Response.StatusCode);
    }

    [Fact]
    public async Task OtherRequests_AreNeverThrottled()
    {
        await using var host = await ThrottledHost.StartAsync(signInPerMinute: 1, tokenPerSecond: 1);

        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(StatusCodes.Status200OK, (await host.PostAsync("/Account/TwoFactor", Client)).Response.StatusCode);
        }
    }

    [Fact]
    public async Task Ipv6_AddressesOfOneSlash64_ShareALimit()
    {
        await using var host = await ThrottledHost.StartAsync(signInPerMinute: 2);
        await host.PostAsync("/Account/Login", "2001:db8:1:2::1");
        await host.PostAsync("/Account/Login", "2001:db8:1:2:ffff:ffff:ffff:ffff");

        Assert.Equal(StatusCodes.Status429TooManyRequests, (await host.PostAsync("/Account/Login", "2001:db8:1:2::abcd")).Response.StatusCode);
        Assert.Equal(StatusCodes.Status200OK, (await host.PostAsync("/Account/Login", "2001:db8:1:3::1")).Response.StatusCode);
    }

    [Fact]
    public async Task Ipv4MappedIpv6Address_SharesTheLimitOfItsIpv4Address()
    {
        await using var host = await ThrottledHost.StartAsync(signInPerMinute: 1);
        await host.PostAsync("/Account/Login", Client);

        Assert.Equal(StatusCodes.Status429TooManyRequests, (await host.PostAsync("/Account/Login", "::ffff:" + Client)).Response.StatusCode);
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    [InlineData("::ffff:127.0.0.1")]
    public async Task Loopback_WithExemptLoopback_IsNotThrottled(string loopback)
    {
        await using var host = await ThrottledHost.StartAsync(signInPerMinute: 1, settings: new() { ["Throttling:ExemptLoopback"] = "true" });

        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(StatusCodes.Status200OK, (await host.PostAsync("/Account/Login", loopback)).Response.StatusCode);
        }

        await host.PostAsync("/Account/Login", Client);
        Assert.Equal(StatusCodes.Status429TooManyRequests, (await host.PostAsync("/Account/Login", Client)).Response.StatusCode);
    }

    [Fact]
    public async Task Loopback_ByDefault_IsThrottled()
    {
        await using var host = await ThrottledHost.StartAsync(signInPerMinute: 1);
        await host.PostAsync("/Account/Login", "127.0.0.1");

        Assert.Equal(StatusCodes.Status429TooManyRequests, (await host.PostAsync("/Account/Login", "127.0.0.1")).Response.StatusCode);
    }

    [Fact]
    public async Task Disabled_NothingIsThrottled()
    {
        await using var host = await ThrottledHost.StartAsync(signInPerMinute: 1, settings: new() { ["Throttling:Enabled"] = "false" });

        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(StatusCodes.Status200OK, (await host.PostAsync("/Account/Login", Client)).Response.StatusCode);
        }
    }

    [Fact]
    public async Task RequestWithoutClientAddress_IsNotThrottled()
    {
        await using var host = await ThrottledHost.StartAsync(signInPerMinute: 1);

        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(StatusCodes.Status200OK, (await host.PostAsync("/Account/Login", client: null)).Response.StatusCode);
        }
    }

    [Theory]
    [InlineData("Throttling:SignInPerMinute", "0")]
    [InlineData("Throttling:TokenPerSecond", "0")]
    public async Task Start_LimitOutOfRange_FailsNamingTheKey(string key, string value)
    {
        var failure = await Assert.ThrowsAsync<OptionsValidationException>(() => ThrottledHost.StartAsync(settings: new() { [key] = value }));

        Assert.Contains(key, failure.Message, StringComparison.Ordinal);
    }

    /// <summary>A host with the throttle and a stand-in for every endpoint it may see.</summary>
    private sealed class ThrottledHost(WebApplication app) : IAsyncDisposable
    {
        public static async Task<ThrottledHost> StartAsync(int signInPerMinute = 20, int tokenPerSecond = 200, Dictionary<string, string?>? settings = null)
        {
            var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
            builder.WebHost.UseTestServer();
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Throttling:SignInPerMinute"] = signInPerMinute.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["Throttling:TokenPerSecond"] = tokenPerSecond.ToString(System.Globalization.CultureInfo.InvariantCulture),
            });
            builder.Configuration.AddInMemoryCollection(settings ?? []);
            builder.AddSignInThrottling();

            var app = builder.Build();
            try
            {
                app.UseSignInThrottling();
                app.MapMethods("/{**path}", [HttpMethods.Get, HttpMethods.Post], () => "ok");
                await app.StartAsync();
                return new ThrottledHost(app);
            }
            catch
            {
                await app.DisposeAsync();
                throw;
            }
        }

        public Task<HttpContext> PostAsync(string path, string? client) => SendAsync(HttpMethods.Post, path, client);

        public Task<HttpContext> SendAsync(string method, string path, string? client) =>
            app.GetTestServer().SendAsync(context =>
            {
                context.Request.Method = method;
                context.Request.Path = path;
                context.Connection.RemoteIpAddress = client is null ? null : IPAddress.Parse(client);
            });

        public static async Task<string> BodyAsync(HttpResponse response)
        {
            using var reader = new StreamReader(response.Body);
            return await reader.ReadToEndAsync();
        }

        public async ValueTask DisposeAsync()
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }
}
