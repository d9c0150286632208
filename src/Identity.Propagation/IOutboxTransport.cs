namespace Identity.Propagation;

/// <summary>Where the dispatcher hands events to: the message broker, when one is configured.</summary>
public interface IOutboxTransport
{
    /// <summary>
    /// Sends one event to one region, with the W3C trace context it belongs to (<paramref name="trace"/>, carried in
    /// the message's headers); completes only when the broker confirmed it (publisher confirms).
    /// </summary>
    Task SendAsync(string region, object message, Type messageType, (string? TraceParent, string? TraceState) trace, CancellationToken cancellationToken);
}
