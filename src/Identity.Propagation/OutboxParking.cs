using Identity.Core.Data;
using Identity.Core.Propagation;
using Microsoft.EntityFrameworkCore;

namespace Identity.Propagation;

/// <summary>What re-queueing a row found.</summary>
public enum RequeueOutcome
{
    Requeued,
    NotFound,
    NotParked,
}

/// <summary>
/// Parked (dead-lettered) rows: set aside by the dispatcher, so the rows behind them flow on, until a platform
/// administrator re-queues them. Delivery order does not carry the regions' correctness: every event holds a version and
/// a region keeps only what is newer than what it holds, so a re-queued row that arrives after newer events of its user
/// is ignored, and one that still matters (e.g. <c>SessionsRevoked</c>) applies.
/// </summary>
public static class OutboxParking
{
    /// <summary>Parks a row: the dispatcher reads it no more.</summary>
    public static Task ParkAsync(AuthorityDbContext db, long id, string reason, string error, int attempts, DateTimeOffset now) =>
        db.Outbox.Where(m => m.Id == id && m.SentAt == null).ExecuteUpdateAsync(s => s
            .SetProperty(m => m.ParkedAt, now)
            .SetProperty(m => m.ParkedReason, reason)
            .SetProperty(m => m.Attempts, attempts)
            .SetProperty(m => m.LastError, error), CancellationToken.None);

    /// <summary>
    /// Makes a parked row pending again, in the caller's unit of work (its SaveChanges writes it, with the caller's audit
    /// entry): its attempts start again from zero.
    /// </summary>
    /// <returns>The outcome and, when re-queued, the row as it was parked (for the audit trail).</returns>
    public static async Task<(RequeueOutcome Outcome, ParkedRow? Was)> RequeueAsync(AuthorityDbContext db, long id, CancellationToken cancellationToken)
    {
        var row = await db.Outbox.SingleOrDefaultAsync(m => m.Id == id, cancellationToken);
        if (row is null)
        {
            return (RequeueOutcome.NotFound, null);
        }

        if (row.ParkedAt is null)
        {
            return (RequeueOutcome.NotParked, null);
        }

        var was = ParkedRow.Of(row);
        row.ParkedAt = null;
        row.ParkedReason = null;
        row.Attempts = 0;
        row.LastError = null;
        return (RequeueOutcome.Requeued, was);
    }

    /// <summary>
    /// Makes every parked row of <paramref name="region"/> pending again (attempts from zero), in one statement inside
    /// the caller's transaction, which writes the caller's audit entry too.
    /// </summary>
    /// <returns>The rows re-queued, by id, as they were parked.</returns>
    public static async Task<IReadOnlyList<ParkedRow>> RequeueRegionAsync(AuthorityDbContext db, string region, CancellationToken cancellationToken)
    {
        var parked = (await db.Outbox.AsNoTracking().Where(m => m.Region == region && m.ParkedAt != null)
            .OrderBy(m => m.Id).ToListAsync(cancellationToken)).Select(ParkedRow.Of).ToList();
        var ids = parked.Select(r => r.Id).ToList();
        if (ids.Count > 0)
        {
            await db.Outbox.Where(m => ids.Contains(m.Id) && m.ParkedAt != null).ExecuteUpdateAsync(s => s
                .SetProperty(m => m.ParkedAt, (DateTimeOffset?)null)
                .SetProperty(m => m.ParkedReason, (string?)null)
                .SetProperty(m => m.Attempts, 0)
                .SetProperty(m => m.LastError, (string?)null), cancellationToken);
        }

        return parked;
    }
}
