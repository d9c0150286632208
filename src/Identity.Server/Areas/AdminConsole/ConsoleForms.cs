using Identity.Core.Operations;
using Microsoft.AspNetCore.Mvc.ModelBinding;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Identity.Server.AdminConsole;

/// <summary>
/// How a console form shows an operation's refusal: each field's messages beside the field (under the field's name as
/// the operation names it: <c>email</c>, <c>redirectUris[0]</c>…), the rest in the summary announced to screen readers.
/// </summary>
public static class ConsoleForms
{
    /// <summary>The key of messages that belong to no field: shown only in the summary.</summary>
    public const string Summary = "";

    /// <summary>The form field a typed confirmation is entered in (<c>_TypedConfirmation</c>), and the key of its messages.</summary>
    public const string ConfirmationField = "Confirmation";

    /// <summary>
    /// Whether the administrator typed <paramref name="expected"/> (spaces around it ignored) to confirm a change that
    /// cannot be undone. When not, <paramref name="mismatch"/> goes beside the confirmation field and the page answers 400.
    /// </summary>
    public static bool Confirmed(this PageModel page, string? typed, string expected, string mismatch,
        StringComparison comparison = StringComparison.Ordinal)
    {
        ArgumentNullException.ThrowIfNull(page);
        if (string.Equals(typed?.Trim(), expected, comparison))
        {
            return true;
        }

        page.ModelState.AddModelError(ConfirmationField, mismatch);
        page.Response.StatusCode = StatusCodes.Status400BadRequest;
        return false;
    }

    /// <summary>The confirmation field of a page for <c>_TypedConfirmation</c>: what to type, what was typed, its messages.</summary>
    public static TypedConfirmation Confirmation(this ModelStateDictionary state, string expected, string? typed) =>
        new(expected, typed, state.Field(ConfirmationField, "confirmation"));

    /// <summary>Copies an operation's refusal into the page's model state; a stale or conflicting change goes to the summary.</summary>
    public static void AddRefusal(this ModelStateDictionary state, OperationResult result, string? stale = null)
    {
        switch (result.Outcome)
        {
            case OperationOutcome.Invalid:
                foreach (var (field, messages) in result.Errors!)
                {
                    foreach (var message in messages)
                    {
                        state.AddModelError(field, message);
                    }
                }

                break;
            case OperationOutcome.Stale:
                state.AddModelError(Summary, stale ?? "Someone else changed this since you opened the page: it is shown as it is now. Check it and try again.");
                break;
            default:
                state.AddModelError(Summary, result.Detail ?? "The change was refused.");
                break;
        }
    }

    /// <summary>The messages of one field (or of the summary), for the page to place beside it.</summary>
    public static IReadOnlyList<string> ErrorsOf(this ModelStateDictionary state, string field) =>
        state.TryGetValue(field, out var entry) ? [.. entry.Errors.Select(e => e.ErrorMessage)] : [];

    /// <summary>One field's messages for <c>_FieldErrors</c> (shown as <c>err-{id}</c>, which the input names in <c>aria-describedby</c>).</summary>
    public static FieldErrors Field(this ModelStateDictionary state, string field, string id) => new(id, state.ErrorsOf(field));

    /// <summary>The input's <c>aria-describedby</c> (its hint, its messages), or null when it has neither.</summary>
    public static string? DescribedByOrNull(this FieldErrors errors, string? hintId = null) =>
        errors.DescribedBy(hintId) is { Length: > 0 } ids ? ids : null;

    /// <summary>The input's <c>aria-invalid</c>: "true" when it has messages, else nothing.</summary>
    public static string? InvalidOrNull(this FieldErrors errors) => errors.Any ? "true" : null;

    /// <summary>Every message, the field's name first where there is one, for the summary at the top of the form.</summary>
    public static IReadOnlyList<string> AllErrors(this ModelStateDictionary state) =>
        [.. state.Where(e => e.Value is { Errors.Count: > 0 }).SelectMany(e => e.Value!.Errors.Select(x => x.ErrorMessage))];

    /// <summary>The status a refused form answers with: 409 for a stale or conflicting change, 403 for a missing right, else 400.</summary>
    public static int StatusOf(OperationResult result) => result.Outcome switch
    {
        OperationOutcome.Stale or OperationOutcome.Conflict => StatusCodes.Status409Conflict,
        OperationOutcome.Forbidden => StatusCodes.Status403Forbidden,
        OperationOutcome.NotFound => StatusCodes.Status404NotFound,
        _ => StatusCodes.Status400BadRequest,
    };
}
