using System.ComponentModel.DataAnnotations;
using Identity.Core.Accounts;
using Identity.Core.Data;
using Identity.Core.Email;
using Identity.Core.Operations;
using Identity.Core.Users;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.Admin;

/// <summary>A user's last recorded sign-in and enrolled second factors (an authenticator app, passkeys).</summary>
public sealed record UserFacts(DateTimeOffset? LastSignIn, bool Authenticator, int Passkeys)
{
    public string Factors => (Authenticator, Passkeys) switch
    {
        (false, 0) => "none",
        (true, 0) => "authenticator app",
        (false, var n) => n == 1 ? "1 passkey" : $"{n} passkeys",
        (true, var n) => "authenticator app, " + (n == 1 ? "1 passkey" : $"{n} passkeys"),
    };
}

/// <summary>
/// An administrator's hold on one account's users, shared by the admin API and the console: which account an admin
/// sees (another account's users do not exist for them), who may touch an owner, what a profile must look like, and
/// then the user operation itself (<see cref="UserOperations"/>: its rule, version, events and audit entry with the
/// admin as actor, in one transaction). The callers only translate their input and the outcome.
/// </summary>
public sealed class UserAdministration(AuthorityDbContext db, UserOperations operations, UserLinkOperations links, IAccountEmails emails,
    TimeProvider time)
{
    public const string OwnersOnlyDetail = "Only an owner of the account or a platform administrator may make, change or remove an owner.";
    public const string PlatformAdminsOnly = "Only platform administrators make or remove platform administrators.";
    public const string NoMailServer = "No mail server is configured (Email:Host): give the person the invitation link yourself.";

    private static readonly EmailAddressAttribute EmailFormat = new();

    /// <summary>Whether the account exists for this admin: another account's is as absent as one that never existed.</summary>
    public async Task<bool> CanSeeAccountAsync(AdminActor admin, Guid accountId, CancellationToken cancellationToken) =>
        admin.CanSee(accountId) && await db.Accounts.AnyAsync(a => a.Id == accountId, cancellationToken);

    /// <summary>The account's user, tracked for a change; null when it does not exist or the admin may not see the account.</summary>
    public async Task<ApplicationUser?> FindAsync(AdminActor admin, Guid accountId, string userId, CancellationToken cancellationToken) =>
        admin.CanSee(accountId) ? await db.FindForChangeAsync(accountId, userId, cancellationToken) : null;

    /// <summary>A status filter as written (<c>active</c>, <c>disabled</c>), or the refusal naming it.</summary>
    public static OperationResult? TryParseStatus(string? status, out UserStatus? wanted)
    {
        wanted = null;
        if (status is null)
        {
            return null;
        }

        if (!Enum.TryParse<UserStatus>(status, ignoreCase: true, out var parsed) || int.TryParse(status, out _))
        {
            return OperationResult.Invalid("status", "Use 'active' or 'disabled'.");
        }

        wanted = parsed;
        return null;
    }

    /// <summary>
    /// One page of the account's users in id order after <paramref name="afterUserId"/>, filtered by part of the email
    /// and by status; <c>More</c> when another page follows.
    /// </summary>
    public async Task<(IReadOnlyList<ApplicationUser> Items, bool More)> ListAsync(Guid accountId, string? email, UserStatus? status,
        string? afterUserId, int take, CancellationToken cancellationToken)
    {
        var query = db.Users.AsNoTracking().Where(u => u.AccountId == accountId);
        if (!string.IsNullOrWhiteSpace(email))
        {
            var normalized = email.Trim().ToUpperInvariant();
            query = query.Where(u => u.NormalizedEmail!.Contains(normalized));
        }

        if (status is { } s)
        {
            query = query.Where(u => u.Status == s);
        }

        if (afterUserId is not null)
        {
            query = query.Where(u => u.Id.CompareTo(afterUserId) > 0);
        }

        var page = await query.OrderBy(u => u.Id).Take(take + 1).ToListAsync(cancellationToken);
        return ([.. page.Take(take)], page.Count > take);
    }

    /// <summary>
    /// What an administrator is shown beside each user: the last successful sign-in the audit trail still holds (entries
    /// older than <c>Audit:Retention</c> are gone) and the second factors enrolled.
    /// </summary>
    public async Task<IReadOnlyDictionary<string, UserFacts>> FactsAsync(Guid accountId, IReadOnlyCollection<string> userIds,
        CancellationToken cancellationToken)
    {
        var ids = userIds.ToList();
        // The newest entry is the one with the highest id (a maximum of ids, which every provider compares natively).
        var lastIds = await db.AuditEntries.AsNoTracking()
            .Where(e => e.AccountId == accountId && e.EventType == "signin.succeeded" && e.SubjectId != null && ids.Contains(e.SubjectId))
            .GroupBy(e => e.SubjectId!)
            .Select(g => g.Max(e => e.Id))
            .ToListAsync(cancellationToken);
        var signIns = await db.AuditEntries.AsNoTracking().Where(e => lastIds.Contains(e.Id))
            .Select(e => new { UserId = e.SubjectId, e.At }).ToListAsync(cancellationToken);
        var authenticators = await db.UserTokens.AsNoTracking()
            .Where(t => ids.Contains(t.UserId) && t.LoginProvider == Account.Mfa.SecondFactors.Provider && t.Name == Account.Mfa.SecondFactors.SecretToken)
            .Select(t => t.UserId)
            .ToListAsync(cancellationToken);
        var passkeys = await db.UserPasskeys.AsNoTracking()
            .Where(p => ids.Contains(p.UserId))
            .GroupBy(p => p.UserId)
            .Select(g => new { UserId = g.Key, Count = g.Count() })
            .ToListAsync(cancellationToken);
        return ids.ToDictionary(id => id, id => new UserFacts(
            signIns.FirstOrDefault(s => s.UserId == id)?.At,
            authenticators.Contains(id),
            passkeys.FirstOrDefault(p => p.UserId == id)?.Count ?? 0));
    }

    /// <summary>Refused when the user is, or would become, an owner and the admin is neither an owner of the account nor a platform administrator.</summary>
    public static OperationResult? OwnerRule(AdminActor admin, Guid accountId, string? currentRole, string? newRole = null) =>
        (currentRole == AccountRoles.Owner || newRole == AccountRoles.Owner) && !admin.MayManageOwners(accountId)
            ? OperationResult.Forbidden(OwnersOnlyDetail)
            : null;

    /// <summary>
    /// A new user of the account: with a password, one who signs in with it; without, one invited (the invitation token
    /// returned once), emailed the link when <c>SendEmail</c>.
    /// </summary>
    public async Task<(OperationResult Result, ApplicationUser? User, string? InvitationToken)> CreateAsync(AdminActor admin, Guid accountId,
        CreateUserRequest body, CancellationToken cancellationToken)
    {
        if (OwnerRule(admin, accountId, null, body.Role) is { } forbidden)
        {
            return (forbidden, null, null);
        }

        var errors = Validate(body.Email, body.DisplayName, body.Role, requireAll: true);
        if (errors.Count > 0)
        {
            return (OperationResult.Invalid(errors), null, null);
        }

        if (body.SendEmail == true && (body.Password is not null || !emails.Enabled))
        {
            return (OperationResult.Invalid("sendEmail", body.Password is not null ? "Only an invitation (no password) is emailed." : NoMailServer),
                null, null);
        }

        var request = new NewUser(accountId, body.Email!, body.DisplayName, body.Role!);
        var (result, user, invitation) = body.Password is null
            ? await operations.InviteAsync(request, admin.Actor, cancellationToken, sendEmail: body.SendEmail == true)
            : await operations.CreateAsync(request, body.Password, admin.Actor, cancellationToken);
        return (result, user, invitation);
    }

    /// <summary>A new invitation link for the user (the previous one void), returned once; emailed too when <paramref name="sendEmail"/>.</summary>
    public async Task<(OperationResult Result, string? Token)> ResendInvitationAsync(AdminActor admin, ApplicationUser user, bool sendEmail,
        CancellationToken cancellationToken)
    {
        if (OwnerRule(admin, user.AccountId!.Value, user.Role) is { } forbidden)
        {
            return (forbidden, null);
        }

        if (sendEmail && !emails.Enabled)
        {
            return (OperationResult.Invalid("sendEmail", NoMailServer), null);
        }

        return await links.ResendInvitationAsync(user, sendEmail, admin.Actor, cancellationToken);
    }

    /// <summary>Changes the user's email, name or role (null leaves a field as it is).</summary>
    public async Task<OperationResult> ChangeProfileAsync(AdminActor admin, ApplicationUser user, UpdateUserRequest body, CancellationToken cancellationToken)
    {
        if (OwnerRule(admin, user.AccountId!.Value, user.Role, body.Role) is { } forbidden)
        {
            return forbidden;
        }

        var errors = Validate(body.Email, body.DisplayName, body.Role, requireAll: false);
        if (errors.Count > 0)
        {
            return OperationResult.Invalid(errors);
        }

        return await operations.ChangeProfileAsync(user, new ProfileChange(body.Email, body.DisplayName, body.Role), admin.Actor, cancellationToken);
    }

    /// <summary>The address the user is moving to, until its verification link is used or lapses (decision 0085).</summary>
    public Task<string?> PendingEmailAsync(ApplicationUser user, CancellationToken cancellationToken) =>
        links.PendingEmailAsync(user, time.GetUtcNow(), cancellationToken);

    /// <summary>The pending address with when its link was sent (the console's "pending change to …, sent at …").</summary>
    public Task<PendingEmail?> PendingChangeAsync(ApplicationUser user, CancellationToken cancellationToken) =>
        links.PendingChangeAsync(user, time.GetUtcNow(), cancellationToken);

    /// <summary>The pending addresses of a page of users (the console's users list), in one read: by user id.</summary>
    public Task<IReadOnlyDictionary<string, PendingEmail>> PendingChangesAsync(IReadOnlyCollection<ApplicationUser> users, CancellationToken cancellationToken) =>
        links.PendingChangesAsync(users, time.GetUtcNow(), cancellationToken);

    /// <summary>The admin vouches for the user's current address, or the one they are moving to (which then becomes theirs).</summary>
    public async Task<OperationResult> MarkEmailVerifiedAsync(AdminActor admin, ApplicationUser user, string? email, CancellationToken cancellationToken) =>
        OwnerRule(admin, user.AccountId!.Value, user.Role) ?? await links.MarkEmailVerifiedAsync(user, email, admin.Actor, cancellationToken);

    /// <summary>A new verification link, emailed to the pending address or the unverified current one.</summary>
    public async Task<OperationResult> ResendVerificationAsync(AdminActor admin, ApplicationUser user, CancellationToken cancellationToken) =>
        OwnerRule(admin, user.AccountId!.Value, user.Role)
        ?? (emails.Enabled
            ? await links.ResendVerificationAsync(user, admin.Actor, cancellationToken)
            : OperationResult.Invalid("email", "No mail server is configured (Email:Host): mark the address verified instead."));

    /// <summary>Any person by id, for a platform administrator (with or without an account); null for anyone else.</summary>
    public async Task<ApplicationUser?> FindPersonAsync(AdminActor admin, string userId, CancellationToken cancellationToken) =>
        admin.IsPlatformAdmin ? await db.Users.SingleOrDefaultAsync(u => u.Id == userId, cancellationToken) : null;

    /// <summary>The platform administrators (people; declared clients are configuration), by email.</summary>
    public async Task<IReadOnlyList<ApplicationUser>> ListPlatformAdminsAsync(CancellationToken cancellationToken) =>
        await db.Users.AsNoTracking().Where(u => u.IsPlatformAdmin).OrderBy(u => u.NormalizedEmail).ToListAsync(cancellationToken);

    /// <summary>
    /// Makes the person a platform administrator, or no longer one (decision 0087): only a platform administrator may
    /// (403 otherwise); the last active one stays (409).
    /// </summary>
    public async Task<OperationResult> SetPlatformAdminAsync(AdminActor admin, ApplicationUser user, bool platformAdmin, CancellationToken cancellationToken) =>
        admin.IsPlatformAdmin
            ? await operations.SetPlatformAdminAsync(user, platformAdmin, admin.Actor, cancellationToken)
            : OperationResult.Forbidden(PlatformAdminsOnly);

    public Task<OperationResult> DisableAsync(AdminActor admin, ApplicationUser user, CancellationToken cancellationToken) =>
        GuardedAsync(admin, user, operations.DisableAsync, cancellationToken);

    public Task<OperationResult> EnableAsync(AdminActor admin, ApplicationUser user, CancellationToken cancellationToken) =>
        GuardedAsync(admin, user, operations.EnableAsync, cancellationToken);

    public Task<OperationResult> ResetMfaAsync(AdminActor admin, ApplicationUser user, CancellationToken cancellationToken) =>
        GuardedAsync(admin, user, operations.ResetMfaAsync, cancellationToken);

    public Task<OperationResult> RevokeSessionsAsync(AdminActor admin, ApplicationUser user, CancellationToken cancellationToken) =>
        GuardedAsync(admin, user, operations.RevokeSessionsAsync, cancellationToken);

    public Task<OperationResult> DeleteAsync(AdminActor admin, ApplicationUser user, CancellationToken cancellationToken) =>
        GuardedAsync(admin, user, operations.DeleteAsync, cancellationToken);

    private static async Task<OperationResult> GuardedAsync(AdminActor admin, ApplicationUser user,
        Func<ApplicationUser, Core.Audit.Actor, CancellationToken, Task<OperationResult>> operation, CancellationToken cancellationToken) =>
        OwnerRule(admin, user.AccountId!.Value, user.Role) ?? await operation(user, admin.Actor, cancellationToken);

    private static Dictionary<string, string[]> Validate(string? email, string? displayName, string? role, bool requireAll)
    {
        var errors = new Dictionary<string, string[]>();
        if ((requireAll || email is not null) && (string.IsNullOrWhiteSpace(email) || email.Trim().Length > 256 || !EmailFormat.IsValid(email.Trim())))
        {
            errors["email"] = ["A valid email address of at most 256 characters is required."];
        }

        if (displayName is not null && displayName.Trim().Length > 200)
        {
            errors["displayName"] = ["The display name must not exceed 200 characters."];
        }

        if ((requireAll || role is not null) && (role is null || !AccountRoles.All.Contains(role)))
        {
            errors["role"] = ["The role must be 'owner', 'admin' or 'member'."];
        }

        return errors;
    }
}
