using Identity.Core.Data;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.Admin;

using Account = Identity.Core.Accounts.Account;

/// <summary>The accounts an administrator may touch, through the API or the console: another account is absent (404), never forbidden.</summary>
public static class VisibleAccounts
{
    public static async Task<Account?> FindAsync(AuthorityDbContext db, AdminActor admin, Guid accountId, bool tracking,
        CancellationToken cancellationToken)
    {
        if (!admin.CanSee(accountId))
        {
            return null;
        }

        var query = db.Accounts.Include(a => a.Regions).Where(a => a.Id == accountId);
        return await (tracking ? query : query.AsNoTracking()).SingleOrDefaultAsync(cancellationToken);
    }
}
