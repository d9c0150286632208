using System.Globalization;
using Identity.Core.Data;
using Identity.Core.Operations;
using Identity.Server.Admin;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Identity.Server.AdminConsole.Pages.PlatformAdmins;

/// <summary>
/// The confirm step before a person is made a platform administrator, or no longer one (decision 0087): the page says
/// what it means, and the form names the person's version and what it confirms, so a confirmation made on an older
/// state (someone else did it, or changed the person) is refused (409) and the page shows them as they now are. The
/// change is <see cref="UserAdministration.SetPlatformAdminAsync"/>, the admin API's. Platform administrators only (404).
/// </summary>
public sealed class ConfirmPlatformAdminModel(AuthorityDbContext db, UserAdministration users) : ConsolePageModel
{
    public const string StaleMessage = "Someone else changed this person since you opened the page: they are shown as they are now. Check and confirm again.";

    public ApplicationUser Person { get; private set; } = null!;

    public async Task<IActionResult> OnGetAsync(Guid userId) => await LoadAsync(userId) ? Page() : NotFound();

    public async Task<IActionResult> OnPostAsync(Guid userId, string? version, string? grant)
    {
        if (!await LoadAsync(userId))
        {
            return NotFound();
        }

        if (!long.TryParse(version, NumberStyles.None, CultureInfo.InvariantCulture, out var made) || !bool.TryParse(grant, out var wanted))
        {
            return Refuse(StatusCodes.Status400BadRequest, "The form did not say what it confirms or which version of the person it was made from: reload the page and try again.");
        }

        if (made != Person.Version || wanted == Person.IsPlatformAdmin)
        {
            return Refuse(StatusCodes.Status409Conflict, StaleMessage);
        }

        var result = await users.SetPlatformAdminAsync(Admin, Person, wanted, HttpContext.RequestAborted);
        if (!result.Succeeded)
        {
            db.ChangeTracker.Clear();
            await LoadAsync(userId); // as they now stand: nothing was written
            return Refuse(ConsoleForms.StatusOf(result), result.Outcome == OperationOutcome.Stale ? StaleMessage : result.Detail ?? "The change was refused.");
        }

        Notice(wanted
            ? $"{Person.Email} is a platform administrator: at their next console page they see every account (with a second factor, as every administrator)."
            : $"{Person.Email} is no longer a platform administrator.");
        return Redirect(Person.AccountId is { } account ? $"/admin/accounts/{account}/users/{Person.Id}" : "/admin/platform-admins");
    }

    private PageResult Refuse(int status, string message)
    {
        ModelState.AddModelError(ConsoleForms.Summary, message);
        Response.StatusCode = status;
        return Page();
    }

    private async Task<bool> LoadAsync(Guid userId)
    {
        var person = await users.FindPersonAsync(Admin, userId.ToString(), HttpContext.RequestAborted);
        Person = person!;
        return person is not null;
    }
}
