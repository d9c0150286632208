using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Identity.Propagation;
using Identity.Region.Messaging;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Identity.Messaging.Tests.Propagation;

/// <summary>
/// A user change seen by telemetry, over the real broker with mutual TLS. Followed from the authority to the regional
/// replica as one trace (decision 0084): the admin API request, the outbox row's dispatch (another thread, after the
/// commit) and the region's apply share the trace id the caller started, each span the child of the one before. And the
/// region's meter records how long the change took from the authority's send (the replica lag an alert watches).
/// </summary>
[Collection(BrokerSuite.Name)]
public sealed class PropagationTelemetryTests(PropagationFixture fixture) : IClassFixture<PropagationFixture>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private readonly string _unique = Guid.NewGuid().ToString("n")[..8];

    [Fact]
    public async Task UserChange_TracedCaller_RequestDispatchAndRegionalApplyShareOneTrace()
    {
        // Arrange: an account in p-eu with a user the region already holds; an authority configured as in production
        // (traces on, 1 % of new traces), exporting to memory; the region's tracer as a regional service configures it.
        var authoritySpans = new SpanList();
        var regionSpans = new SpanList();
        var settings = fixture.Settings(broker: false);
        settings["Telemetry:Traces"] = "true";
        settings["Telemetry:TraceSampleRatio"] = "0.01";
        await using var authority = new AuthorityHost(settings, services =>
            services.ConfigureOpenTelemetryTracerProvider(tracing => tracing.AddInMemoryExporter(authoritySpans)));
        using var client = authority.Start();
        using var region = Sdk.CreateTracerProviderBuilder()
            .SetSampler(new ParentBasedSampler(new TraceIdRatioBasedSampler(0.01)))
            .AddSource("MassTransit", RegionTracing.SourceName)
            .AddInMemoryExporter(regionSpans)
            .Build();

        var account = await CreateAccountAsync("p-eu");
        var (user, etag) = await CreateUserAsync(account);
        await EventuallyAsync(async () => await fixture.Eu.UserAsync(user) is { Version: 1 }, "the new user reached p-eu");

        // Act: the change, from a caller whose trace is sampled (W3C traceparent, flags 01).
        var traceId = ActivityTraceId.CreateRandom();
        var callerSpan = ActivitySpanId.CreateRandom();
        using var patch = new HttpRequestMessage(HttpMethod.Patch, $"/admin/v1/accounts/{account}/users/{user}")
        {
            Content = JsonContent.Create(new { displayName = "Traced " + _unique }),
        };
        patch.Headers.IfMatch.Add(new EntityTagHeaderValue(etag));
        patch.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await AdminTokenAsync(client));
        patch.Headers.Add("traceparent", $"00-{traceId}-{callerSpan}-01");
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(patch)).StatusCode);
        await EventuallyAsync(async () => await fixture.Eu.UserAsync(user) is { DisplayName: var name } && name == "Traced " + _unique,
            "the change reached p-eu");

        // Assert: request → dispatch → (MassTransit's send) → the region's apply, one trace, each the next one's parent.
        // Each span is exported when it ends, and they end out of order: the dispatch and MassTransit's send end at the
        // broker's confirm, which may come after the region applied the message; so the test waits for all of them.
        Activity? apply = null;
        List<Activity> authorityTrace = [];
        await EventuallyAsync(() =>
        {
            apply = regionSpans.Snapshot().FirstOrDefault(a => a.Source.Name == RegionTracing.SourceName && a.TraceId == traceId);
            authorityTrace = authoritySpans.Snapshot().Where(a => a.TraceId == traceId).ToList();
            return Task.FromResult(apply is not null && authorityTrace.Any(a => a.Kind == ActivityKind.Server)
                && authorityTrace.Any(a => a.Source.Name == OutboxTracing.SourceName)
                && authorityTrace.Any(a => a.Source.Name == "MassTransit" && a.Kind == ActivityKind.Producer));
        }, "p-eu recorded an apply span, and the authority its request, dispatch and send spans, in the caller's trace");

        var request = Assert.Single(authorityTrace, a => a.Kind == ActivityKind.Server);
        Assert.Equal(callerSpan, request.ParentSpanId);
        Assert.Contains($"/admin/v1/accounts/{account}/users/", request.GetTagItem("url.path") as string, StringComparison.Ordinal);
        var dispatch = Assert.Single(authorityTrace, a => a.Source.Name == OutboxTracing.SourceName);
        Assert.Equal(request.SpanId, dispatch.ParentSpanId);
        Assert.Equal("p-eu", dispatch.GetTagItem("identity.region"));
        Assert.Equal(ActivityStatusCode.Unset, dispatch.Status);
        Assert.Contains(authorityTrace, a => a.Source.Name == "MassTransit" && a.Kind == ActivityKind.Producer && a.ParentSpanId == dispatch.SpanId);
        Assert.Equal(dispatch.SpanId, apply!.ParentSpanId);
        Assert.Equal(ActivityKind.Consumer, apply.Kind);
        Assert.Equal("UserChanged", apply.GetTagItem("identity.event"));
        // The other region never saw the change: nothing of this trace was applied there.
        Assert.DoesNotContain(authorityTrace, a => a.Source.Name == OutboxTracing.SourceName && (string?)a.GetTagItem("identity.region") == "p-us");
    }

    [Fact]
    public async Task UserChange_AppliedInTheRegion_ReplicaLagRecordedPerEvent()
    {
        var exported = new List<MetricSnapshot>();
        using var meters = Sdk.CreateMeterProviderBuilder().AddMeter(RegionMetrics.MeterName).AddInMemoryExporter(exported).Build();
        var sent = DateTimeOffset.UtcNow;

        var account = await CreateAccountAsync("p-eu");
        var (user, _) = await CreateUserAsync(account);
        await EventuallyAsync(async () => await fixture.Eu.UserAsync(user) is { Version: 1 }, "the new user reached p-eu");
        var waited = DateTimeOffset.UtcNow - sent;
        meters.ForceFlush();

        var lag = Assert.Single(exported, m => m.Name == "identity.region.replica_lag");
        Assert.Equal("s", lag.Unit);
        var userChanged = lag.MetricPoints.Where(p => Tags(p).Contains(new("event", "UserChanged"))).ToList();
        Assert.NotEmpty(userChanged);
        var count = userChanged.Sum(p => p.GetHistogramCount());
        var sum = userChanged.Sum(p => p.GetHistogramSum());
        Assert.True(count >= 1, "no lag recorded for UserChanged");
        Assert.InRange(sum / count, 0, waited.TotalSeconds + 1);
    }

    private static List<KeyValuePair<string, object?>> Tags(MetricPoint point)
    {
        var tags = new List<KeyValuePair<string, object?>>();
        foreach (var tag in point.Tags)
        {
            tags.Add(tag);
        }

        return tags;
    }

    /// <summary>What an in-memory exporter writes to, from the threads that end spans, read by the test meanwhile.</summary>
    private sealed class SpanList : System.Collections.ObjectModel.Collection<Activity>
    {
        private readonly Lock _lock = new();

        public List<Activity> Snapshot()
        {
            lock (_lock)
            {
                return [.. Items];
            }
        }

        protected override void InsertItem(int index, Activity item)
        {
            lock (_lock)
            {
                base.InsertItem(index, item);
            }
        }
    }

    private async Task<string> AdminTokenAsync(HttpClient client)
    {
        var token = await client.PostAsync("/connect/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["scope"] = "identity.admin",
            ["client_id"] = "platform-admin", ["client_secret"] = fixture.Secret,
        }));
        Assert.Equal(HttpStatusCode.OK, token.StatusCode);
        return (await token.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("access_token").GetString()!;
    }

    private async Task<Guid> CreateAccountAsync(params string[] regions)
    {
        var response = await fixture.Platform.PostAsJsonAsync("/admin/v1/accounts", new { name = "Trace " + _unique, regions });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    private async Task<(string Id, string ETag)> CreateUserAsync(Guid account)
    {
        var response = await fixture.Platform.PostAsJsonAsync($"/admin/v1/accounts/{account}/users",
            new { email = $"traced-{_unique}@example.test", displayName = "Traced", role = "member", password = "Correct-Horse-Battery-9" });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var id = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("user").GetProperty("id").GetString()!;
        return (id, response.Headers.ETag!.Tag);
    }

    private static async Task EventuallyAsync(Func<Task<bool>> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(clock.Elapsed < Patience, $"Not within {Patience.TotalSeconds} s: {what}.");
            await Task.Delay(100);
        }
    }
}
