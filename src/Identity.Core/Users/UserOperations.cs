using Identity.Core.Accounts;
using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Operations;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using OpenIddict.Abstractions;

namespace Identity.Core.Users;

/// <summary>
/// A new user: the person's email (one identity everywhere), name and role in the account; without an account (and
/// role), a user of the platform itself, whom no region sees. <paramref name="EmailConfirmed"/>: the email is known to
/// be the person's (the embedded default's demo user). <paramref name="PlatformAdmin"/>: a platform administrator (no
/// account), created so only by the authority itself (the embedded default's bootstrap administrator); an existing
/// person is made one, or unmade, by <see cref="UserOperations.SetPlatformAdminAsync"/> (decision 0087).
/// </summary>
public sealed record NewUser(Guid? AccountId, string Email, string? DisplayName, string? Role, bool EmailConfirmed = false,
    bool PlatformAdmin = false);

/// <summary>What a profile change sets; null leaves the field as it is.</summary>
public sealed record ProfileChange(string? Email, string? DisplayName, string? Role);

/// <summary>A created user, and the invitation token of a user created without a password (shown once, never stored).</summary>
public sealed record Created(OperationResult Result, ApplicationUser User, string? InvitationToken);

/// <summary>
/// The named changes to a user, each the one home of its rule, its version, its session revocation, its events and its
/// audit entry, written together by one <see cref="ChangeUnit"/> run. The admin API and the account pages call these
/// and only translate HTTP; lockout has its own home (<see cref="UserLockout"/>), as ASP.NET Core Identity's user
/// manager calls it.
/// </summary>
/// <remarks>
/// What only some operations use — the second factors, OpenIddict's token and authorization managers, the account
/// emails — is resolved from the request's scope when an operation needs it, not with every instance: a profile change
/// (the admin PATCH, most of the write traffic) uses none of them, and building them (data protectors, OpenIddict's
/// managers and stores, the mail options) cost the write path per change (issue 18 item 5, decision 0096).
/// </remarks>
public sealed class UserOperations(
    ChangeUnit changes,
    AuthorityDbContext db,
    UserManager<ApplicationUser> users,
    UserLinks links,
    TimeProvider time,
    IServiceProvider services)
{
    public const string LastOwnerDetail = "This is the account's last active owner: make another user owner first.";
    public const string EmailInUse = "This email is already in use.";
    public const string LastPlatformAdminDetail = "This is the last active platform administrator: make another person one first.";

    private Email.IAccountEmails Emails => services.GetRequiredService<Email.IAccountEmails>();

    /// <summary>A user who signs in with this password (the account's password rules apply).</summary>
    public Task<Created> CreateAsync(NewUser user, string password, Actor actor, CancellationToken cancellationToken) =>
        CreateAsync(user, password, invite: false, actor, cancellationToken);

    /// <summary>
    /// A user without a password, who sets one through the invitation link (single use, expiring; its token is
    /// returned once and stored only hashed); with <paramref name="sendEmail"/>, the link is emailed to them too.
    /// </summary>
    public Task<Created> InviteAsync(NewUser user, Actor actor, CancellationToken cancellationToken, bool sendEmail = false) =>
        CreateAsync(user, null, invite: true, actor, cancellationToken, sendEmail);

    private async Task<Created> CreateAsync(NewUser request, string? password, bool invite, Actor actor, CancellationToken cancellationToken,
        bool sendEmail = false)
    {
        var email = request.Email.Trim();
        var user = new ApplicationUser
        {
            UserName = email,
            Email = email,
            DisplayName = request.DisplayName?.Trim(),
            AccountId = request.AccountId,
            Role = request.Role,
            EmailConfirmed = request.EmailConfirmed,
            IsPlatformAdmin = request.PlatformAdmin && request.AccountId is null,
            CreatedAt = time.GetUtcNow(),
        };
        string? invitation = null;
        var result = await changes.RunAsync(actor, async change =>
        {
            if (await users.FindByEmailAsync(email) is not null)
            {
                return OperationResult.Invalid("email", EmailInUse); // one identity everywhere: an email is one user's
            }

            var created = password is null ? await users.CreateAsync(user) : await users.CreateAsync(user, password);
            if (!created.Succeeded)
            {
                return Invalid(created);
            }

            invitation = invite ? await IssueInvitationAsync(change, user, sendEmail, cancellationToken) : null;
            if (!invite && !user.EmailConfirmed && Emails.Enabled)
            {
                await SendVerificationAsync(change, user, email, cancellationToken); // an invitation proves the address itself
            }

            change.Changed(user);
            change.Audit("user.created", user, new
            {
                email = user.Email, role = user.Role, invited = invite, emailed = invite && sendEmail, platformAdmin = user.IsPlatformAdmin,
            });
            return OperationResult.Done;
        }, cancellationToken);
        return new Created(result, user, result.Succeeded ? invitation : null);
    }

    /// <summary>A new invitation link for the user (their older ones voided), emailed when asked; returns its token.</summary>
    internal async Task<string> IssueInvitationAsync(Change change, ApplicationUser user, bool sendEmail, CancellationToken cancellationToken)
    {
        var lifetime = Emails.LifetimeOf(UserLinkPurposes.Invitation);
        var token = await links.IssueAsync(change, user, UserLinkPurposes.Invitation, user.Email!, lifetime, cancellationToken);
        if (sendEmail)
        {
            Emails.Link(UserLinkPurposes.Invitation, user, user.Email!, token, change.Now + lifetime);
        }

        return token;
    }

    /// <summary>A verification link for <paramref name="address"/> (the user's, or the one they move to), emailed there; older ones voided.</summary>
    internal async Task SendVerificationAsync(Change change, ApplicationUser user, string address, CancellationToken cancellationToken)
    {
        var lifetime = Emails.LifetimeOf(UserLinkPurposes.EmailVerification);
        var token = await links.IssueAsync(change, user, UserLinkPurposes.EmailVerification, address, lifetime, cancellationToken);
        Emails.Link(UserLinkPurposes.EmailVerification, user, address, token, change.Now + lifetime);
    }

    /// <summary>
    /// A new address for the user, inside <paramref name="change"/>: it must be no other user's. With a mail server and a
    /// verified current address, the user keeps that address until the new one is proven: the new one is only pending
    /// (held by its verification link, decision 0085) and the current one is told of the change. Otherwise the address is
    /// replaced at once, unverified, and (with a mail server) sent a verification link. Returns the pending address, or
    /// the refusal.
    /// </summary>
    internal async Task<(OperationResult? Refused, string? Pending)> ChangeEmailAsync(Change change, ApplicationUser user, string email,
        CancellationToken cancellationToken)
    {
        var sameMailbox = string.Equals(email, user.Email, StringComparison.OrdinalIgnoreCase);
        if (!sameMailbox && await users.FindByEmailAsync(email) is not null)
        {
            return (OperationResult.Invalid("email", EmailInUse), null); // one identity everywhere: an email is one user's
        }

        if (!sameMailbox && user.EmailConfirmed && Emails.Enabled)
        {
            await SendVerificationAsync(change, user, email, cancellationToken);
            Emails.EmailChanging(user, user.Email!);
            change.Audit("user.email_change_requested", user, new { from = user.Email, to = email });
            return (null, email);
        }

        await ReplaceEmailAsync(change, user, email, confirmed: false, cancellationToken);
        if (Emails.Enabled)
        {
            await SendVerificationAsync(change, user, email, cancellationToken);
        }

        return (null, null);
    }

    /// <summary>
    /// The user's address becomes <paramref name="email"/>: the sign-in name follows, the links sent to the former address
    /// (reset, verification) stop working.
    /// </summary>
    internal async Task ReplaceEmailAsync(Change change, ApplicationUser user, string email, bool confirmed, CancellationToken cancellationToken)
    {
        user.Email = email;
        user.UserName = email;
        user.EmailConfirmed = confirmed;
        await users.UpdateNormalizedEmailAsync(user);
        await users.UpdateNormalizedUserNameAsync(user);
        await links.VoidAsync(change, user.Id, UserLinkPurposes.PasswordReset, cancellationToken);
        await links.VoidAsync(change, user.Id, UserLinkPurposes.EmailVerification, cancellationToken);
    }

    /// <summary>
    /// The user's email, name and role. A new email must be no other user's and is verified before it counts
    /// (<see cref="ChangeEmailAsync"/>); demoting the last active owner is refused. Audited with the fields before and after.
    /// </summary>
    public Task<OperationResult> ChangeProfileAsync(ApplicationUser user, ProfileChange profile, Actor actor, CancellationToken cancellationToken) =>
        changes.RunAsync(actor, async change =>
        {
            var before = new { email = user.Email, displayName = user.DisplayName, role = user.Role };
            var wasActiveOwner = IsActiveOwner(user);
            var email = profile.Email?.Trim();
            if (email is not null && !string.Equals(email, user.Email, StringComparison.Ordinal)
                && await ChangeEmailAsync(change, user, email, cancellationToken) is { Refused: { } refused })
            {
                return refused;
            }

            user.DisplayName = profile.DisplayName?.Trim() ?? user.DisplayName;
            user.Role = profile.Role ?? user.Role;
            if (wasActiveOwner && !IsActiveOwner(user) && await IsLastActiveOwnerAsync(user, cancellationToken))
            {
                return OperationResult.Conflict(LastOwnerDetail);
            }

            if (await users.UpdateAsync(user) is { Succeeded: false } updated)
            {
                return Invalid(updated);
            }

            change.Changed(user);
            change.Audit("user.updated", user, new { before, after = new { email = user.Email, displayName = user.DisplayName, role = user.Role } });
            return OperationResult.Done;
        }, cancellationToken, saveOnly: !ProfileChangeReads(user, profile));

    /// <summary>
    /// Whether <see cref="ChangeProfileAsync"/>'s body sends statements of its own before the write: a new address (its
    /// uniqueness, its links) or an active owner's new role (the last-owner check under the account's row lock) need the
    /// run's transaction around them. Any other profile change (a name, a member's role) only changes the tracked user,
    /// so its write alone is the transaction: on PostgreSQL one command (decision 0094).
    /// </summary>
    private static bool ProfileChangeReads(ApplicationUser user, ProfileChange profile) =>
        (profile.Email?.Trim() is { } email && !string.Equals(email, user.Email, StringComparison.Ordinal))
        || (profile.Role is { } role && !string.Equals(role, user.Role, StringComparison.Ordinal) && IsActiveOwner(user));

    /// <summary>
    /// The user's own change of address, the current password proven (errors under <c>currentPassword</c> or
    /// <c>email</c>): as <see cref="ChangeEmailAsync"/>, at most <paramref name="perHour"/> verification links an hour (each
    /// one an email to an address the person chose). Returns the pending address, if the change waits for its link.
    /// </summary>
    public async Task<(OperationResult Result, string? Pending)> ChangeOwnEmailAsync(ApplicationUser user, string currentPassword, string newEmail,
        int perHour, Actor actor, CancellationToken cancellationToken)
    {
        string? pending = null;
        var result = await changes.RunAsync(actor, async change =>
        {
            var email = newEmail.Trim();
            if (!await users.CheckPasswordAsync(user, currentPassword))
            {
                return OperationResult.Invalid("currentPassword", "The current password is not correct.");
            }

            if (string.Equals(email, user.Email, StringComparison.OrdinalIgnoreCase))
            {
                return OperationResult.Invalid("email", "This is already your address.");
            }

            if (await links.CountSinceAsync(user.Id, UserLinkPurposes.EmailVerification, change.Now.AddHours(-1), cancellationToken) >= perHour)
            {
                return OperationResult.Invalid("email", "Too many changes of address within the hour: try again later.");
            }

            var before = user.Email;
            (var refused, pending) = await ChangeEmailAsync(change, user, email, cancellationToken);
            if (refused is not null)
            {
                return refused;
            }

            if (pending is null)
            {
                if (await users.UpdateAsync(user) is { Succeeded: false } updated)
                {
                    return Invalid(updated);
                }

                change.Changed(user);
                change.Audit("user.updated", user, new { before = new { email = before }, after = new { email = user.Email } });
            }

            return OperationResult.Done;
        }, cancellationToken);
        return (result, result.Succeeded ? pending : null);
    }

    /// <summary>
    /// The user's own password change, the current one proven (errors under <c>currentPassword</c> or <c>newPassword</c>).
    /// A password that leaked stops granting access at once: every session and token of the user ends (RFC 9700
    /// §4.14.2: refresh tokens are revoked when the user's credentials change). No region sees a password: no snapshot.
    /// </summary>
    public Task<OperationResult> ChangePasswordAsync(ApplicationUser user, string currentPassword, string newPassword, Actor actor,
        object? auditDetails, CancellationToken cancellationToken) =>
        changes.RunAsync(actor, async change =>
        {
            var changed = await users.ChangePasswordAsync(user, currentPassword, newPassword);
            if (!changed.Succeeded)
            {
                return OperationResult.Invalid(changed.Errors
                    .GroupBy(e => e.Code == nameof(IdentityErrorDescriber.PasswordMismatch) ? "currentPassword" : "newPassword")
                    .ToDictionary(g => g.Key, g => g.Select(e => e.Description).ToArray()));
            }

            await RevokeSessionsAsync(change, user, "password_changed", cancellationToken);
            change.Audit("user.password_changed", user, auditDetails);
            return OperationResult.Done;
        }, cancellationToken);

    /// <summary>
    /// Makes the person a platform administrator (every account, clients, keys, regions, the outbox) or no longer one
    /// (decision 0087). They keep their account and role; the console still asks them for a second factor. Removing the
    /// last active platform administrator is refused (409). Nothing changes, and nothing is audited, when the person
    /// already is what is asked. Audited <c>user.platform_admin_granted</c> / <c>user.platform_admin_revoked</c>; the
    /// version grows, and the regions hear nothing (they do not see the flag).
    /// </summary>
    public Task<OperationResult> SetPlatformAdminAsync(ApplicationUser user, bool platformAdmin, Actor actor, CancellationToken cancellationToken) =>
        changes.RunAsync(actor, async change =>
        {
            if (user.IsPlatformAdmin == platformAdmin)
            {
                return OperationResult.Done;
            }

            if (!platformAdmin && user.Status == UserStatus.Active && await IsLastActivePlatformAdminAsync(user, cancellationToken))
            {
                return OperationResult.Conflict(LastPlatformAdminDetail);
            }

            user.IsPlatformAdmin = platformAdmin;
            if (await users.UpdateAsync(user) is { Succeeded: false } updated)
            {
                return Invalid(updated);
            }

            change.Changed(user);
            change.Audit(platformAdmin ? "user.platform_admin_granted" : "user.platform_admin_revoked", user);
            return OperationResult.Done;
        }, cancellationToken);

    /// <summary>The user can no longer sign in, and every session and token of theirs ends.</summary>
    public Task<OperationResult> DisableAsync(ApplicationUser user, Actor actor, CancellationToken cancellationToken) =>
        changes.RunAsync(actor, async change =>
        {
            var wasActiveOwner = IsActiveOwner(user);
            var wasActivePlatformAdmin = user.IsPlatformAdmin && user.Status == UserStatus.Active;
            user.Status = UserStatus.Disabled;
            if (wasActiveOwner && await IsLastActiveOwnerAsync(user, cancellationToken))
            {
                return OperationResult.Conflict(LastOwnerDetail);
            }

            if (wasActivePlatformAdmin && await IsLastActivePlatformAdminAsync(user, cancellationToken))
            {
                return OperationResult.Conflict(LastPlatformAdminDetail);
            }

            change.Changed(user);
            await RevokeSessionsAsync(change, user, "user.disabled", cancellationToken);
            change.Audit("user.disabled", user);
            return OperationResult.Done;
        }, cancellationToken);

    /// <summary>The user may sign in again.</summary>
    public Task<OperationResult> EnableAsync(ApplicationUser user, Actor actor, CancellationToken cancellationToken) =>
        changes.RunAsync(actor, change =>
        {
            user.Status = UserStatus.Active;
            change.Changed(user);
            change.Audit("user.enabled", user);
            return Task.FromResult(OperationResult.Done);
        }, cancellationToken);

    /// <summary>
    /// Every second factor goes (authenticator secret, recovery codes, passkeys): the person enrols again at the next
    /// sign-in; every session and token of theirs ends.
    /// </summary>
    public Task<OperationResult> ResetMfaAsync(ApplicationUser user, Actor actor, CancellationToken cancellationToken) =>
        changes.RunAsync(actor, async change =>
        {
            await services.GetRequiredService<IUserSecondFactors>().RemoveAllAsync(user);
            foreach (var passkey in await users.GetPasskeysAsync(user))
            {
                await users.RemovePasskeyAsync(user, passkey.CredentialId);
            }

            change.Changed(user);
            await RevokeSessionsAsync(change, user, "user.mfa_reset", cancellationToken);
            change.Audit("user.mfa_reset", user);
            return OperationResult.Done;
        }, cancellationToken);

    /// <summary>Every session and token of the user ends; the user stays as they are.</summary>
    public Task<OperationResult> RevokeSessionsAsync(ApplicationUser user, Actor actor, CancellationToken cancellationToken) =>
        changes.RunAsync(actor, async change =>
        {
            change.Changed(user);
            await RevokeSessionsAsync(change, user, "user.sessions_revoked", cancellationToken);
            change.Audit("user.sessions_revoked", user);
            return OperationResult.Done;
        }, cancellationToken);

    /// <summary>The user is gone, with their tokens and authorizations; the last active owner cannot be deleted.</summary>
    public Task<OperationResult> DeleteAsync(ApplicationUser user, Actor actor, CancellationToken cancellationToken) =>
        changes.RunAsync(actor, async change =>
        {
            if (IsActiveOwner(user) && await IsLastActiveOwnerAsync(user, cancellationToken))
            {
                return OperationResult.Conflict(LastOwnerDetail);
            }

            if (user.IsPlatformAdmin && user.Status == UserStatus.Active && await IsLastActivePlatformAdminAsync(user, cancellationToken))
            {
                return OperationResult.Conflict(LastPlatformAdminDetail);
            }

            await RevokeTokensAsync(user, cancellationToken);
            if (!(await users.DeleteAsync(user)).Succeeded)
            {
                return OperationResult.Stale;
            }

            change.Changed(user);
            change.Audit("user.deleted", user, new { email = user.Email });
            return OperationResult.Done;
        }, cancellationToken);

    /// <summary>
    /// The one place sessions end: a new security stamp (the SSO cookie ends at its next validation), the user's tokens
    /// and authorizations revoked, and the user's regions told (<c>SessionsRevoked</c>, with the reason).
    /// </summary>
    internal async Task RevokeSessionsAsync(Change change, ApplicationUser user, string reason, CancellationToken cancellationToken)
    {
        await users.UpdateSecurityStampAsync(user);
        await RevokeTokensAsync(user, cancellationToken);
        change.SessionsRevoked(user, reason);
    }

    /// <summary>The user's refresh tokens and authorizations, revoked by single statements in the run's transaction.</summary>
    private async Task RevokeTokensAsync(ApplicationUser user, CancellationToken cancellationToken)
    {
        await services.GetRequiredService<IOpenIddictTokenManager>().RevokeBySubjectAsync(user.Id, cancellationToken);
        await services.GetRequiredService<IOpenIddictAuthorizationManager>().RevokeBySubjectAsync(user.Id, cancellationToken);
    }

    private static bool IsActiveOwner(ApplicationUser user) => user.Role == AccountRoles.Owner && user.Status == UserStatus.Active;

    /// <summary>
    /// Whether the account has no active owner besides <paramref name="user"/>. Called in the transaction of the change
    /// that would demote, disable or delete them, after a no-op update of the account's row: that row lock (SQLite
    /// locks the whole database) makes such changes to one account run one after the other, so two owners demoting
    /// each other at once cannot each count the other as the owner who remains.
    /// </summary>
    private async Task<bool> IsLastActiveOwnerAsync(ApplicationUser user, CancellationToken cancellationToken)
    {
        var accountId = user.AccountId!.Value;
        await db.Accounts.Where(a => a.Id == accountId).ExecuteUpdateAsync(a => a.SetProperty(x => x.Version, x => x.Version), cancellationToken);
        return !await db.Users.AnyAsync(u => u.AccountId == accountId && u.Id != user.Id
            && u.Role == AccountRoles.Owner && u.Status == UserStatus.Active, cancellationToken);
    }

    /// <summary>
    /// Whether no active platform administrator is left besides <paramref name="user"/>. Called in the change's transaction:
    /// a no-op update first locks every platform administrator's row, so two removals at once (each of the other) queue
    /// on those rows and the second sees the first (as <see cref="IsLastActiveOwnerAsync"/> does with the account's row).
    /// </summary>
    private async Task<bool> IsLastActivePlatformAdminAsync(ApplicationUser user, CancellationToken cancellationToken)
    {
        await db.Users.Where(u => u.IsPlatformAdmin).ExecuteUpdateAsync(u => u.SetProperty(x => x.IsPlatformAdmin, x => x.IsPlatformAdmin), cancellationToken);
        return !await db.Users.AnyAsync(u => u.Id != user.Id && u.IsPlatformAdmin && u.Status == UserStatus.Active, cancellationToken);
    }

    /// <summary>ASP.NET Core Identity's refusals by field: password rules under <c>password</c>, email or name under <c>email</c>.</summary>
    private static OperationResult Invalid(IdentityResult result) =>
        result.Errors.Any(e => e.Code == nameof(IdentityErrorDescriber.ConcurrencyFailure))
            ? OperationResult.Stale
            : OperationResult.Invalid(result.Errors
                .GroupBy(e => e.Code.Contains("Password", StringComparison.OrdinalIgnoreCase) ? "password"
                    : e.Code.Contains("Email", StringComparison.Ordinal) || e.Code.Contains("UserName", StringComparison.Ordinal) ? "email" : "user")
                .ToDictionary(g => g.Key, g => g.Select(e => e.Description).ToArray()));
}
