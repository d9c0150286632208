using Identity.Contracts;
using Identity.Region.Messaging;
using Identity.Region.Replica;
using Identity.Region.Tests.Infrastructure;
using System.Data.Common;
using System.Diagnostics.Metrics;
using MassTransit;
using MassTransit.Testing;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using static Identity.Region.Tests.Infrastructure.Events;

namespace Identity.Region.Tests.Messaging;

/// <summary>The consumers on MassTransit's in-memory transport, on the region's endpoint as a host configures it.</summary>
public sealed class RegionConsumerTests
{
    private const string Queue = "identity.region.eu";

    [Fact]
    public async Task Consumers_OnTheRegionEndpoint_KeepTheReplica()
    {
        await using var host = await ReplicaHost.CreateAsync(configure: builder => builder.Services.AddMassTransitTestHarness(bus =>
        {
            bus.AddIdentityRegionConsumers();
            bus.UsingInMemory((context, memory) => memory.ReceiveEndpoint(Queue, e => e.ConfigureIdentityRegionEndpoint(context)));
        }));
        var harness = host.Services.GetRequiredService<ITestHarness>();
        await harness.Start();
        try
        {
            var revokedAt = new DateTimeOffset(2026, 12, 2, 9, 0, 0, TimeSpan.Zero);
            await harness.Bus.Publish(AccountIn(1, Account, "eu"));
            await harness.Bus.Publish(User("u1", 2));
            await harness.Bus.Publish(User("u2", 1));
            await harness.Bus.Publish(User("u1", 1)); // late and older: ignored
            await harness.Bus.Publish(Deleted("u2", 2));
            await harness.Bus.Publish(Revoked("u1", revokedAt));

            // Each kind of event consumed, seen in the replica it keeps. (Not harness.Consumed.Any: it gives up once the bus
            // has looked idle for the harness's inactivity timeout, which a loaded machine reaches before the batches.)
            await host.EventuallyAsync(async () =>
                await host.InScopeAsync(db => db.ReplicaAccounts.AnyAsync(a => a.AccountId == Account && a.InRegion))
                && await host.UserAsync("u1") is { Version: 2, SessionsRevokedAt: not null }
                && await host.UserAsync("u2") is { Deleted: true, Version: 2 },
                "the account is in the region, u1 is at v2 with its revocation and u2 is deleted");

            Assert.Equal(["u1"], (await host.LiveUsersAsync()).Select(u => u.UserId));
            Assert.Equal(revokedAt.UtcDateTime, (await host.UserAsync("u1"))!.SessionsRevokedAt);
            Assert.False(await harness.Published.Any<Fault<UserChanged>>());
        }
        finally
        {
            await harness.Stop();
        }
    }

    [Fact]
    public async Task Consumers_ApplyEventsThatArriveTogetherInOneTransaction()
    {
        var commits = new CommitCounter();
        using var applied = new AppliedEventsListener();
        await using var host = await ReplicaHost.CreateAsync(
            configure: builder =>
            {
                builder.Services.ConfigureDbContext<RegionReplicaDbContext>(db => db.AddInterceptors(commits));
                builder.Services.AddMassTransitTestHarness(bus =>
                {
                    bus.AddIdentityRegionConsumers();
                    bus.UsingInMemory((context, memory) => memory.ReceiveEndpoint(Queue, e => e.ConfigureIdentityRegionEndpoint(context)));
                });
            },
            region: region => region.ConfigureOptions(o => (o.BatchSize, o.BatchWindow) = (50, TimeSpan.FromMilliseconds(500))));
        var harness = host.Services.GetRequiredService<ITestHarness>();
        await harness.Start();
        try
        {
            await Task.WhenAll(Enumerable.Range(1, 100).Select(i => harness.Bus.Publish(User($"u{i:000}", 1))));

            await host.EventuallyAsync(async () => (await host.LiveUsersAsync()).Count == 100, "the 100 users are replicated");
            // The meter counts a batch just after its transaction committed: a test that saw the rows may look before.
            await host.EventuallyAsync(() => Task.FromResult(applied.Total >= 100), "the meter counted the 100 applied events");
            // One commit per event would be 100; batches of up to 50 need a few (the in-memory transport may split them).
            Assert.InRange(commits.Count, 2, 20);
            // The meter says the same, tagged with the region.
            Assert.Equal(100, applied.Total);
            Assert.Equal("eu", applied.Region);
        }
        finally
        {
            await harness.Stop();
        }
    }

    [Fact]
    public async Task AddIdentityRegion_UseBus_StartsABusWithTheConsumers()
    {
        await using var host = await ReplicaHost.CreateAsync(region: region => region.UseBus(bus =>
            bus.UsingInMemory((context, memory) => memory.ReceiveEndpoint(Queue, e => e.ConfigureIdentityRegionEndpoint(context)))));
        await host.App.StartAsync();
        try
        {
            await host.Services.GetRequiredService<IBus>().Publish(User("u1", 1));

            await host.EventuallyAsync(async () => await host.UserAsync("u1") is { Version: 1 }, "u1 is replicated");
        }
        finally
        {
            await host.App.StopAsync();
        }
    }

    [Fact]
    public void AddIdentityRegion_WithoutBus_RegistersNoBus()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.AddIdentityRegion();

        Assert.DoesNotContain(builder.Services, d => d.ServiceType == typeof(IBus));
    }
}

/// <summary>Counts the replica's committed transactions.</summary>
internal sealed class CommitCounter : DbTransactionInterceptor
{
    private int _count;

    public int Count => Volatile.Read(ref _count);

    public override Task TransactionCommittedAsync(DbTransaction transaction, TransactionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _count);
        return Task.CompletedTask;
    }
}

/// <summary>Sums <c>identity.region.events</c> with outcome applied, and notes the meter's region tag.</summary>
internal sealed class AppliedEventsListener : IDisposable
{
    private readonly MeterListener _listener = new();
    private long _total;

    public AppliedEventsListener()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument is { Name: "identity.region.events", Meter.Name: RegionMetrics.MeterName })
            {
                Region = instrument.Meter.Tags?.FirstOrDefault(t => t.Key == "region").Value as string;
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag is { Key: "outcome", Value: "applied" })
                {
                    Interlocked.Add(ref _total, value);
                }
            }
        });
        _listener.Start();
    }

    public long Total => Interlocked.Read(ref _total);

    public string? Region { get; private set; }

    public void Dispose() => _listener.Dispose();
}
