using Identity.Contracts;
using MassTransit;

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
        var userId = "user-" + Guid.NewGuid().ToString("N");
        var inEu = new TaskCompletionSource<UserChanged>(TaskCreationOptions.RunContinuationsAsynchronously);
        var inUs = new TaskCompletionSource<UserChanged>(TaskCreationOptions.RunContinuationsAsynchronously);
        var eu = await StartRegionAsync("eu", inEu, userId, timeout.Token);
        var us = await StartRegionAsync("us", inUs, userId, timeout.Token);
        var identity = Bus.Factory.CreateUsingRabbitMq(cfg => cfg.UseIdentityBroker(broker.OptionsFor("identity")));
        await identity.StartAsync(timeout.Token);
        try
        {
            // Act
            var endpoint = await identity.GetSendEndpoint(RegionTopology.SendAddressFor("eu"));
            await endpoint.Send(NewUser(userId), timeout.Token);

            // Assert
            var received = await inEu.Task.WaitAsync(Patience, timeout.Token);
            Assert.Equal("eu@example.test", received.Email);
            await Task.Delay(TimeSpan.FromSeconds(2), timeout.Token);
            Assert.False(inUs.Task.IsCompleted, "region us received a message sent to region eu");
        }
        finally
        {
            await identity.StopAsync(CancellationToken.None);
            await us.StopAsync(CancellationToken.None);
            await eu.StopAsync(CancellationToken.None);
        }
    }

    private async Task<IBusControl> StartRegionAsync(
        string region, TaskCompletionSource<UserChanged> received, string userId, CancellationToken cancellationToken)
    {
        var bus = Bus.Factory.CreateUsingRabbitMq(cfg =>
        {
            cfg.UseIdentityBroker(broker.OptionsFor("region-" + region));
            cfg.ReceiveRegionEndpoint(region, endpoint => endpoint.Handler<UserChanged>(context =>
            {
                // Other tests share the queues: only this test's user counts.
                if (context.Message.UserId == userId)
                {
                    received.TrySetResult(context.Message);
                }

                return Task.CompletedTask;
            }));
        });
        await bus.StartAsync(cancellationToken);
        return bus;
    }

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
