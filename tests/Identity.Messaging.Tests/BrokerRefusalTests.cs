using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using RabbitMQ.Client.Exceptions;

namespace Identity.Messaging.Tests;

/// <summary>What the broker (and our client) refuse: no certificate, a foreign CA, another region's queue.</summary>
[Collection(BrokerSuite.Name)]
public sealed class BrokerRefusalTests(BrokerFixture broker)
{
    private const ushort AccessRefused = 403;

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
}
