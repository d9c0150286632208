using Identity.Core.Data;
using Identity.Server.Admin;
using Identity.Server.Clients;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using OpenIddict.EntityFrameworkCore.Models;

namespace Identity.Server.AdminConsole.Pages.Clients;

/// <summary>
/// One client: its declaration as an edit form (every field of the admin API's request: redirect URIs, scopes, region,
/// grants, method, keys, IP allow-list, token rate limit, refresh leeway) and the secret's rotation, both through <see cref="ClientOperations"/> and both carrying the client's version (its concurrency
/// token, the API's ETag): a stale save is refused and shows what changed meanwhile (<see cref="FormVersion"/>). The
/// secret itself is never shown here, only once after a rotation.
/// </summary>
public sealed class ClientDetailsModel(AuthorityDbContext db, ClientOperations clients) : ConsolePageModel
{
    [BindProperty]
    public ClientForm Form { get; set; } = new();

    [BindProperty(Name = FormVersion.VersionField)]
    public string? Version { get; set; }

    [BindProperty(Name = FormVersion.SnapshotField)]
    public string? Snapshot { get; set; }

    public ClientView Client { get; private set; } = null!;

    public IReadOnlyList<Core.Accounts.Region> Regions { get; private set; } = [];

    public StaleEdit? Stale { get; private set; }

    /// <summary>Why the client cannot be deleted (the console's own, or declared in configuration), or null.</summary>
    public string? Undeletable => clients.WhyUndeletable(Client.ClientId);

    /// <summary>A rotated secret, on the one answer that shows it.</summary>
    public string? Secret { get; private set; }

    public OpenIddictEntityFrameworkCoreApplication Application => _application;

    private OpenIddictEntityFrameworkCoreApplication _application = null!;

    public async Task<IActionResult> OnGetAsync(string clientId)
    {
        if (!await LoadAsync(clientId))
        {
            return NotFound();
        }

        Form = ClientForm.From(Client, _application.JsonWebKeySet);
        return Page();
    }

    public async Task<IActionResult> OnPostSaveAsync(string clientId)
    {
        if (!await LoadAsync(clientId))
        {
            return NotFound();
        }

        var request = Form.ToRequest(ModelState);
        if (request is null)
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }

        var saved = await clients.ReplaceAsync(_application, request with { ClientId = Client.ClientId }, Admin.Actor, HttpContext.RequestAborted,
            expectedETag: Version ?? "");
        if (saved.Result.Outcome == Core.Operations.OperationOutcome.Stale)
        {
            return await StaleAsync(clientId);
        }

        if (!saved.Result.Succeeded)
        {
            ClientForm.AddRefusal(ModelState, saved.Result);
            Response.StatusCode = ConsoleForms.StatusOf(saved.Result);
            return Page();
        }

        Notice($"The client {clientId} was saved.");
        return Redirect("/admin/clients/" + Uri.EscapeDataString(clientId));
    }

    public async Task<IActionResult> OnPostRotateAsync(string clientId)
    {
        if (!await LoadAsync(clientId))
        {
            return NotFound();
        }

        var rotated = await clients.RotateSecretAsync(_application, Admin.Actor, HttpContext.RequestAborted, expectedETag: Version ?? "");
        if (rotated.Result.Outcome == Core.Operations.OperationOutcome.Stale)
        {
            return await StaleAsync(clientId);
        }

        ModelState.Clear();
        Form = ClientForm.From(Client, _application.JsonWebKeySet);
        if (!rotated.Result.Succeeded)
        {
            ModelState.AddRefusal(rotated.Result);
            Response.StatusCode = ConsoleForms.StatusOf(rotated.Result);
            return Page();
        }

        Secret = rotated.Secret;
        await LoadAsync(clientId); // the new version, for the forms below
        Response.Headers.CacheControl = "no-store";
        return Page();
    }

    /// <summary>Refused: someone changed the client since the form was read. Shows their change and this form's, then the current values.</summary>
    private async Task<PageResult> StaleAsync(string clientId)
    {
        db.ChangeTracker.Clear();
        await LoadAsync(clientId);
        var shown = FormVersion.Decode(Snapshot);
        Stale = new StaleEdit(FormVersion.Differences(shown, Describe(ClientForm.From(Client, _application.JsonWebKeySet))),
            FormVersion.Differences(shown, Describe(Form)));
        ModelState.Clear();
        Form = ClientForm.From(Client, _application.JsonWebKeySet);
        Response.StatusCode = StatusCodes.Status409Conflict;
        return Page();
    }

    /// <summary>The form's values as label → text: the snapshot an edit carries, and what a refusal compares.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> Describe(ClientForm form) =>
    [
        new("Display name", form.DisplayName ?? ""),
        new("Authentication", form.AuthenticationMethod),
        new("Grant types", FormVersion.Text(form.GrantTypes.Order(StringComparer.Ordinal))),
        new("Redirect URIs", FormVersion.Text(Split(form.RedirectUris))),
        new("Post-logout redirect URIs", FormVersion.Text(Split(form.PostLogoutRedirectUris))),
        new("Scopes", FormVersion.Text((form.Scopes ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal))),
        new("Region", form.Region ?? "none"),
        new("First party", FormVersion.Text(form.FirstParty)),
        new("Access token lifetime", form.AccessTokenLifetime ?? "default"),
        new("Refresh token reuse leeway", string.IsNullOrWhiteSpace(form.RefreshTokenReuseLeeway) ? "none" : form.RefreshTokenReuseLeeway.Trim()),
        new("IP allow-list", FormVersion.Text(Split(form.AllowedIpRanges), none: "anywhere")),
        new("Token rate limit", string.IsNullOrWhiteSpace(form.TokenRateLimitPermits) && string.IsNullOrWhiteSpace(form.TokenRateLimitWindow)
            ? "none" : $"{form.TokenRateLimitPermits?.Trim()} per {form.TokenRateLimitWindow?.Trim()}"),
        new("JSON Web Key Set", string.IsNullOrWhiteSpace(form.Jwks) ? "none" : "set"),
        new("Certificate subject DN", form.TlsClientAuthSubjectDn ?? ""),
        new("Certificate SAN DNS", form.TlsClientAuthSanDns ?? ""),
        new("Certificate SAN URI", form.TlsClientAuthSanUri ?? ""),
    ];

    private static IEnumerable<string> Split(string? lines) =>
        (lines ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private async Task<bool> LoadAsync(string clientId)
    {
        if (!Admin.IsPlatformAdmin || clientId.Length > 100)
        {
            return false; // clients belong to no account: an account admin finds none
        }

        var application = await clients.FindAsync(clientId, HttpContext.RequestAborted);
        if (application is null)
        {
            return false;
        }

        _application = application;
        Client = await clients.ViewAsync(application, HttpContext.RequestAborted);
        Regions = await db.Regions.AsNoTracking().OrderBy(r => r.Code).ToListAsync(HttpContext.RequestAborted);
        return true;
    }
}
