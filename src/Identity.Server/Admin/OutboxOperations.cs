using System.Globalization;
using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Operations;
using Identity.Core.Propagation;
using Identity.Propagation;

namespace Identity.Server.Admin;

/// <summary>
/// Re-queueing parked outbox rows, for the admin API and the console alike: the row or the region's rows pending
/// again with their attempts from zero, the audit entry (what was parked, why) in the same unit of work, and this
/// replica's dispatcher woken at once (another finds the rows at its next poll).
/// </summary>
public sealed class OutboxOperations(AuthorityDbContext db, IAuditTrail audit, OutboxSignal signal)
{
    // Region codes are at most 16 characters (AuthorityDbContext); a longer one cannot have rows.
    private const int RegionCodeMaxLength = 16;

    /// <summary>One parked row pending again; a row that is not parked is a conflict, an unknown id not found.</summary>
    public async Task<(OperationResult Result, RequeuedRow? Row)> RequeueAsync(long rowId, Actor actor, CancellationToken cancellationToken)
    {
        if (rowId <= 0)
        {
            return (OperationResult.Invalid("id", "An outbox row's id is a positive whole number."), null);
        }

        var (outcome, was) = await OutboxParking.RequeueAsync(db, rowId, cancellationToken);
        switch (outcome)
        {
            case RequeueOutcome.NotFound:
                return (OperationResult.NotFound("outbox row"), null);
            case RequeueOutcome.NotParked:
                return (OperationResult.Conflict("The row is not parked: it is pending or already sent."), null);
        }

        audit.Record(actor, "outbox.requeued", "outbox", rowId.ToString(CultureInfo.InvariantCulture), was!.AccountId,
            new { region = was.Region, messageType = was.MessageType, reason = was.Reason, attempts = was.Attempts, lastError = was.LastError });
        await db.SaveChangesAsync(cancellationToken);
        signal.Notify();
        return (OperationResult.Done, new RequeuedRow(rowId, was.Region, was.MessageType, "pending"));
    }

    /// <summary>
    /// Every parked row of one region, pending again in one transaction with one audit entry (<c>outbox.requeued_region</c>:
    /// the region, how many, their ids and reasons). A region without parked rows is answered with none re-queued.
    /// </summary>
    public async Task<(OperationResult Result, RequeuedRegion? Requeued)> RequeueRegionAsync(string? region, Actor actor,
        CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(region) || region.Length > RegionCodeMaxLength)
        {
            return (OperationResult.Invalid("region", "Name the region whose parked rows to re-queue: ?region=<code>."), null);
        }

        await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
        var rows = await OutboxParking.RequeueRegionAsync(db, region, cancellationToken);
        var ids = rows.Select(r => r.Id).ToList();
        if (rows.Count > 0)
        {
            audit.Record(actor, "outbox.requeued_region", "region", region, null, new
            {
                rows = rows.Count,
                ids = ids.Take(1_000),
                reasons = rows.GroupBy(r => r.Reason).ToDictionary(g => g.Key ?? "", g => g.Count()),
            });
            await db.SaveChangesAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
        if (rows.Count > 0)
        {
            signal.Notify();
        }

        return (OperationResult.Done, new RequeuedRegion(region, rows.Count, ids));
    }
}
