using Identity.Core.Data;
using Identity.Propagation;

namespace Identity.Server.Admin;

/// <summary><c>GET /admin/v1/outbox</c>: how many events wait for the broker, how old the oldest is, the last failure.</summary>
public static class OutboxApi
{
    public static RouteGroupBuilder MapOutboxApi(this RouteGroupBuilder admin)
    {
        admin.MapGet("/outbox", StatusAsync).WithTags("Outbox");
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
}
