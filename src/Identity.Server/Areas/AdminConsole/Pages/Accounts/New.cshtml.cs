using Identity.Core.Accounts;
using Identity.Core.Data;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.AdminConsole.Pages.Accounts;

/// <summary>A new account (platform administrators): <see cref="AccountOperations.CreateAsync"/>, as <c>POST /admin/v1/accounts</c>.</summary>
public sealed class NewAccountModel(AuthorityDbContext db, AccountOperations operations) : ConsolePageModel
{
    [BindProperty]
    public string? Name { get; set; }

    [BindProperty]
    public List<string> Regions { get; set; } = [];

    public IReadOnlyList<Region> AllRegions { get; private set; } = [];

    public IReadOnlyDictionary<string, string[]> Errors { get; private set; } = new Dictionary<string, string[]>();

    public async Task<IActionResult> OnGetAsync()
    {
        if (!Admin.IsPlatformAdmin)
        {
            return PlatformOnly();
        }

        AllRegions = await db.Regions.AsNoTracking().OrderBy(r => r.Code).ToListAsync(HttpContext.RequestAborted);
        return Page();
    }

    public async Task<IActionResult> OnPostAsync()
    {
        if (!Admin.IsPlatformAdmin)
        {
            return PlatformOnly();
        }

        var (result, account) = await operations.CreateAsync(Name, Regions, Admin.Actor, HttpContext.RequestAborted);
        if (result.Succeeded)
        {
            Notice($"{account!.Name} was created.");
            return Redirect($"{ConsoleClient.BasePath}/accounts/{account.Id}");
        }

        Errors = result.Errors ?? new Dictionary<string, string[]> { ["$"] = [result.Detail ?? "The account could not be created."] };
        AllRegions = await db.Regions.AsNoTracking().OrderBy(r => r.Code).ToListAsync(HttpContext.RequestAborted);
        Response.StatusCode = StatusCodes.Status400BadRequest;
        return Page();
    }

    public FieldErrors ErrorsFor(string field, string id) => new(id, Errors.TryGetValue(field, out var messages) ? messages : []);
}
