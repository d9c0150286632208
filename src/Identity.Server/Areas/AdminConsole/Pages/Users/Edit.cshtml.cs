using System.Globalization;
using Identity.Core.Accounts;
using Identity.Core.Data;
using Identity.Core.Operations;
using Identity.Server.Admin;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Identity.Server.AdminConsole.Pages.Users;

/// <summary>
/// A user's profile as a form — email, name, role — saved by the same call as <c>PATCH /admin/v1/accounts/{a}/users/{u}</c>
/// (<see cref="UserAdministration.ChangeProfileAsync"/>: the owner rule, the API's messages beside the fields, the version,
/// the event in the outbox, the audit entry with this admin as actor). The form carries the version it was read at
/// (<see cref="FormVersion"/>): a stale save is refused with 409 and shows their change and yours. A new address of a
/// verified user waits for its confirmation link (decision 0085): the page then says where the link went.
/// </summary>
public sealed class EditUserModel(AuthorityDbContext db, UserAdministration users) : UserPageModel(db, users)
{
    [BindProperty]
    public ProfileInput Input { get; set; } = new();

    /// <summary>As typed (a number when the form is ours): an unreadable one is a 400, not a stale 409.</summary>
    [BindProperty(Name = FormVersion.VersionField)]
    public string? Version { get; set; }

    [BindProperty(Name = FormVersion.SnapshotField)]
    public string? Snapshot { get; set; }

    public StaleEdit? Stale { get; private set; }

    public async Task<IActionResult> OnGetAsync(Guid accountId, Guid userId)
    {
        if (!await LoadAsync(accountId, userId))
        {
            return NotFound();
        }

        ShowCurrent();
        return Page();
    }

    public async Task<IActionResult> OnPostAsync(Guid accountId, Guid userId)
    {
        if (!await LoadAsync(accountId, userId))
        {
            return NotFound();
        }

        if (!TryReadVersion(Version, out var version))
        {
            return Page();
        }

        if (version != Person.Version)
        {
            return RefuseStale();
        }

        var wanted = Input.ToRequest(Person);
        if (wanted is null)
        {
            Notice("Nothing was changed.");
            return Redirect(DetailsPath(accountId, userId));
        }

        var result = await Users.ChangeProfileAsync(Admin, Person, wanted, HttpContext.RequestAborted);
        if (result.Outcome == OperationOutcome.Stale)
        {
            // Another save won between the check above and the write: show the user as they now are.
            await ReloadAsync(accountId, userId);
            return RefuseStale();
        }

        if (!result.Succeeded)
        {
            ModelState.AddRefusal(result);
            Response.StatusCode = ConsoleForms.StatusOf(result);
            return Page();
        }

        var pending = wanted.Email is not null ? await Users.PendingEmailAsync(Person, HttpContext.RequestAborted) : null;
        Notice(pending is not null && string.Equals(pending, wanted.Email?.Trim(), StringComparison.OrdinalIgnoreCase)
            ? $"The profile was saved. A confirmation link was sent to {pending}: the address stays {Person.Email} until it is confirmed."
            : "The profile was saved.");
        return Redirect(DetailsPath(accountId, userId));
    }

    private static string DetailsPath(Guid accountId, Guid userId) => $"/admin/accounts/{accountId}/users/{userId}";

    private PageResult RefuseStale()
    {
        var shown = FormVersion.Decode(Snapshot);
        Stale = new StaleEdit(FormVersion.Differences(shown, Describe(Person)), FormVersion.Differences(shown, Input.Describe()));
        Response.StatusCode = StatusCodes.Status409Conflict;
        ShowCurrent();
        return Page();
    }

    /// <summary>The form at the user's current values, version and snapshot.</summary>
    private void ShowCurrent()
    {
        Input = ProfileInput.From(Person);
        Version = Person.Version.ToString(CultureInfo.InvariantCulture);
        Snapshot = FormVersion.Encode(Describe(Person));
        ModelState.Clear(); // the inputs render the values set here, not the posted ones
    }

    /// <summary>The profile as a person reads it: what a stale save compares.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> Describe(ApplicationUser user) => ProfileInput.From(user).Describe();
}

/// <summary>The profile form's fields, as typed.</summary>
public sealed class ProfileInput
{
    public string? Email { get; set; }

    public string? DisplayName { get; set; }

    public string? Role { get; set; }

    public static ProfileInput From(ApplicationUser user) => new() { Email = user.Email, DisplayName = user.DisplayName, Role = user.Role };

    public IReadOnlyList<KeyValuePair<string, string>> Describe() =>
    [
        new("Email", Email ?? ""),
        new("Name", string.IsNullOrWhiteSpace(DisplayName) ? "—" : DisplayName.Trim()),
        new("Role", Role ?? ""),
    ];

    /// <summary>
    /// The API's PATCH body: only the fields that differ from the user's (null: unchanged), or null when nothing does.
    /// An emptied name is cleared (an empty string, as the API takes it).
    /// </summary>
    public UpdateUserRequest? ToRequest(ApplicationUser user)
    {
        var email = Email?.Trim() ?? "";
        var name = DisplayName?.Trim() ?? "";
        var request = new UpdateUserRequest(
            string.Equals(email, user.Email, StringComparison.Ordinal) ? null : email,
            name == (user.DisplayName ?? "") ? null : name,
            Role == user.Role ? null : Role ?? "");
        return request is { Email: null, DisplayName: null, Role: null } ? null : request;
    }

    public static IReadOnlyList<string> Roles { get; } = [AccountRoles.Member, AccountRoles.Admin, AccountRoles.Owner];
}
