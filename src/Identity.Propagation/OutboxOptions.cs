using System.ComponentModel.DataAnnotations;

namespace Identity.Propagation;

/// <summary>The outbox dispatcher's settings (section <c>Outbox</c>).</summary>
public sealed class OutboxOptions
{
    public const string SectionName = "Outbox";

    /// <summary>Rows read and published per round; the rounds follow each other until the outbox is drained.</summary>
    [Range(1, 5_000)]
    public int BatchSize { get; set; } = 500;

    /// <summary>
    /// How often an idle dispatcher looks for rows written by other replicas (its own commits wake it at once): half of
    /// it, on average, is what such a change waits before it is published. One indexed query per interval, by the one
    /// replica holding the lease (measured 2026-12-02: 1 s gave a 0.65 s median outbox leg for changes made on another
    /// replica; 50 ms gave 44 ms).
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:01:00")]
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// How long the dispatching replica waits before its next round when the last one found rows (changes are flowing):
    /// under load, a change made on another replica then waits about this long instead of half the
    /// <see cref="PollInterval"/>, while an idle outbox still costs one query per <see cref="PollInterval"/>: one second
    /// after the last round that found rows, the dispatcher returns to the idle interval. Zero: the next round at once.
    /// Must not exceed <see cref="PollInterval"/>.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:01:00")]
    public TimeSpan BusyPollInterval { get; set; } = TimeSpan.FromMilliseconds(10);

    /// <summary>
    /// How long the replica that dispatches keeps the lease without renewing it. Another replica takes over after it
    /// expires (a replica that died), so it bounds the delay after a crash.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>A publish that the broker has not confirmed within this time counts as failed and is retried.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:05:00")]
    public TimeSpan PublishTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// A row whose publication failed this many times while the broker accepted other rows is parked (dead-lettered):
    /// it waits for a platform administrator to re-queue it (<c>POST /admin/v1/outbox/{id}/requeue</c>) and no longer
    /// slows the rows behind it. Failures while the broker is down count against no row.
    /// </summary>
    [Range(1, 1_000)]
    public int MaxAttempts { get; set; } = 5;

    /// <summary>Sent rows are kept this long (to look into), then deleted.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "365.00:00:00")]
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(3);
}
