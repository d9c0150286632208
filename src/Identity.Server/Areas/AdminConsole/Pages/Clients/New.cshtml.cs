using Identity.Core.Data;
using Identity.Server.Admin;
using Identity.Server.Clients;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.AdminConsole.Pages.Clients;

/// <summary>
/// Creates a client through <see cref="ClientOperations"/> (the admin API's validation and audit, this admin as actor).
/// A generated secret is on the answer to this form only (no-store); it is stored hashed and never shown again.
/// </summary>
public sealed class NewClientModel(AuthorityDbContext db, ClientOperations clients) : ConsolePageModel
{
    [BindProperty]
    public ClientForm Form { get; set; } = new() { GrantTypes = [OpenIddict.Abstractions.OpenIddictConstants.GrantTypes.AuthorizationCode] };

    public IReadOnlyList<Core.Accounts.Region> Regions { get; private set; } = [];

    /// <summary>The created client, after a successful post.</summary>
    public ClientView? Created { get; private set; }

    /// <summary>The generated secret, on the one answer that shows it.</summary>
    public string? Secret { get; private set; }

    public async Task<IActionResult> OnGetAsync()
    {
        if (!Admin.IsPlatformAdmin)
        {
            return NotFound();
        }

        await LoadRegionsAsync();
        return Page();
    }

    public async Task<IActionResult> OnPostAsync()
    {
        if (!Admin.IsPlatformAdmin)
        {
            return NotFound();
        }

        await LoadRegionsAsync();
        var request = Form.ToRequest(ModelState);
        if (request is null)
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }

        var created = await clients.CreateAsync(request, Admin.Actor, HttpContext.RequestAborted);
        if (!created.Result.Succeeded)
        {
            ClientForm.AddRefusal(ModelState, created.Result);
            Response.StatusCode = ConsoleForms.StatusOf(created.Result);
            return Page();
        }

        if (created.Secret is null)
        {
            Notice($"The client {created.Client!.ClientId} was created.");
            return Redirect("/admin/clients/" + Uri.EscapeDataString(created.Client.ClientId));
        }

        Created = created.Client;
        Secret = created.Secret;
        Response.Headers.CacheControl = "no-store";
        return Page();
    }

    private async Task LoadRegionsAsync() =>
        Regions = await db.Regions.AsNoTracking().OrderBy(r => r.Code).ToListAsync(HttpContext.RequestAborted);
}
