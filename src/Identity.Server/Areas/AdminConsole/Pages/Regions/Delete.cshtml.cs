using Identity.Core.Accounts;
using Identity.Core.Data;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.AdminConsole.Pages.Regions;

/// <summary>
/// Deleting a region (platform administrators) after typing its code: <see cref="RegionOperations.DeleteAsync"/>, as
/// <c>DELETE /admin/v1/regions/{code}</c>, audited with the admin as actor. A region accounts live in gets no form and
/// is refused by the operation (409); account admins get 403, as for the regions page's other changes.
/// </summary>
public sealed class DeleteRegionModel(AuthorityDbContext db, RegionOperations regions) : ConsolePageModel
{
    public const string MismatchMessage = "Type the region's code exactly as shown to confirm.";

    [BindProperty]
    public string? Confirmation { get; set; }

    public Region Region { get; private set; } = null!;

    /// <summary>How many accounts live in the region: while any do, it cannot be deleted.</summary>
    public int AccountCount { get; private set; }

    public async Task<IActionResult> OnGetAsync(string? code) => await LoadAsync(code) is { } refusal ? refusal : Page();

    public async Task<IActionResult> OnPostAsync(string? code)
    {
        if (await LoadAsync(code) is { } refusal)
        {
            return refusal;
        }

        if (!this.Confirmed(Confirmation, Region.Code, MismatchMessage))
        {
            return Page();
        }

        var result = await regions.DeleteAsync(Region.Code, Admin.Actor, HttpContext.RequestAborted);
        if (!result.Succeeded)
        {
            ModelState.AddRefusal(result);
            AccountCount = await CountAccountsAsync(); // an account may have been given the region meanwhile
            Response.StatusCode = ConsoleForms.StatusOf(result);
            return Page();
        }

        Notice($"The region {Region.Code} was deleted.");
        return Redirect(ConsoleClient.BasePath + "/regions");
    }

    /// <summary>The region, or the refusal: 403 for account admins (platform only), 404 for an unknown or malformed code.</summary>
    private async Task<IActionResult?> LoadAsync(string? code)
    {
        if (!Admin.IsPlatformAdmin)
        {
            return PlatformOnly();
        }

        // Model binding makes a blank route value null (a "%20" in the address).
        var region = code is { Length: > 0 and <= 16 } ? await db.Regions.AsNoTracking().SingleOrDefaultAsync(r => r.Code == code, HttpContext.RequestAborted) : null;
        if (region is null)
        {
            return NotFound();
        }

        Region = region;
        AccountCount = await CountAccountsAsync();
        return null;
    }

    private Task<int> CountAccountsAsync() =>
        db.Set<AccountRegion>().CountAsync(r => r.RegionCode == Region.Code, HttpContext.RequestAborted);
}
