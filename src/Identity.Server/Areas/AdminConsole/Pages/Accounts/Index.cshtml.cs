using Identity.Core.Data;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.AdminConsole.Pages.Accounts;

using Account = Identity.Core.Accounts.Account;

/// <summary>The accounts the administrator may see (a platform admin all, an account admin theirs), searched by name, 50 a page.</summary>
public sealed class AccountsModel(AuthorityDbContext db) : ConsolePageModel
{
    public const int PageSize = 50;

    [BindProperty(SupportsGet = true, Name = "q")]
    public string? Q { get; set; }

    [BindProperty(SupportsGet = true, Name = "page")]
    public int PageNumber { get; set; } = 1;

    public IReadOnlyList<Account> Accounts { get; private set; } = [];

    public bool HasNext { get; private set; }

    public async Task OnGetAsync()
    {
        PageNumber = Math.Clamp(PageNumber, 1, 100_000);
        var query = db.Accounts.AsNoTracking().Include(a => a.Regions).AsQueryable();
        if (!Admin.IsPlatformAdmin)
        {
            query = query.Where(a => a.Id == Admin.AccountId);
        }

        Q = Q?.Trim();
        if (!string.IsNullOrEmpty(Q))
        {
            // Lower-cased on both sides: the same match on SQLite, PostgreSQL and SQL Server, whatever their collation.
            var term = Q.ToLowerInvariant();
#pragma warning disable CA1862 // the StringComparison overload has no SQL translation; ToLower() does, on every provider
            query = query.Where(a => a.Name.ToLower().Contains(term));
#pragma warning restore CA1862
        }

        var page = await query.OrderBy(a => a.Name).ThenBy(a => a.Id)
            .Skip((PageNumber - 1) * PageSize).Take(PageSize + 1).ToListAsync(HttpContext.RequestAborted);
        HasNext = page.Count > PageSize;
        Accounts = page.Take(PageSize).ToList();
    }
}
