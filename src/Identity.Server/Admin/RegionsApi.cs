using Identity.Core.Audit;
using System.Text.RegularExpressions;
using Identity.Core.Accounts;
using Identity.Core.Data;
using Identity.Server.Audit;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.Admin;

public sealed record RegionView(string Code, string DisplayName);

public sealed record PutRegionRequest(string? DisplayName);

/// <summary>Regions: where accounts live. Everyone with admin access may read them; only platform administrators change them.</summary>
public static partial class RegionsApi
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

    private static async Task<IResult> PutAsync(string code, HttpContext context, AuthorityDbContext db, IAuditTrail audit)
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

        var errors = new Dictionary<string, string[]>();
        if (!RegionCode().IsMatch(code))
        {
            errors["code"] = ["A region code is 2 to 16 lowercase letters, digits or dashes."];
        }

        var name = body!.DisplayName?.Trim();
        if (string.IsNullOrEmpty(name) || name.Length > 100)
        {
            errors["displayName"] = ["A display name of 1 to 100 characters is required."];
        }

        if (errors.Count > 0)
        {
            return AdminHttp.Invalid(errors);
        }

        var region = await db.Regions.SingleOrDefaultAsync(r => r.Code == code, context.RequestAborted);
        if (region is null)
        {
            db.Regions.Add(new Region { Code = code, DisplayName = name! });
            audit.Record(actor.Actor, "region.created", "region", code, null, new { displayName = name });
        }
        else if (region.DisplayName != name)
        {
            audit.Record(actor.Actor, "region.updated", "region", code, null, new { displayName = new { before = region.DisplayName, after = name } });
            region.DisplayName = name!;
        }
        else
        {
            return TypedResults.Ok(new RegionView(code, name!));
        }

        await db.SaveChangesAsync(context.RequestAborted);
        return TypedResults.Ok(new RegionView(code, name!));
    }

    private static async Task<IResult> DeleteAsync(string code, HttpContext context, AuthorityDbContext db, IAuditTrail audit)
    {
        var actor = context.Admin();
        if (!actor.IsPlatformAdmin)
        {
            return AdminActorExtensions.PlatformOnly();
        }

        var region = await db.Regions.SingleOrDefaultAsync(r => r.Code == code, context.RequestAborted);
        if (region is null)
        {
            return TypedResults.NoContent();
        }

        if (await db.Set<AccountRegion>().AnyAsync(r => r.RegionCode == code, context.RequestAborted))
        {
            return StillInUse();
        }

        db.Regions.Remove(region);
        audit.Record(actor.Actor, "region.deleted", "region", code, null);
        try
        {
            await db.SaveChangesAsync(context.RequestAborted);
        }
        catch (DbUpdateException ex) when (ex.IsForeignKeyViolation())
        {
            return StillInUse(); // an account was given the region after the check above
        }

        return TypedResults.NoContent();
    }

    private static IResult StillInUse() => AdminHttp.Conflict("Accounts still live in this region: disable it for them first.");

    [GeneratedRegex("^[a-z0-9-]{2,16}$")]
    private static partial Regex RegionCode();
}
