using System.Diagnostics.Metrics;
using System.Globalization;
using Identity.Contracts;
using Identity.Messaging;
using Identity.Region;
using Identity.Region.Messaging;
using Identity.Region.Replica;
using MassTransit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace PropagationBench;

/// <summary>
/// One regional service as a region runs it: <c>AddIdentityRegion()</c> with its SQLite replica, consuming its queue on
/// the broker over mutual TLS as <c>region-&lt;r&gt;</c>, its initial resync from the server's sync API. The bench only
/// adds a consume observer (<see cref="LatencyObserver"/>).
/// </summary>
public sealed class RegionHost : IAsyncDisposable
{
    private readonly IHost _host;

    private RegionHost(string region, IHost host, LatencyRecorder recorder)
    {
        Region = region;
        _host = host;
        Recorder = recorder;
        Batches = new BatchStats(region);
    }

    public string Region { get; }

    public LatencyRecorder Recorder { get; }

    /// <summary>The region's UserChanged batches, read from its <c>Identity.Region</c> meter.</summary>
    public BatchStats Batches { get; }

    public static async Task<RegionHost> StartAsync(string region, BenchOptions options)
    {
        var folder = Path.Combine(options.WorkDir, "region-" + region);
        Directory.CreateDirectory(folder);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            EnvironmentName = "Production", ContentRootPath = folder, Args = [],
        });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["IdentityRegion:Region"] = region,
            ["IdentityRegion:Authority"] = options.Authority!.ToString(),
            ["IdentityRegion:ClientId"] = "region-" + region,
            ["IdentityRegion:ClientSecret"] = options.RegionSecret,
            ["IdentityRegion:ReplicaConnectionString"] = "Data Source=replica.db",
            ["IdentityRegion:ResyncOnStart"] = "false",
            ["Broker:Host"] = "127.0.0.1",
            ["Broker:Port"] = options.BrokerPort.ToString(CultureInfo.InvariantCulture),
            ["Broker:ServerName"] = "localhost",
            ["Broker:CaCertificatePath"] = Path.Combine(options.CertsDir, "ca.pem"),
            ["Broker:ClientCertificatePath"] = Path.Combine(options.CertsDir, $"region-{region}.pfx"),
        });
        // stdout carries the result line only: the regions log to stderr.
        builder.Logging.ClearProviders().AddConsole(console => console.LogToStandardErrorThreshold = LogLevel.Trace)
            .SetMinimumLevel(LogLevel.Warning);
        builder.AddIdentityRegion();

        var recorder = new LatencyRecorder();
        builder.Services.AddConsumeObserver(_ => new LatencyObserver(recorder));
        var host = builder.Build();
        await host.StartAsync();
        return new RegionHost(region, host, recorder);
    }

    /// <summary>True once the replica's initial resync from the sync API has completed.</summary>
    public async Task<bool> SyncedAsync()
    {
        await using var scope = _host.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<RegionReplicaDbContext>();
        return await db.ReplicaState.AnyAsync(s => s.LastFullResyncAt != null);
    }

    /// <summary>The replica's live users, by id: version and display name.</summary>
    public async Task<Dictionary<string, (long Version, string? DisplayName)>> UsersAsync()
    {
        await using var scope = _host.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<RegionReplicaDbContext>();
        return await db.ReplicaUsers.AsNoTracking().Where(u => !u.Deleted)
            .ToDictionaryAsync(u => u.UserId, u => (u.Version, u.DisplayName));
    }

    public async ValueTask DisposeAsync()
    {
        Batches.Dispose();
        await _host.StopAsync();
        _host.Dispose();
    }
}

/// <summary>
/// Every UserChanged a region consumed: latency = applied − <see cref="UserChanged.ChangedAt"/> (applied: after the
/// consumer, i.e. after the replica write), split at the message's SentTime (stamped by the server's MassTransit
/// publish) into the outbox part (commit → published: poll interval + dispatch) and the region part (published →
/// applied: broker, queue wait, replica write). One machine, one clock.
/// </summary>
public sealed class LatencyRecorder
{
    private readonly Lock _lock = new();
    private readonly List<Applied> _events = new(65_536);

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _events.Count;
            }
        }
    }

    public void Record(DateTimeOffset changedAt, DateTime? sentAt, DateTimeOffset appliedAt)
    {
        var total = (appliedAt - changedAt).TotalMilliseconds;
        var outbox = sentAt is { } sent ? (new DateTimeOffset(DateTime.SpecifyKind(sent, DateTimeKind.Utc)) - changedAt).TotalMilliseconds : double.NaN;
        Add(new Applied(changedAt, total, outbox));
    }

    public void Add(Applied applied)
    {
        lock (_lock)
        {
            _events.Add(applied);
        }
    }

    public Applied[] All()
    {
        lock (_lock)
        {
            return [.. _events];
        }
    }

    /// <summary>How many UserChanged were applied (any change) in [<paramref name="from"/>, <paramref name="to"/>): the region's throughput.</summary>
    public int AppliedIn(DateTimeOffset from, DateTimeOffset to)
    {
        lock (_lock)
        {
            return _events.Count(e => e.ChangedAt.AddMilliseconds(e.TotalMs) is var at && at >= from && at < to);
        }
    }

    /// <summary>The events whose change was made in [<paramref name="from"/>, <paramref name="to"/>).</summary>
    public Applied[] OfChangesIn(DateTimeOffset from, DateTimeOffset to)
    {
        lock (_lock)
        {
            return _events.Where(e => e.ChangedAt >= from && e.ChangedAt < to).ToArray();
        }
    }
}

/// <summary>One consumed UserChanged: total latency and its outbox part (NaN without a SentTime), in ms.</summary>
public readonly record struct Applied(DateTimeOffset ChangedAt, double TotalMs, double OutboxMs);

/// <summary>
/// Sees every message of the region's bus; <see cref="PostConsume{T}"/> runs once the consumers have finished, so
/// the UserChanged has been written to the replica (or ignored as older) by then.
/// </summary>
public sealed class LatencyObserver(LatencyRecorder recorder) : IConsumeObserver
{
    public Task PreConsume<T>(ConsumeContext<T> context)
        where T : class => Task.CompletedTask;

    public Task PostConsume<T>(ConsumeContext<T> context)
        where T : class
    {
        if (context.Message is UserChanged changed)
        {
            recorder.Record(changed.ChangedAt, context.SentTime, DateTimeOffset.UtcNow);
        }

        return Task.CompletedTask;
    }

    public Task ConsumeFault<T>(ConsumeContext<T> context, Exception exception)
        where T : class => Task.CompletedTask;
}

/// <summary>
/// Listens to one region's <c>identity.region.batch.size</c> and <c>identity.region.batch.duration</c> for UserChanged
/// (the meter carries the region as a tag): how many transactions the region ran, and how big and long they were.
/// </summary>
public sealed class BatchStats : IDisposable
{
    private readonly MeterListener _listener = new();
    private long _batches;
    private long _events;
    private double _seconds;

    public BatchStats(string region)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == RegionMetrics.MeterName
                && instrument.Meter.Tags?.Any(t => t.Key == "region" && Equals(t.Value, region)) == true
                && instrument.Name is "identity.region.batch.size" or "identity.region.batch.duration")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<int>((_, size, tags, _) =>
        {
            if (IsUserChanged(tags))
            {
                Interlocked.Increment(ref _batches);
                Interlocked.Add(ref _events, size);
            }
        });
        _listener.SetMeasurementEventCallback<double>((_, seconds, tags, _) =>
        {
            if (IsUserChanged(tags))
            {
                lock (_listener)
                {
                    _seconds += seconds;
                }
            }
        });
        _listener.Start();
    }

    /// <summary>Batches, events and the time spent applying them, since the region started.</summary>
    public (long Batches, long Events, double Seconds) Snapshot()
    {
        lock (_listener)
        {
            return (Interlocked.Read(ref _batches), Interlocked.Read(ref _events), _seconds);
        }
    }

    public void Dispose() => _listener.Dispose();

    private static bool IsUserChanged(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        foreach (var tag in tags)
        {
            if (tag.Key == "event" && Equals(tag.Value, nameof(UserChanged)))
            {
                return true;
            }
        }

        return false;
    }
}
