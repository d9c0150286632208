using Identity.Core.Audit;
using System.Security.Claims;
using Identity.Core.Data;
using Identity.Server.Account.Mfa;
using Identity.Server.Audit;
using Identity.Server.Connect;
using Identity.Server.Telemetry;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace Identity.Server.Account;

/// <summary>
/// The second step of a sign-in (or a step-up) with a passkey: the "Use a passkey" button of <c>/Account/TwoFactor</c>.
/// It ends exactly like a TOTP code there: a session with amr <c>pwd</c>, <c>hwk</c> (or <c>swk</c>), <c>mfa</c>.
/// <para>
/// SignInManager keeps its passkey challenge in Identity's two-factor cookie under an <em>empty</em> principal, which
/// would erase the user whose password was just checked; and its passwordless challenge (any user) would then be
/// indistinguishable from this one. So this page keeps the challenge next to the pending user, in that same cookie,
/// and calls Identity's passkey handler itself: the challenge names the user and accepts only that user's passkeys.
/// </para>
/// </summary>
public sealed class TwoFactorPasskeyModel(
    UserManager<ApplicationUser> users,
    SignInManager<ApplicationUser> signIn,
    IPasskeyHandler<ApplicationUser> passkeys,
    IAuditTrail audit,
    AuthorityDbContext db,
    TimeProvider time,
    AccountPolicies policies,
    ILogger<TwoFactorPasskeyModel> logger,
    AuthorityMetrics metrics) : PageModel
{
    private const string ChallengeKey = "Identity.Passkey.SecondFactor";

    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    public IActionResult OnGet() => RedirectToPage("/TwoFactor", new { ReturnUrl = SafeReturnUrl() });

    /// <summary>WebAuthn Level 3 §5.5 request options listing the pending user's passkeys (JSON).</summary>
    public async Task<IActionResult> OnPostOptionsAsync()
    {
        var (pending, user) = await PendingAsync();
        if (user is null)
        {
            return Unauthorized();
        }

        var options = await passkeys.MakeRequestOptionsAsync(user, HttpContext);
        pending.Properties!.Items[ChallengeKey] = options.AssertionState;
        await HttpContext.SignInAsync(IdentityConstants.TwoFactorUserIdScheme, pending.Principal!, pending.Properties);
        return Content(options.RequestOptionsJson, "application/json");
    }

    public async Task<IActionResult> OnPostAsync([FromForm] string? credential)
    {
        var (pending, user) = await PendingAsync();
        if (user is null)
        {
            return RedirectToPage("/Login", new { ReturnUrl = SafeReturnUrl() });
        }

        // One challenge, one try: whatever the outcome, it leaves the cookie; the pending user stays.
        var hadChallenge = pending.Properties!.Items.Remove(ChallengeKey, out var challenge);
        if (challenge is null || string.IsNullOrEmpty(credential))
        {
            if (hadChallenge)
            {
                await ForgetChallengeAsync(pending);
            }

            return Retry("Your passkey request expired. Try again.");
        }

        var result = await passkeys.PerformAssertionAsync(new PasskeyAssertionContext
        {
            HttpContext = HttpContext,
            CredentialJson = credential,
            AssertionState = challenge,
        });
        if (!result.Succeeded || result.User.Id != user.Id
            || !await policies.AllowsFactorAsync(user, Core.Policies.MfaFactor.Passkey, HttpContext.RequestAborted))
        {
            logger.LogInformation("Passkey second factor refused: {Reason}", result.Failure?.Message ?? "another user's passkey");
            await ForgetChallengeAsync(pending);
            metrics.MfaChallenge("passkey", succeeded: false);
            return await FailAsync(user);
        }

        metrics.MfaChallenge("passkey", succeeded: true);

        await users.AddOrUpdatePasskeyAsync(user, result.Passkey); // the new signature counter (WebAuthn Level 3 §6.1.1)
        return await CompleteAsync(user, ["pwd", PasskeyMethods.Possession(result.Passkey), "mfa"]);
    }

    /// <summary>As <c>TwoFactorModel</c> completes: the two-factor cookie becomes a session, audited.</summary>
    private async Task<IActionResult> CompleteAsync(ApplicationUser user, string[] methods)
    {
        // Clearing the failures fails when wrong factors racing this one locked the user out meanwhile: no session then.
        if (!(await users.ResetAccessFailedCountAsync(user)).Succeeded)
        {
            return await LockedOutAsync(user, "passkey");
        }

        await HttpContext.SignOutAsync(IdentityConstants.TwoFactorUserIdScheme);
        await signIn.SignInWithClaimsAsync(user, isPersistent: false, SessionClaims.ForNewSession(time.GetUtcNow(), methods));
        audit.Record(new Actor("user", user.Id, null, HttpContext.Connection.RemoteIpAddress?.ToString()),
            "signin.succeeded", "user", user.Id, user.AccountId, new { methods });
        await db.SaveChangesAsync(HttpContext.RequestAborted);
        return LocalRedirect(SafeReturnUrl() ?? "/");
    }

    /// <summary>A passkey that does not verify counts towards lockout like a wrong code.</summary>
    private async Task<IActionResult> FailAsync(ApplicationUser user)
    {
        await users.AccessFailedAsync(user);
        if (await users.IsLockedOutAsync(user))
        {
            return await LockedOutAsync(user, "passkey");
        }

        audit.Record(Actor.Anonymous(HttpContext), "signin.mfa_failed", "user", user.Id, user.AccountId, new { method = "passkey" });
        await db.SaveChangesAsync(HttpContext.RequestAborted);
        return Retry("That passkey was not accepted.");
    }

    private async Task<IActionResult> LockedOutAsync(ApplicationUser user, string method)
    {
        audit.Record(Actor.Anonymous(HttpContext), "signin.locked_out", "user", user.Id, user.AccountId, new { method });
        await db.SaveChangesAsync(HttpContext.RequestAborted);
        await HttpContext.SignOutAsync(IdentityConstants.TwoFactorUserIdScheme);
        return RedirectToPage("/Login", new { ReturnUrl = SafeReturnUrl() });
    }

    private Task ForgetChallengeAsync(AuthenticateResult pending) =>
        HttpContext.SignInAsync(IdentityConstants.TwoFactorUserIdScheme, pending.Principal!, pending.Properties);

    private RedirectToPageResult Retry(string error)
    {
        TempData["PasskeyError"] = error;
        return RedirectToPage("/TwoFactor", new { ReturnUrl = SafeReturnUrl() });
    }

    /// <summary>The user whose password was accepted, read as <c>TwoFactorModel</c> reads it, with the cookie itself.</summary>
    private async Task<(AuthenticateResult Pending, ApplicationUser? User)> PendingAsync()
    {
        var pending = await HttpContext.AuthenticateAsync(IdentityConstants.TwoFactorUserIdScheme);
        var id = pending.Principal?.FindFirst(ClaimTypes.Name)?.Value;
        var user = id is null ? null : await users.FindByIdAsync(id);
        return user is not null && pending.Properties is not null && await signIn.CanSignInAsync(user) && !await users.IsLockedOutAsync(user)
            ? (pending, user)
            : (pending, null);
    }

    private string? SafeReturnUrl() => Url.LocalOrNull(ReturnUrl);
}
