using System.Globalization;
using Identity.Core.Data;
using Identity.Propagation;

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

    private static async Task<IResult> RequeueAsync(string id, HttpContext context, OutboxOperations outbox)
    {
        var actor = context.Admin();
        if (!actor.IsPlatformAdmin)
        {
            return AdminActorExtensions.PlatformOnly();
        }

        if (!long.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var rowId))
        {
            rowId = 0; // refused below with the same words as a zero
        }

        var (result, row) = await outbox.RequeueAsync(rowId, actor.Actor, context.RequestAborted);
        return result.Succeeded ? TypedResults.Ok(row) : AdminHttp.Refused(result);
    }

    private static async Task<IResult> RequeueRegionAsync(string? region, HttpContext context, OutboxOperations outbox)
    {
        var actor = context.Admin();
        if (!actor.IsPlatformAdmin)
        {
            return AdminActorExtensions.PlatformOnly();
        }

        var (result, requeued) = await outbox.RequeueRegionAsync(region, actor.Actor, context.RequestAborted);
        return result.Succeeded ? TypedResults.Ok(requeued) : AdminHttp.Refused(result);
    }
}
