using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text.Json;
using Identity.Server.IntegrationTests.Infrastructure;

namespace Identity.Server.IntegrationTests.Hosting;

/// <summary>
/// Issue 19 item 2, decision 0083: the real server (a process of its own, Production settings) on a PostgreSQL cluster of
/// this class's own, which the tests stop and start again mid-run. What a client notices while the database is away:
/// 503 with Retry-After within 5 s, in its own error format, no stack trace, never a 500 and never a hang; and after it
/// is back, the same process serves again without a restart.
/// </summary>
public sealed class DatabaseOutageTests(DatabaseOutageTests.Outage outage) : IClassFixture<DatabaseOutageTests.Outage>
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task DatabaseStopped_EveryKindOfRequest_503WithRetryAfterWithinFiveSeconds_ThenServedAgainWithoutRestart()
    {
        // Arrange: an admin token, a login form (its anti-forgery token), both taken while the database runs.
        var server = outage.Server;
        using var admin = await AdminAsync(server, outage.Arranger.BasicSecret);
        var browser = new BrowserSession(null, server.CreateClient(new CookieContainer()));
        var loginPage = await (await browser.GetAsync("/Account/Login")).Content.ReadAsStringAsync();

        // Act: PostgreSQL's fast shutdown; every open session is ended, new connections are refused.
        await outage.Arranger.Database.StopAsync();
        try
        {
            var ready = await TimedAsync(() => server.CreateClient().GetAsync("/health/ready"));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.Response.StatusCode);
            Assert.True(ready.Elapsed < Bound, $"readiness took {ready.Elapsed}");

            // A client never seen by this process, so no cache answers for the database.
            var token = await TimedAsync(() => server.CreateClient().ClientCredentialsAsync("svc-short", outage.Arranger.ShortSecret, "api.read"));
            var oauth = await AssertUnavailableAsync(token, "application/json");
            Assert.Equal("temporarily_unavailable", oauth.GetProperty("error").GetString());
            Assert.True(token.Response.Headers.CacheControl?.NoStore, "Cache-Control: no-store (RFC 6749 §5.1)");

            var api = await TimedAsync(() => admin.GetAsync("/admin/v1/outbox"));
            var problem = await AssertUnavailableAsync(api, "application/problem+json");
            Assert.Equal(503, problem.GetProperty("status").GetInt32());

            // A person signing in: the plain page, not an exception page.
            var signIn = await TimedAsync(() =>
            {
                browser.Http.DefaultRequestHeaders.Accept.ParseAdd("text/html");
                return browser.SubmitAsync("/Account/Login", loginPage,
                    new Dictionary<string, string> { ["Input.Email"] = ServerFixture<PrivatePostgresDatabase>.UserEmail, ["Input.Password"] = outage.Arranger.UserPassword });
            });
            await AssertUnavailableAsync(signIn, "text/html");

            // The authorization endpoint in a browser: the page too (the redirect_uri cannot be checked without the client).
            var authorize = await TimedAsync(() => browser.GetAsync(BrowserSession.AuthorizeUrl("web-us",
                ServerFixture<PrivatePostgresDatabase>.UsApp + "/signin-oidc", BrowserSession.Pkce().Challenge)));
            await AssertUnavailableAsync(authorize, "text/html");

            // 30 at once, of every kind: all 503 within the bound, none a 500.
            var burst = await Task.WhenAll(Enumerable.Range(0, 30).Select(i => TimedAsync(() => (i % 3) switch
            {
                0 => server.CreateClient().ClientCredentialsAsync("svc-short", outage.Arranger.ShortSecret, "api.read"),
                1 => admin.GetAsync("/admin/v1/outbox"),
                _ => server.CreateClient().GetAsync("/health/ready"),
            })));
            Assert.All(burst, r => Assert.Equal(HttpStatusCode.ServiceUnavailable, r.Response.StatusCode));
            Assert.All(burst, r => Assert.True(r.Elapsed < Bound, $"a request took {r.Elapsed}"));
            Assert.False(server.HasExited, server.Output);
        }
        finally
        {
            await outage.Arranger.Database.StartAsync();
        }

        // The same process serves again: readiness, tokens (twenty in a row: no connection broken by the outage is reused),
        // the admin API and a sign-in.
        await EventuallyAsync(async () => (await server.CreateClient().GetAsync("/health/ready")).StatusCode == HttpStatusCode.OK, "ready again");
        for (var i = 0; i < 20; i++)
        {
            await ResponseAssert.StatusAsync(await server.CreateClient().ClientCredentialsAsync("svc-short", outage.Arranger.ShortSecret, "api.read"), HttpStatusCode.OK);
        }

        await ResponseAssert.StatusAsync(await admin.GetAsync("/admin/v1/outbox"), HttpStatusCode.OK);
        var again = new BrowserSession(null, server.CreateClient(new CookieContainer()));
        var signedIn = await again.SignInAsync("/Account/Login", ServerFixture<PrivatePostgresDatabase>.UserEmail, outage.Arranger.UserPassword);
        Assert.Equal(HttpStatusCode.Redirect, signedIn.StatusCode);
        Assert.Equal(outage.StartedProcessId, server.Id);
    }

    [Fact]
    public async Task DatabaseSilent_ConnectionsAcceptedButNeverAnswered_503WithinTheConnectTimeoutNotAHang()
    {
        // Arrange: the database's port held by something that accepts connections and never says a word (a black hole,
        // a half-dead host): only the bounded connect wait (Database:ConnectTimeout, 2 s here) ends a request.
        var server = outage.Server;
        await outage.Arranger.Database.StopAsync();
        using var silent = new TcpListener(IPAddress.Loopback, outage.Arranger.Database.Port);
        var accepted = new List<Socket>();
        try
        {
            silent.Start();
            _ = Task.Run(async () =>
            {
                while (true)
                {
                    var socket = await silent.AcceptSocketAsync();
                    lock (accepted)
                    {
                        accepted.Add(socket);
                    }
                }
            });

            // Act
            var ready = await TimedAsync(() => server.CreateClient().GetAsync("/health/ready"));
            var token = await TimedAsync(() => server.CreateClient().ClientCredentialsAsync("svc-jwt-unknown", "x", "api.read"));
            var tokens = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ =>
                TimedAsync(() => server.CreateClient().ClientCredentialsAsync("svc-short", outage.Arranger.ShortSecret, "api.read"))));

            // Assert
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.Response.StatusCode);
            Assert.True(ready.Elapsed < Bound, $"readiness took {ready.Elapsed}");
            await AssertUnavailableAsync(token, "application/json");
            foreach (var response in tokens)
            {
                await AssertUnavailableAsync(response, "application/json");
            }

            Assert.NotEmpty(accepted); // the server did reach the silent port: the bound, not a refusal, ended the requests
        }
        finally
        {
            silent.Stop();
            lock (accepted)
            {
                accepted.ForEach(s => s.Dispose());
            }

            await outage.Arranger.Database.StartAsync();
        }

        await EventuallyAsync(async () => (await server.CreateClient().ClientCredentialsAsync("svc-short", outage.Arranger.ShortSecret, "api.read")).IsSuccessStatusCode,
            "tokens again");
    }

    /// <summary>503, Retry-After in seconds, the expected format, within the bound, nothing of the exception in the body.</summary>
    private static async Task<JsonElement> AssertUnavailableAsync(Timed timed, string mediaType)
    {
        var (response, elapsed) = (timed.Response, timed.Elapsed);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.ServiceUnavailable, $"{(int)response.StatusCode}: {body}");
        Assert.True(elapsed < Bound, $"the 503 took {elapsed}");
        Assert.True(response.Headers.RetryAfter?.Delta is { TotalSeconds: > 0 }, $"Retry-After: {response.Headers.RetryAfter}");
        Assert.Equal(mediaType, response.Content.Headers.ContentType?.MediaType);
        foreach (var leak in new[] { "Exception", "Npgsql", " at ", "127.0.0.1", "stack" })
        {
            Assert.DoesNotContain(leak, body, StringComparison.OrdinalIgnoreCase);
        }

        return mediaType.EndsWith("json", StringComparison.Ordinal) ? JsonDocument.Parse(body).RootElement.Clone() : default;
    }

    private static async Task<Timed> TimedAsync(Func<Task<HttpResponseMessage>> send)
    {
        var clock = Stopwatch.StartNew();
        var response = await send();
        await response.Content.LoadIntoBufferAsync();
        return new Timed(response, clock.Elapsed);
    }

    private static async Task<HttpClient> AdminAsync(ServerProcess server, string secret)
    {
        var client = server.CreateClient();
        var token = await ResponseAssert.StatusAsync(await client.ClientCredentialsAsync("platform-admin", secret, "identity.admin"), HttpStatusCode.OK);
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token.GetProperty("access_token").GetString());
        return client;
    }

    private static async Task EventuallyAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not within 30 s: {what}");
            await Task.Delay(250);
        }
    }

    private sealed record Timed(HttpResponseMessage Response, TimeSpan Elapsed);

    /// <summary>A private PostgreSQL prepared by an in-process server (migrations, clients, the user), and the server process under test.</summary>
    public sealed class Outage : IAsyncLifetime
    {
        public ServerFixture<PrivatePostgresDatabase> Arranger { get; } = new();

        public ServerProcess Server { get; private set; } = null!;

        public int StartedProcessId { get; private set; }

        public async Task InitializeAsync()
        {
            await Arranger.InitializeAsync();
            var settings = Arranger.Settings();
            settings["Database:AutoMigrate"] = "false";
            settings["Database:ConnectTimeout"] = "00:00:02";
            settings["Logging:LogLevel:Default"] = "Warning";
            Server = new ServerProcess(settings);
            await Server.StartAsync();
            StartedProcessId = Server.Id;
        }

        public async Task DisposeAsync()
        {
            await Server.DisposeAsync();
            await Arranger.DisposeAsync();
        }
    }
}
