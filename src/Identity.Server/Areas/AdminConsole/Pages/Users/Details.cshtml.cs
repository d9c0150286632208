using Identity.Core.Data;
using Identity.Core.Email;
using Identity.Core.Users;
using Identity.Core.Operations;
using Identity.Server.Admin;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Identity.Server.AdminConsole.Pages.Users;

/// <summary>
/// One user of an account: their facts (status, role, last sign-in, second factors, version) and the admin's actions —
/// disable, enable, reset MFA, revoke sessions, a new invitation — each through <see cref="UserAdministration"/>, each
/// form naming the version it was made from: a stale form is refused and the page shows the user as they now are.
/// </summary>
public sealed class UserDetailsModel(AuthorityDbContext db, UserAdministration users, IAccountEmails emails, IConfiguration configuration)
    : UserPageModel(db, users)
{
    public const string StaleMessage = "Someone else changed this user since you opened the page: they are shown as they are now. Check and try again.";

    public UserFacts Facts { get; private set; } = null!;

    /// <summary>The address the user is moving to, with when its link was sent (decision 0085); null when none.</summary>
    public PendingEmail? Pending { get; private set; }

    /// <summary>Whether links can be emailed: without a mail server there is no confirmation to re-send.</summary>
    public bool MailServer => emails.Enabled;

    /// <summary>A new invitation link, on the one answer that shows it.</summary>
    public string? InvitationLink { get; private set; }

    public async Task<IActionResult> OnGetAsync(Guid accountId, Guid userId) => await LoadAsync(accountId, userId) ? Page() : NotFound();

    public Task<IActionResult> OnPostDisableAsync(Guid accountId, Guid userId, string? version) =>
        ActAsync(accountId, userId, version, Users.DisableAsync, "The user is disabled: their sessions and tokens are revoked, and sign-in is refused.");

    public Task<IActionResult> OnPostEnableAsync(Guid accountId, Guid userId, string? version) =>
        ActAsync(accountId, userId, version, Users.EnableAsync, "The user is enabled: they can sign in again.");

    public Task<IActionResult> OnPostResetMfaAsync(Guid accountId, Guid userId, string? version) =>
        ActAsync(accountId, userId, version, Users.ResetMfaAsync, "The user's second factors are removed: they enrol again at their next sign-in.");

    public Task<IActionResult> OnPostRevokeSessionsAsync(Guid accountId, Guid userId, string? version) =>
        ActAsync(accountId, userId, version, Users.RevokeSessionsAsync, "Every session and token of the user is revoked.");

    public Task<IActionResult> OnPostResendVerificationAsync(Guid accountId, Guid userId, string? version) =>
        ActAsync(accountId, userId, version, Users.ResendVerificationAsync, "A new confirmation link was sent; the previous one no longer works.");

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

        var (result, token) = await Users.ResendInvitationAsync(Admin, Person, sendEmail: false, HttpContext.RequestAborted);
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
        if (!TryReadVersion(version, out var made))
        {
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
        await ReloadAsync(accountId, userId);
        Response.StatusCode = ConsoleForms.StatusOf(result);
        return Page();
    }

    protected override async Task<bool> LoadAsync(Guid accountId, Guid userId)
    {
        if (!await base.LoadAsync(accountId, userId))
        {
            return false;
        }

        Facts = (await Users.FactsAsync(accountId, [Person.Id], HttpContext.RequestAborted))[Person.Id];
        Pending = await Users.PendingChangeAsync(Person, HttpContext.RequestAborted);
        return true;
    }
}
