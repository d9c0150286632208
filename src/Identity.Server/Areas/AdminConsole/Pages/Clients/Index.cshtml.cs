using Identity.Server.Admin;
using Identity.Server.Clients;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Identity.Server.AdminConsole.Pages.Clients;

/// <summary>
/// The OpenID Connect clients, 50 a page in client-id order, for platform administrators (as the admin API: clients
/// belong to no account, so an account admin finds nothing here, 404).
/// </summary>
public sealed class ClientsModel(ClientOperations clients) : ConsolePageModel
{
    public const int PageSize = 50;

    [BindProperty(SupportsGet = true, Name = "after")]
    public string? After { get; set; }

    public IReadOnlyList<ClientView> Items { get; private set; } = [];

    public string? Next { get; private set; }

    public string? Error { get; private set; }

    public async Task<IActionResult> OnGetAsync()
    {
        if (!Admin.IsPlatformAdmin)
        {
            return NotFound();
        }

        if (!AdminHttp.TryDecodeCursor(After, out var cursor) || cursor is { Length: > 100 })
        {
            Error = "This page link is not valid: start again from the first page.";
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }

        var (items, more) = await clients.ListAsync(cursor, PageSize, HttpContext.RequestAborted);
        Items = items;
        Next = more ? AdminHttp.EncodeCursor(items[^1].ClientId) : null;
        return Page();
    }
}
