using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Operations;
using Identity.Core.Policies;
using Identity.Core.Users;
using Identity.Server.Connect;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Identity.Server.Account;

/// <summary>
/// The page an invitation link opens (<c>/Account/Invitation?token=…</c>, emailed or handed over from the admin API's
/// token): the invited person chooses a password under the account's rules, is signed in, enrols a second factor first
/// when the account requires one, and goes on to a local return URL (an authorization request) or the start page.
/// A used, voided or expired link gets a clear page. Works with or without a mail server.
/// </summary>
public sealed class InvitationModel(
    UserLinkOperations operations,
    UserLinks links,
    AuthoritySignInManager signIn,
    AccountPolicies policies,
    Mfa.SecondFactors factors,
    TimeProvider time) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public string? Token { get; set; }

    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    [BindProperty]
    public NewPasswordInput Input { get; set; } = new();

    /// <summary>The address the invitation was sent to: the person's sign-in name.</summary>
    public string? Email { get; private set; }

    public bool Unusable { get; private set; }

    public async Task<IActionResult> OnGetAsync()
    {
        await ReadLinkAsync();
        return Page();
    }

    public async Task<IActionResult> OnPostAsync()
    {
        if (!ModelState.IsValid)
        {
            await ReadLinkAsync();
            return Cleared();
        }

        var (result, user) = await operations.AcceptInvitationAsync(Token ?? "", Input.NewPassword,
            Actor.Anonymous(HttpContext.Connection.RemoteIpAddress?.ToString()), HttpContext.RequestAborted);
        if (!result.Succeeded)
        {
            if (result.Errors?.ContainsKey("token") == true)
            {
                Unusable = true;
            }
            else if (result.Outcome == OperationOutcome.Invalid)
            {
                await ReadLinkAsync();
                foreach (var message in result.Errors!["newPassword"])
                {
                    ModelState.AddModelError($"{nameof(Input)}.{nameof(NewPasswordInput.NewPassword)}", message);
                }
            }
            else
            {
                await ReadLinkAsync();
                ModelState.AddModelError("", "The account changed meanwhile: try again.");
            }

            return Cleared();
        }

        await signIn.SignInWithClaimsAsync(user!, isPersistent: false, SessionClaims.ForNewSession(time.GetUtcNow(), "pwd"));
        var back = Url.LocalOrNull(ReturnUrl) ?? "/";
        var policy = await policies.ForAsync(user!, HttpContext.RequestAborted);
        if (MfaRules.IsRequired(policy.Mfa, user!.Role) && !await factors.HasAnyFactorAsync(user))
        {
            // Enrolment before anything else, with a factor the account allows (as the authorization endpoint does).
            return RedirectToPage(policy.Mfa.Allows(MfaFactor.Totp) ? "/Totp" : "/Passkeys", new { ReturnUrl = back });
        }

        return LocalRedirect(back);
    }

    private async Task ReadLinkAsync()
    {
        var (state, link) = await links.FindAsync(Token, UserLinkPurposes.Invitation, time.GetUtcNow(), HttpContext.RequestAborted);
        Unusable = state != LinkState.Valid;
        Email = link?.Email;
    }

    private PageResult Cleared()
    {
        Input = new NewPasswordInput();
        return Page();
    }
}
