namespace Identity.Propagation;

/// <summary>Where the dispatcher hands events to: the message broker, when one is configured.</summary>
public interface IOutboxTransport
{
    /// <summary>Sends one event to one region; completes only when the broker confirmed it (publisher confirms).</summary>
    Task SendAsync(string region, object message, Type messageType, CancellationToken cancellationToken);
}
