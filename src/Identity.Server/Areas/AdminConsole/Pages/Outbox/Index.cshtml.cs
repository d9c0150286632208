using System.Globalization;
using Identity.Core.Data;
using Identity.Core.Operations;
using Identity.Propagation;
using Identity.Server.Admin;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Identity.Server.AdminConsole.Pages.Outbox;

/// <summary>
/// The outbox, for platform administrators (as the admin API; an account admin finds nothing here, 404): how many
/// events wait for each region and since when, and the parked rows, 50 a page, each with a re-queue button, and one per
/// region. Re-queueing goes through <see cref="OutboxOperations"/>: audited with the admin as actor, the dispatcher woken.
/// </summary>
public sealed class OutboxModel(AuthorityDbContext db, OutboxOperations outbox, TimeProvider time) : ConsolePageModel
{
    public const int PageSize = 50;

    public const string BadPageLink = "This page link is not valid: start again from the first page.";

    /// <summary>The id of the last parked row of the previous page (the list is by id).</summary>
    [BindProperty(SupportsGet = true, Name = "after")]
    public string? After { get; set; }

    public OutboxStatus Status { get; private set; } = null!;

    public IReadOnlyList<RegionOutbox> Regions { get; private set; } = [];

    public IReadOnlyList<ParkedRow> Parked { get; private set; } = [];

    /// <summary>The <c>after</c> of the next page, or null on the last.</summary>
    public string? Next { get; private set; }

    public DateTimeOffset Now { get; private set; }

    public string? Error { get; private set; }

    public async Task<IActionResult> OnGetAsync()
    {
        if (!Admin.IsPlatformAdmin)
        {
            return NotFound();
        }

        if (!TryParseAfter(out var after))
        {
            return await RefusedAsync(StatusCodes.Status400BadRequest, BadPageLink, 0);
        }

        await LoadAsync(after);
        return Page();
    }

    /// <summary>One parked row pending again (<c>POST /admin/v1/outbox/{id}/requeue</c>).</summary>
    public async Task<IActionResult> OnPostRequeueAsync(string? id)
    {
        if (!Admin.IsPlatformAdmin)
        {
            return NotFound();
        }

        if (!long.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var rowId))
        {
            rowId = 0; // refused by the operation with its own words, as the API does
        }

        var (result, row) = await outbox.RequeueAsync(rowId, Admin.Actor, HttpContext.RequestAborted);
        if (!result.Succeeded)
        {
            return await RefusedAsync(ConsoleForms.StatusOf(result), Describe(result), 0);
        }

        Notice($"Row {row!.Id} ({row.MessageType} for {row.Region}) is pending again.");
        return Redirect(ConsoleClient.BasePath + "/outbox");
    }

    /// <summary>Every parked row of a region pending again (<c>POST /admin/v1/outbox/requeue?region=</c>).</summary>
    public async Task<IActionResult> OnPostRequeueRegionAsync(string? region)
    {
        if (!Admin.IsPlatformAdmin)
        {
            return NotFound();
        }

        var (result, requeued) = await outbox.RequeueRegionAsync(region, Admin.Actor, HttpContext.RequestAborted);
        if (!result.Succeeded)
        {
            return await RefusedAsync(ConsoleForms.StatusOf(result), Describe(result), 0);
        }

        Notice(requeued!.Requeued == 0
            ? $"No row of {requeued.Region} was parked: nothing to re-queue."
            : $"{requeued.Requeued} parked {(requeued.Requeued == 1 ? "row" : "rows")} of {requeued.Region} pending again.");
        return Redirect(ConsoleClient.BasePath + "/outbox");
    }

    /// <summary>How long ago, for people: "45 s", "12 min", "3 h 5 min", "2 d 4 h".</summary>
    public static string Age(DateTimeOffset at, DateTimeOffset now)
    {
        var age = now - at;
        if (age < TimeSpan.Zero)
        {
            age = TimeSpan.Zero;
        }

        return age.TotalMinutes < 1 ? $"{(int)age.TotalSeconds} s"
            : age.TotalHours < 1 ? $"{(int)age.TotalMinutes} min"
            : age.TotalDays < 1 ? $"{(int)age.TotalHours} h {age.Minutes} min"
            : $"{(int)age.TotalDays} d {age.Hours} h";
    }

    private static string Describe(OperationResult result) => result switch
    {
        { Outcome: OperationOutcome.NotFound } => "There is no outbox row with this id: it may have been sent and cleaned up.",
        { Errors.Count: > 0 } => string.Join(" ", result.Errors.SelectMany(e => e.Value)),
        _ => result.Detail ?? "The re-queue was refused.",
    };

    private async Task<PageResult> RefusedAsync(int status, string error, long after)
    {
        Error = error;
        db.ChangeTracker.Clear();
        await LoadAsync(after);
        Response.StatusCode = status;
        return Page();
    }

    private bool TryParseAfter(out long after)
    {
        after = 0;
        return string.IsNullOrEmpty(After)
            || (long.TryParse(After, NumberStyles.None, CultureInfo.InvariantCulture, out after) && after > 0);
    }

    private async Task LoadAsync(long after)
    {
        var cancellation = HttpContext.RequestAborted;
        Now = time.GetUtcNow();
        Status = await OutboxStatus.ReadAsync(db, time, cancellation, HttpContext.RequestServices.GetService<IOutboxTransport>() is not null);
        Regions = await OutboxStatus.ByRegionAsync(db, cancellation);
        var rows = await OutboxStatus.ParkedPageAsync(db, after, PageSize + 1, cancellation);
        Parked = [.. rows.Take(PageSize)];
        Next = rows.Count > PageSize ? Parked[^1].Id.ToString(CultureInfo.InvariantCulture) : null;
        if (after == 0)
        {
            After = null; // a refused page link starts again from the first page
        }
    }
}
