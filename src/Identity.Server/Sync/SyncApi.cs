using Identity.Contracts;
using Identity.Core.Data;
using Identity.Core.Propagation;
using Identity.Server.Clients;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;

namespace Identity.Server.Sync;

/// <summary>
/// <c>GET /sync/v1/regions/{region}/users?after=&amp;limit=</c>: the current snapshot of every user of the accounts
/// living in a region, ordered by user id, for a region that was away or is new (resync). Only a client bound to that
/// region (client credentials, scope <c>identity.sync</c>) may read it: region <c>us</c> never sees <c>eu</c>'s users.
/// </summary>
public static class SyncApi
{
    public const string Scope = "identity.sync";
    public const string Audience = "urn:identity:sync";
    public const string Policy = "sync";

    public static IEndpointRouteBuilder MapSyncApi(this IEndpointRouteBuilder app)
    {
        var sync = app.MapGroup("/sync/v1").RequireAuthorization(Policy).DisableAntiforgery().WithTags("Sync");
        sync.MapGet("/regions/{region}/users", ListUsersAsync);
        return app;
    }

    private static async Task<IResult> ListUsersAsync(string region, string? after, int? limit, HttpContext context,
        AuthorityDbContext db, IOpenIddictApplicationManager applications, TimeProvider time)
    {
        var clientId = context.User.GetClaim(OpenIddictConstants.Claims.ClientId);
        var application = clientId is null ? null : await applications.FindByClientIdAsync(clientId, context.RequestAborted);
        var properties = application is null ? null : await applications.GetPropertiesAsync(application, context.RequestAborted);
        if (properties is null || !properties.TryGetValue(ClientSeeder.RegionProperty, out var bound)
            || bound.ValueKind != System.Text.Json.JsonValueKind.String || bound.GetString() != region)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Not this region's client",
                detail: "Only a client bound to this region may read its users.");
        }

        if (limit is < 1 or > 1_000)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["limit"] = ["The limit is 1 to 1000."] });
        }

        var take = limit ?? 500;
        var accounts = db.Set<Core.Accounts.AccountRegion>().Where(r => r.RegionCode == region).Select(r => r.AccountId);
        var query = db.Users.AsNoTracking().Where(u => u.AccountId != null && accounts.Contains(u.AccountId.Value));
        if (!string.IsNullOrEmpty(after))
        {
            query = query.Where(u => u.Id.CompareTo(after) > 0);
        }

        var users = await query.OrderBy(u => u.Id).Take(take + 1).ToListAsync(context.RequestAborted);
        var now = time.GetUtcNow();
        var page = users.Take(take).Select(u => OutboxEvents.Snapshot(u, now)).ToList();
        return TypedResults.Ok(new UserPage { Users = page, Next = users.Count > take ? page[^1].UserId : null });
    }
}
