using Identity.Core.Data;
using Identity.Core.Users;
using Identity.Server.Admin;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Identity.Server.AdminConsole.Pages.Users;

using Account = Identity.Core.Accounts.Account;

/// <summary>
/// An account's users, 50 a page in a stable order (a cursor, as the admin API pages), filtered by part of the email
/// and by status, each with their role, status, last sign-in, enrolled second factors and a pending address marker
/// (each read once for the whole page, not once a row).
/// </summary>
public sealed class UsersModel(AuthorityDbContext db, UserAdministration users) : ConsolePageModel
{
    public const int PageSize = 50;

    [BindProperty(SupportsGet = true, Name = "email")]
    public string? Email { get; set; }

    [BindProperty(SupportsGet = true, Name = "status")]
    public string? Status { get; set; }

    [BindProperty(SupportsGet = true, Name = "after")]
    public string? After { get; set; }

    public Account Account { get; private set; } = null!;

    public IReadOnlyList<ApplicationUser> Items { get; private set; } = [];

    public IReadOnlyDictionary<string, UserFacts> Facts { get; private set; } = new Dictionary<string, UserFacts>();

    /// <summary>The users of the page with an address change waiting for its link (decision 0086), by id.</summary>
    public IReadOnlyDictionary<string, PendingEmail> Pending { get; private set; } = new Dictionary<string, PendingEmail>();

    /// <summary>The next page's cursor, or null on the last page.</summary>
    public string? Next { get; private set; }

    /// <summary>Why the filter or the page link was refused (the page answers 400 and lists nothing).</summary>
    public string? Error { get; private set; }

    public async Task<IActionResult> OnGetAsync(Guid accountId)
    {
        var account = await VisibleAccounts.FindAsync(db, Admin, accountId, tracking: false, HttpContext.RequestAborted);
        if (account is null)
        {
            return NotFound();
        }

        Account = account;
        Email = Email?.Trim();
        Status = string.IsNullOrEmpty(Status) ? null : Status;
        if (Email is { Length: > 256 })
        {
            return Refuse("The email filter is at most 256 characters.");
        }

        if (!AdminHttp.TryDecodeCursor(After, out var cursor) || cursor is { Length: > 100 })
        {
            return Refuse("This page link is not valid: start again from the first page.");
        }

        if (UserAdministration.TryParseStatus(Status, out var wanted) is { } refused)
        {
            return Refuse("The status filter is 'active' or 'disabled': " + refused.Errors!["status"][0]);
        }

        var (items, more) = await users.ListAsync(accountId, Email, wanted, cursor, PageSize, HttpContext.RequestAborted);
        Items = items;
        Facts = await users.FactsAsync(accountId, [.. items.Select(u => u.Id)], HttpContext.RequestAborted);
        Pending = await users.PendingChangesAsync(items, HttpContext.RequestAborted);
        Next = more ? AdminHttp.EncodeCursor(items[^1].Id) : null;
        return Page();
    }

    private PageResult Refuse(string error)
    {
        Error = error;
        Response.StatusCode = StatusCodes.Status400BadRequest;
        return Page();
    }
}
