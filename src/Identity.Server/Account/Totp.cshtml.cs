using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Policies;
using Identity.Core.Users;
using Identity.Server.Account.Mfa;
using Identity.Server.Audit;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using QRCoder;

namespace Identity.Server.Account;

/// <summary>
/// TOTP enrollment: a QR code (otpauth:// URI rendered server-side as SVG, no script) and the key as text; the app is
/// turned on only when a valid code confirms it; then ten recovery codes are shown once. Not offered to an account
/// whose <c>mfa.allowedFactors</c> leaves TOTP out.
/// </summary>
[Authorize]
public sealed class TotpModel(
    UserManager<ApplicationUser> users, SecondFactors factors, SecondFactorEnrolment enrolment, AccountPolicies policies) : PageModel
{
    public const string NotAllowedMessage = "Your organisation does not use authenticator apps.";

    /// <summary>The account allows authenticator apps (<c>mfa.allowedFactors</c>); if not, nothing is enrolled here.</summary>
    public bool Allowed { get; private set; } = true;

    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    public string Secret { get; private set; } = "";

    public string QrSvg { get; private set; } = "";

    public bool Failed { get; private set; }

    public bool Enrolled { get; private set; }

    public IReadOnlyList<string>? RecoveryCodes { get; private set; }

    public async Task<IActionResult> OnGetAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Challenge();
        }

        if (!await AllowedAsync(user))
        {
            return Page();
        }

        await ShowAsync(user);
        return Page();
    }

    public async Task<IActionResult> OnPostAsync([FromForm] string? code)
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Challenge();
        }

        if (!await AllowedAsync(user))
        {
            return Page();
        }

        RecoveryCodes = code is null ? null : (await enrolment.EnrolTotpAsync(user, code, Me(user), HttpContext.RequestAborted)).RecoveryCodes;
        if (RecoveryCodes is null)
        {
            Failed = true;
            await ShowAsync(user);
            return Page();
        }

        ReturnUrl = Url.LocalOrNull(ReturnUrl);
        return Page();
    }

    public async Task<IActionResult> OnPostRegenerateAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null || !await factors.HasTotpAsync(user))
        {
            return Challenge();
        }

        RecoveryCodes = (await enrolment.RegenerateRecoveryCodesAsync(user, Me(user), HttpContext.RequestAborted)).RecoveryCodes;
        return Page();
    }

    private Actor Me(ApplicationUser user) => new("user", user.Id, null, HttpContext.Connection.RemoteIpAddress?.ToString());

    private async Task<bool> AllowedAsync(ApplicationUser user)
    {
        Allowed = await policies.AllowsFactorAsync(user, MfaFactor.Totp, HttpContext.RequestAborted);
        return Allowed;
    }

    private async Task ShowAsync(ApplicationUser user)
    {
        Enrolled = await factors.HasTotpAsync(user);
        Secret = await factors.BeginEnrollmentAsync(user);
        var uri = SecondFactors.OtpAuthUri("Identity", user.Email ?? user.Id, Secret);
        using var data = QRCodeGenerator.GenerateQrCode(uri, QRCodeGenerator.ECCLevel.M);
        QrSvg = new SvgQRCode(data).GetGraphic(4);
    }
}
