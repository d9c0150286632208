using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Operations;
using Microsoft.AspNetCore.Identity;

namespace Identity.Core.Users;

/// <summary>
/// The person's own second factors, enrolled and removed from the account pages: each a user operation in one
/// <see cref="ChangeUnit"/> run (rule, version, event, audit entry, one SaveChanges). Adding or removing a factor names
/// the user: its version (the admin API's ETag) grows once, and its regions get its snapshot when the two-factor flag
/// (<c>mfaEnrolled</c>) moved — the routing of a profile change. Recovery codes are seen by no region and by no
/// admin, so regenerating them is audited only, like a password change.
/// </summary>
/// <remarks>
/// Turning two-factor sign-in on or off renews the security stamp (ASP.NET Core Identity), which ends the user's other
/// sessions at their next validation; the page keeps the session that made the change once the run has committed.
/// </remarks>
public sealed class SecondFactorEnrolment(ChangeUnit changes, UserManager<ApplicationUser> users, IUserSecondFactors secondFactors)
{
    public const string CodeRefused = "The code is not valid.";

    /// <summary>
    /// The pending authenticator secret confirmed by a code from the app: two-factor sign-in on, a new set of recovery
    /// codes (returned, shown once). A code that does not match is refused under <c>code</c> and writes nothing.
    /// </summary>
    public async Task<(OperationResult Result, IReadOnlyList<string>? RecoveryCodes)> EnrolTotpAsync(ApplicationUser user, string code, Actor actor,
        CancellationToken cancellationToken)
    {
        IReadOnlyList<string>? recoveryCodes = null;
        var result = await changes.RunAsync(actor, async change =>
        {
            recoveryCodes = await secondFactors.ConfirmEnrollmentAsync(user, code);
            if (recoveryCodes is null)
            {
                return OperationResult.Invalid("code", CodeRefused);
            }

            change.Changed(user);
            change.Audit("mfa.totp_enrolled", user);
            return OperationResult.Done;
        }, cancellationToken);
        return (result, result.Succeeded ? recoveryCodes : null);
    }

    /// <summary>A new set of recovery codes for a user with an authenticator app (returned, shown once); the old set stops working.</summary>
    public async Task<(OperationResult Result, IReadOnlyList<string>? RecoveryCodes)> RegenerateRecoveryCodesAsync(ApplicationUser user, Actor actor,
        CancellationToken cancellationToken)
    {
        IReadOnlyList<string>? recoveryCodes = null;
        var result = await changes.RunAsync(actor, async change =>
        {
            recoveryCodes = await secondFactors.RegenerateRecoveryCodesAsync(user);
            change.Audit("mfa.recovery_codes_regenerated", user);
            return OperationResult.Done;
        }, cancellationToken);
        return (result, result.Succeeded ? recoveryCodes : null);
    }

    /// <summary>
    /// A verified passkey (WebAuthn attestation, checked by the caller) becomes one of the user's factors, named
    /// <see cref="UserPasskeyInfo.Name"/>; the first factor turns two-factor sign-in on. Audited with its name, never
    /// the credential.
    /// </summary>
    public Task<OperationResult> AddPasskeyAsync(ApplicationUser user, UserPasskeyInfo passkey, Actor actor, CancellationToken cancellationToken) =>
        changes.RunAsync(actor, async change =>
        {
            ArgumentNullException.ThrowIfNull(passkey);
            if (!(await users.AddOrUpdatePasskeyAsync(user, passkey)).Succeeded)
            {
                return OperationResult.Stale;
            }

            if (!await users.GetTwoFactorEnabledAsync(user))
            {
                await users.SetTwoFactorEnabledAsync(user, true);
            }

            change.Changed(user);
            change.Audit("mfa.passkey_added", user, new { name = passkey.Name, synced = passkey.IsBackupEligible });
            return OperationResult.Done;
        }, cancellationToken);

    /// <summary>
    /// The user's passkey <paramref name="credentialId"/> is removed; removing the last factor turns two-factor sign-in
    /// off. A passkey the user does not have is left alone (nothing written).
    /// </summary>
    /// <returns>The outcome and the name of the passkey removed (null when there was none).</returns>
    public async Task<(OperationResult Result, string? Name)> RemovePasskeyAsync(ApplicationUser user, byte[] credentialId, Actor actor,
        CancellationToken cancellationToken)
    {
        var passkeys = await users.GetPasskeysAsync(user);
        if (passkeys.FirstOrDefault(p => p.CredentialId.AsSpan().SequenceEqual(credentialId)) is not { } passkey)
        {
            return (OperationResult.Done, null);
        }

        var result = await changes.RunAsync(actor, async change =>
        {
            if (!(await users.RemovePasskeyAsync(user, passkey.CredentialId)).Succeeded)
            {
                return OperationResult.Stale;
            }

            // The store reads passkeys from the database, where the removed one stays until the run saves: count without it.
            if (await users.GetTwoFactorEnabledAsync(user) && passkeys.Count == 1 && !await secondFactors.HasTotpAsync(user))
            {
                await users.SetTwoFactorEnabledAsync(user, false);
            }

            change.Changed(user);
            change.Audit("mfa.passkey_removed", user, new { name = passkey.Name });
            return OperationResult.Done;
        }, cancellationToken);
        return (result, passkey.Name);
    }
}
