using Identity.Core.Data;
using Identity.Core.Policies;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.Account;

/// <summary>The policy of the account a user belongs to (platform administrators: the defaults).</summary>
public sealed class AccountPolicies(AuthorityDbContext db, ILogger<AccountPolicies> logger)
{
    public async Task<AccountPolicy> ForAsync(ApplicationUser user, CancellationToken cancellationToken = default)
    {
        if (user.AccountId is not { } accountId)
        {
            return AccountPolicy.Default;
        }

        var settings = await db.Accounts.AsNoTracking().Where(a => a.Id == accountId).Select(a => a.Settings).SingleOrDefaultAsync(cancellationToken);
        if (settings is null || settings == "{}")
        {
            return AccountPolicy.Default;
        }

        var policy = AccountPolicy.Parse(settings, out var errors);
        if (policy is null)
        {
            // Stored before settings were validated as a policy: fall back to the defaults and say so.
            logger.LogWarning("Account {AccountId} has unreadable settings ({Fields}); using defaults", accountId, string.Join(", ", errors.Keys));
            return AccountPolicy.Default;
        }

        return policy;
    }
}
