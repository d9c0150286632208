using System.Collections.Concurrent;
using Identity.Server.Clients;

namespace Identity.Server.Connect;

/// <summary>
/// Each client's token-endpoint budget (<see cref="ClientAccessPolicy.TokenRateLimit"/>): a token bucket of
/// <c>Permits</c> refilled over <c>Window</c>, kept in this process (per replica). Written as the generic cell rate
/// algorithm: one timestamp per client, the "theoretical arrival time", moved by a compare-and-swap, so concurrent
/// requests get exactly the budget and nothing waits on a lock. Time comes from <see cref="TimeProvider"/> (tests
/// move a clock).
/// </summary>
public sealed class ClientTokenRateLimiter(TimeProvider time)
{
    private readonly ConcurrentDictionary<string, Bucket> _buckets = new(StringComparer.Ordinal);

    /// <summary>Takes a permit for <paramref name="clientId"/>; when there is none, how long until the next one.</summary>
    public bool TryAcquire(string clientId, TokenRateLimitDefinition limit, out TimeSpan retryAfter)
    {
        // A changed limit starts a fresh bucket (the first request after an admin change sees the new budget).
        var bucket = _buckets.AddOrUpdate(clientId,
            static (_, l) => new Bucket(l.Permits, l.Window),
            static (_, existing, l) => existing.Permits == l.Permits && existing.Window == l.Window ? existing : new Bucket(l.Permits, l.Window),
            limit);
        return bucket.TryAcquire(time.GetUtcNow().UtcTicks, out retryAfter);
    }

    private sealed class Bucket(int permits, TimeSpan window)
    {
        // Each request pushes the arrival time one interval further; a request is refused while that time is more
        // than a whole window (less one interval: the burst) ahead of now.
        private readonly long _interval = Math.Max(1, window.Ticks / permits);
        private readonly long _burst = window.Ticks - Math.Max(1, window.Ticks / permits);
        private long _arrival = long.MinValue;

        public int Permits { get; } = permits;

        public TimeSpan Window { get; } = window;

        public bool TryAcquire(long now, out TimeSpan retryAfter)
        {
            while (true)
            {
                var seen = Volatile.Read(ref _arrival);

                // Never ahead of now by more than the window: a wall clock set back must not lock the client out.
                var from = seen < now || seen - now > Window.Ticks ? now : seen;
                if (from - now > _burst)
                {
                    retryAfter = TimeSpan.FromTicks(from - _burst - now);
                    return false;
                }

                if (Interlocked.CompareExchange(ref _arrival, from + _interval, seen) == seen)
                {
                    retryAfter = TimeSpan.Zero;
                    return true;
                }
            }
        }
    }
}
