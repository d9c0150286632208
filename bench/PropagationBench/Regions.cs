using System.Globalization;
using Identity.Contracts;
using Identity.Region;
using Identity.Region.Replica;
using MassTransit;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

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
    }

    public string Region { get; }

    public LatencyRecorder Recorder { get; }

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
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
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
        await _host.StopAsync();
        _host.Dispose();
    }
}

/// <summary>
/// Every UserChanged a region consumed: when it was consumed (after the consumer, i.e. after the replica write) and
/// its latency, now − <see cref="UserChanged.ChangedAt"/>.
/// </summary>
public sealed class LatencyRecorder
{
    private readonly Lock _lock = new();
    private readonly List<(DateTimeOffset ChangedAt, double LatencyMs)> _events = new(65_536);

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

    public void Record(DateTimeOffset changedAt, DateTimeOffset appliedAt)
    {
        var ms = (appliedAt - changedAt).TotalMilliseconds;
        lock (_lock)
        {
            _events.Add((changedAt, ms));
        }
    }

    /// <summary>The latencies of the events whose change was made in [<paramref name="from"/>, <paramref name="to"/>).</summary>
    public double[] LatenciesOfChangesIn(DateTimeOffset from, DateTimeOffset to)
    {
        lock (_lock)
        {
            return _events.Where(e => e.ChangedAt >= from && e.ChangedAt < to).Select(e => e.LatencyMs).ToArray();
        }
    }
}

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
            recorder.Record(changed.ChangedAt, DateTimeOffset.UtcNow);
        }

        return Task.CompletedTask;
    }

    public Task ConsumeFault<T>(ConsumeContext<T> context, Exception exception)
        where T : class => Task.CompletedTask;
}
