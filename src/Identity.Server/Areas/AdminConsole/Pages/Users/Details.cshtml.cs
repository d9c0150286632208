using Identity.Core.Data;
using Identity.Core.Operations;
using Identity.Server.Admin;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Identity.Server.AdminConsole.Pages.Users;

using Account = Identity.Core.Accounts.Account;

/// <summary>
/// One user of an account: their facts (status, role, last sign-in, second factors, version) and the admin's actions —
/// disable, enable, reset MFA, revoke sessions, a new invitation — each through <see cref="UserAdministration"/>, each
/// form naming the version it was made from: a stale form is refused and the page shows the user as they now are.
/// </summary>
public sealed class UserDetailsModel(AuthorityDbContext db, UserAdministration users, IConfiguration configuration) : ConsolePageModel
{
    public const string StaleMessage = "Someone else changed this user since you opened the page: they are shown as they are now. Check and try again.";

    public Account Account { get; private set; } = null!;

    public ApplicationUser Person { get; private set; } = null!;

    public UserFacts Facts { get; private set; } = null!;

    /// <summary>A new invitation link, on the one answer that shows it.</summary>
    public string? InvitationLink { get; private set; }

    public async Task<IActionResult> OnGetAsync(Guid accountId, Guid userId) => await LoadAsync(accountId, userId) ? Page() : NotFound();

    public Task<IActionResult> OnPostDisableAsync(Guid accountId, Guid userId, string? version) =>
        ActAsync(accountId, userId, version, users.DisableAsync, "The user is disabled: their sessions and tokens are revoked, and sign-in is refused.");

    public Task<IActionResult> OnPostEnableAsync(Guid accountId, Guid userId, string? version) =>
        ActAsync(accountId, userId, version, users.EnableAsync, "The user is enabled: they can sign in again.");

    public Task<IActionResult> OnPostResetMfaAsync(Guid accountId, Guid userId, string? version) =>
        ActAsync(accountId, userId, version, users.ResetMfaAsync, "The user's second factors are removed: they enrol again at their next sign-in.");

    public Task<IActionResult> OnPostRevokeSessionsAsync(Guid accountId, Guid userId, string? version) =>
        ActAsync(accountId, userId, version, users.RevokeSessionsAsync, "Every session and token of the user is revoked.");

    public async Task<IActionResult> OnPostInviteAsync(Guid accountId, Guid userId, string? version)
    {
        if (!await LoadAsync(accountId, userId))
        {
            return NotFound();
        }

        if (IsStale(version) is { } stale)
        {
            return stale;
        }

        var (result, token) = await users.ResendInvitationAsync(Admin, Person, sendEmail: false, HttpContext.RequestAborted);
        if (!result.Succeeded)
        {
            return await RefuseAsync(result, accountId, userId);
        }

        InvitationLink = InvitationLinks.For(configuration, token!);
        Response.Headers.CacheControl = "no-store";
        return Page();
    }

    private async Task<IActionResult> ActAsync(Guid accountId, Guid userId, string? version,
        Func<AdminActor, ApplicationUser, CancellationToken, Task<OperationResult>> operation, string done)
    {
        if (!await LoadAsync(accountId, userId))
        {
            return NotFound();
        }

        if (IsStale(version) is { } stale)
        {
            return stale;
        }

        var result = await operation(Admin, Person, HttpContext.RequestAborted);
        if (!result.Succeeded)
        {
            return await RefuseAsync(result, accountId, userId);
        }

        Notice(done);
        return Redirect($"/admin/accounts/{accountId}/users/{userId}");
    }

    /// <summary>
    /// The form's version against the user's: a form made from an older version is refused (409) and the page shows the
    /// current one; a form without a readable version is refused (400).
    /// </summary>
    private PageResult? IsStale(string? version)
    {
        if (!long.TryParse(version, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var made))
        {
            ModelState.AddModelError(ConsoleForms.Summary, "The form did not say which version of the user it was made from: reload the page and try again.");
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }

        if (made == Person.Version)
        {
            return null;
        }

        ModelState.AddModelError(ConsoleForms.Summary, StaleMessage);
        Response.StatusCode = StatusCodes.Status409Conflict;
        return Page();
    }

    private async Task<IActionResult> RefuseAsync(OperationResult result, Guid accountId, Guid userId)
    {
        ModelState.AddRefusal(result, StaleMessage);
        db.ChangeTracker.Clear();
        await LoadAsync(accountId, userId); // as it now stands: nothing was written
        Response.StatusCode = ConsoleForms.StatusOf(result);
        return Page();
    }

    private async Task<bool> LoadAsync(Guid accountId, Guid userId)
    {
        var account = await VisibleAccounts.FindAsync(db, Admin, accountId, tracking: false, HttpContext.RequestAborted);
        var user = account is null ? null : await users.FindAsync(Admin, accountId, userId.ToString(), HttpContext.RequestAborted);
        if (account is null || user is null)
        {
            return false;
        }

        Account = account;
        Person = user;
        Facts = (await users.FactsAsync(accountId, [user.Id], HttpContext.RequestAborted))[user.Id];
        return true;
    }
}
