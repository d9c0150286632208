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

    [BindProperty(Name = FormVersion.VersionField)]
    public long Version { get; set; }

    [BindProperty(Name = FormVersion.SnapshotField)]
    public string? Snapshot { get; set; }

    [BindProperty]
    public string? Name { get; set; }

    public StaleEdit? Stale { get; private set; }

    public async Task<IActionResult> OnGetAsync(Guid id) => await LoadAsync(id, tracking: false) ? Page() : NotFound();

    /// <summary>A new name (any admin of the account, as <c>PATCH /admin/v1/accounts/{id}</c> with <c>If-Match</c>).</summary>
    public async Task<IActionResult> OnPostRenameAsync(Guid id)
    {
        // What was posted, before loading the account resets the form to it.
        var (typed, version, snapshot) = (Name, Version, Snapshot);
        if (!await LoadAsync(id, tracking: true))
        {
            return NotFound();
        }

        var result = version == Account.Version
            ? await operations.UpdateAsync(Account, typed, Admin.Actor, HttpContext.RequestAborted)
            : OperationResult.Stale;
        if (result.Succeeded)
        {
            Notice($"The account is now named {Account.Name}.");
            return RedirectToPage(new { id });
        }

        db.ChangeTracker.Clear();
        await LoadAsync(id, tracking: false);
        if (result.Outcome == OperationOutcome.Stale)
        {
            var shown = FormVersion.Decode(snapshot);
            Stale = new StaleEdit(FormVersion.Differences(shown, Describe(Account)),
                FormVersion.Differences(shown.Where(p => p.Key == "Name").ToList(), [new("Name", typed?.Trim() ?? "")]));
            Response.StatusCode = StatusCodes.Status409Conflict;
            return Page();
        }

        Errors.AddRange(result.Errors?.SelectMany(e => e.Value) ?? [result.Detail ?? "The account could not be renamed."]);
        Response.StatusCode = StatusCodes.Status400BadRequest;
        return Page();
    }

    /// <summary>What the page shows of the account, for <see cref="FormVersion"/>: a refused rename says what changed.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> Describe(Account account) =>
    [
        new("Name", account.Name),
        new("Status", account.Status.ToString().ToLowerInvariant()),
        new("Regions", FormVersion.Text(account.Regions.Select(r => r.RegionCode).Order(StringComparer.Ordinal))),
        new("Policy version", account.SettingsVersion.ToString(System.Globalization.CultureInfo.InvariantCulture)),
    ];

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
        Version = account.Version;
        Snapshot = FormVersion.Encode(Describe(account));
        Name = account.Name;
        ModelState.Clear();
        AllRegions = await db.Regions.AsNoTracking().OrderBy(r => r.Code).ToListAsync(HttpContext.RequestAborted);
        return true;
    }
}
