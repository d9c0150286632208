using System.Security.Cryptography;
using System.Text.Json;
using Identity.Core.Data;
using Identity.Core.Users;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Identity;
using OtpNet;

namespace Identity.Server.Account.Mfa;

/// <summary>
/// TOTP (RFC 6238: SHA-1, 6 digits, 30 s, ±1 step) and recovery codes for one user, kept in Identity's user-token
/// store: the TOTP secret protected with data protection, the last accepted time step (so a code works once,
/// RFC 6238 §5.2), and the recovery codes as password hashes. Nothing here is ever logged.
/// </summary>
public sealed class SecondFactors(UserManager<ApplicationUser> users, IDataProtectionProvider protection, TimeProvider time, AccountPolicies policies)
    : IUserSecondFactors
{
    public const int RecoveryCodeCount = 10;
    /// <summary>Where the authenticator secret is kept in the user-token store (read by the console to list factors).</summary>
    internal const string Provider = "[Identity.Mfa]";
    internal const string SecretToken = "TotpSecret";
    private const string PendingToken = "TotpPending";
    private const string LastStepToken = "TotpLastStep";
    private const string RecoveryToken = "RecoveryCodes";

    private readonly IDataProtector _protector = protection.CreateProtector("Identity.Mfa.Totp.v1");
    private readonly PasswordHasher<ApplicationUser> _hasher = new();

    /// <summary>
    /// Password accepted, second factor pending: the browser gets Identity's short-lived two-factor cookie naming the
    /// user, not a session. <c>/Account/TwoFactor</c> turns it into a session.
    /// </summary>
    public static Task BeginSecondStepAsync(HttpContext context, string userId) =>
        context.SignInAsync(IdentityConstants.TwoFactorUserIdScheme, new System.Security.Claims.ClaimsPrincipal(
            new System.Security.Claims.ClaimsIdentity([new System.Security.Claims.Claim(System.Security.Claims.ClaimTypes.Name, userId)],
                IdentityConstants.TwoFactorUserIdScheme)));

    public async Task<bool> HasTotpAsync(ApplicationUser user) =>
        await users.GetAuthenticationTokenAsync(user, Provider, SecretToken) is not null;

    public async Task<bool> HasPasskeyAsync(ApplicationUser user) => (await users.GetPasskeysAsync(user)).Count > 0;

    /// <summary>A second step is possible: an authenticator app or a passkey (<c>/Account/TwoFactor</c> offers both).</summary>
    public async Task<bool> HasAnyFactorAsync(ApplicationUser user) => await HasTotpAsync(user) || await HasPasskeyAsync(user);

    public async Task<int> RemainingRecoveryCodesAsync(ApplicationUser user) => (await RecoveryHashesAsync(user)).Count;

    /// <summary>Starts (or resumes) an enrollment: a new secret kept aside until a valid code confirms it.</summary>
    public async Task<string> BeginEnrollmentAsync(ApplicationUser user)
    {
        if (await users.GetAuthenticationTokenAsync(user, Provider, PendingToken) is { } pending)
        {
            return _protector.Unprotect(pending);
        }

        var secret = Base32Encoding.ToString(KeyGeneration.GenerateRandomKey(20));
        await users.SetAuthenticationTokenAsync(user, Provider, PendingToken, _protector.Protect(secret));
        return secret;
    }

    public static string OtpAuthUri(string issuer, string account, string secret) =>
        $"otpauth://totp/{Uri.EscapeDataString(issuer)}:{Uri.EscapeDataString(account)}?secret={secret}&issuer={Uri.EscapeDataString(issuer)}&algorithm=SHA1&digits=6&period=30";

    /// <summary>Confirms the pending secret with a code; returns the new recovery codes (shown once), or null.</summary>
    public async Task<IReadOnlyList<string>?> ConfirmEnrollmentAsync(ApplicationUser user, string code)
    {
        if (await users.GetAuthenticationTokenAsync(user, Provider, PendingToken) is not { } pending)
        {
            return null;
        }

        var secret = _protector.Unprotect(pending);
        if (Match(secret, code) is not { } step)
        {
            return null;
        }

        await users.SetAuthenticationTokenAsync(user, Provider, SecretToken, pending);
        await users.SetAuthenticationTokenAsync(user, Provider, LastStepToken, step.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await users.RemoveAuthenticationTokenAsync(user, Provider, PendingToken);
        await users.SetTwoFactorEnabledAsync(user, true);
        return await RegenerateRecoveryCodesAsync(user);
    }

    /// <summary>Verifies a TOTP code and burns its time step: the same code (or an older one) is refused afterwards.</summary>
    public async Task<bool> VerifyTotpAsync(ApplicationUser user, string code)
    {
        // A factor the account does not allow (mfa.allowedFactors) does not count, whatever the user enrolled.
        if (!await policies.AllowsFactorAsync(user, Core.Policies.MfaFactor.Totp)
            || await users.GetAuthenticationTokenAsync(user, Provider, SecretToken) is not { } stored
            || Match(_protector.Unprotect(stored), code) is not { } step)
        {
            return false;
        }

        var last = long.TryParse(await users.GetAuthenticationTokenAsync(user, Provider, LastStepToken), out var l) ? l : -1;
        if (step <= last)
        {
            return false; // RFC 6238 §5.2: a code already accepted in its window must not be accepted again
        }

        // SetAuthenticationTokenAsync goes through UpdateAsync, whose concurrency stamp makes two simultaneous uses
        // of the same code fail for one of them.
        var result = await users.SetAuthenticationTokenAsync(user, Provider, LastStepToken, step.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return result.Succeeded;
    }

    /// <summary>Uses up one recovery code; returns the number left, or null when the code is not valid.</summary>
    public async Task<int?> RedeemRecoveryCodeAsync(ApplicationUser user, string code)
    {
        if (!await policies.AllowsFactorAsync(user, Core.Policies.MfaFactor.RecoveryCode))
        {
            return null;
        }

        var normalized = Normalize(code);
        var hashes = await RecoveryHashesAsync(user);
        var match = hashes.FindIndex(h => _hasher.VerifyHashedPassword(user, h, normalized) != PasswordVerificationResult.Failed);
        if (match < 0)
        {
            return null;
        }

        hashes.RemoveAt(match);
        var result = await users.SetAuthenticationTokenAsync(user, Provider, RecoveryToken, JsonSerializer.Serialize(hashes));
        return result.Succeeded ? hashes.Count : null;
    }

    /// <summary>A new set of single-use codes, stored hashed; the previous set stops working.</summary>
    public async Task<IReadOnlyList<string>> RegenerateRecoveryCodesAsync(ApplicationUser user)
    {
        var codes = Enumerable.Range(0, RecoveryCodeCount).Select(_ => NewRecoveryCode()).ToList();
        await users.SetAuthenticationTokenAsync(user, Provider, RecoveryToken,
            JsonSerializer.Serialize(codes.Select(c => _hasher.HashPassword(user, Normalize(c)))));
        return codes;
    }

    public async Task RemoveAllAsync(ApplicationUser user)
    {
        foreach (var name in new[] { SecretToken, PendingToken, LastStepToken, RecoveryToken })
        {
            await users.RemoveAuthenticationTokenAsync(user, Provider, name);
        }

        await users.SetTwoFactorEnabledAsync(user, false);
    }

    private long? Match(string secret, string code)
    {
        var digits = new string(code.Where(char.IsAsciiDigit).ToArray());
        if (digits.Length != 6)
        {
            return null;
        }

        var totp = new Totp(Base32Encoding.ToBytes(secret), step: 30, mode: OtpHashMode.Sha1, totpSize: 6);
        return totp.VerifyTotp(time.GetUtcNow().UtcDateTime, digits, out var step, new VerificationWindow(previous: 1, future: 1))
            ? step
            : null;
    }

    private async Task<List<string>> RecoveryHashesAsync(ApplicationUser user) =>
        await users.GetAuthenticationTokenAsync(user, Provider, RecoveryToken) is { } json
            ? JsonSerializer.Deserialize<List<string>>(json) ?? []
            : [];

    /// <summary>Ten characters from a 31-character alphabet without look-alikes (~49 bits), shown as xxxxx-xxxxx.</summary>
    private static string NewRecoveryCode()
    {
        const string alphabet = "abcdefghjkmnpqrstuvwxyz23456789";
        var chars = RandomNumberGenerator.GetItems<char>(alphabet, 10);
        return new string(chars, 0, 5) + "-" + new string(chars, 5, 5);
    }

    private static string Normalize(string code) => new string(code.Where(char.IsAsciiLetterOrDigit).ToArray()).ToLowerInvariant();
}
