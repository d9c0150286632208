using Identity.Core.Data;
using Identity.Server.Admin;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.AdminConsole.Pages.Accounts;

using Account = Identity.Core.Accounts.Account;

/// <summary>One account: its facts, and (for platform administrators) its status and regions.</summary>
public sealed class AccountDetailsModel(AuthorityDbContext db) : ConsolePageModel
{
    public Account Account { get; private set; } = null!;

    public async Task<IActionResult> OnGetAsync(Guid id)
    {
        var account = await VisibleAccounts.FindAsync(db, Admin, id, tracking: false, HttpContext.RequestAborted);
        if (account is null)
        {
            return NotFound();
        }

        Account = account;
        return Page();
    }
}
