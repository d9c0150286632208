using Identity.Core.Audit;
using Identity.Core.Operations;
using Identity.Core.Users;
using Identity.Server.Email;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace Identity.Server.Account;

/// <summary>
/// The page an emailed reset link opens: a new password, twice. The token goes from the link into the form (never
/// into a Referer: the policy is <c>no-referrer</c>); a used, voided or expired link gets a clear page. After the reset
/// the person signs in again with the new password, and with their second factor if they have one.
/// </summary>
public sealed class ResetPasswordModel(UserLinkOperations operations, IOptions<EmailOptions> email, TimeProvider time) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public string? Token { get; set; }

    [BindProperty]
    public NewPasswordInput Input { get; set; } = new();

    /// <summary>The link cannot be used (unknown, used, voided or expired).</summary>
    public bool Unusable { get; private set; }

    public async Task<IActionResult> OnGetAsync()
    {
        if (!email.Value.Enabled)
        {
            return NotFound();
        }

        Unusable = await operations.CheckAsync(Token, UserLinkPurposes.PasswordReset, time.GetUtcNow(), HttpContext.RequestAborted) != LinkState.Valid;
        return Page();
    }

    public async Task<IActionResult> OnPostAsync()
    {
        if (!email.Value.Enabled)
        {
            return NotFound();
        }

        if (!ModelState.IsValid)
        {
            return Cleared();
        }

        var result = await operations.ResetPasswordAsync(Token ?? "", Input.NewPassword,
            Actor.Anonymous(HttpContext.Connection.RemoteIpAddress?.ToString()), HttpContext.RequestAborted);
        if (result.Succeeded)
        {
            TempData["Notice"] = "Your password was changed. Sign in with the new one.";
            return RedirectToPage("/Login");
        }

        if (result.Errors?.ContainsKey("token") == true)
        {
            Unusable = true;
        }
        else if (result.Outcome == OperationOutcome.Invalid)
        {
            foreach (var message in result.Errors!["newPassword"])
            {
                ModelState.AddModelError($"{nameof(Input)}.{nameof(NewPasswordInput.NewPassword)}", message);
            }
        }
        else
        {
            ModelState.AddModelError("", "The account changed meanwhile: try again.");
        }

        return Cleared();
    }

    private PageResult Cleared()
    {
        Input = new NewPasswordInput();
        return Page();
    }
}
