using Identity.Core.Audit;
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
/// The second step of a sign-in (or a step-up): the password was right, now a TOTP code or a recovery code.
/// Until it succeeds the person holds only Identity's short-lived "two-factor user" cookie, not a session.
/// </summary>
public sealed class TwoFactorModel(
    UserManager<ApplicationUser> users,
    SignInManager<ApplicationUser> signIn,
    SecondFactors factors,
    IAuditTrail audit,
    AuthorityDbContext db,
    TimeProvider time,
    AuthorityMetrics metrics) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    public bool Failed { get; private set; }

    public async Task<IActionResult> OnGetAsync() => await PendingUserAsync() is null ? RedirectToLogin() : Page();

    public async Task<IActionResult> OnPostTotpAsync([FromForm] string? code)
    {
        var user = await PendingUserAsync();
        if (user is null)
        {
            return RedirectToLogin();
        }

        var verified = code is not null && await factors.VerifyTotpAsync(user, code);
        metrics.MfaChallenge("totp", verified);
        return verified
            ? await CompleteAsync(user, ["pwd", "otp", "mfa"], null)
            : await FailAsync(user);
    }

    public async Task<IActionResult> OnPostRecoveryAsync([FromForm] string? recovery)
    {
        var user = await PendingUserAsync();
        if (user is null)
        {
            return RedirectToLogin();
        }

        var remaining = recovery is null ? null : await factors.RedeemRecoveryCodeAsync(user, recovery);
        metrics.MfaChallenge("recovery_code", remaining is not null);
        return remaining is { } left
            ? await CompleteAsync(user, ["pwd", "mfa"], left)
            : await FailAsync(user);
    }

    private async Task<IActionResult> CompleteAsync(ApplicationUser user, string[] methods, int? recoveryCodesLeft)
    {
        // Clearing the failures fails when wrong codes racing this one locked the user out meanwhile: no session then.
        if (!(await users.ResetAccessFailedCountAsync(user)).Succeeded)
        {
            return await LockedOutAsync(user);
        }

        await HttpContext.SignOutAsync(IdentityConstants.TwoFactorUserIdScheme);
        await signIn.SignInWithClaimsAsync(user, isPersistent: false, SessionClaims.ForNewSession(time.GetUtcNow(), methods));
        var actor = new Actor("user", user.Id, null, HttpContext.Connection.RemoteIpAddress?.ToString());
        if (recoveryCodesLeft is { } left)
        {
            audit.Record(actor, "mfa.recovery_code_used", "user", user.Id, user.AccountId, new { remaining = left });
            TempData["Notice"] = $"You used a recovery code; {left} remain.";
        }

        audit.Record(actor, "signin.succeeded", "user", user.Id, user.AccountId, new { methods });
        await db.SaveChangesAsync(HttpContext.RequestAborted);
        return LocalRedirect(Url.LocalOrNull(ReturnUrl) ?? "/");
    }

    private async Task<IActionResult> FailAsync(ApplicationUser user)
    {
        await users.AccessFailedAsync(user); // wrong codes count towards lockout like wrong passwords
        if (await users.IsLockedOutAsync(user))
        {
            return await LockedOutAsync(user);
        }

        audit.Record(Actor.Anonymous(HttpContext), "signin.mfa_failed", "user", user.Id, user.AccountId);
        await db.SaveChangesAsync(HttpContext.RequestAborted);
        Failed = true;
        return Page();
    }

    private async Task<IActionResult> LockedOutAsync(ApplicationUser user)
    {
        audit.Record(Actor.Anonymous(HttpContext), "signin.locked_out", "user", user.Id, user.AccountId);
        await db.SaveChangesAsync(HttpContext.RequestAborted);
        await HttpContext.SignOutAsync(IdentityConstants.TwoFactorUserIdScheme);
        return RedirectToLogin();
    }

    private async Task<ApplicationUser?> PendingUserAsync()
    {
        var pending = await HttpContext.AuthenticateAsync(IdentityConstants.TwoFactorUserIdScheme);
        var id = pending.Principal?.FindFirst(System.Security.Claims.ClaimTypes.Name)?.Value;
        var user = id is null ? null : await users.FindByIdAsync(id);
        return user is not null && await signIn.CanSignInAsync(user) && !await users.IsLockedOutAsync(user) ? user : null;
    }

    private RedirectToPageResult RedirectToLogin() => RedirectToPage("/Login", new { ReturnUrl = Url.LocalOrNull(ReturnUrl) });
}
