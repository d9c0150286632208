using Identity.Core.Data;
using Identity.Server.Admin;
using Microsoft.AspNetCore.Mvc;

namespace Identity.Server.AdminConsole.Pages.Users;

/// <summary>
/// The confirm step before an administrator vouches for a user's unverified address: the admin API's
/// <c>POST …/users/{id}/verify-email</c> operation (<see cref="UserAdministration.MarkEmailVerifiedAsync"/>: the owner
/// rule, the version, the <c>UserChanged</c> event and the audit entry with the admin as actor). The form names the
/// version it was made from, so a confirmation made on an older state of the user is refused (409).
/// </summary>
public sealed class VerifyUserEmailModel(AuthorityDbContext db, UserAdministration users) : UserPageModel(db, users)
{
    public const string StaleMessage = "Someone else changed this user since you opened the page: they are shown as they are now. Check and confirm again.";

    public async Task<IActionResult> OnGetAsync(Guid accountId, Guid userId) => await LoadAsync(accountId, userId) ? Page() : NotFound();

    public async Task<IActionResult> OnPostAsync(Guid accountId, Guid userId, string? version)
    {
        if (!await LoadAsync(accountId, userId))
        {
            return NotFound();
        }

        if (!TryReadVersion(version, out var made))
        {
            return Page();
        }

        if (made != Person.Version || Person.EmailConfirmed)
        {
            ModelState.AddModelError(ConsoleForms.Summary, StaleMessage);
            Response.StatusCode = StatusCodes.Status409Conflict;
            return Page();
        }

        var address = Person.Email;
        var result = await Users.MarkEmailVerifiedAsync(Admin, Person, address, HttpContext.RequestAborted);
        if (!result.Succeeded)
        {
            ModelState.AddRefusal(result, StaleMessage);
            await ReloadAsync(accountId, userId);
            Response.StatusCode = ConsoleForms.StatusOf(result);
            return Page();
        }

        Notice($"{address} is marked verified.");
        return Redirect($"/admin/accounts/{accountId}/users/{userId}");
    }
}
