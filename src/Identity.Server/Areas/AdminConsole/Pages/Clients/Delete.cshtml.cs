using Identity.Server.Clients;
using Microsoft.AspNetCore.Mvc;
using OpenIddict.EntityFrameworkCore.Models;

namespace Identity.Server.AdminConsole.Pages.Clients;

/// <summary>
/// Deleting a client (platform administrators) after typing its id: <see cref="ClientOperations.DeleteAsync"/>, as
/// <c>DELETE /admin/v1/clients/{clientId}</c> — its tokens and authorizations revoked, audited with the admin as actor.
/// The console's own client and declared ones are refused by the operation (409) and get no form.
/// </summary>
public sealed class DeleteClientModel(ClientOperations clients) : ConsolePageModel
{
    public const string MismatchMessage = "Type the client id exactly as shown to confirm.";

    [BindProperty]
    public string? Confirmation { get; set; }

    public string ClientId { get; private set; } = "";

    /// <summary>Why this client cannot be deleted (the console's own, or declared in configuration), or null.</summary>
    public string? Undeletable { get; private set; }

    public async Task<IActionResult> OnGetAsync(string clientId) => await LoadAsync(clientId) is null ? NotFound() : Page();

    public async Task<IActionResult> OnPostAsync(string clientId)
    {
        var application = await LoadAsync(clientId);
        if (application is null)
        {
            return NotFound();
        }

        if (!this.Confirmed(Confirmation, ClientId, MismatchMessage))
        {
            return Page();
        }

        var result = await clients.DeleteAsync(application, Admin.Actor, HttpContext.RequestAborted);
        if (!result.Succeeded)
        {
            var error = result.Detail ?? "The client was not deleted.";
            ModelState.AddModelError(ConsoleForms.ConfirmationField, error);
            Undeletable ??= error;
            Response.StatusCode = ConsoleForms.StatusOf(result);
            return Page();
        }

        Notice($"The client {ClientId} was deleted; its tokens no longer work.");
        return Redirect(ConsoleClient.BasePath + "/clients");
    }

    /// <summary>The client, or null for those who may not see clients (account admins: 404) and unknown ids.</summary>
    private async Task<OpenIddictEntityFrameworkCoreApplication?> LoadAsync(string clientId)
    {
        if (!Admin.IsPlatformAdmin || clientId.Length > 100)
        {
            return null;
        }

        var application = await clients.FindAsync(clientId, HttpContext.RequestAborted);
        if (application is not null)
        {
            ClientId = application.ClientId!;
            Undeletable = clients.WhyUndeletable(ClientId);
        }

        return application;
    }
}
