namespace Identity.Core.Propagation;

/// <summary>
/// Wakes this replica's dispatcher when a transaction that wrote outbox rows committed, so an event leaves within
/// milliseconds instead of at the next poll. Other replicas still find the rows by polling.
/// </summary>
public sealed class OutboxSignal : IDisposable
{
    private readonly SemaphoreSlim _pending = new(0, 1);

    public void Notify()
    {
        // Already signalled: wake-ups coalesce. Checked first, because a thrown exception per commit is costly when
        // nothing waits (a process that only writes) or the dispatcher is busy (~100 per second in the propagation bench).
        if (_pending.CurrentCount > 0)
        {
            return;
        }

        try
        {
            _pending.Release();
        }
        catch (SemaphoreFullException)
        {
            // Signalled concurrently since the check.
        }
    }

    public void Dispose() => _pending.Dispose();

    /// <summary>Waits for a signal or the timeout; true when signalled.</summary>
    public Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken) => _pending.WaitAsync(timeout, cancellationToken);
}
