namespace Identity.BrowserTests.Infrastructure;

/// <summary>
/// A clock a test moves forward, registered as a dedicated Identity host's <see cref="TimeProvider"/> (the shared
/// world keeps the real clock: the regional apps check token times against it).
/// </summary>
public sealed class TestClock : TimeProvider
{
    private long _ticks = System.GetUtcNow().UtcTicks;

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}
