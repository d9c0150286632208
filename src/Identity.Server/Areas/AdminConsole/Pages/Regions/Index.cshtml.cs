using Identity.Core.Accounts;
using Identity.Core.Data;
using Identity.Core.Operations;
using Identity.Propagation;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.AdminConsole.Pages.Regions;

/// <summary>One region as the page lists it: the accounts enabled there (the first few by name), and its outbox.</summary>
public sealed record RegionRow(Region Region, int AccountCount, IReadOnlyList<(Guid Id, string Name)> Accounts, RegionOutbox? Outbox);

/// <summary>
/// The regions, for every admin (as <c>GET /admin/v1/regions</c>): which accounts live in each — an account's admin sees
/// only their own — and, for platform administrators, each region's outbox backlog (a link to the outbox page) and
/// what <see cref="RegionOperations"/> lets them change: create, rename, and (on <see cref="DeleteRegionModel"/>'s page,
/// after typing the code) delete an unused region, audited with the admin as actor. Account admins posting those forms get 403.
/// </summary>
public sealed class RegionsModel(AuthorityDbContext db, RegionOperations regions) : ConsolePageModel
{
    /// <summary>How many of a region's accounts are named; the count covers them all.</summary>
    public const int AccountsListed = 10;

    public const string Exists = "A region with this code exists already: rename it in the list instead.";

    [BindProperty]
    public string? NewCode { get; set; }

    [BindProperty]
    public string? NewDisplayName { get; set; }

    public IReadOnlyList<RegionRow> Rows { get; private set; } = [];

    /// <summary>A refused rename: the region it was about, and why.</summary>
    public (string Code, string Message)? RowError { get; private set; }

    public async Task<IActionResult> OnGetAsync()
    {
        await LoadAsync();
        return Page();
    }

    public async Task<IActionResult> OnPostCreateAsync()
    {
        if (!Admin.IsPlatformAdmin)
        {
            return PlatformOnly();
        }

        var code = NewCode?.Trim() ?? "";
        if (code.Length is > 0 and <= 16 && await db.Regions.AnyAsync(r => r.Code == code, HttpContext.RequestAborted))
        {
            // PUT would rename it: a create form that lands on an existing code is a mistake, not a rename.
            ModelState.AddModelError("code", Exists);
            return await RefusedAsync(StatusCodes.Status409Conflict);
        }

        var (result, region) = await regions.PutAsync(code, NewDisplayName, Admin.Actor, HttpContext.RequestAborted);
        if (!result.Succeeded)
        {
            ModelState.AddRefusal(result);
            return await RefusedAsync(ConsoleForms.StatusOf(result));
        }

        Notice($"The region {region!.Code} ({region.DisplayName}) was created.");
        return Redirect(ConsoleClient.BasePath + "/regions");
    }

    public async Task<IActionResult> OnPostRenameAsync(string? code, string? displayName)
    {
        if (await ExistingAsync(code) is { } refusal)
        {
            return refusal;
        }

        var (result, region) = await regions.PutAsync(code!, displayName, Admin.Actor, HttpContext.RequestAborted);
        if (!result.Succeeded)
        {
            RowError = (code!, Messages(result));
            return await RefusedAsync(ConsoleForms.StatusOf(result));
        }

        Notice($"The region {region!.Code} is now called {region.DisplayName}.");
        return Redirect(ConsoleClient.BasePath + "/regions");
    }

    private static string Messages(OperationResult result) =>
        result.Errors is { Count: > 0 } errors ? string.Join(" ", errors.SelectMany(e => e.Value)) : result.Detail ?? "The change was refused.";

    /// <summary>A change to a region: platform administrators only (403), and only to a region that exists (404).</summary>
    private async Task<IActionResult?> ExistingAsync(string? code)
    {
        if (!Admin.IsPlatformAdmin)
        {
            return PlatformOnly();
        }

        return code is { Length: > 0 and <= 16 } && await db.Regions.AnyAsync(r => r.Code == code, HttpContext.RequestAborted) ? null : NotFound();
    }

    private async Task<PageResult> RefusedAsync(int status)
    {
        db.ChangeTracker.Clear();
        await LoadAsync();
        Response.StatusCode = status;
        return Page();
    }

    private async Task LoadAsync()
    {
        var cancellation = HttpContext.RequestAborted;
        var all = await db.Regions.AsNoTracking().OrderBy(r => r.Code).ToListAsync(cancellation);
        var memberships = db.Set<AccountRegion>().AsNoTracking()
            .Join(db.Accounts.AsNoTracking(), r => r.AccountId, a => a.Id, (r, a) => new { r.RegionCode, a.Id, a.Name });
        if (!Admin.IsPlatformAdmin)
        {
            memberships = memberships.Where(m => m.Id == Admin.AccountId); // another account's place is not this admin's to read
        }

        var counts = await memberships.GroupBy(m => m.RegionCode).Select(g => new { g.Key, Count = g.Count() })
            .ToDictionaryAsync(g => g.Key, g => g.Count, StringComparer.Ordinal, cancellation);
        var outbox = Admin.IsPlatformAdmin
            ? (await OutboxStatus.ByRegionAsync(db, cancellation)).ToDictionary(o => o.Region, StringComparer.Ordinal)
            : new Dictionary<string, RegionOutbox>(StringComparer.Ordinal);
        var rows = new List<RegionRow>(all.Count);
        foreach (var region in all)
        {
            // One short query per region with accounts: regions are a handful, and each lists at most AccountsListed.
            var count = counts.GetValueOrDefault(region.Code);
            IReadOnlyList<(Guid Id, string Name)> named = count == 0 ? [] : (await memberships.Where(m => m.RegionCode == region.Code).OrderBy(m => m.Name).Take(AccountsListed)
                .Select(m => new { m.Id, m.Name }).ToListAsync(cancellation)).Select(m => (m.Id, m.Name)).ToList();
            rows.Add(new RegionRow(region, count, named, outbox.GetValueOrDefault(region.Code)));
        }

        Rows = rows;
    }
}
