using Identity.Core.Accounts;
using Identity.Core.Data;
using Identity.Core.Operations;
using Identity.Server.Admin;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.AdminConsole.Pages.Accounts;

using Account = Identity.Core.Accounts.Account;

/// <summary>
/// One account: its facts and, for platform administrators, suspend/activate and the regions it lives in — each through
/// the operation the admin API calls (<see cref="AccountOperations"/>), audited with the admin as actor.
/// </summary>
public sealed class AccountDetailsModel(AuthorityDbContext db, AccountOperations operations) : ConsolePageModel
{
    public Account Account { get; private set; } = null!;

    public IReadOnlyList<Region> AllRegions { get; private set; } = [];

    public List<string> Errors { get; } = [];

    public async Task<IActionResult> OnGetAsync(Guid id) => await LoadAsync(id, tracking: false) ? Page() : NotFound();

    public Task<IActionResult> OnPostSuspendAsync(Guid id) =>
        PlatformActionAsync(id, account => operations.SuspendAsync(account, Admin.Actor, HttpContext.RequestAborted), "suspended");

    public Task<IActionResult> OnPostActivateAsync(Guid id) =>
        PlatformActionAsync(id, account => operations.ActivateAsync(account, Admin.Actor, HttpContext.RequestAborted), "activated");

    /// <summary>The regions ticked become the account's: one operation (and one audit entry) per region enabled or left.</summary>
    public Task<IActionResult> OnPostRegionsAsync(Guid id, [FromForm] List<string>? regions) =>
        PlatformActionAsync(id, async account =>
        {
            var wanted = (regions ?? []).ToHashSet(StringComparer.Ordinal);
            var current = account.Regions.Select(r => r.RegionCode).ToList();
            foreach (var region in wanted.Except(current).Order(StringComparer.Ordinal))
            {
                var enabled = await operations.EnableRegionAsync(account, region, Admin.Actor, HttpContext.RequestAborted);
                if (!enabled.Succeeded)
                {
                    return enabled;
                }
            }

            foreach (var region in current.Except(wanted).Order(StringComparer.Ordinal))
            {
                var disabled = await operations.DisableRegionAsync(account, region, Admin.Actor, HttpContext.RequestAborted);
                if (!disabled.Succeeded)
                {
                    return disabled;
                }
            }

            return OperationResult.Done;
        }, "given its regions");

    private async Task<IActionResult> PlatformActionAsync(Guid id, Func<Account, Task<OperationResult>> action, string done)
    {
        if (!await LoadAsync(id, tracking: true))
        {
            return NotFound();
        }

        if (!Admin.IsPlatformAdmin)
        {
            return PlatformOnly();
        }

        var result = await action(Account);
        if (result.Succeeded)
        {
            Notice($"{Account.Name} was {done}.");
            return RedirectToPage(new { id });
        }

        Errors.AddRange(result.Errors?.SelectMany(e => e.Value) ?? [result.Detail ?? "The account changed meanwhile: reload the page and try again."]);
        db.ChangeTracker.Clear();
        await LoadAsync(id, tracking: false);
        Response.StatusCode = result.Outcome == OperationOutcome.Invalid ? StatusCodes.Status400BadRequest : StatusCodes.Status409Conflict;
        return Page();
    }

    private async Task<bool> LoadAsync(Guid id, bool tracking)
    {
        var account = await VisibleAccounts.FindAsync(db, Admin, id, tracking, HttpContext.RequestAborted);
        if (account is null)
        {
            return false;
        }

        Account = account;
        AllRegions = await db.Regions.AsNoTracking().OrderBy(r => r.Code).ToListAsync(HttpContext.RequestAborted);
        return true;
    }
}
