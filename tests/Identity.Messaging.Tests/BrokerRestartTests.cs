namespace Identity.Messaging.Tests;

/// <summary>The broker control used by crash tests: kill and start again on the same port, durable messages kept.</summary>
[Collection(BrokerSuite.Name)]
public sealed class BrokerRestartTests(BrokerFixture broker)
{
    [Fact]
    public async Task KillThenStart_ConfirmedMessage_IsStillInQueueOnSamePort()
    {
        // Arrange: a message confirmed by the broker (so persisted) waits in region au's queue, which no test consumes.
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var userId = BrokerFixture.NewUserId();
        await using (var identity = await broker.StartIdentityAsync(timeout.Token))
        {
            await identity.SendToRegionAsync("au", BrokerFixture.NewUser(userId), timeout.Token);
        }

        // Act: a crash (SIGKILL of the broker's process group), then a start from the same state folder.
        await broker.ControlAsync("kill", timeout.Token);
        var port = await broker.ControlAsync("start", timeout.Token);

        // Assert
        Assert.Equal(broker.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), port);
        Assert.True(await broker.ContainsMessageAboutAsync("region-au", RegionTopology.QueueFor("au"), userId, timeout.Token));
    }
}
