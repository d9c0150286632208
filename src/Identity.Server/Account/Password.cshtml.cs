using System.ComponentModel.DataAnnotations;
using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Operations;
using Identity.Core.Users;
using Identity.Server.Connect;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Identity.Server.Account;

/// <summary>
/// Self-service password change, also where a sign-in with an expired password is sent before any code is issued
/// (<see cref="AuthorizeModel"/>). The current password is asked in both cases: a session cookie alone never changes a
/// password. The account's rules apply (<see cref="PasswordPolicyValidator"/>); a change gets a new security stamp,
/// which ends the user's other sessions, while this one continues with the same sign-in (auth_time, amr); and the
/// tokens the user's apps hold are revoked (<see cref="UserOperations.ChangePasswordAsync"/>).
/// </summary>
[Authorize]
public sealed class PasswordModel(
    UserManager<ApplicationUser> users,
    SignInManager<ApplicationUser> signIn,
    AccountPolicies policies,
    UserOperations operations,
    TimeProvider time) : PageModel
{
    [BindProperty]
    public InputModel Input { get; set; } = new();

    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    /// <summary>The password reached the account's maximum age: the page says why it is shown.</summary>
    public bool Expired { get; private set; }

    public bool Changed { get; private set; }

    public async Task<IActionResult> OnGetAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Challenge();
        }

        Expired = await policies.IsPasswordExpiredAsync(user, time.GetUtcNow(), HttpContext.RequestAborted);
        return Page();
    }

    public async Task<IActionResult> OnPostAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Challenge();
        }

        Expired = await policies.IsPasswordExpiredAsync(user, time.GetUtcNow(), HttpContext.RequestAborted);
        if (!ModelState.IsValid)
        {
            return Cleared();
        }

        var result = await operations.ChangePasswordAsync(user, Input.CurrentPassword, Input.NewPassword,
            new Actor("user", user.Id, null, HttpContext.Connection.RemoteIpAddress?.ToString()), new { expired = Expired }, HttpContext.RequestAborted);
        if (result.Outcome == OperationOutcome.Invalid)
        {
            foreach (var (field, messages) in result.Errors!)
            {
                var current = field == "currentPassword";
                foreach (var message in messages)
                {
                    ModelState.AddModelError($"{nameof(Input)}.{(current ? nameof(InputModel.CurrentPassword) : nameof(InputModel.NewPassword))}",
                        current ? "The current password is not correct." : message);
                }
            }

            return Cleared();
        }

        if (!result.Succeeded)
        {
            ModelState.AddModelError("", "The account changed meanwhile: try again.");
            return Cleared();
        }

        // The new security stamp ends every session at its next validation: this one is issued again with it.
        var session = await HttpContext.AuthenticateAsync(IdentityConstants.ApplicationScheme);
        await signIn.SignInWithClaimsAsync(user, session.Properties, SessionClaims.Of(session.Principal));

        if (Url.LocalOrNull(ReturnUrl) is { } back)
        {
            return LocalRedirect(back);
        }

        Expired = false;
        Changed = true;
        return Cleared();
    }

    /// <summary>The page again, never echoing a password back into the form.</summary>
    private PageResult Cleared()
    {
        Input = new InputModel();
        return Page();
    }

    /// <summary>The new password twice (<see cref="NewPasswordInput"/>), and the current one that proves the person.</summary>
    public sealed class InputModel : NewPasswordInput
    {
        [Required, StringLength(512)]
        [DataType(DataType.Password)]
        [Display(Name = "Current password")]
        public string CurrentPassword { get; set; } = "";
    }
}
