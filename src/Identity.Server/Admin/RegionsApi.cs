using Identity.Core.Accounts;
using Identity.Core.Data;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.Admin;

public sealed record RegionView(string Code, string DisplayName);

public sealed record PutRegionRequest(string? DisplayName);

/// <summary>
/// Regions: where accounts live. Everyone with admin access may read them; only platform administrators change them,
/// through <see cref="RegionOperations"/> (shared with the console).
/// </summary>
public static class RegionsApi
{
    public static RouteGroupBuilder MapRegionsApi(this RouteGroupBuilder admin)
    {
        var regions = admin.MapGroup("/regions").WithTags("Regions");
        regions.MapGet("/", async (AuthorityDbContext db, CancellationToken ct) =>
            TypedResults.Ok(await db.Regions.AsNoTracking().OrderBy(r => r.Code).Select(r => new RegionView(r.Code, r.DisplayName)).ToListAsync(ct)));
        regions.MapPut("/{code}", PutAsync).AcceptsJson<PutRegionRequest>();
        regions.MapDelete("/{code}", DeleteAsync);
        return admin;
    }

    private static async Task<IResult> PutAsync(string code, HttpContext context, RegionOperations regions)
    {
        var actor = context.Admin();
        if (!actor.IsPlatformAdmin)
        {
            return AdminActorExtensions.PlatformOnly();
        }

        var (body, problem) = await AdminHttp.ReadAsync<PutRegionRequest>(context.Request);
        if (problem is not null)
        {
            return problem;
        }

        var (result, region) = await regions.PutAsync(code, body!.DisplayName, actor.Actor, context.RequestAborted);
        return result.Succeeded ? TypedResults.Ok(new RegionView(region!.Code, region.DisplayName)) : AdminHttp.Refused(result);
    }

    private static async Task<IResult> DeleteAsync(string code, HttpContext context, RegionOperations regions)
    {
        var actor = context.Admin();
        if (!actor.IsPlatformAdmin)
        {
            return AdminActorExtensions.PlatformOnly();
        }

        var result = await regions.DeleteAsync(code, actor.Actor, context.RequestAborted);
        return result.Succeeded ? TypedResults.NoContent() : AdminHttp.Refused(result);
    }
}
