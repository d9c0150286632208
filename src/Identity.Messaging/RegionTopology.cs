using System.Text.RegularExpressions;
using MassTransit;

namespace Identity.Messaging;

/// <summary>
/// The per-region topology, declared by the broker's definitions (deploy/rabbitmq/make-definitions.sh): for
/// region r, a durable fanout exchange <c>identity.region.r</c> bound to a **quorum** queue of the same name (RabbitMQ's
/// replicated queue: on a three-node cluster it survives the loss of one node; decision 0072).
/// Identity sends a region's events to its exchange; only that region's user may read the queue.
/// </summary>
public static partial class RegionTopology
{
    private const string Prefix = "identity.region.";

    public static string ExchangeFor(string region) => Prefix + CheckRegion(region);

    public static string QueueFor(string region) => Prefix + CheckRegion(region);

    /// <summary>The MassTransit address that sends to the region's exchange: <c>exchange:identity.region.r</c>.</summary>
    public static Uri SendAddressFor(string region) => new($"exchange:{ExchangeFor(region)}");

    /// <summary>Sends <paramref name="message"/> to the region's exchange (confirmed by the broker before it completes).</summary>
    public static async Task SendToRegionAsync<T>(
        this ISendEndpointProvider provider, string region, T message, CancellationToken cancellationToken = default)
        where T : class
    {
        var endpoint = await provider.GetSendEndpoint(SendAddressFor(region));
        await endpoint.Send(message, cancellationToken);
    }

    /// <summary>
    /// A receive endpoint on the region's queue, declared as a quorum queue as the definitions declare it (a queue
    /// cannot change type in place: the broker refuses a declaration with another type). Consume topology is off: the exchanges and bindings are the
    /// broker's definitions, and the region's user may not create the message-type exchanges MassTransit would add.
    /// Faults are not published either (they would go to such an exchange); a message whose consumer fails moves
    /// to <c>identity.region.r_error</c>, one nobody consumes to <c>identity.region.r_skipped</c>.
    /// </summary>
    public static void ReceiveRegionEndpoint(
        this IRabbitMqBusFactoryConfigurator configurator, string region, Action<IRabbitMqReceiveEndpointConfigurator> configure)
    {
        configurator.ReceiveEndpoint(QueueFor(region), endpoint =>
        {
            endpoint.SetQuorumQueue();
            endpoint.ConfigureConsumeTopology = false;
            endpoint.PublishFaults = false;
            configure(endpoint);
        });
    }

    private static string CheckRegion(string region) =>
        RegionName().IsMatch(region)
            ? region
            : throw new ArgumentException($"A region name is lower-case letters, digits and '-', not '{region}'.", nameof(region));

    [GeneratedRegex("^[a-z0-9-]+$", RegexOptions.CultureInvariant)]
    private static partial Regex RegionName();
}
