using Identity.Core.Accounts;
using Identity.Core.Data;
using Identity.Server.Admin;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.AdminConsole.Pages.Accounts;

using Account = Identity.Core.Accounts.Account;

/// <summary>
/// Deleting an account (platform administrators) after typing its name: <see cref="AccountOperations.DeleteAsync"/>, as
/// <c>DELETE /admin/v1/accounts/{id}</c> — its users go with it and its regions are told.
/// </summary>
public sealed class DeleteAccountModel(AuthorityDbContext db, AccountOperations operations) : ConsolePageModel
{
    public const string MismatchMessage = "Type the account's name exactly as shown to confirm.";

    [BindProperty]
    public string? Confirmation { get; set; }

    public Account Account { get; private set; } = null!;

    public int UserCount { get; private set; }

    public async Task<IActionResult> OnGetAsync(Guid id) => await LoadAsync(id, tracking: false) is { } refusal ? refusal : Page();

    public async Task<IActionResult> OnPostAsync(Guid id)
    {
        if (await LoadAsync(id, tracking: true) is { } refusal)
        {
            return refusal;
        }

        if (!this.Confirmed(Confirmation, Account.Name, MismatchMessage))
        {
            return Page();
        }

        var result = await operations.DeleteAsync(Account, Admin.Actor, HttpContext.RequestAborted);
        if (!result.Succeeded)
        {
            ModelState.AddModelError(ConsoleForms.ConfirmationField, result.Detail ?? "The account changed meanwhile: reload the page and try again.");
            Response.StatusCode = StatusCodes.Status409Conflict;
            return Page();
        }

        Notice($"{Account.Name} was deleted, with its users.");
        return Redirect(ConsoleClient.BasePath + "/accounts");
    }

    /// <summary>The account, or the refusal: absent for those who cannot see it, 403 for account admins (platform only).</summary>
    private async Task<IActionResult?> LoadAsync(Guid id, bool tracking)
    {
        var account = await VisibleAccounts.FindAsync(db, Admin, id, tracking, HttpContext.RequestAborted);
        if (account is null)
        {
            return NotFound();
        }

        if (!Admin.IsPlatformAdmin)
        {
            return PlatformOnly();
        }

        Account = account;
        UserCount = await db.Users.CountAsync(u => u.AccountId == id, HttpContext.RequestAborted);
        return null;
    }
}
