using System.ComponentModel.DataAnnotations;
using Identity.Core.Accounts;
using Identity.Core.Data;
using Identity.Core.Propagation;
using Identity.Server.Audit;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;

namespace Identity.Server.Admin;

public sealed record UserView(string Id, Guid? AccountId, string? Email, bool EmailVerified, string? DisplayName, string? Role,
    string Status, bool MfaEnrolled, long Version, DateTimeOffset CreatedAt)
{
    public static UserView From(ApplicationUser u) => new(u.Id, u.AccountId, u.Email, u.EmailConfirmed, u.DisplayName, u.Role,
        u.Status.ToString().ToLowerInvariant(), u.TwoFactorEnabled, u.Version, u.CreatedAt);
}

public sealed record CreateUserRequest(string? Email, string? DisplayName, string? Role, string? Password);

public sealed record UpdateUserRequest(string? Email, string? DisplayName, string? Role);

/// <summary>The result of creating a user without a password: the invitation token is shown once, never stored in clear.</summary>
public sealed record CreatedUser(UserView User, string? InvitationToken);

/// <summary>
/// Users of one account. Every route names the account; an admin of another account gets 404 for all of them,
/// as if the account did not exist. Every change bumps the user's version and is audited in the same transaction.
/// </summary>
public static class UsersApi
{
    private static readonly EmailAddressAttribute EmailFormat = new();

    public static RouteGroupBuilder MapUsersApi(this RouteGroupBuilder admin)
    {
        var users = admin.MapGroup("/accounts/{accountId:guid}/users").WithTags("Users");
        users.MapGet("/", ListAsync);
        users.MapPost("/", CreateAsync).AcceptsJson<CreateUserRequest>();
        users.MapGet("/{userId:guid}", GetAsync);
        users.MapPatch("/{userId:guid}", UpdateAsync).AcceptsJson<UpdateUserRequest>();
        users.MapDelete("/{userId:guid}", DeleteAsync);
        users.MapPost("/{userId:guid}/disable", (Guid accountId, string userId, HttpContext c, UserManager<ApplicationUser> m, AuthorityDbContext db, IAuditTrail a) =>
            ChangeAsync(accountId, userId, c, m, db, a, "user.disabled", user => { user.Status = UserStatus.Disabled; return Task.CompletedTask; }, revokeSessions: true));
        users.MapPost("/{userId:guid}/enable", (Guid accountId, string userId, HttpContext c, UserManager<ApplicationUser> m, AuthorityDbContext db, IAuditTrail a) =>
            ChangeAsync(accountId, userId, c, m, db, a, "user.enabled", user => { user.Status = UserStatus.Active; return Task.CompletedTask; }, revokeSessions: false));
        users.MapPost("/{userId:guid}/reset-mfa", (Guid accountId, string userId, HttpContext c, UserManager<ApplicationUser> m, AuthorityDbContext db, IAuditTrail a) =>
            ChangeAsync(accountId, userId, c, m, db, a, "user.mfa_reset", async user =>
            {
                // Authenticator secret, recovery codes and passkeys: the person enrols again at the next sign-in.
                await c.RequestServices.GetRequiredService<Account.Mfa.SecondFactors>().RemoveAllAsync(user);
                foreach (var passkey in await m.GetPasskeysAsync(user))
                {
                    await m.RemovePasskeyAsync(user, passkey.CredentialId);
                }
            }, revokeSessions: true));
        users.MapPost("/{userId:guid}/revoke-sessions", (Guid accountId, string userId, HttpContext c, UserManager<ApplicationUser> m, AuthorityDbContext db, IAuditTrail a) =>
            ChangeAsync(accountId, userId, c, m, db, a, "user.sessions_revoked", _ => Task.CompletedTask, revokeSessions: true));
        return admin;
    }

    private static async Task<IResult> ListAsync(Guid accountId, HttpContext context, AuthorityDbContext db,
        string? email, string? status, string? after, int? limit)
    {
        if (!context.Admin().CanSee(accountId) || !await db.Accounts.AnyAsync(a => a.Id == accountId, context.RequestAborted))
        {
            return AdminHttp.NotFound("account");
        }

        if (!AdminHttp.TryDecodeCursor(after, out var cursor))
        {
            return AdminHttp.Invalid("after", "The cursor is not valid.");
        }

        UserStatus? wanted = null;
        if (status is not null)
        {
            if (!Enum.TryParse<UserStatus>(status, ignoreCase: true, out var parsed) || int.TryParse(status, out _))
            {
                return AdminHttp.Invalid("status", "Use 'active' or 'disabled'.");
            }

            wanted = parsed;
        }

        var take = AdminHttp.ClampLimit(limit);
        var query = db.Users.AsNoTracking().Where(u => u.AccountId == accountId);
        if (!string.IsNullOrWhiteSpace(email))
        {
            var normalized = email.Trim().ToUpperInvariant();
            query = query.Where(u => u.NormalizedEmail!.Contains(normalized));
        }

        if (wanted is { } s)
        {
            query = query.Where(u => u.Status == s);
        }

        if (cursor is not null)
        {
            query = query.Where(u => u.Id.CompareTo(cursor) > 0);
        }

        var page = await query.OrderBy(u => u.Id).Take(take + 1).ToListAsync(context.RequestAborted);
        var items = page.Take(take).Select(UserView.From).ToList();
        return TypedResults.Ok(new Page<UserView>(items, page.Count > take ? AdminHttp.EncodeCursor(items[^1].Id) : null));
    }

    private static async Task<IResult> CreateAsync(Guid accountId, HttpContext context, UserManager<ApplicationUser> users,
        AuthorityDbContext db, IAuditTrail audit, TimeProvider time)
    {
        var actor = context.Admin();
        if (!actor.CanSee(accountId) || !await db.Accounts.AnyAsync(a => a.Id == accountId, context.RequestAborted))
        {
            return AdminHttp.NotFound("account");
        }

        var (body, problem) = await AdminHttp.ReadAsync<CreateUserRequest>(context.Request);
        if (problem is not null)
        {
            return problem;
        }

        if (body!.Role == AccountRoles.Owner && !actor.MayManageOwners(accountId))
        {
            return OwnersOnly();
        }

        var errors = Validate(body.Email, body.DisplayName, body.Role, requireAll: true);
        if (errors.Count == 0 && await users.FindByEmailAsync(body.Email!.Trim()) is not null)
        {
            // One identity everywhere: an email belongs to one user across all accounts.
            errors["email"] = ["This email is already in use."];
        }

        if (errors.Count > 0)
        {
            return AdminHttp.Invalid(errors);
        }

        var user = new ApplicationUser
        {
            UserName = body.Email!.Trim(),
            Email = body.Email.Trim(),
            DisplayName = body.DisplayName?.Trim(),
            AccountId = accountId,
            Role = body.Role,
            CreatedAt = time.GetUtcNow(),
        };

        await using var transaction = await db.Database.BeginTransactionAsync(context.RequestAborted);
        var created = body.Password is null ? await users.CreateAsync(user) : await users.CreateAsync(user, body.Password);
        if (!created.Succeeded)
        {
            return AdminHttp.Invalid(IdentityErrors(created));
        }

        var invitation = body.Password is null ? await users.GeneratePasswordResetTokenAsync(user) : null;
        audit.Record(actor.Actor, "user.created", "user", user.Id, accountId,
            new { email = user.Email, role = user.Role, invited = invitation is not null });
        await db.SaveChangesAsync(context.RequestAborted);
        await transaction.CommitAsync(context.RequestAborted);

        AdminHttp.SetETag(context.Response, user.Version);
        return TypedResults.Created($"/admin/v1/accounts/{accountId}/users/{user.Id}", new CreatedUser(UserView.From(user), invitation));
    }

    private static async Task<IResult> GetAsync(Guid accountId, string userId, HttpContext context, AuthorityDbContext db)
    {
        var user = await FindAsync(accountId, userId, context, db);
        if (user is null)
        {
            return AdminHttp.NotFound("user");
        }

        AdminHttp.SetETag(context.Response, user.Version);
        return TypedResults.Ok(UserView.From(user));
    }

    private static async Task<IResult> UpdateAsync(Guid accountId, string userId, HttpContext context, UserManager<ApplicationUser> users,
        AuthorityDbContext db, IAuditTrail audit)
    {
        var user = await FindAsync(accountId, userId, context, db);
        if (user is null)
        {
            return AdminHttp.NotFound("user");
        }

        if (AdminHttp.CheckIfMatch(context.Request, user.Version) is { } precondition)
        {
            return precondition;
        }

        var (body, problem) = await AdminHttp.ReadAsync<UpdateUserRequest>(context.Request);
        if (problem is not null)
        {
            return problem;
        }

        if ((body!.Role == AccountRoles.Owner || user.Role == AccountRoles.Owner) && !context.Admin().MayManageOwners(accountId))
        {
            return OwnersOnly();
        }

        var errors = Validate(body.Email, body.DisplayName, body.Role, requireAll: false);
        var email = body.Email?.Trim();
        if (errors.Count == 0 && email is not null && !string.Equals(email, user.Email, StringComparison.OrdinalIgnoreCase)
            && await users.FindByEmailAsync(email) is not null)
        {
            errors["email"] = ["This email is already in use."];
        }

        if (errors.Count > 0)
        {
            return AdminHttp.Invalid(errors);
        }

        var before = new { email = user.Email, displayName = user.DisplayName, role = user.Role };
        return await ChangeAsync(user, context, users, db, audit, "user.updated", async u =>
        {
            if (email is not null && !string.Equals(email, u.Email, StringComparison.Ordinal))
            {
                u.Email = email;
                u.UserName = email;
                u.EmailConfirmed = false;
                await users.UpdateNormalizedEmailAsync(u);
                await users.UpdateNormalizedUserNameAsync(u);
            }

            u.DisplayName = body.DisplayName?.Trim() ?? u.DisplayName;
            u.Role = body.Role ?? u.Role;
        }, revokeSessions: false, detailsAfter: u => new { before, after = new { email = u.Email, displayName = u.DisplayName, role = u.Role } });
    }

    private static async Task<IResult> DeleteAsync(Guid accountId, string userId, HttpContext context, UserManager<ApplicationUser> users,
        AuthorityDbContext db, IAuditTrail audit, IOpenIddictTokenManager tokens, IOpenIddictAuthorizationManager authorizations)
    {
        if (!context.Admin().CanSee(accountId))
        {
            return AdminHttp.NotFound("account");
        }

        var user = await FindAsync(accountId, userId, context, db);
        if (user is null)
        {
            return TypedResults.NoContent(); // idempotent: already gone
        }

        if (user.Role == AccountRoles.Owner && !context.Admin().MayManageOwners(accountId))
        {
            return OwnersOnly();
        }

        await using var transaction = await db.Database.BeginTransactionAsync(context.RequestAborted);
        if (IsActiveOwner(user) && await IsLastActiveOwnerAsync(db, user, context.RequestAborted))
        {
            return LastOwner();
        }

        await tokens.RevokeBySubjectAsync(user.Id, context.RequestAborted);
        await authorizations.RevokeBySubjectAsync(user.Id, context.RequestAborted);
        var deleted = await users.DeleteAsync(user);
        if (!deleted.Succeeded)
        {
            return AdminHttp.Stale();
        }

        audit.Record(context.Admin().Actor, "user.deleted", "user", user.Id, accountId, new { email = user.Email });
        await db.SaveChangesAsync(context.RequestAborted);
        await transaction.CommitAsync(context.RequestAborted);
        return TypedResults.NoContent();
    }

    private static async Task<IResult> ChangeAsync(Guid accountId, string userId, HttpContext context, UserManager<ApplicationUser> users,
        AuthorityDbContext db, IAuditTrail audit, string eventType, Func<ApplicationUser, Task> change, bool revokeSessions)
    {
        var user = await FindAsync(accountId, userId, context, db);
        if (user is null)
        {
            return AdminHttp.NotFound("user");
        }

        return user.Role == AccountRoles.Owner && !context.Admin().MayManageOwners(accountId)
            ? OwnersOnly()
            : await ChangeAsync(user, context, users, db, audit, eventType, change, revokeSessions, detailsAfter: null);
    }

    /// <summary>
    /// One user change: applied, version bumped, sessions revoked when asked (new security stamp, tokens and
    /// authorizations revoked), audited — all in one transaction, so a failure leaves nothing half-done.
    /// </summary>
    private static async Task<IResult> ChangeAsync(ApplicationUser user, HttpContext context, UserManager<ApplicationUser> users,
        AuthorityDbContext db, IAuditTrail audit, string eventType, Func<ApplicationUser, Task> change, bool revokeSessions,
        Func<ApplicationUser, object>? detailsAfter)
    {
        var services = context.RequestServices;
        var wasActiveOwner = IsActiveOwner(user);
        await using var transaction = await db.Database.BeginTransactionAsync(context.RequestAborted);
        await change(user);
        if (wasActiveOwner && !IsActiveOwner(user) && await IsLastActiveOwnerAsync(db, user, context.RequestAborted))
        {
            return LastOwner();
        }

        user.Version++;
        if (revokeSessions)
        {
            await users.UpdateSecurityStampAsync(user); // ends the SSO cookie at its next validation
            await services.GetRequiredService<IOpenIddictTokenManager>().RevokeBySubjectAsync(user.Id, context.RequestAborted);
            await services.GetRequiredService<IOpenIddictAuthorizationManager>().RevokeBySubjectAsync(user.Id, context.RequestAborted);
            await db.AddSessionsRevokedAsync(user, eventType, services.GetRequiredService<TimeProvider>().GetUtcNow(), context.RequestAborted);
        }

        var updated = await users.UpdateAsync(user);
        if (!updated.Succeeded)
        {
            return updated.Errors.Any(e => e.Code == nameof(IdentityErrorDescriber.ConcurrencyFailure))
                ? AdminHttp.Stale()
                : AdminHttp.Invalid(IdentityErrors(updated));
        }

        audit.Record(context.Admin().Actor, eventType, "user", user.Id, user.AccountId, detailsAfter?.Invoke(user));
        await db.SaveChangesAsync(context.RequestAborted);
        await transaction.CommitAsync(context.RequestAborted);

        AdminHttp.SetETag(context.Response, user.Version);
        return TypedResults.Ok(UserView.From(user));
    }

    private static bool IsActiveOwner(ApplicationUser user) => user.Role == AccountRoles.Owner && user.Status == UserStatus.Active;

    /// <summary>
    /// Whether the account has no active owner besides <paramref name="user"/>. Called in the transaction of the change
    /// that would demote, disable or delete them, after a no-op update of the account's row: that row lock (SQLite
    /// locks the whole database) makes such changes to one account run one after the other, so two owners demoting
    /// each other at once cannot each count the other as the owner who remains.
    /// </summary>
    private static async Task<bool> IsLastActiveOwnerAsync(AuthorityDbContext db, ApplicationUser user, CancellationToken cancellationToken)
    {
        var accountId = user.AccountId!.Value;
        await db.Accounts.Where(a => a.Id == accountId).ExecuteUpdateAsync(a => a.SetProperty(x => x.Version, x => x.Version), cancellationToken);
        return !await db.Users.AnyAsync(u => u.AccountId == accountId && u.Id != user.Id
            && u.Role == AccountRoles.Owner && u.Status == UserStatus.Active, cancellationToken);
    }

    private static IResult OwnersOnly() => TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Forbidden",
        detail: "Only an owner of the account or a platform administrator may make, change or remove an owner.");

    private static IResult LastOwner() =>
        AdminHttp.Conflict("This is the account's last active owner: make another user owner first.");

    private static async Task<ApplicationUser?> FindAsync(Guid accountId, string userId, HttpContext context, AuthorityDbContext db) =>
        context.Admin().CanSee(accountId)
            ? await db.Users.SingleOrDefaultAsync(u => u.Id == userId && u.AccountId == accountId, context.RequestAborted)
            : null;

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

    private static Dictionary<string, string[]> IdentityErrors(IdentityResult result) =>
        result.Errors.GroupBy(e => e.Code.Contains("Password", StringComparison.OrdinalIgnoreCase) ? "password"
                : e.Code.Contains("Email", StringComparison.Ordinal) || e.Code.Contains("UserName", StringComparison.Ordinal) ? "email" : "user")
            .ToDictionary(g => g.Key, g => g.Select(e => e.Description).ToArray());
}
