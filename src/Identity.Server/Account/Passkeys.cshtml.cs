using Identity.Core.Audit;
using System.Buffers.Text;
using System.Text.Json;
using Identity.Core.Data;
using Identity.Core.Policies;
using Identity.Core.Users;
using Identity.Server.Account.Mfa;
using Identity.Server.Audit;
using Identity.Server.Connect;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace Identity.Server.Account;

/// <summary>
/// The signed-in person's passkeys: listed by name, added (WebAuthn registration: <c>passkeys.js</c> asks the browser
/// to create a credential from the options of <see cref="OnPostOptionsAsync"/> and posts it back), removed.
/// A passkey is a second factor: the first one turns two-factor sign-in on, removing the last factor turns it off.
/// Audit entries name the passkey, never the credential. An account whose <c>mfa.allowedFactors</c> leaves passkeys out
/// gets no new ones (existing ones can still be removed).
/// </summary>
[Authorize]
public sealed class PasskeysModel(
    UserManager<ApplicationUser> users,
    SignInManager<ApplicationUser> signIn,
    SecondFactorEnrolment enrolment,
    IOptions<PasskeyOptions> options,
    AccountPolicies policies,
    ILogger<PasskeysModel> logger) : PageModel
{
    public const int NameMaxLength = 64;

    public const string NotAllowedMessage = "Your organisation does not use passkeys.";

    public IReadOnlyList<PasskeyView> Passkeys { get; private set; } = [];

    public bool Available { get; private set; }

    /// <summary>The account allows passkeys (<c>mfa.allowedFactors</c>).</summary>
    public bool Allowed { get; private set; } = true;

    /// <summary>Where "Done" leads: the sign-in that sent the person here to enrol, or the home page.</summary>
    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    public string? Error { get; private set; }

    public async Task<IActionResult> OnGetAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Challenge();
        }

        await ShowAsync(user);
        return Page();
    }

    /// <summary>WebAuthn Level 3 §5.4 creation options (JSON); the challenge is kept in Identity's two-factor cookie.</summary>
    public async Task<IActionResult> OnPostOptionsAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null || !options.Value.IsAvailable(Request))
        {
            return Unauthorized();
        }

        if (!await policies.AllowsFactorAsync(user, MfaFactor.Passkey, HttpContext.RequestAborted))
        {
            // A plain 403 for the page's script (RFC 9457 problem details), not Forbid(): with cookie authentication
            // that would redirect to an access-denied page.
            var problem = new ProblemDetails { Status = StatusCodes.Status403Forbidden, Title = "Passkeys are not allowed", Detail = NotAllowedMessage };
            return new ContentResult
            {
                StatusCode = problem.Status,
                ContentType = "application/problem+json",
                Content = JsonSerializer.Serialize(problem),
            };
        }

        var name = await users.GetUserNameAsync(user) ?? user.Id;
        var json = await signIn.MakePasskeyCreationOptionsAsync(new PasskeyUserEntity
        {
            Id = user.Id,
            Name = name,
            DisplayName = user.DisplayName ?? name,
        });
        return Content(json, "application/json");
    }

    public async Task<IActionResult> OnPostAddAsync([FromForm] string? name, [FromForm] string? credential)
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Challenge();
        }

        if (!await policies.AllowsFactorAsync(user, MfaFactor.Passkey, HttpContext.RequestAborted))
        {
            return await ShowErrorAsync(user, NotAllowedMessage);
        }

        name = string.IsNullOrWhiteSpace(name) ? "Passkey" : name.Trim();
        if (name.Length > NameMaxLength)
        {
            return await ShowErrorAsync(user, $"The name can have at most {NameMaxLength} characters.");
        }

        var attestation = await AttestAsync(credential);
        if (attestation is not { Succeeded: true } || attestation.UserEntity.Id != user.Id)
        {
            // The ceremony was started for someone else in this browser, or the credential did not verify.
            logger.LogInformation("Passkey registration refused: {Reason}", attestation?.Failure?.Message ?? "no registration under way");
            return await ShowErrorAsync(user, "The passkey could not be added. Try again.");
        }

        var passkey = attestation.Passkey;
        passkey.Name = name;
        var stamp = user.SecurityStamp;
        if (!(await enrolment.AddPasskeyAsync(user, passkey, Me(user), HttpContext.RequestAborted)).Succeeded)
        {
            return await ShowErrorAsync(user, "The passkey could not be added. Try again.");
        }

        await KeepSessionIfRenewedAsync(user, stamp);
        TempData["PasskeyNotice"] = $"Passkey \u201c{name}\u201d added.";
        return RedirectToPage();
    }

    public async Task<IActionResult> OnPostRemoveAsync([FromForm] string? id)
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Challenge();
        }

        var credentialId = Decode(id);
        if (credentialId is null)
        {
            return RedirectToPage();
        }

        var stamp = user.SecurityStamp;
        var (result, name) = await enrolment.RemovePasskeyAsync(user, credentialId, Me(user), HttpContext.RequestAborted);
        if (!result.Succeeded || name is null)
        {
            return RedirectToPage(); // not the user's passkey (or changed meanwhile): the list shows what is there
        }

        await KeepSessionIfRenewedAsync(user, stamp);
        TempData["PasskeyNotice"] = $"Passkey \u201c{name}\u201d removed.";
        return RedirectToPage();
    }

    private async Task<PasskeyAttestationResult?> AttestAsync(string? credential)
    {
        if (string.IsNullOrEmpty(credential))
        {
            return null;
        }

        try
        {
            return await signIn.PerformPasskeyAttestationAsync(credential);
        }
        catch (InvalidOperationException)
        {
            return null; // no registration under way: its cookie expired, or another ceremony replaced it
        }
    }

    /// <summary>
    /// Turning two-factor sign-in on or off renews the security stamp, which ends every session at its next
    /// validation; the person who made the change keeps this one (same sid, auth_time, amr and acr).
    /// </summary>
    private async Task KeepSessionIfRenewedAsync(ApplicationUser user, string? stampBefore)
    {
        if (string.Equals(user.SecurityStamp, stampBefore, StringComparison.Ordinal))
        {
            return;
        }

        var session = await HttpContext.AuthenticateAsync(IdentityConstants.ApplicationScheme);
        await signIn.SignInWithClaimsAsync(user, session.Properties ?? new AuthenticationProperties(), SessionClaims.Of(session.Principal).ToList());
    }

    private async Task<PageResult> ShowErrorAsync(ApplicationUser user, string error)
    {
        Error = error;
        await ShowAsync(user);
        return Page();
    }

    private async Task ShowAsync(ApplicationUser user)
    {
        Available = options.Value.IsAvailable(Request);
        Allowed = await policies.AllowsFactorAsync(user, MfaFactor.Passkey, HttpContext.RequestAborted);
        ReturnUrl = Url.LocalOrNull(ReturnUrl);
        Passkeys = (await users.GetPasskeysAsync(user))
            .OrderBy(p => p.CreatedAt)
            .Select(p => new PasskeyView(Base64Url.EncodeToString(p.CredentialId), p.Name ?? "Passkey", p.CreatedAt, p.IsBackupEligible))
            .ToList();
    }

    private Actor Me(ApplicationUser user) => new("user", user.Id, null, HttpContext.Connection.RemoteIpAddress?.ToString());

    private static byte[]? Decode(string? id)
    {
        if (string.IsNullOrEmpty(id) || id.Length > 1024)
        {
            return null;
        }

        try
        {
            return Base64Url.DecodeFromChars(id);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    /// <summary>One passkey as the page shows it; the id (base64url credential id) only addresses the remove button.</summary>
    public sealed record PasskeyView(string Id, string Name, DateTimeOffset CreatedAt, bool Synced);
}
