using System.Text;
using Identity.Contracts;
using MassTransit;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace Identity.Messaging.Tests;

/// <summary>Identity sends through MassTransit to a region's exchange; that region, and only it, receives.</summary>
[Collection(BrokerSuite.Name)]
public sealed class RegionDeliveryTests(BrokerFixture broker)
{
    private const ushort NotFound = 404;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Send_ToRegionEuExchange_ReachesRegionEuAndNotRegionUs()
    {
        // Arrange
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var userId = NewUserId();
        var inEu = new TaskCompletionSource<UserChanged>(TaskCreationOptions.RunContinuationsAsynchronously);
        var inUs = new TaskCompletionSource<UserChanged>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var eu = await StartRegionAsync("eu", Capture(inEu, userId), timeout.Token);
        await using var us = await StartRegionAsync("us", Capture(inUs, userId), timeout.Token);
        await using var identity = await StartIdentityAsync(timeout.Token);

        // Act
        await identity.SendToRegionAsync("eu", NewUser(userId), timeout.Token);

        // Assert
        var received = await inEu.Task.WaitAsync(Patience, timeout.Token);
        Assert.Equal(userId, received.UserId);
        await Task.Delay(TimeSpan.FromSeconds(2), timeout.Token);
        Assert.False(inUs.Task.IsCompleted, "region us received a message sent to region eu");
    }

    [Fact]
    public async Task Consume_WhenHandlerFails_MovesMessageToRegionErrorQueue()
    {
        // Region eu's user may create and use identity.region.eu_error (declared by MassTransit on first use).
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var userId = NewUserId();
        await using var eu = await StartRegionAsync(
            "eu", _ => throw new InvalidOperationException("the region's store is down"), timeout.Token);
        await using var identity = await StartIdentityAsync(timeout.Token);

        await identity.SendToRegionAsync("eu", NewUser(userId), timeout.Token);

        Assert.True(await ContainsMessageAboutAsync(RegionTopology.QueueFor("eu") + "_error", userId, timeout.Token));
    }

    [Fact]
    public async Task Consume_MessageWithoutConsumer_MovesItToRegionSkippedQueue()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var userId = NewUserId();
        await using var eu = await StartRegionAsync("eu", _ => Task.CompletedTask, timeout.Token);
        await using var identity = await StartIdentityAsync(timeout.Token);

        // Region eu consumes UserChanged only.
        var deleted = new UserDeleted { UserId = userId, AccountId = Guid.NewGuid(), Version = 2, DeletedAt = DateTimeOffset.UtcNow };
        await identity.SendToRegionAsync("eu", deleted, timeout.Token);

        Assert.True(await ContainsMessageAboutAsync(RegionTopology.QueueFor("eu") + "_skipped", userId, timeout.Token));
    }

    private async Task<RunningBus> StartIdentityAsync(CancellationToken cancellationToken) =>
        await RunningBus.StartAsync(
            Bus.Factory.CreateUsingRabbitMq(cfg => cfg.UseIdentityBroker(broker.OptionsFor("identity"))), cancellationToken);

    private async Task<RunningBus> StartRegionAsync(
        string region, Func<UserChanged, Task> handle, CancellationToken cancellationToken) =>
        await RunningBus.StartAsync(
            Bus.Factory.CreateUsingRabbitMq(cfg =>
            {
                cfg.UseIdentityBroker(broker.OptionsFor("region-" + region));
                cfg.ReceiveRegionEndpoint(region, endpoint => endpoint.Handler<UserChanged>(context => handle(context.Message)));
            }),
            cancellationToken);

    /// <summary>Other tests share the queues: only this test's user counts.</summary>
    private static Func<UserChanged, Task> Capture(TaskCompletionSource<UserChanged> received, string userId) => message =>
    {
        if (message.UserId == userId)
        {
            received.TrySetResult(message);
        }

        return Task.CompletedTask;
    };

    /// <summary>Reads <paramref name="queue"/> as region-eu until a message mentioning <paramref name="userId"/> turns up.</summary>
    private async Task<bool> ContainsMessageAboutAsync(string queue, string userId, CancellationToken cancellationToken)
    {
        await using var connection = await broker.RawFactoryFor("region-eu").CreateConnectionAsync(cancellationToken);
        var deadline = DateTime.UtcNow + Patience;
        while (DateTime.UtcNow < deadline)
        {
            await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
            BasicGetResult? result;
            try
            {
                result = await channel.BasicGetAsync(queue, autoAck: true, cancellationToken);
            }
            catch (OperationInterruptedException e) when (e.ShutdownReason?.ReplyCode == NotFound)
            {
                result = null; // MassTransit declares the queue when it first moves a message there.
            }

            if (result is null)
            {
                await Task.Delay(200, cancellationToken);
            }
            else if (Encoding.UTF8.GetString(result.Body.Span).Contains(userId, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    private static string NewUserId() => "user-" + Guid.NewGuid().ToString("N");

    private static UserChanged NewUser(string userId) => new()
    {
        UserId = userId,
        AccountId = Guid.NewGuid(),
        Email = "eu@example.test",
        Role = "member",
        Status = UserStatuses.Active,
        MfaEnrolled = false,
        Version = 1,
        ChangedAt = DateTimeOffset.UtcNow,
    };
}
