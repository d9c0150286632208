using Identity.Core.Operations;
using Identity.Server.Admin;
using Identity.Server.Keys;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Identity.Server.AdminConsole.Pages.Keys;

/// <summary>
/// The token keys, for platform administrators (as the admin API; an account admin finds nothing here, 404): each key's
/// stage, algorithm, kid and dates, when each algorithm rotates next, and rotation on demand after typing a confirmation,
/// through <see cref="KeyOperations"/> (audited with the admin as actor, as <c>POST /admin/v1/keys/rotate</c>).
/// </summary>
public sealed class KeysModel(KeyOperations keys, TimeProvider time) : ConsolePageModel
{
    /// <summary>What the administrator types to rotate: a rotation cannot be undone, and with revocation it ends sessions.</summary>
    public const string ConfirmationWord = "rotate";

    public const string MismatchMessage = "Type rotate to confirm the rotation.";

    public const string NoneChosen = "Choose at least one key to replace.";

    [BindProperty]
    public List<string> Algorithms { get; set; } = [.. SigningKeyMaterial.Algorithms];

    [BindProperty]
    public bool RevokePrevious { get; set; }

    [BindProperty]
    public string? Confirmation { get; set; }

    public IReadOnlyList<SigningKeyView> Keys { get; private set; } = [];

    public IReadOnlyDictionary<string, DateTimeOffset?> NextRotations { get; private set; } = new Dictionary<string, DateTimeOffset?>();

    public DateTimeOffset Now { get; private set; }

    public IActionResult OnGet()
    {
        if (!Admin.IsPlatformAdmin)
        {
            return NotFound();
        }

        Load();
        return Page();
    }

    public async Task<IActionResult> OnPostRotateAsync()
    {
        if (!Admin.IsPlatformAdmin)
        {
            return NotFound();
        }

        var confirmed = this.Confirmed(Confirmation, ConfirmationWord, MismatchMessage, StringComparison.OrdinalIgnoreCase);
        if (Algorithms.Count == 0)
        {
            ModelState.AddModelError(nameof(Algorithms), NoneChosen);
        }

        if (!confirmed || Algorithms.Count == 0)
        {
            return Refused(StatusCodes.Status400BadRequest);
        }

        var result = await keys.RotateAsync(Algorithms, RevokePrevious, Admin.Actor, HttpContext.RequestAborted);
        if (!result.Succeeded)
        {
            var field = result.Outcome == OperationOutcome.Invalid ? nameof(Algorithms) : ConsoleForms.Summary;
            foreach (var message in result.Errors is { Count: > 0 } errors ? errors.SelectMany(e => e.Value) : [result.Detail ?? "The rotation was refused."])
            {
                ModelState.AddModelError(field, message);
            }

            return Refused(ConsoleForms.StatusOf(result));
        }

        Notice($"Replaced the {string.Join(", ", Algorithms.Distinct(StringComparer.Ordinal))} keys: the new ones sign from now"
            + (RevokePrevious ? "; the previous ones are no longer accepted." : "; the previous ones stay accepted until their tokens expire."));
        return Redirect(ConsoleClient.BasePath + "/keys");
    }

    /// <summary>How far <paramref name="at"/> is from now, for people: "in 89 d", "in 3 h", "2 d ago".</summary>
    public static string Distance(DateTimeOffset at, DateTimeOffset now)
    {
        var span = (at - now).Duration();
        var text = span.TotalDays >= 1 ? $"{(int)span.TotalDays} d" : span.TotalHours >= 1 ? $"{(int)span.TotalHours} h" : $"{(int)span.TotalMinutes} min";
        return at >= now ? "in " + text : text + " ago";
    }

    private PageResult Refused(int status)
    {
        Confirmation = null;
        Load();
        Response.StatusCode = status;
        return Page();
    }

    private void Load()
    {
        Now = time.GetUtcNow();
        Keys = [.. keys.Describe().OrderBy(k => k.Algorithm, StringComparer.Ordinal).ThenByDescending(k => k.Generation)];
        NextRotations = keys.NextRotations();
    }
}
