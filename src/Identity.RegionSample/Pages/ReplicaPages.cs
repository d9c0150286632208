using Identity.Region.Replica;
using Identity.Region.Resync;
using Identity.RegionSample.SignIn;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Identity.RegionSample.Pages;

/// <summary>The region's replica of its users, and a button that rebuilds it from Identity's sync API.</summary>
public static class ReplicaPages
{
    public static WebApplication MapReplicaPages(this WebApplication app)
    {
        // Signed-in people only: the page lists the region's users.
        var replica = app.MapGroup("/replica").RequireAuthorization();
        replica.MapGet("/", ListAsync);
        replica.MapPost("/resync", ResyncAsync);
        return app;
    }

    private static async Task<IResult> ListAsync(
        HttpContext context, RegionReplicaDbContext db, IAntiforgery antiforgery, IOptions<RegionSignInOptions> options, CancellationToken cancellationToken)
    {
        var users = await db.ReplicaUsers.AsNoTracking()
            .Where(u => !u.Deleted)
            .OrderBy(u => u.Email)
            .Select(u => new { u.Email, u.DisplayName, u.Role, u.Status, u.Version })
            .ToListAsync(cancellationToken);
        var state = await db.ReplicaState.AsNoTracking().SingleOrDefaultAsync(cancellationToken);
        var tokens = antiforgery.GetAndStoreTokens(context);
        var region = options.Value.Region;

        var rows = string.Concat(users.Select(u => $"""
            <tr><td>{Html.Encode(u.Email)}</td><td>{Html.Encode(u.DisplayName)}</td><td>{Html.Encode(u.Role)}</td><td>{Html.Encode(u.Status)}</td><td>{u.Version}</td></tr>
            """));
        var message = context.Request.Query["resync"].ToString() switch
        {
            "done" => "<p role=\"status\">Resync complete.</p>",
            "failed" => "<p role=\"alert\">Resync failed; see the service's log.</p>",
            _ => "",
        };
        var lastResync = state?.LastFullResyncAt is { } at ? $"{at:yyyy-MM-dd HH:mm:ss} UTC" : "never";

        return Html.Page(region, $"""
            <h1>Replica of region {Html.Encode(region)}</h1>
            {message}
            <p>Last full resync: <span id="last-resync">{Html.Encode(lastResync)}</span>. {users.Count} users.</p>
            <table id="replica">
              <thead><tr><th>Email</th><th>Name</th><th>Role</th><th>Status</th><th>Version</th></tr></thead>
              <tbody>
            {rows}
              </tbody>
            </table>
            <form method="post" action="/replica/resync">
              <input type="hidden" name="{Html.Encode(tokens.FormFieldName)}" value="{Html.Encode(tokens.RequestToken)}" />
              <button type="submit">Resync now</button>
            </form>
            <p><a href="/me">Back</a></p>
            """);
    }

    private static async Task<IResult> ResyncAsync(
        HttpContext context, IAntiforgery antiforgery, IReplicaResync resync, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        if (!await antiforgery.IsRequestValidAsync(context))
        {
            return TypedResults.BadRequest();
        }

        try
        {
            await resync.RunAsync(cancellationToken);
            return TypedResults.Redirect("/replica?resync=done");
        }
        catch (Exception exception) when (!cancellationToken.IsCancellationRequested)
        {
            // Identity unreachable, the client refused, a bad page: the replica keeps what it has.
            loggers.CreateLogger(typeof(ReplicaPages)).LogWarning(exception, "On-demand replica resync failed.");
            return TypedResults.Redirect("/replica?resync=failed");
        }
    }
}
