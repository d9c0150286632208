using System.Diagnostics.Metrics;

namespace Identity.Propagation;

/// <summary>
/// Meter <c>Identity.Outbox</c>: <c>identity.outbox.pending</c> and <c>identity.outbox.parked</c> (rows),
/// <c>identity.outbox.oldest_pending_age</c> (s), <c>identity.outbox.published</c>,
/// <c>identity.outbox.publish_failures</c> and <c>identity.outbox.parkings</c> (counters). Readable with
/// <c>dotnet-counters monitor -n Identity.Server --counters Identity.Outbox</c> or any OpenTelemetry exporter.
/// </summary>
public sealed class OutboxMetrics : IDisposable
{
    public const string MeterName = "Identity.Outbox";

    private readonly Meter _meter;
    private readonly Counter<long> _published;
    private readonly Counter<long> _failures;
    private readonly Counter<long> _parkings;
    private long _pending;
    private long _parked;
    private double _oldestAgeSeconds;

    public OutboxMetrics(IMeterFactory meters)
    {
        _meter = meters.Create(MeterName);
        _published = _meter.CreateCounter<long>("identity.outbox.published", "{event}", "Events the broker confirmed.");
        _failures = _meter.CreateCounter<long>("identity.outbox.publish_failures", "{event}", "Events whose publication failed (retried).");
        _parkings = _meter.CreateCounter<long>("identity.outbox.parkings", "{event}", "Events parked (unreadable, or failing on their own).");
        _meter.CreateObservableGauge("identity.outbox.parked", () => Interlocked.Read(ref _parked), "{event}",
            "Events parked until a platform administrator re-queues them.");
        _meter.CreateObservableGauge("identity.outbox.pending", () => Interlocked.Read(ref _pending), "{event}", "Events waiting for the broker (not confirmed, not parked).");
        _meter.CreateObservableGauge("identity.outbox.oldest_pending_age", () => Volatile.Read(ref _oldestAgeSeconds), "s",
            "Age of the oldest event not yet confirmed.");
    }

    /// <summary>The counters start at 0, so that a rate or an alert sees them before their first event (once exporters listen).</summary>
    public void StartSeries()
    {
        _published.Add(0);
        _failures.Add(0);
        _parkings.Add(0);
    }

    public void Published(int count) => _published.Add(count);

    public void Failed(int count) => _failures.Add(count);

    public void Parked(int count) => _parkings.Add(count);

    public void Observe(long pending, long parked, TimeSpan oldestAge)
    {
        Interlocked.Exchange(ref _pending, pending);
        Interlocked.Exchange(ref _parked, parked);
        Volatile.Write(ref _oldestAgeSeconds, oldestAge.TotalSeconds);
    }

    public void Dispose() => _meter.Dispose();
}
