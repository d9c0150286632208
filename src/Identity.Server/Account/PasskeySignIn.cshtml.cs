using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Server.Account.Mfa;
using Identity.Server.Audit;
using Identity.Server.Connect;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace Identity.Server.Account;

/// <summary>
/// Passwordless sign-in with a passkey: the "Sign in with a passkey" button of the login page. The browser offers the
/// discoverable credentials it holds for Identity; the one chosen names its user (the WebAuthn user handle).
/// <para>
/// The session's amr is <c>hwk</c> (or <c>swk</c> for a synced passkey), <c>user</c>, <c>mfa</c> (RFC 8176 §2):
/// possession of the key, the user-presence test, and — because the authenticator must also verify the person
/// (<c>UserVerificationRequirement = required</c>, WebAuthn Level 3 §6.1 UV flag) with a PIN or a biometric — a second
/// factor. Which of the two it used is not reported to Identity, so neither <c>pin</c> nor <c>fpt</c>/<c>face</c> is
/// claimed; <c>mfa</c> says that a factor beyond possession was verified, and gives the session acr
/// <c>urn:identity:acr:mfa</c>. No <c>pwd</c>: no password was used.
/// </para>
/// <para>
/// Identity's <c>PasskeySignInAsync</c> is not used as is: its session would carry <c>amr: pwd</c> and none of the
/// session claims (sid, auth_time, acr). Its checks are made here: the assertion, then <c>CanSignInAsync</c>
/// (disabled users, suspended accounts) and lockout, then the stored signature counter.
/// Failures do not count towards lockout: the user handle comes from the browser, so counting them would let
/// anyone lock anyone out.
/// </para>
/// </summary>
public sealed class PasskeySignInModel(
    SignInManager<ApplicationUser> signIn,
    UserManager<ApplicationUser> users,
    IOptions<PasskeyOptions> options,
    IAuditTrail audit,
    AuthorityDbContext db,
    TimeProvider time,
    AccountPolicies policies,
    ILogger<PasskeySignInModel> logger) : PageModel
{
    public const string FailureText = "That passkey could not sign you in.";

    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    public IActionResult OnGet() => RedirectToPage("/Login", new { ReturnUrl = SafeReturnUrl() });

    /// <summary>WebAuthn Level 3 §5.5 request options without allowCredentials (JSON): any discoverable passkey of ours.</summary>
    public async Task<IActionResult> OnPostOptionsAsync() =>
        options.Value.IsAvailable(Request)
            ? Content(await signIn.MakePasskeyRequestOptionsAsync(user: null), "application/json")
            : NotFound();

    public async Task<IActionResult> OnPostAsync([FromForm] string? credential)
    {
        var result = await AssertAsync(credential);
        var (user, passkey) = result is { Succeeded: true, User: { } u, Passkey: { } p } ? (u, p) : (null, null);
        var reason = user is null ? "bad_passkey"
            : !await signIn.CanSignInAsync(user) ? "not_allowed"
            : await users.IsLockedOutAsync(user) ? "locked_out"
            : !await policies.AllowsFactorAsync(user, Core.Policies.MfaFactor.Passkey, HttpContext.RequestAborted) ? "factor_not_allowed"
            : null;
        if (user is null || passkey is null || reason is not null)
        {
            // One generic message for every failure, as on the password form.
            logger.LogInformation("Passkey sign-in failed ({Reason}): {Detail}", reason, result?.Failure?.Message);
            audit.Record(Actor.Anonymous(HttpContext), reason == "locked_out" ? "signin.locked_out" : "signin.failed",
                user is null ? null : "user", user?.Id, user?.AccountId, new { reason, method = "passkey" });
            await db.SaveChangesAsync(HttpContext.RequestAborted);
            TempData["PasskeyError"] = FailureText;
            return RedirectToPage("/Login", new { ReturnUrl = SafeReturnUrl() });
        }

        await users.AddOrUpdatePasskeyAsync(user, passkey); // the new signature counter (WebAuthn Level 3 §6.1.1)
        string[] methods = [PasskeyMethods.Possession(passkey), PasskeyMethods.UserPresence, "mfa"];
        await signIn.SignInWithClaimsAsync(user, isPersistent: false, SessionClaims.ForNewSession(time.GetUtcNow(), methods));
        audit.Record(new Actor("user", user.Id, null, HttpContext.Connection.RemoteIpAddress?.ToString()),
            "signin.succeeded", "user", user.Id, user.AccountId, new { methods });
        await db.SaveChangesAsync(HttpContext.RequestAborted);
        logger.LogInformation("User {UserId} signed in with a passkey", user.Id);
        return LocalRedirect(SafeReturnUrl() ?? "/");
    }

    private async Task<PasskeyAssertionResult<ApplicationUser>?> AssertAsync(string? credential)
    {
        if (string.IsNullOrEmpty(credential))
        {
            return null;
        }

        try
        {
            return await signIn.PerformPasskeyAssertionAsync(credential);
        }
        catch (InvalidOperationException)
        {
            return null; // no passkey sign-in under way: its cookie expired, or another ceremony replaced it
        }
    }

    /// <summary>Only a local path is followed (no open redirect), as on the password form.</summary>
    private string? SafeReturnUrl() => Url.LocalOrNull(ReturnUrl);
}
