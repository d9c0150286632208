using Identity.Messaging;
using MassTransit;

namespace Identity.Propagation;

/// <summary>
/// Sends each event to its region's exchange on the broker, its trace context in the W3C headers
/// (<see cref="TraceHeaders"/>); the send completes when the broker confirmed it.
/// </summary>
public sealed class MassTransitOutboxTransport(IBus bus) : IOutboxTransport
{
    public async Task SendAsync(string region, object message, Type messageType, (string? TraceParent, string? TraceState) trace,
        CancellationToken cancellationToken)
    {
        var endpoint = await bus.GetSendEndpoint(RegionTopology.SendAddressFor(region));
        if (trace.TraceParent is null)
        {
            await endpoint.Send(message, messageType, cancellationToken);
            return;
        }

        await endpoint.Send(message, messageType, Pipe.Execute<SendContext>(send =>
        {
            send.Headers.Set(TraceHeaders.TraceParent, trace.TraceParent);
            if (trace.TraceState is { Length: > 0 } state)
            {
                send.Headers.Set(TraceHeaders.TraceState, state);
            }
        }), cancellationToken);
    }
}
