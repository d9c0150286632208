namespace Identity.Server.IntegrationTests.Infrastructure;

/// <summary>A clock a test moves forward: registered as the server's <see cref="TimeProvider"/>, it ages sessions and passwords.</summary>
public sealed class TestClock(DateTimeOffset start) : TimeProvider
{
    private DateTimeOffset _now = start;

    public TestClock()
        : this(System.GetUtcNow())
    {
    }

    public override DateTimeOffset GetUtcNow() => _now;

    public void Advance(TimeSpan by) => _now += by;
}
