using System.Globalization;
using System.Text.Json.Nodes;
using Identity.Core.Accounts;
using Identity.Core.Data;
using Identity.Core.Operations;
using Identity.Core.Policies;
using Identity.Server.Admin;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Identity.Server.AdminConsole.Pages.Accounts;

using Account = Identity.Core.Accounts.Account;

/// <summary>
/// The account's policy as a form: every field of the settings document, written by the same operation as
/// <c>PUT /admin/v1/accounts/{id}/settings</c> (<see cref="AccountOperations.ChangeSettingsAsync"/>: its parser's messages
/// beside the fields, the version, the event, the audit entry with the admin as actor). <b>Preview</b> shows before →
/// after and writes nothing; <b>Save</b> is refused when the account changed since the form was read (<see cref="FormVersion"/>).
/// </summary>
public sealed class PolicyModel(AuthorityDbContext db, AccountOperations operations) : ConsolePageModel
{
    [BindProperty]
    public PolicyInput Input { get; set; } = new();

    [BindProperty(Name = FormVersion.VersionField)]
    public long Version { get; set; }

    [BindProperty(Name = FormVersion.SnapshotField)]
    public string? Snapshot { get; set; }

    public Account Account { get; private set; } = null!;

    /// <summary>Messages by field (the document's path without <c>settings.</c>, list items under their list).</summary>
    public Dictionary<string, List<string>> Errors { get; } = new(StringComparer.Ordinal);

    public IReadOnlyList<FieldChange>? Preview { get; private set; }

    public StaleEdit? Stale { get; private set; }

    public IEnumerable<string> ErrorsFor(string field) => Errors.TryGetValue(field, out var messages) ? messages : [];

    public async Task<IActionResult> OnGetAsync(Guid id)
    {
        if (!await LoadAsync(id, tracking: false))
        {
            return NotFound();
        }

        ShowCurrent();
        return Page();
    }

    public async Task<IActionResult> OnPostPreviewAsync(Guid id)
    {
        if (!await LoadAsync(id, tracking: false))
        {
            return NotFound();
        }

        var proposed = AccountPolicy.Parse(Input.ToDocument(), out var errors);
        if (proposed is null)
        {
            AddErrors(errors);
            return Page();
        }

        Preview = FormVersion.Differences(Describe(Current()), Describe(proposed));
        return Page();
    }

    public async Task<IActionResult> OnPostSaveAsync(Guid id)
    {
        if (!await LoadAsync(id, tracking: true))
        {
            return NotFound();
        }

        if (Version != Account.Version)
        {
            return RefuseStale();
        }

        var result = await operations.ChangeSettingsAsync(Account, Input.ToDocument(), Admin.Actor, HttpContext.RequestAborted);
        switch (result.Outcome)
        {
            case OperationOutcome.Done:
                Notice($"The policy of {Account.Name} was saved.");
                return RedirectToPage(new { id });
            case OperationOutcome.Invalid:
                AddErrors(result.Errors!.ToDictionary(e => e.Key.StartsWith("settings.", StringComparison.Ordinal) ? e.Key["settings.".Length..] : "$",
                    e => e.Value));
                return Page();
            case OperationOutcome.Stale:
                // Another save won between the check above and the write: read the account as it is now.
                db.ChangeTracker.Clear();
                await LoadAsync(id, tracking: false);
                return RefuseStale();
            default:
                Errors["$"] = [result.Detail ?? "The policy could not be saved."];
                return Page();
        }
    }

    private PageResult RefuseStale()
    {
        var current = Describe(Current());
        var shown = FormVersion.Decode(Snapshot);
        var yours = AccountPolicy.Parse(Input.ToDocument(), out _) is { } proposed ? FormVersion.Differences(shown, Describe(proposed)) : [];
        Stale = new StaleEdit(FormVersion.Differences(shown, current), yours);
        Response.StatusCode = StatusCodes.Status409Conflict;
        ShowCurrent();
        return Page();
    }

    private async Task<bool> LoadAsync(Guid id, bool tracking)
    {
        var account = await VisibleAccounts.FindAsync(db, Admin, id, tracking, HttpContext.RequestAborted);
        Account = account!;
        return account is not null;
    }

    private AccountPolicy Current() => AccountPolicy.Parse(Account.Settings, out _) ?? AccountPolicy.Default;

    /// <summary>The form from the account as it is now, with its version and what it shows.</summary>
    private void ShowCurrent()
    {
        var policy = Current();
        Input = PolicyInput.From(policy);
        Version = Account.Version;
        Snapshot = FormVersion.Encode(Describe(policy));
        ModelState.Clear(); // the inputs render the values set here, not the posted ones
    }

    private void AddErrors(IReadOnlyDictionary<string, string[]> errors)
    {
        foreach (var (path, messages) in errors)
        {
            // ipAllowList.ranges[2] → beside the ranges; "$" (the document) → the summary only.
            var field = path.IndexOf('[', StringComparison.Ordinal) is var at and > 0 ? path[..at] : path;
            var list = Errors.TryGetValue(field, out var existing) ? existing : Errors[field] = [];
            list.AddRange(messages.Select(m => path.Contains('[', StringComparison.Ordinal) ? $"{path[field.Length..]}: {m}" : m));
        }
    }

    /// <summary>The policy as a person reads it, one line per setting: the preview and the stale notice compare these.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> Describe(AccountPolicy policy) =>
    [
        new("MFA requirement", PolicyInput.RequirementLabel(policy.Mfa.Requirement)),
        new("Allowed factors", FormVersion.Text(policy.Mfa.AllowedFactors.Select(PolicyInput.FactorLabel))),
        new("Minimum password length", policy.Password.MinimumLength.ToString(CultureInfo.InvariantCulture)),
        new("Reject common passwords", FormVersion.Text(policy.Password.RejectCommon)),
        new("Password history", policy.Password.History.ToString(CultureInfo.InvariantCulture)),
        new("Password maximum age", FormVersion.Text(policy.Password.MaximumAge)),
        new("Self-service password reset", FormVersion.Text(policy.Password.SelfServiceReset)),
        new("Lockout after failed attempts", policy.Lockout.MaxFailedAttempts.ToString(CultureInfo.InvariantCulture)),
        new("Lockout duration", FormVersion.Text(policy.Lockout.Duration)),
        new("Session lifetime", FormVersion.Text(policy.Session.Lifetime)),
        new("Session idle timeout", FormVersion.Text(policy.Session.IdleTimeout)),
        new("IP allow-list", FormVersion.Text(policy.IpAllowList.Ranges, none: "anywhere")),
    ];
}

/// <summary>
/// The policy form's fields, as typed: turned into the settings document as the API receives it (numbers when they
/// are numbers, text otherwise), so the parser's own messages say what is wrong.
/// </summary>
public sealed class PolicyInput
{
    public string Requirement { get; set; } = "optional";

    public List<string> Factors { get; set; } = [];

    public string? MinimumLength { get; set; }

    public bool RejectCommon { get; set; }

    public string? History { get; set; }

    public string? MaximumAge { get; set; }

    public bool SelfServiceReset { get; set; }

    public string? MaxFailedAttempts { get; set; }

    public string? LockoutDuration { get; set; }

    public string? SessionLifetime { get; set; }

    public string? IdleTimeout { get; set; }

    public string? Ranges { get; set; }

    public static IReadOnlyList<(string Value, string Label)> Requirements { get; } =
    [
        ("off", "Off: never asked"),
        ("optional", "Optional: asked of those who enrolled one"),
        ("requiredForAdmins", "Required for owners and admins"),
        ("requiredForEveryone", "Required for everyone"),
    ];

    public static IReadOnlyList<(string Value, string Label)> AllFactors { get; } =
    [
        ("totp", "Authenticator app (TOTP)"),
        ("recoveryCode", "Recovery codes (a fallback, never alone)"),
        ("passkey", "Passkeys"),
    ];

    public static string RequirementLabel(MfaRequirement requirement) =>
        Requirements.First(r => r.Value == JsonName(requirement.ToString())).Label;

    public static string FactorLabel(MfaFactor factor) => AllFactors.First(f => f.Value == JsonName(factor.ToString())).Label;

    public static PolicyInput From(AccountPolicy policy)
    {
        static string Duration(TimeSpan value) => value.ToString("c", CultureInfo.InvariantCulture);
        return new PolicyInput
        {
            Requirement = JsonName(policy.Mfa.Requirement.ToString()),
            Factors = [.. policy.Mfa.AllowedFactors.Select(f => JsonName(f.ToString()))],
            MinimumLength = policy.Password.MinimumLength.ToString(CultureInfo.InvariantCulture),
            RejectCommon = policy.Password.RejectCommon,
            History = policy.Password.History.ToString(CultureInfo.InvariantCulture),
            MaximumAge = policy.Password.MaximumAge is { } age ? Duration(age) : "",
            SelfServiceReset = policy.Password.SelfServiceReset,
            MaxFailedAttempts = policy.Lockout.MaxFailedAttempts.ToString(CultureInfo.InvariantCulture),
            LockoutDuration = Duration(policy.Lockout.Duration),
            SessionLifetime = Duration(policy.Session.Lifetime),
            IdleTimeout = Duration(policy.Session.IdleTimeout),
            Ranges = string.Join('\n', policy.IpAllowList.Ranges),
        };
    }

    /// <summary>The settings document (the body of <c>PUT …/settings</c>).</summary>
    public string ToDocument() => new JsonObject
    {
        ["mfa"] = new JsonObject
        {
            ["requirement"] = Requirement,
            ["allowedFactors"] = new JsonArray([.. Factors.Select(f => (JsonNode?)JsonValue.Create(f))]),
        },
        ["password"] = new JsonObject
        {
            ["minimumLength"] = NumberOrText(MinimumLength),
            ["rejectCommon"] = RejectCommon,
            ["history"] = NumberOrText(History),
            ["maximumAge"] = string.IsNullOrWhiteSpace(MaximumAge) ? null : MaximumAge.Trim(),
            ["selfServiceReset"] = SelfServiceReset,
        },
        ["lockout"] = new JsonObject
        {
            ["maxFailedAttempts"] = NumberOrText(MaxFailedAttempts),
            ["duration"] = Text(LockoutDuration),
        },
        ["session"] = new JsonObject
        {
            ["lifetime"] = Text(SessionLifetime),
            ["idleTimeout"] = Text(IdleTimeout),
        },
        ["ipAllowList"] = new JsonObject
        {
            ["ranges"] = new JsonArray([.. (Ranges ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(r => (JsonNode?)JsonValue.Create(r))]),
        },
    }.ToJsonString();

    private static JsonNode? NumberOrText(string? value) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var number) ? number : Text(value);

    private static JsonNode? Text(string? value) => JsonValue.Create((value ?? "").Trim());

    private static string JsonName(string name) => char.ToLowerInvariant(name[0]) + name[1..];
}
