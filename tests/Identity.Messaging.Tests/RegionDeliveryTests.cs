using Identity.Contracts;

namespace Identity.Messaging.Tests;

/// <summary>Identity sends through MassTransit to a region's exchange; that region, and only it, receives.</summary>
[Collection(BrokerSuite.Name)]
public sealed class RegionDeliveryTests(BrokerFixture broker)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Send_ToRegionEuExchange_ReachesRegionEuAndNotRegionUs()
    {
        // Arrange
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var userId = BrokerFixture.NewUserId();
        var inEu = new TaskCompletionSource<UserChanged>(TaskCreationOptions.RunContinuationsAsynchronously);
        var inUs = new TaskCompletionSource<UserChanged>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var eu = await broker.StartRegionAsync("eu", Capture(inEu, userId), timeout.Token);
        await using var us = await broker.StartRegionAsync("us", Capture(inUs, userId), timeout.Token);
        await using var identity = await broker.StartIdentityAsync(timeout.Token);

        // Act
        await identity.SendToRegionAsync("eu", BrokerFixture.NewUser(userId), timeout.Token);

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
        var userId = BrokerFixture.NewUserId();
        await using var eu = await broker.StartRegionAsync(
            "eu", _ => throw new InvalidOperationException("the region's store is down"), timeout.Token);
        await using var identity = await broker.StartIdentityAsync(timeout.Token);

        await identity.SendToRegionAsync("eu", BrokerFixture.NewUser(userId), timeout.Token);

        Assert.True(await broker.ContainsMessageAboutAsync("region-eu", RegionTopology.QueueFor("eu") + "_error", userId, timeout.Token));
    }

    [Fact]
    public async Task Consume_MessageWithoutConsumer_MovesItToRegionSkippedQueue()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var userId = BrokerFixture.NewUserId();
        await using var eu = await broker.StartRegionAsync("eu", _ => Task.CompletedTask, timeout.Token);
        await using var identity = await broker.StartIdentityAsync(timeout.Token);

        // Region eu consumes UserChanged only.
        var deleted = new UserDeleted { UserId = userId, AccountId = Guid.NewGuid(), Version = 2, DeletedAt = DateTimeOffset.UtcNow };
        await identity.SendToRegionAsync("eu", deleted, timeout.Token);

        Assert.True(await broker.ContainsMessageAboutAsync("region-eu", RegionTopology.QueueFor("eu") + "_skipped", userId, timeout.Token));
    }

    /// <summary>Other tests share the queues: only this test's user counts.</summary>
    private static Func<UserChanged, Task> Capture(TaskCompletionSource<UserChanged> received, string userId) => message =>
    {
        if (message.UserId == userId)
        {
            received.TrySetResult(message);
        }

        return Task.CompletedTask;
    };
}
