using Identity.Core.Data;
using Identity.Server.Admin;
using Microsoft.AspNetCore.Mvc;

namespace Identity.Server.AdminConsole.Pages.PlatformAdmins;

/// <summary>The platform administrators (decision 0087), for platform administrators only (404 for anyone else, as clients).</summary>
public sealed class PlatformAdminsModel(UserAdministration users) : ConsolePageModel
{
    public IReadOnlyList<ApplicationUser> Items { get; private set; } = [];

    public async Task<IActionResult> OnGetAsync()
    {
        if (!Admin.IsPlatformAdmin)
        {
            return NotFound();
        }

        Items = await users.ListPlatformAdminsAsync(HttpContext.RequestAborted);
        return Page();
    }
}
