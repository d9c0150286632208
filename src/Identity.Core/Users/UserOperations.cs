using Identity.Core.Accounts;
using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Operations;
using Identity.Core.Propagation;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;

namespace Identity.Core.Users;

/// <summary>
/// The named changes to a user, each the one home of its rule, its version, its session revocation, its events and its
/// audit entry, written together by one <see cref="ChangeUnit"/> run. The admin API and the account pages call these
/// and only translate HTTP.
/// </summary>
public sealed class UserOperations(
    ChangeUnit changes,
    AuthorityDbContext db,
    UserManager<ApplicationUser> users,
    IOpenIddictTokenManager tokens,
    IOpenIddictAuthorizationManager authorizations)
{
    public const string LastOwnerDetail = "This is the account's last active owner: make another user owner first.";

    /// <summary>The user can no longer sign in, and every session and token of theirs ends.</summary>
    public Task<OperationResult> DisableAsync(ApplicationUser user, Actor actor, CancellationToken cancellationToken) =>
        changes.RunAsync(actor, async change =>
        {
            var wasActiveOwner = IsActiveOwner(user);
            user.Status = UserStatus.Disabled;
            if (wasActiveOwner && await IsLastActiveOwnerAsync(user, cancellationToken))
            {
                return OperationResult.Conflict(LastOwnerDetail);
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

    /// <summary>Every session and token of the user ends; the user stays as they are.</summary>
    public Task<OperationResult> RevokeSessionsAsync(ApplicationUser user, Actor actor, CancellationToken cancellationToken) =>
        changes.RunAsync(actor, async change =>
        {
            change.Changed(user);
            await RevokeSessionsAsync(change, user, "user.sessions_revoked", cancellationToken);
            change.Audit("user.sessions_revoked", user);
            return OperationResult.Done;
        }, cancellationToken);

    /// <summary>
    /// The one place sessions end: a new security stamp (the SSO cookie ends at its next validation), the user's tokens
    /// and authorizations revoked (single statements, in the run's transaction), and the user's regions told
    /// (<c>SessionsRevoked</c>, with the reason).
    /// </summary>
    private async Task RevokeSessionsAsync(Change change, ApplicationUser user, string reason, CancellationToken cancellationToken)
    {
        await users.UpdateSecurityStampAsync(user);
        await tokens.RevokeBySubjectAsync(user.Id, cancellationToken);
        await authorizations.RevokeBySubjectAsync(user.Id, cancellationToken);
        await db.AddSessionsRevokedAsync(user, reason, change.Now, cancellationToken);
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
}
