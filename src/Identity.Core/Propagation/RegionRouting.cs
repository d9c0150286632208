using Identity.Core.Accounts;
using Identity.Core.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;

namespace Identity.Core.Propagation;

/// <summary>
/// The one place that decides which regions an event about a user goes to: the regions the user's account lives in, no
/// other (customer data stays in its region). One instance per SaveChanges: it remembers the accounts whose regions that
/// SaveChanges writes, and the regions it read, so a change touching many users of one account reads them once.
/// </summary>
/// <remarks>
/// A user loaded with its <see cref="ApplicationUser.RegionCodes"/> carries them, which saves a read of the account's
/// regions per change (29 % of the bench writer's CPU per change, and a statement in the database; perf, 2026-12-03).
/// They are exact because moving an account rewrites its users' codes and raises their versions, a concurrency token: a
/// user loaded before a move cannot be saved after it, and a move that loaded the user before this change cannot commit
/// after it. Codes are written only where that guard holds: for the users of an account whose regions this SaveChanges
/// writes (its own transaction), and for users who already belonged to the account and whose row this SaveChanges writes
/// anyway (the read here is made after they were loaded, so a move committed since fails this save). A user new to the
/// account — created, or moved from another account — is not guarded: a move committing meanwhile does not see them.
/// Their codes stay unknown (null), and the next change reads the account's regions again.
/// </remarks>
public sealed class RegionRouting(AuthorityDbContext db)
{
    private readonly Dictionary<Guid, List<string>> _written = []; // accounts whose regions this SaveChanges writes: as it leaves them
    private readonly Dictionary<Guid, List<string>> _read = []; // other accounts: as stored

    /// <summary>Records the regions an account lives in once this SaveChanges has written its regions.</summary>
    public void Moved(Guid accountId, List<string> regions) => _written[accountId] = regions;

    /// <summary>The regions an event about this user (a tracked entry) of this account goes to.</summary>
    public async Task<List<string>> OfUserAsync(EntityEntry entry, Guid accountId, CancellationToken cancellationToken)
    {
        var codes = entry.Property(nameof(ApplicationUser.RegionCodes));
        var written = entry.State is EntityState.Added or EntityState.Modified;
        if (_written.TryGetValue(accountId, out var regions))
        {
            if (written)
            {
                codes.CurrentValue = CodesOf(regions);
            }

            return regions;
        }

        var member = entry.State != EntityState.Added && Equals(entry.Property(nameof(ApplicationUser.AccountId)).OriginalValue, accountId);
        if (member && codes.OriginalValue is string carried)
        {
            return carried.Length == 0 ? [] : [.. carried.Split(',')];
        }

        if (!_read.TryGetValue(accountId, out regions))
        {
            regions = _read[accountId] = await StoredAsync(db, accountId, cancellationToken);
        }

        if (written)
        {
            codes.CurrentValue = member ? CodesOf(regions) : null;
        }

        return regions;
    }

    /// <summary>The regions an account lives in, as stored (before this SaveChanges' own changes to them).</summary>
    public static async Task<List<string>> StoredAsync(AuthorityDbContext db, Guid accountId, CancellationToken cancellationToken) =>
        await db.Set<AccountRegion>().AsNoTracking()
            .Where(r => r.AccountId == accountId)
            .Select(r => r.RegionCode)
            .OrderBy(r => r)
            .ToListAsync(cancellationToken);

    /// <summary>What <see cref="ApplicationUser.RegionCodes"/> holds for these regions; null (unknown) if they do not fit.</summary>
    public static string? CodesOf(IEnumerable<string> regions)
    {
        var codes = string.Join(',', regions.Order(StringComparer.Ordinal));
        return codes.Length <= ApplicationUser.RegionCodesMaxLength ? codes : null;
    }
}
