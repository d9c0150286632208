using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Identity.Server.IntegrationTests.Infrastructure;

namespace Identity.Server.IntegrationTests.Hosting;

/// <summary>
/// Issue 19 item 2: SIGTERM (a rollout, a scale-down, a node drain) during a stream of token requests. The server stops
/// taking new connections, finishes every request it has begun, and exits 0; no client whose request reached it sees
/// an error. The lease half of the shutdown is Identity.Messaging.Tests' DispatchHandOverTests.
/// </summary>
public sealed class GracefulShutdownTests(ServerFixture<PostgresTestDatabase> fixture) : IClassFixture<ServerFixture<PostgresTestDatabase>>
{
    private const int FastWorkers = 6;
    private const int SlowRequests = 4;

    [Fact]
    public async Task Sigterm_DuringAStreamOfTokenRequests_EveryRequestInFlightCompletes_ThenTheProcessExitsZero()
    {
        // Arrange: the real server; a stream of client-credentials requests from six clients at once, and four requests
        // whose body is still arriving when the signal comes (in flight for certain: the server is reading them).
        var settings = fixture.Settings();
        settings["Logging:LogLevel:Default"] = "Warning";
        settings["Throttling:ExemptLoopback"] = "true"; // one address at full speed, as a load generator
        await using var server = new ServerProcess(settings);
        await server.StartAsync();
        var outcomes = new ConcurrentBag<Outcome>();
        var clock = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource();
        var stream = Enumerable.Range(0, FastWorkers).Select(_ => Task.Run(async () =>
        {
            using var client = server.CreateClient();
            while (!stop.IsCancellationRequested)
            {
                outcomes.Add(await SendAsync(client, clock, new FormUrlEncodedContent(Form)));
            }
        })).ToList();
        await EventuallyAsync(() => outcomes.Count(o => o.Status == HttpStatusCode.OK) >= 50, "the stream runs");

        var rest = new TaskCompletionSource();
        var slow = Enumerable.Range(0, SlowRequests).Select(_ => new SlowForm(rest.Task)).ToList();
        var slowSent = slow.Select(content => Task.Run(async () =>
        {
            using var client = server.CreateClient();
            return await SendAsync(client, clock, content);
        })).ToList();
        await Task.WhenAll(slow.Select(s => s.HalfSent));
        await Task.Delay(200); // the halves are on the server, which waits for the rest

        // Act: SIGTERM; the rest of the slow bodies a second later.
        var signalled = clock.Elapsed;
        await server.SendTerminateAsync();
        await Task.Delay(TimeSpan.FromSeconds(1));
        rest.SetResult();
        var slowOutcomes = await Task.WhenAll(slowSent);
        var exitCode = await server.WaitForExitAsync(TimeSpan.FromSeconds(30));
        await stop.CancelAsync();
        await Task.WhenAll(stream);

        // Assert: the requests in flight at the signal were answered with tokens, the process ended cleanly.
        Assert.All(slowOutcomes, o => Assert.True(o.Status == HttpStatusCode.OK && o.Body.Contains("access_token", StringComparison.Ordinal), o.ToString()));
        Assert.True(exitCode == 0, $"exit code {exitCode}:\n{server.Output}");

        // Every answer the stream got was a token: no 5xx while draining. A request that got no answer never reached the
        // server (its connection refused, or closed by the server before it read anything), and was sent after the signal.
        var stream200 = outcomes.Count(o => o.Status == HttpStatusCode.OK);
        Assert.All(outcomes.Where(o => o.Status is not null), o => Assert.True(o.Status == HttpStatusCode.OK, o.ToString()));
        Assert.All(outcomes.Where(o => o.Status is null), o => Assert.True(o.StartedAt > signalled, $"{o} (signal at {signalled})"));
        Assert.Contains(outcomes, o => o.Status == HttpStatusCode.OK && o.StartedAt < signalled && o.EndedAt > signalled);
        Assert.True(stream200 >= 50, $"{stream200} tokens in the stream");
        Assert.DoesNotContain("Unhandled exception", server.Output, StringComparison.OrdinalIgnoreCase);
    }

    private static readonly Dictionary<string, string> Form = new()
    {
        ["grant_type"] = "client_credentials", ["scope"] = "api.read",
    };

    private async Task<Outcome> SendAsync(HttpClient client, Stopwatch clock, HttpContent content)
    {
        var started = clock.Elapsed;
        using var request = new HttpRequestMessage(HttpMethod.Post, "/connect/token") { Content = content };
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.ASCII.GetBytes("svc-basic:" + fixture.BasicSecret)));
        try
        {
            using var response = await client.SendAsync(request);
            return new Outcome(started, clock.Elapsed, response.StatusCode, await response.Content.ReadAsStringAsync(), null);
        }
        catch (HttpRequestException e)
        {
            return new Outcome(started, clock.Elapsed, null, "", e.InnerException?.GetType().Name + ": " + e.Message
                + (e.InnerException is SocketException s ? $" ({s.SocketErrorCode})" : ""));
        }
    }

    private static async Task EventuallyAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not within 60 s: {what}");
            await Task.Delay(50);
        }
    }

    private sealed record Outcome(TimeSpan StartedAt, TimeSpan EndedAt, HttpStatusCode? Status, string Body, string? Error)
    {
        public override string ToString() =>
            $"started {StartedAt.TotalMilliseconds:F0} ms, ended {EndedAt.TotalMilliseconds:F0} ms: {(Status is { } s ? (int)s + " " + Body[..Math.Min(Body.Length, 200)] : Error)}";
    }

    /// <summary>A token request's form sent in two halves: the second only once <paramref name="rest"/> completes.</summary>
    private sealed class SlowForm : HttpContent
    {
        private readonly byte[] _body = Encoding.ASCII.GetBytes("grant_type=client_credentials&scope=api.read");
        private readonly TaskCompletionSource _halfSent = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Task _rest;

        public SlowForm(Task rest)
        {
            _rest = rest;
            Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/x-www-form-urlencoded");
        }

        public Task HalfSent => _halfSent.Task;

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            var half = _body.Length / 2;
            await stream.WriteAsync(_body.AsMemory(0, half));
            await stream.FlushAsync();
            _halfSent.TrySetResult();
            await _rest;
            await stream.WriteAsync(_body.AsMemory(half));
        }

        protected override bool TryComputeLength(out long length)
        {
            length = _body.Length;
            return true;
        }
    }
}
