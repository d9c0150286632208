using Identity.Core.Accounts;
using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Email;
using Identity.Core.Operations;
using Identity.Core.Policies;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace Identity.Core.Users;

/// <summary>
/// The operations an emailed link starts or completes (forgot password), each one unit of work like
/// <see cref="UserOperations"/>: the link, the change, the emails, the events and the audit entry in one transaction.
/// </summary>
public sealed class UserLinkOperations(
    ChangeUnit changes,
    AuthorityDbContext db,
    UserManager<ApplicationUser> users,
    UserOperations userOperations,
    UserLinks links,
    IAccountEmails emails)
{
    public const string LinkUnusable = "This link cannot be used: it has expired or was already used. Ask for a new one.";
    public const string InvitationAccepted = "The invitation was already accepted: the user signs in with their password.";
    public const string AddressTaken = "This address now belongs to another user: it cannot become this account's.";
    public const string NotTheUsersAddress = "This is neither the user's address nor the one they are moving to.";
    public const string AlreadyVerified = "The user's address is verified and no change of address is pending.";

    /// <summary>
    /// Someone asks for a password-reset link for <paramref name="email"/>. Whether or not the address is a user's, the
    /// run is the same (one transaction, an audit entry) and the caller learns nothing: a user who may reset gets the
    /// link (their older reset links voided), one whose account's policy forbids it an email saying whom to ask; an
    /// unknown, disabled or suspended user, or an address sent <paramref name="perAddressPerHour"/> links within the
    /// hour, nothing (OWASP Forgot Password Cheat Sheet).
    /// </summary>
    public Task RequestPasswordResetAsync(string email, int perAddressPerHour, Actor actor, CancellationToken cancellationToken) =>
        changes.RunAsync(actor, async change =>
        {
            var user = await users.FindByEmailAsync(email.Trim());
            var refusal = user is null ? "unknown_address" : await ResetRefusalAsync(user, cancellationToken);
            if (user is not null && refusal is null
                && await links.CountSinceAsync(user.Id, UserLinkPurposes.PasswordReset, change.Now.AddHours(-1), cancellationToken) >= perAddressPerHour)
            {
                refusal = "throttled";
            }

            if (user is not null && refusal is null)
            {
                var lifetime = emails.LifetimeOf(UserLinkPurposes.PasswordReset);
                var token = await links.IssueAsync(change, user, UserLinkPurposes.PasswordReset, user.Email!, lifetime, cancellationToken);
                emails.Link(UserLinkPurposes.PasswordReset, user, user.Email!, token, change.Now + lifetime);
                change.Audit("user.password_reset_requested", user);
                return OperationResult.Done;
            }

            if (user is not null && refusal == "self_service_off")
            {
                emails.ResetNotAllowed(user);
            }

            change.Audit("user.password_reset_refused", "user", user?.Id, user?.AccountId, new { reason = refusal });
            return OperationResult.Done;
        }, cancellationToken);

    /// <summary>What a reset link is worth now (the page shows a clear refusal for a used or expired one).</summary>
    public async Task<LinkState> CheckAsync(string? token, string purpose, DateTimeOffset now, CancellationToken cancellationToken) =>
        (await links.FindAsync(token, purpose, now, cancellationToken)).State;

    /// <summary>
    /// The password set through a reset link: the link is used (once), the new password goes through the account's rules
    /// and history (errors under <c>newPassword</c>), the lockout ends (the person proved the address), every session and
    /// refresh token ends (RFC 9700 §4.14.2), the version grows and the regions get the snapshot; audited, and the user
    /// told by email. The second factor stays: the next sign-in still asks for it (NIST SP 800-63B §6.1.2.3).
    /// </summary>
    public Task<OperationResult> ResetPasswordAsync(string token, string newPassword, Actor actor, CancellationToken cancellationToken) =>
        changes.RunAsync(actor, async change =>
        {
            var (state, link) = await links.TakeAsync(change, token, UserLinkPurposes.PasswordReset, cancellationToken);
            var user = state == LinkState.Valid ? await users.FindByIdAsync(link!.UserId) : null;
            if (user is null || await ResetRefusalAsync(user, cancellationToken) is not null)
            {
                return OperationResult.Invalid("token", LinkUnusable);
            }

            if (await SetPasswordAsync(user, newPassword) is { } refused)
            {
                return refused;
            }

            await users.ResetAccessFailedCountAsync(user);
            await users.SetLockoutEndDateAsync(user, null);
            if (string.Equals(link!.Email, user.Email, StringComparison.OrdinalIgnoreCase))
            {
                user.EmailConfirmed = true; // the link reached this address
            }

            change.ChangedWithSnapshot(user); // the regions hear of it: a new version, a UserChanged
            await userOperations.RevokeSessionsAsync(change, user, "password_reset", cancellationToken);
            emails.PasswordWasReset(user);
            change.Audit("user.password_reset", user, new { actor = actor.Id ?? "link" });
            return OperationResult.Done;
        }, cancellationToken);

    /// <summary>
    /// An admin sends the invitation again: a new link (the previous one stops working), emailed when asked; refused
    /// (conflict) once the invitation was accepted. Audited; the user does not change.
    /// </summary>
    public async Task<(OperationResult Result, string? Token)> ResendInvitationAsync(ApplicationUser user, bool sendEmail, Actor actor,
        CancellationToken cancellationToken)
    {
        string? token = null;
        var result = await changes.RunAsync(actor, async change =>
        {
            if (await users.HasPasswordAsync(user))
            {
                return OperationResult.Conflict(InvitationAccepted);
            }

            token = await userOperations.IssueInvitationAsync(change, user, sendEmail, cancellationToken);
            change.Audit("user.invitation_sent", user, new { emailed = sendEmail });
            return OperationResult.Done;
        }, cancellationToken);
        return (result, result.Succeeded ? token : null);
    }

    /// <summary>
    /// The invited person sets their password through the link: used once, the account's rules apply (errors under
    /// <c>newPassword</c>; a refused password leaves the link usable), the address is confirmed (the link reached it),
    /// the version grows; audited. Returns the user, whom the page then signs in.
    /// </summary>
    public async Task<(OperationResult Result, ApplicationUser? User)> AcceptInvitationAsync(string token, string password, Actor actor,
        CancellationToken cancellationToken)
    {
        ApplicationUser? user = null;
        var result = await changes.RunAsync(actor, async change =>
        {
            var (state, link) = await links.TakeAsync(change, token, UserLinkPurposes.Invitation, cancellationToken);
            user = state == LinkState.Valid ? await users.FindByIdAsync(link!.UserId) : null;
            if (user is null || await users.HasPasswordAsync(user) || await ResetRefusalAsync(user, cancellationToken) is "disabled" or "account_suspended")
            {
                return OperationResult.Invalid("token", LinkUnusable);
            }

            if (await SetPasswordAsync(user, password) is { } refused)
            {
                return refused;
            }

            user.EmailConfirmed |= string.Equals(link!.Email, user.Email, StringComparison.OrdinalIgnoreCase);
            change.Changed(user);
            change.Audit("user.invitation_accepted", user, new { actor = actor.Id ?? "link" });
            return OperationResult.Done;
        }, cancellationToken);
        return (result, result.Succeeded ? user : null);
    }

    /// <summary>
    /// The address a verification link was sent to is proven, once: the user's current address becomes verified, or the
    /// address they were moving to (decision 0085) becomes theirs, verified, unless another user took it meanwhile. The
    /// version grows and the regions get the snapshot (<c>email</c>, <c>emailVerified</c>); audited. Returns the address.
    /// </summary>
    public async Task<(OperationResult Result, string? Address)> VerifyEmailAsync(string token, Actor actor, CancellationToken cancellationToken)
    {
        string? address = null;
        var result = await changes.RunAsync(actor, async change =>
        {
            var (state, link) = await links.TakeAsync(change, token, UserLinkPurposes.EmailVerification, cancellationToken);
            var user = state == LinkState.Valid ? await users.FindByIdAsync(link!.UserId) : null;
            if (user is null || user.Status != UserStatus.Active)
            {
                return OperationResult.Invalid("token", LinkUnusable);
            }

            address = link!.Email;
            return await ProveAddressAsync(change, user, address, "link", cancellationToken);
        }, cancellationToken);
        return (result, result.Succeeded ? address : null);
    }

    /// <summary>
    /// An admin vouches for an address: <paramref name="address"/> (default: the user's current one) must be the user's
    /// current or pending address; it becomes theirs, verified, as if its link had been used. Audited with the admin.
    /// </summary>
    public Task<OperationResult> MarkEmailVerifiedAsync(ApplicationUser user, string? address, Actor actor, CancellationToken cancellationToken) =>
        changes.RunAsync(actor, async change =>
        {
            address = address?.Trim() ?? user.Email!;
            if (!string.Equals(address, user.Email, StringComparison.OrdinalIgnoreCase)
                && !string.Equals(address, await links.PendingAddressAsync(user, change.Now, cancellationToken), StringComparison.OrdinalIgnoreCase))
            {
                return OperationResult.Invalid("email", NotTheUsersAddress);
            }

            return await ProveAddressAsync(change, user, address, "admin", cancellationToken);
        }, cancellationToken);

    /// <summary>
    /// A new verification link (the previous one void) for the address the user is moving to, or else for their current
    /// address while it is unverified; refused (conflict) when there is nothing to verify. Audited.
    /// </summary>
    public Task<OperationResult> ResendVerificationAsync(ApplicationUser user, Actor actor, CancellationToken cancellationToken) =>
        changes.RunAsync(actor, async change =>
        {
            var address = await links.PendingAddressAsync(user, change.Now, cancellationToken) ?? (user.EmailConfirmed ? null : user.Email);
            if (address is null)
            {
                return OperationResult.Conflict(AlreadyVerified);
            }

            await userOperations.SendVerificationAsync(change, user, address, cancellationToken);
            change.Audit("user.email_verification_sent", user, new { email = address });
            return OperationResult.Done;
        }, cancellationToken);

    /// <summary>The address the user is moving to, if a live verification link holds one.</summary>
    public Task<string?> PendingEmailAsync(ApplicationUser user, DateTimeOffset now, CancellationToken cancellationToken) =>
        links.PendingAddressAsync(user, now, cancellationToken);

    /// <summary>The address the user is moving to with when its link was sent and until when it works; null when none.</summary>
    public Task<PendingEmail?> PendingChangeAsync(ApplicationUser user, DateTimeOffset now, CancellationToken cancellationToken) =>
        links.PendingChangeAsync(user, now, cancellationToken);

    /// <summary>The pending changes of a page of users, in one read: by user id, those with none absent.</summary>
    public Task<IReadOnlyDictionary<string, PendingEmail>> PendingChangesAsync(IReadOnlyCollection<ApplicationUser> users, DateTimeOffset now,
        CancellationToken cancellationToken) =>
        links.PendingChangesAsync(users, now, cancellationToken);

    /// <summary><paramref name="address"/> is proven the user's (by its link, or by an admin): theirs now, verified.</summary>
    private async Task<OperationResult> ProveAddressAsync(Change change, ApplicationUser user, string address, string by,
        CancellationToken cancellationToken)
    {
        var former = user.Email;
        if (string.Equals(address, user.Email, StringComparison.OrdinalIgnoreCase))
        {
            user.EmailConfirmed = true;
            await links.VoidAsync(change, user.Id, UserLinkPurposes.EmailVerification, cancellationToken);
        }
        else
        {
            if (await users.FindByEmailAsync(address) is { } other && other.Id != user.Id)
            {
                return OperationResult.Invalid("token", AddressTaken);
            }

            await userOperations.ReplaceEmailAsync(change, user, address, confirmed: true, cancellationToken);
            if (await users.UpdateAsync(user) is { Succeeded: false } updated)
            {
                return updated.Errors.Any(e => e.Code == nameof(IdentityErrorDescriber.ConcurrencyFailure))
                    ? OperationResult.Stale
                    : OperationResult.Invalid("token", AddressTaken);
            }
        }

        change.Changed(user); // the version grows; email and emailVerified are in the regions' snapshot
        change.Audit("user.email_verified", user, new { email = address, former = string.Equals(former, address, StringComparison.Ordinal) ? null : former, by });
        return OperationResult.Done;
    }

    /// <summary>The password replaced by <paramref name="password"/> (the account's rules and history), or the refusal under <c>newPassword</c>.</summary>
    internal async Task<OperationResult?> SetPasswordAsync(ApplicationUser user, string password)
    {
        if (await users.HasPasswordAsync(user) && await users.RemovePasswordAsync(user) is { Succeeded: false } removed)
        {
            return Refused(removed);
        }

        var added = await users.AddPasswordAsync(user, password);
        return added.Succeeded ? null : Refused(added);
    }

    /// <summary>Why this user may not reset their password themselves now; null when they may.</summary>
    private async Task<string?> ResetRefusalAsync(ApplicationUser user, CancellationToken cancellationToken)
    {
        if (user.Status != UserStatus.Active)
        {
            return "disabled";
        }

        if (user.AccountId is not { } accountId)
        {
            return null;
        }

        var account = await db.Accounts.AsNoTracking().Where(a => a.Id == accountId)
            .Select(a => new { a.Status, a.Settings }).SingleAsync(cancellationToken);
        if (account.Status != AccountStatus.Active)
        {
            return "account_suspended";
        }

        return (AccountPolicy.Parse(account.Settings, out _) ?? AccountPolicy.Default).Password.SelfServiceReset ? null : "self_service_off";
    }

    private static OperationResult Refused(IdentityResult result) =>
        result.Errors.Any(e => e.Code == nameof(IdentityErrorDescriber.ConcurrencyFailure))
            ? OperationResult.Stale
            : OperationResult.Invalid(new Dictionary<string, string[]> { ["newPassword"] = result.Errors.Select(e => e.Description).ToArray() });
}
