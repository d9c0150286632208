using System.ComponentModel.DataAnnotations;
using Identity.Core.Data;
using Identity.Core.Propagation;
using Identity.Server.Audit;
using Identity.Server.Connect;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using OpenIddict.Abstractions;

namespace Identity.Server.Account;

/// <summary>
/// Self-service password change, also where a sign-in with an expired password is sent before any code is issued
/// (<see cref="AuthorizeModel"/>). The current password is asked in both cases: a session cookie alone never changes a
/// password. The account's rules apply (<see cref="PasswordPolicyValidator"/>); a change gets a new security stamp,
/// which ends the user's other sessions, while this one continues with the same sign-in (auth_time, amr); and the
/// tokens the user's apps hold (refresh tokens, authorizations) are revoked, so a password that leaked stops granting
/// access at once (RFC 9700 §4.14.2: refresh tokens are revoked when the user's credentials change).
/// </summary>
[Authorize]
public sealed class PasswordModel(
    UserManager<ApplicationUser> users,
    SignInManager<ApplicationUser> signIn,
    AccountPolicies policies,
    IAuditTrail audit,
    AuthorityDbContext db,
    IOpenIddictTokenManager tokens,
    IOpenIddictAuthorizationManager authorizations,
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

        await using var transaction = await db.Database.BeginTransactionAsync(HttpContext.RequestAborted);
        var result = await users.ChangePasswordAsync(user, Input.CurrentPassword, Input.NewPassword);
        if (!result.Succeeded)
        {
            foreach (var error in result.Errors)
            {
                ModelState.AddModelError(error.Code == nameof(IdentityErrorDescriber.PasswordMismatch)
                    ? $"{nameof(Input)}.{nameof(InputModel.CurrentPassword)}"
                    : $"{nameof(Input)}.{nameof(InputModel.NewPassword)}",
                    error.Code == nameof(IdentityErrorDescriber.PasswordMismatch) ? "The current password is not correct." : error.Description);
            }

            return Cleared();
        }

        // Other sessions end (new security stamp), the apps' refresh tokens and authorizations are revoked, and the
        // user's regions drop their sessions too. The snapshot did not change. All in the change's transaction.
        await tokens.RevokeBySubjectAsync(user.Id, HttpContext.RequestAborted);
        await authorizations.RevokeBySubjectAsync(user.Id, HttpContext.RequestAborted);
        await db.AddSessionsRevokedAsync(user, "password_changed", time.GetUtcNow(), HttpContext.RequestAborted);
        audit.Record(new Actor("user", user.Id, null, HttpContext.Connection.RemoteIpAddress?.ToString()),
            "user.password_changed", "user", user.Id, user.AccountId, new { expired = Expired });
        await db.SaveChangesAsync(HttpContext.RequestAborted);
        await transaction.CommitAsync(HttpContext.RequestAborted);

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

    public sealed class InputModel
    {
        [Required, StringLength(512)]
        [DataType(DataType.Password)]
        [Display(Name = "Current password")]
        public string CurrentPassword { get; set; } = "";

        [Required, StringLength(512)]
        [DataType(DataType.Password)]
        [Display(Name = "New password")]
        public string NewPassword { get; set; } = "";

        [Required]
        [DataType(DataType.Password)]
        [Compare(nameof(NewPassword), ErrorMessage = "The two new passwords do not match.")]
        [Display(Name = "Confirm new password")]
        public string ConfirmPassword { get; set; } = "";
    }
}
