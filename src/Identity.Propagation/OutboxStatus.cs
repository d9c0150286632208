using Identity.Core.Data;
using Microsoft.EntityFrameworkCore;

namespace Identity.Propagation;

public sealed record RegionBacklog(string Region, int Pending);

/// <summary>What <c>GET /admin/v1/outbox</c> shows: the backlog, its age and the last failure.</summary>
public sealed record OutboxStatus(
    int Pending,
    DateTimeOffset? OldestPendingAt,
    double? OldestPendingAgeSeconds,
    int Failing,
    string? LastError,
    int SentRetained,
    bool BrokerConfigured,
    IReadOnlyList<RegionBacklog> ByRegion)
{
    public static async Task<OutboxStatus> ReadAsync(AuthorityDbContext db, TimeProvider time, CancellationToken cancellationToken,
        bool brokerConfigured = false, bool details = false)
    {
        var pending = OutboxQueries.Pending(db);
        var count = await pending.CountAsync(cancellationToken);
        var oldest = count == 0 ? null
            : await OutboxQueries.OldestPending(db, 1).Select(m => (DateTimeOffset?)m.CreatedAt).FirstOrDefaultAsync(cancellationToken);
        var age = oldest is { } at ? Math.Max(0, (time.GetUtcNow() - at).TotalSeconds) : (double?)null;
        if (!details)
        {
            return new OutboxStatus(count, oldest, age, 0, null, 0, brokerConfigured, []);
        }

        var failing = await pending.CountAsync(m => m.Attempts > 0, cancellationToken);
        var lastError = await pending.Where(m => m.LastError != null).OrderByDescending(m => m.Id).Select(m => m.LastError).FirstOrDefaultAsync(cancellationToken);
        var sent = await db.Outbox.CountAsync(m => m.SentAt != null, cancellationToken);
        var byRegion = await pending.GroupBy(m => m.Region).Select(g => new RegionBacklog(g.Key, g.Count())).ToListAsync(cancellationToken);
        return new OutboxStatus(count, oldest, age, failing, lastError, sent, brokerConfigured,
            [.. byRegion.OrderBy(r => r.Region, StringComparer.Ordinal)]);
    }
}
