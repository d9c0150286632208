using System.Globalization;
using Identity.Core.Data;
using Identity.Server.Admin;

namespace Identity.Server.AdminConsole.Pages.Users;

using Account = Identity.Core.Accounts.Account;

/// <summary>
/// A page about one user of an account: the account and the user found by the admin API's rule (another account's user,
/// or an account the admin does not administer, is absent: 404), and the version its forms were made from.
/// </summary>
public abstract class UserPageModel(AuthorityDbContext db, UserAdministration users) : ConsolePageModel
{
    public const string UnreadableVersion = "The form did not say which version of the user it was made from: reload the page and try again.";

    public Account Account { get; private set; } = null!;

    /// <summary>The admin API's hold on users (<see cref="UserAdministration"/>): every change a user page makes goes through it.</summary>
    protected UserAdministration Users => users;

    /// <summary>The user, tracked: an operation changes this instance.</summary>
    public ApplicationUser Person { get; private set; } = null!;

    /// <summary>Finds the account and its user; false (the page answers 404) when either is not there for this admin.</summary>
    protected virtual async Task<bool> LoadAsync(Guid accountId, Guid userId)
    {
        var account = await VisibleAccounts.FindAsync(db, Admin, accountId, tracking: false, HttpContext.RequestAborted);
        var user = account is null ? null : await users.FindAsync(Admin, accountId, userId.ToString(), HttpContext.RequestAborted);
        if (account is null || user is null)
        {
            return false;
        }

        Account = account;
        Person = user;
        return true;
    }

    /// <summary>The user as they now stand, after a refused operation (nothing was written; the tracked copy may differ).</summary>
    protected Task<bool> ReloadAsync(Guid accountId, Guid userId)
    {
        db.ChangeTracker.Clear();
        return LoadAsync(accountId, userId);
    }

    /// <summary>The version a form names; when it is unreadable, the summary says so and the answer is 400.</summary>
    protected bool TryReadVersion(string? text, out long version)
    {
        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out version))
        {
            return true;
        }

        ModelState.AddModelError(ConsoleForms.Summary, UnreadableVersion);
        Response.StatusCode = StatusCodes.Status400BadRequest;
        return false;
    }
}
