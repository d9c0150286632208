using System.Text.RegularExpressions;
using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Operations;
using Microsoft.EntityFrameworkCore;

namespace Identity.Core.Accounts;

/// <summary>
/// Regions, the one home of their rules for the admin API and the console: a code of 2 to 16 lowercase letters,
/// digits or dashes, a display name of 1 to 100 characters, no deletion while an account lives there; each change
/// audited with the admin as actor.
/// </summary>
public sealed partial class RegionOperations(AuthorityDbContext db, IAuditTrail audit)
{
    public const string StillInUse = "Accounts still live in this region: disable it for them first.";

    /// <summary>Creates the region, or renames it; an unchanged name writes nothing.</summary>
    public async Task<(OperationResult Result, Region? Region)> PutAsync(string code, string? displayName, Actor actor, CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>();
        if (!RegionCode().IsMatch(code))
        {
            errors["code"] = ["A region code is 2 to 16 lowercase letters, digits or dashes."];
        }

        var name = displayName?.Trim();
        if (string.IsNullOrEmpty(name) || name.Length > 100)
        {
            errors["displayName"] = ["A display name of 1 to 100 characters is required."];
        }

        if (errors.Count > 0)
        {
            return (OperationResult.Invalid(errors), null);
        }

        var region = await db.Regions.SingleOrDefaultAsync(r => r.Code == code, cancellationToken);
        if (region is null)
        {
            region = new Region { Code = code, DisplayName = name! };
            db.Regions.Add(region);
            audit.Record(actor, "region.created", "region", code, null, new { displayName = name });
        }
        else if (region.DisplayName != name)
        {
            audit.Record(actor, "region.updated", "region", code, null, new { displayName = new { before = region.DisplayName, after = name } });
            region.DisplayName = name!;
        }
        else
        {
            return (OperationResult.Done, region);
        }

        await db.SaveChangesAsync(cancellationToken);
        return (OperationResult.Done, region);
    }

    /// <summary>Deletes the region; refused while an account is enabled in it. An unknown region is already gone.</summary>
    public async Task<OperationResult> DeleteAsync(string code, Actor actor, CancellationToken cancellationToken)
    {
        var region = await db.Regions.SingleOrDefaultAsync(r => r.Code == code, cancellationToken);
        if (region is null)
        {
            return OperationResult.Done;
        }

        if (await db.Set<AccountRegion>().AnyAsync(r => r.RegionCode == code, cancellationToken))
        {
            return OperationResult.Conflict(StillInUse);
        }

        db.Regions.Remove(region);
        audit.Record(actor, "region.deleted", "region", code, null);
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException ex) when (ex.IsForeignKeyViolation())
        {
            return OperationResult.Conflict(StillInUse); // an account was given the region after the check above
        }

        return OperationResult.Done;
    }

    [GeneratedRegex("^[a-z0-9-]{2,16}$")]
    private static partial Regex RegionCode();
}
