using Identity.Core.Accounts;
using Identity.Core.Data;
using Identity.Core.Email;
using Identity.Server.Admin;
using Microsoft.AspNetCore.Mvc;

namespace Identity.Server.AdminConsole.Pages.Users;

using Account = Identity.Core.Accounts.Account;

/// <summary>
/// Creates a user of the account through <see cref="UserAdministration"/> (the admin API's rules, version, events and
/// audit with this admin as actor): invited (the one-time link shown on the answer to this form, once, never again) or
/// with a password the admin hands over.
/// </summary>
public sealed class NewUserModel(AuthorityDbContext db, UserAdministration users, IAccountEmails emails, IConfiguration configuration)
    : ConsolePageModel
{
    [BindProperty]
    public NewUserInput Input { get; set; } = new();

    public Account Account { get; private set; } = null!;

    public bool MailServer => emails.Enabled;

    /// <summary>The created user, after a successful post.</summary>
    public ApplicationUser? Created { get; private set; }

    /// <summary>The invitation link, on the one answer that shows it.</summary>
    public string? InvitationLink { get; private set; }

    public async Task<IActionResult> OnGetAsync(Guid accountId) => await LoadAsync(accountId) ? Page() : NotFound();

    public async Task<IActionResult> OnPostAsync(Guid accountId)
    {
        if (!await LoadAsync(accountId))
        {
            return NotFound();
        }

        var invite = Input.Mode != "password";
        var request = new CreateUserRequest(Input.Email, NullIfEmpty(Input.DisplayName), Input.Role,
            invite ? null : Input.Password ?? "", invite && Input.SendEmail ? true : null);
        var (result, user, token) = await users.CreateAsync(Admin, accountId, request, HttpContext.RequestAborted);
        if (!result.Succeeded)
        {
            ModelState.AddRefusal(result);
            Response.StatusCode = ConsoleForms.StatusOf(result);
            Input.Password = null; // never sent back
            return Page();
        }

        if (token is null)
        {
            Notice($"{user!.Email} was created: they sign in with the password you chose.");
            return Redirect($"/admin/accounts/{accountId}/users/{user.Id}");
        }

        // Shown on this answer only: the token is stored hashed, and nothing caches the page.
        Created = user;
        InvitationLink = InvitationLinks.For(configuration, token);
        Response.Headers.CacheControl = "no-store";
        return Page();
    }

    private async Task<bool> LoadAsync(Guid accountId)
    {
        Account = (await VisibleAccounts.FindAsync(db, Admin, accountId, tracking: false, HttpContext.RequestAborted))!;
        return Account is not null;
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;
}

/// <summary>The new-user form. <c>Mode</c>: <c>invite</c> (a one-time link) or <c>password</c>.</summary>
public sealed class NewUserInput
{
    public string? Email { get; set; }

    public string? DisplayName { get; set; }

    public string? Role { get; set; } = AccountRoles.Member;

    public string Mode { get; set; } = "invite";

    public string? Password { get; set; }

    public bool SendEmail { get; set; }
}
