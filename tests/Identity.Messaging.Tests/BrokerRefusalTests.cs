using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using RabbitMQ.Client.Exceptions;

namespace Identity.Messaging.Tests;

/// <summary>What the broker (and our client) refuse: no certificate, a foreign CA, another region's queue.</summary>
[Collection(BrokerSuite.Name)]
public sealed class BrokerRefusalTests(BrokerFixture broker)
{
    private const ushort AccessRefused = 403;
    private const ushort PreconditionFailed = 406;

    [Fact]
    public async Task Connect_WithIdentityCertificate_IsAccepted()
    {
        // The control for the refusals below: the same factory with a good certificate connects.
        await using var connection = await broker.RawFactoryFor("identity").CreateConnectionAsync();

        Assert.True(connection.IsOpen);
    }

    [Fact]
    public async Task Connect_WithoutClientCertificate_IsRefused()
    {
        var factory = broker.RawFactoryFor(name: null);

        await Assert.ThrowsAsync<BrokerUnreachableException>(() => factory.CreateConnectionAsync());
    }

    [Fact]
    public async Task Connect_WithCertificateFromAnotherCa_IsRefused()
    {
        // CN=identity, like the real one, but issued by the rogue CA the broker does not trust.
        var factory = broker.RawFactoryFor("rogue-identity");

        await Assert.ThrowsAsync<BrokerUnreachableException>(() => factory.CreateConnectionAsync());
    }

    [Fact]
    public async Task Connect_ToBrokerNotIssuedByConfiguredCa_IsRefusedByClient()
    {
        // Our validation callback: a client that trusts only the rogue CA must not accept the real broker.
        var factory = broker.RawFactoryFor("identity", ca: "rogue-ca");

        await Assert.ThrowsAsync<BrokerUnreachableException>(() => factory.CreateConnectionAsync());
    }

    [Theory]
    [InlineData("region-us")]
    [InlineData("identity")]
    public async Task Consume_RegionEuQueueAsAnotherUser_IsAccessRefused(string user)
    {
        await using var connection = await broker.RawFactoryFor(user).CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();

        var refused = await Assert.ThrowsAsync<OperationInterruptedException>(() =>
            channel.BasicConsumeAsync(RegionTopology.QueueFor("eu"), autoAck: false, new AsyncEventingBasicConsumer(channel)));

        Assert.Equal(AccessRefused, refused.ShutdownReason?.ReplyCode);
    }

    [Fact]
    public async Task Publish_ToRegionUsExchangeAsRegionEu_IsAccessRefused()
    {
        await using var connection = await broker.RawFactoryFor("region-eu").CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync(
            new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true));

        // The broker answers a forbidden publish by closing the channel; the confirm never comes.
        var failure = await Record.ExceptionAsync(async () =>
        {
            await channel.BasicPublishAsync(RegionTopology.ExchangeFor("us"), routingKey: "", "forged"u8.ToArray());
            await channel.QueueDeclarePassiveAsync(RegionTopology.QueueFor("eu"));
        });

        Assert.NotNull(failure);
        Assert.Equal(AccessRefused, channel.CloseReason?.ReplyCode);
    }

    /// <summary>
    /// The region's queue is a quorum queue (replicated on a cluster): the broker refuses to declare it with another
    /// type (406 PRECONDITION_FAILED, "inequivalent arg 'x-queue-type'"), and accepts the quorum declaration that the
    /// region's receive endpoint makes.
    /// </summary>
    [Fact]
    public async Task Declare_RegionQueueAsClassic_IsRefusedBecauseItIsQuorum()
    {
        await using var connection = await broker.RawFactoryFor("region-eu").CreateConnectionAsync();
        await using (var channel = await connection.CreateChannelAsync())
        {
            var refused = await Assert.ThrowsAsync<OperationInterruptedException>(() => channel.QueueDeclareAsync(
                RegionTopology.QueueFor("eu"), durable: true, exclusive: false, autoDelete: false,
                new Dictionary<string, object?> { ["x-queue-type"] = "classic" }));
            Assert.Equal(PreconditionFailed, refused.ShutdownReason?.ReplyCode);
        }

        await using var quorum = await connection.CreateChannelAsync();
        var declared = await quorum.QueueDeclareAsync(RegionTopology.QueueFor("eu"), durable: true, exclusive: false, autoDelete: false,
            new Dictionary<string, object?> { ["x-queue-type"] = "quorum" });
        Assert.Equal(RegionTopology.QueueFor("eu"), declared.QueueName);
    }
}
