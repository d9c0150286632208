using System.Diagnostics;
using System.Diagnostics.Metrics;
using Identity.Region.Replica;
using Microsoft.Extensions.Options;

namespace Identity.Region.Messaging;

/// <summary>
/// Meter <c>Identity.Region</c>: <c>identity.region.events</c> (counter, tagged <c>event</c> and <c>outcome</c>
/// applied|ignored), <c>identity.region.batch.size</c> (events per transaction) and
/// <c>identity.region.batch.duration</c> (s, the batch's transaction), <c>identity.region.replica_lag</c> (s, send to
/// receipt per event); the meter is tagged with the <c>region</c>. Readable with
/// <c>dotnet-counters monitor --counters Identity.Region</c> or any OpenTelemetry exporter.
/// </summary>
public sealed class RegionMetrics : IDisposable
{
    public const string MeterName = "Identity.Region";

    private readonly Meter _meter;
    private readonly Counter<long> _events;
    private readonly Histogram<int> _batchSize;
    private readonly Histogram<double> _batchDuration;
    private readonly Histogram<double> _lag;

    public RegionMetrics(IMeterFactory meters, IOptions<IdentityRegionOptions> options)
    {
        // The region as a tag of the meter: several regional services can report to one collector.
        _meter = meters.Create(new MeterOptions(MeterName) { Tags = [new("region", options.Value.Region)] });
        _events = _meter.CreateCounter<long>("identity.region.events", "{event}", "Events consumed, by kind and outcome.");
        _batchSize = _meter.CreateHistogram<int>("identity.region.batch.size", "{event}", "Events applied in one transaction.");
        _batchDuration = _meter.CreateHistogram<double>("identity.region.batch.duration", "s", "Time to apply one batch (its transaction).");
        _lag = _meter.CreateHistogram<double>("identity.region.replica_lag", "s",
            "From the authority's send to this replica's receipt, per event (the outbox's own wait is identity.outbox.oldest_pending_age).");
    }

    /// <summary>Applies a batch through <paramref name="apply"/> and records its size, time and outcomes.</summary>
    public async Task ApplyAsync<TEvent>(IReadOnlyList<TEvent> events, Func<Task<IReadOnlyList<ReplicaOutcome>>> apply)
    {
        var started = Stopwatch.GetTimestamp();
        var outcomes = await apply();
        var kind = new KeyValuePair<string, object?>("event", typeof(TEvent).Name);
        _batchDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, kind);
        _batchSize.Record(events.Count, kind);
        var applied = outcomes.Count(o => o == ReplicaOutcome.Applied);
        _events.Add(applied, kind, new("outcome", "applied"));
        _events.Add(outcomes.Count - applied, kind, new("outcome", "ignored"));
    }

    /// <summary>Records how long each event of <paramref name="batch"/> took from the authority's send to here.</summary>
    public void Received<TEvent>(MassTransit.Batch<TEvent> batch)
        where TEvent : class
    {
        var now = DateTime.UtcNow;
        var kind = new KeyValuePair<string, object?>("event", typeof(TEvent).Name);
        for (var i = 0; i < batch.Length; i++)
        {
            if (batch[i].SentTime is { } sent)
            {
                _lag.Record(Math.Max(0, (now - sent).TotalSeconds), kind);
            }
        }
    }

    public void Dispose() => _meter.Dispose();
}
