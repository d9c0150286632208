using System.Globalization;
using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Propagation;
using Identity.Propagation;
using Identity.Server.Audit;

namespace Identity.Server.Admin;

/// <summary>A re-queued row: pending again, its attempts from zero.</summary>
public sealed record RequeuedRow(long Id, string Region, string MessageType, string State);

/// <summary>A region's parked rows re-queued at once: how many, and their ids (oldest first).</summary>
public sealed record RequeuedRegion(string Region, int Requeued, IReadOnlyList<long> Ids);

/// <summary>
/// <c>/admin/v1/outbox</c> (platform administrators): how many events wait for the broker, how old the oldest is, the
/// last failure, the parked rows; <c>POST /admin/v1/outbox/{id}/requeue</c> to send a parked row again, and
/// <c>POST /admin/v1/outbox/requeue?region={code}</c> to send every parked row of a region again (after a fix that made
/// them readable, or an outage of that region's queue).
/// </summary>
public static class OutboxApi
{
    public static RouteGroupBuilder MapOutboxApi(this RouteGroupBuilder admin)
    {
        var outbox = admin.MapGroup("/outbox").WithTags("Outbox");
        outbox.MapGet("/", StatusAsync);
        outbox.MapPost("/{id}/requeue", RequeueAsync);
        outbox.MapPost("/requeue", RequeueRegionAsync);
        return admin;
    }

    private static async Task<IResult> StatusAsync(HttpContext context, AuthorityDbContext db, TimeProvider time)
    {
        if (!context.Admin().IsPlatformAdmin)
        {
            return AdminActorExtensions.PlatformOnly();
        }

        var broker = context.RequestServices.GetService<IOutboxTransport>() is not null;
        return TypedResults.Ok(await OutboxStatus.ReadAsync(db, time, context.RequestAborted, broker, details: true));
    }

    private static async Task<IResult> RequeueAsync(string id, HttpContext context, AuthorityDbContext db, IAuditTrail audit, OutboxSignal signal)
    {
        var actor = context.Admin();
        if (!actor.IsPlatformAdmin)
        {
            return AdminActorExtensions.PlatformOnly();
        }

        if (!long.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var rowId) || rowId <= 0)
        {
            return AdminHttp.Invalid("id", "An outbox row's id is a positive whole number.");
        }

        var (outcome, was) = await OutboxParking.RequeueAsync(db, rowId, context.RequestAborted);
        switch (outcome)
        {
            case RequeueOutcome.NotFound:
                return AdminHttp.NotFound("outbox row");
            case RequeueOutcome.NotParked:
                return AdminHttp.Conflict("The row is not parked: it is pending or already sent.");
        }

        audit.Record(actor.Actor, "outbox.requeued", "outbox", rowId.ToString(CultureInfo.InvariantCulture), was!.AccountId,
            new { region = was.Region, messageType = was.MessageType, reason = was.Reason, attempts = was.Attempts, lastError = was.LastError });
        await db.SaveChangesAsync(context.RequestAborted);
        signal.Notify(); // this replica's dispatcher looks at once; another finds it at its next poll
        return TypedResults.Ok(new RequeuedRow(rowId, was.Region, was.MessageType, "pending"));
    }

    // Region codes are at most 16 characters (AuthorityDbContext); a longer one cannot have rows.
    private const int RegionCodeMaxLength = 16;

    /// <summary>
    /// Every parked row of one region, pending again in one transaction with one audit entry (<c>outbox.requeued_region</c>:
    /// the region, how many, their ids and reasons). A region without parked rows is answered with none re-queued.
    /// </summary>
    private static async Task<IResult> RequeueRegionAsync(string? region, HttpContext context, AuthorityDbContext db, IAuditTrail audit,
        OutboxSignal signal)
    {
        var actor = context.Admin();
        if (!actor.IsPlatformAdmin)
        {
            return AdminActorExtensions.PlatformOnly();
        }

        if (string.IsNullOrWhiteSpace(region) || region.Length > RegionCodeMaxLength)
        {
            return AdminHttp.Invalid("region", "Name the region whose parked rows to re-queue: ?region=<code>.");
        }

        await using var transaction = await db.Database.BeginTransactionAsync(context.RequestAborted);
        var rows = await OutboxParking.RequeueRegionAsync(db, region, context.RequestAborted);
        var ids = rows.Select(r => r.Id).ToList();
        if (rows.Count > 0)
        {
            audit.Record(actor.Actor, "outbox.requeued_region", "region", region, null, new
            {
                rows = rows.Count,
                ids = ids.Take(1_000),
                reasons = rows.GroupBy(r => r.Reason).ToDictionary(g => g.Key ?? "", g => g.Count()),
            });
            await db.SaveChangesAsync(context.RequestAborted);
        }

        await transaction.CommitAsync(context.RequestAborted);
        if (rows.Count > 0)
        {
            signal.Notify();
        }

        return TypedResults.Ok(new RequeuedRegion(region, rows.Count, ids));
    }
}
