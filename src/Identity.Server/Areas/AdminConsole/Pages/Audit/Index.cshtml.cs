using Identity.Core.Audit;
using Identity.Server.Audit;
using Microsoft.AspNetCore.Mvc;

namespace Identity.Server.AdminConsole.Pages.Audit;

/// <summary>
/// The audit log, newest first, 50 a page, filtered by actor, subject, event type and time: the admin API's query
/// (<see cref="AuditQuery"/>), so a platform administrator sees every entry and an account's admin only that account's.
/// </summary>
public sealed class AuditModel(AuditQuery audit) : ConsolePageModel
{
    public const int PageSize = 50;

    [BindProperty(SupportsGet = true)]
    public string? Actor { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? Subject { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? Type { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? From { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? To { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? Before { get; set; }

    public IReadOnlyList<AuditEntry> Items { get; private set; } = [];

    /// <summary>The query string of the next (older) page, or null on the last.</summary>
    public string? Next { get; private set; }

    public Dictionary<string, string[]> Errors { get; } = new(StringComparer.Ordinal);

    public async Task<IActionResult> OnGetAsync()
    {
        var from = AuditQuery.ParseTime(Blank(From), nameof(From), Errors);
        var to = AuditQuery.ParseTime(Blank(To), nameof(To), Errors);
        long? before = null;
        if (Blank(Before) is { } cursor)
        {
            if (long.TryParse(cursor, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id) && id > 0)
            {
                before = id;
            }
            else
            {
                Errors[nameof(Before)] = ["This page link is not valid: start again from the first page."];
            }
        }

        if (Errors.Count > 0)
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }

        var filter = new AuditFilter(from, to, Blank(Actor), Blank(Subject), Blank(Type));
        var (items, more) = await audit.ReadAsync(Admin, filter, before, PageSize, HttpContext.RequestAborted);
        Items = items;
        Next = more ? QueryString.Create(new Dictionary<string, string?>
        {
            ["actor"] = Blank(Actor), ["subject"] = Blank(Subject), ["type"] = Blank(Type), ["from"] = Blank(From), ["to"] = Blank(To),
            ["before"] = items[^1].Id.ToString(System.Globalization.CultureInfo.InvariantCulture),
        }.Where(p => p.Value is not null)).Value : null;
        return Page();
    }

    private static string? Blank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
}
