using System.Net;
using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Server.IntegrationTests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Identity.Server.IntegrationTests.Hosting;

/// <summary>
/// <c>X-Forwarded-For</c> from a client that is not a configured proxy changes nothing: the sign-in throttle, the
/// token-endpoint throttle, the account's IP allow-list and the audit trail all see the socket's peer. Only a peer named
/// in <c>ForwardedHeaders:KnownProxies</c> is believed. The real server on Kestrel, the client in a network namespace
/// of its own: a non-loopback peer, as from another machine.
/// </summary>
public sealed class ForwardedHeadersTests(ServerFixture<SqliteTestDatabase> fixture, NetworkNamespace network)
    : IClassFixture<ServerFixture<SqliteTestDatabase>>, IClassFixture<NetworkNamespace>
{
    private const string Password = "Correct-Horse-Battery-9";
    private const string AllowList = """{"ipAllowList":{"ranges":["192.0.2.0/24"]}}""";

    /// <summary>The real server on Kestrel, listening on the host's side of the namespace's link; returns its client there.</summary>
    private HttpClient StartOnKestrel(Action<Dictionary<string, string?>>? change = null)
    {
        var port = TestPorts.Next();
        var host = fixture.StartServer(change);
        host.UseKestrel(kestrel => kestrel.Listen(network.HostAddress, port));
        host.StartServer();
        return network.Client(new Uri($"http://{network.HostAddress}:{port}/"));
    }

    private static async Task<HttpResponseMessage> SignInFromAsync(HttpClient client, string forwardedFor, string email, string password)
    {
        client.DefaultRequestHeaders.Remove("X-Forwarded-For");
        client.DefaultRequestHeaders.Add("X-Forwarded-For", forwardedFor);
        return await new BrowserSession(null, client).SignInAsync("/Account/Login", email, password);
    }

    private async Task<AuditEntry> LastAuditOfAsync(string email)
    {
        await using var scope = fixture.Server.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AuthorityDbContext>();
        var id = await db.Users.Where(u => u.Email == email).Select(u => u.Id).SingleAsync();
        return await db.AuditEntries.AsNoTracking().Where(e => e.SubjectId == id).OrderByDescending(e => e.Id).FirstAsync();
    }

    [Fact]
    public async Task SignInAndToken_RotatingForgedXForwardedFor_ThrottledByThePeerAddress()
    {
        using var client = StartOnKestrel(settings =>
        {
            settings["Throttling:SignInPerMinute"] = "3";
            settings["Throttling:TokenPerSecond"] = "3";
        });

        var signIns = new List<HttpStatusCode>();
        var tokens = new List<HttpStatusCode>();
        for (var i = 1; i <= 5; i++)
        {
            signIns.Add((await SignInFromAsync(client, $"198.51.100.{i}", "nobody@example.test", "Wrong-password-123")).StatusCode);
        }

        // The token bucket refills every second: its requests go in a burst of their own (interleaved with sign-ins,
        // which each verify a password hash, a slow machine let it refill between them), each with another forged address.
        for (var i = 1; i <= 10; i++)
        {
            client.DefaultRequestHeaders.Remove("X-Forwarded-For");
            client.DefaultRequestHeaders.Add("X-Forwarded-For", $"203.0.113.{i}");
            tokens.Add((await client.ClientCredentialsAsync("svc-basic", "wrong-secret", "api.read")).StatusCode);
        }

        client.DefaultRequestHeaders.Remove("X-Forwarded-For");

        Assert.Contains(HttpStatusCode.TooManyRequests, signIns);
        Assert.Contains(HttpStatusCode.TooManyRequests, tokens);
    }

    [Fact]
    public async Task SignIn_ForgedXForwardedForInsideTheAllowList_RefusedAndAuditedWithThePeerAddress()
    {
        var email = await fixture.UserInAccountWithPolicyAsync(AllowList, Password);
        using var client = StartOnKestrel();

        var response = await SignInFromAsync(client, "192.0.2.77", email, Password);

        Assert.Contains("Invalid email or password.", await ResponseAssert.HtmlAsync(response, HttpStatusCode.OK), StringComparison.Ordinal);
        var audit = await LastAuditOfAsync(email);
        Assert.Equal("signin.ip_refused", audit.EventType);
        Assert.Equal(network.PeerAddress.ToString(), audit.IpAddress);
    }

    [Fact]
    public async Task SignIn_FromAConfiguredProxy_XForwardedForHonoured()
    {
        var email = await fixture.UserInAccountWithPolicyAsync(AllowList, Password);
        using var client = StartOnKestrel(settings => settings["ForwardedHeaders:KnownProxies:0"] = network.PeerAddress.ToString());

        var response = await SignInFromAsync(client, "192.0.2.77", email, Password);

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        var audit = await LastAuditOfAsync(email);
        Assert.Equal("signin.succeeded", audit.EventType);
        Assert.Equal("192.0.2.77", audit.IpAddress);
    }
}
