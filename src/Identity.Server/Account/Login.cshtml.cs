using Identity.Core.Audit;
using System.ComponentModel.DataAnnotations;
using Identity.Core.Data;
using Identity.Server.Connect;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.AspNetCore.WebUtilities;

namespace Identity.Server.Account;

/// <summary>
/// Password sign-in. One generic message for every failure, after the same work (a password hash verified, see
/// <see cref="DecoyPasswordHash"/>), so the page never tells whether an account exists; failures count towards lockout. The return URL is followed only when it is local (no open redirect).
/// </summary>
public sealed class LoginModel(
    AuthoritySignInManager signIn,
    UserManager<ApplicationUser> users,
    TimeProvider time,
    IAuditTrail audit,
    Mfa.SecondFactors factors,
    AccountPolicies policies,
    AuthorityDbContext db,
    ILogger<LoginModel> logger) : PageModel
{
    [BindProperty]
    public InputModel Input { get; set; } = new();

    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    public bool Failed { get; private set; }

    public void OnGet()
    {
        // OpenID Connect Core §3.1.2.1: login_hint pre-fills the identifier.
        if (Url.LocalOrNull(ReturnUrl) is { } local && local.IndexOf('?', StringComparison.Ordinal) is var q and >= 0
            && QueryHelpers.ParseQuery(local[q..]).TryGetValue("login_hint", out var hint))
        {
            Input.Email = hint.ToString();
        }
    }

    public async Task<IActionResult> OnPostAsync()
    {
        if (!ModelState.IsValid)
        {
            return Page();
        }

        var user = await users.FindByEmailAsync(Input.Email);
        var result = user is null
            ? signIn.CheckPasswordOfUnknownUser(Input.Password)
            : await signIn.CheckPasswordSignInAsync(user, Input.Password, lockoutOnFailure: true);

        var ip = HttpContext.Connection.RemoteIpAddress?.ToString();
        if (user is not null && result.Succeeded
            && !(await policies.ForAsync(user, HttpContext.RequestAborted)).IpAllowList.Allows(HttpContext.Connection.RemoteIpAddress))
        {
            // The account's IP allow-list: the right password from the wrong network is still a refusal, and the
            // page says no more than for a wrong password.
            await RecordAsync(new Actor("anonymous", null, null, ip), "signin.ip_refused", "user", user.Id, user.AccountId);
            Failed = true;
            Input.Password = "";
            return Page();
        }

        if (user is null || !result.Succeeded)
        {
            var reason = result.IsLockedOut ? "locked_out" : result.IsNotAllowed ? "not_allowed" : "bad_credentials";
            logger.LogInformation("Sign-in failed ({Reason})", reason);
            await RecordAsync(new Actor("anonymous", null, null, ip),
                result.IsLockedOut ? "signin.locked_out" : "signin.failed", user is null ? null : "user", user?.Id, user?.AccountId, new { reason });
            Failed = true;
            Input.Password = "";
            return Page();
        }

        if (user.TwoFactorEnabled && await factors.HasAnyFactorAsync(user))
        {
            await Mfa.SecondFactors.BeginSecondStepAsync(HttpContext, user.Id);
            return RedirectToPage("/TwoFactor", new { ReturnUrl = Url.LocalOrNull(ReturnUrl) });
        }

        await signIn.SignInWithClaimsAsync(user, isPersistent: false, SessionClaims.ForNewSession(time.GetUtcNow(), "pwd"));
        await RecordAsync(new Actor("user", user.Id, null, ip), "signin.succeeded", "user", user.Id, user.AccountId,
            new { methods = new[] { "pwd" } });
        logger.LogInformation("User {UserId} signed in", user.Id);
        return LocalRedirect(Url.LocalOrNull(ReturnUrl) ?? "/");
    }

    /// <summary>
    /// Writes the attempt's audit entry. A concurrent attempt may have saved the user (a failure counted, a lockout)
    /// after this request read it; should this save then meet the user's version token (seen once in 30 simultaneous
    /// posts on PostgreSQL, cause not yet pinned down), the user as stored wins: the tracked changes are dropped, with
    /// anything the outbox interceptor added for them, and the audit entry alone is written. Never a 500 for a race.
    /// </summary>
    private async Task RecordAsync(Actor actor, string eventType, string? subjectType, string? subjectId, Guid? accountId,
        object? details = null)
    {
        audit.Record(actor, eventType, subjectType, subjectId, accountId, details);
        try
        {
            await db.SaveChangesAsync(HttpContext.RequestAborted);
        }
        catch (Microsoft.EntityFrameworkCore.DbUpdateConcurrencyException)
        {
            logger.LogWarning("A concurrent change to the user came first; the sign-in's audit entry is written alone");
            db.ChangeTracker.Clear();
            audit.Record(actor, eventType, subjectType, subjectId, accountId, details);
            await db.SaveChangesAsync(HttpContext.RequestAborted);
        }
    }

    public sealed class InputModel
    {
        [Required, EmailAddress, StringLength(256)]
        [Display(Name = "Email")]
        public string Email { get; set; } = "";

        [Required, StringLength(512)]
        [DataType(DataType.Password)]
        [Display(Name = "Password")]
        public string Password { get; set; } = "";
    }
}
