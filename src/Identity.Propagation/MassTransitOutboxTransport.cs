using Identity.Messaging;
using MassTransit;

namespace Identity.Propagation;

/// <summary>Sends each event to its region's exchange on the broker; the send completes when the broker confirmed it.</summary>
public sealed class MassTransitOutboxTransport(IBus bus) : IOutboxTransport
{
    public async Task SendAsync(string region, object message, Type messageType, CancellationToken cancellationToken)
    {
        var endpoint = await bus.GetSendEndpoint(RegionTopology.SendAddressFor(region));
        await endpoint.Send(message, messageType, cancellationToken);
    }
}
