using Identity.Contracts;
using Identity.Region.Messaging;
using Identity.Region.Tests.Infrastructure;
using MassTransit;
using MassTransit.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using static Identity.Region.Tests.Infrastructure.Events;

namespace Identity.Region.Tests;

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

            Assert.True(await harness.Consumed.Any<AccountChanged>());
            Assert.True(await harness.Consumed.Any<UserDeleted>());
            Assert.True(await harness.Consumed.Any<SessionsRevoked>());
            await host.EventuallyAsync(async () =>
                await host.UserAsync("u1") is { Version: 2, SessionsRevokedAt: not null }
                && await host.UserAsync("u2") is { Deleted: true, Version: 2 }, "u1 is at v2 with its revocation and u2 is deleted");

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
