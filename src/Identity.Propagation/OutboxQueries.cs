using Identity.Core.Data;
using Identity.Core.Propagation;
using Microsoft.EntityFrameworkCore;

namespace Identity.Propagation;

/// <summary>The outbox's rows as the dispatcher, the status and the metrics read them, in one place.</summary>
public static class OutboxQueries
{
    /// <summary>Rows waiting for the broker: neither confirmed nor parked.</summary>
    public static IQueryable<OutboxMessage> Pending(AuthorityDbContext db) =>
        db.Outbox.AsNoTracking().Where(m => m.SentAt == null && m.ParkedAt == null);

    /// <summary>
    /// The oldest pending rows, by id, as a round reads them and the status finds the oldest (the pending-rows index,
    /// IX_Outbox_Pending).
    /// </summary>
    public static IQueryable<OutboxMessage> OldestPending(AuthorityDbContext db, int batchSize) =>
        Pending(db).OrderBy(m => m.Id).Take(batchSize);

    /// <summary>Rows parked until a platform administrator re-queues them (IX_Outbox_Parked).</summary>
    public static IQueryable<OutboxMessage> Parked(AuthorityDbContext db) =>
        db.Outbox.AsNoTracking().Where(m => m.ParkedAt != null);
}
