using System.ComponentModel.DataAnnotations;
using Identity.Core.Accounts;
using Identity.Core.Audit;
using Identity.Core.Data;
using Identity.Core.Operations;
using Identity.Core.Users;
using Microsoft.EntityFrameworkCore;

namespace Identity.Server.Admin;

public sealed record UserView(string Id, Guid? AccountId, string? Email, bool EmailVerified, string? DisplayName, string? Role,
    string Status, bool MfaEnrolled, long Version, DateTimeOffset CreatedAt)
{
    public static UserView From(ApplicationUser u) => new(u.Id, u.AccountId, u.Email, u.EmailConfirmed, u.DisplayName, u.Role,
        u.Status.ToString().ToLowerInvariant(), u.TwoFactorEnabled, u.Version, u.CreatedAt);
}

public sealed record CreateUserRequest(string? Email, string? DisplayName, string? Role, string? Password, bool? SendEmail = null);

/// <summary>Sends a user's invitation again: a new link, the previous one void; emailed when <c>sendEmail</c>.</summary>
public sealed record InvitationRequest(bool? SendEmail);

/// <summary>The new invitation token, shown once.</summary>
public sealed record Invitation(string InvitationToken);

public sealed record UpdateUserRequest(string? Email, string? DisplayName, string? Role);

/// <summary>The result of creating a user without a password: the invitation token is shown once, never stored in clear.</summary>
public sealed record CreatedUser(UserView User, string? InvitationToken);

/// <summary>
/// Users of one account. Every route names the account; an admin of another account gets 404 for all of them,
/// as if the account did not exist. Each change is a user operation (<see cref="UserOperations"/>: rule, version, events,
/// audit, one transaction); this file checks the admin's rights and translates HTTP.
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
        users.MapPost("/{userId:guid}/invitation", ResendInvitationAsync).AcceptsJson<InvitationRequest>();
        users.MapPost("/{userId:guid}/disable", (Guid accountId, string userId, HttpContext c, AuthorityDbContext db, UserOperations o) =>
            OperateAsync(accountId, userId, c, db, o.DisableAsync));
        users.MapPost("/{userId:guid}/enable", (Guid accountId, string userId, HttpContext c, AuthorityDbContext db, UserOperations o) =>
            OperateAsync(accountId, userId, c, db, o.EnableAsync));
        users.MapPost("/{userId:guid}/reset-mfa", (Guid accountId, string userId, HttpContext c, AuthorityDbContext db, UserOperations o) =>
            OperateAsync(accountId, userId, c, db, o.ResetMfaAsync));
        users.MapPost("/{userId:guid}/revoke-sessions", (Guid accountId, string userId, HttpContext c, AuthorityDbContext db, UserOperations o) =>
            OperateAsync(accountId, userId, c, db, o.RevokeSessionsAsync));
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

    private static async Task<IResult> CreateAsync(Guid accountId, HttpContext context, AuthorityDbContext db, UserOperations operations,
        Core.Email.IAccountEmails emails)
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
        if (errors.Count > 0)
        {
            return AdminHttp.Invalid(errors);
        }

        if (body.SendEmail == true && (body.Password is not null || !emails.Enabled))
        {
            return AdminHttp.Invalid("sendEmail", body.Password is not null
                ? "Only an invitation (no password) is emailed."
                : "No mail server is configured (Email:Host): give the person the invitation link yourself.");
        }

        var request = new NewUser(accountId, body.Email!, body.DisplayName, body.Role!);
        var (result, user, invitation) = body.Password is null
            ? await operations.InviteAsync(request, actor.Actor, context.RequestAborted, sendEmail: body.SendEmail == true)
            : await operations.CreateAsync(request, body.Password, actor.Actor, context.RequestAborted);
        if (!result.Succeeded)
        {
            return AdminHttp.Refused(result);
        }

        AdminHttp.SetETag(context.Response, user.Version);
        return TypedResults.Created($"/admin/v1/accounts/{accountId}/users/{user.Id}", new CreatedUser(UserView.From(user), invitation));
    }

    private static async Task<IResult> ResendInvitationAsync(Guid accountId, string userId, HttpContext context, AuthorityDbContext db,
        UserLinkOperations operations, Core.Email.IAccountEmails emails)
    {
        var user = await FindAsync(accountId, userId, context, db);
        if (user is null)
        {
            return AdminHttp.NotFound("user");
        }

        if (user.Role == AccountRoles.Owner && !context.Admin().MayManageOwners(accountId))
        {
            return OwnersOnly();
        }

        var body = new InvitationRequest(null);
        if (context.Request.ContentLength is > 0 || context.Request.Headers.TransferEncoding.Count > 0)
        {
            (var read, var problem) = await AdminHttp.ReadAsync<InvitationRequest>(context.Request);
            if (problem is not null)
            {
                return problem;
            }

            body = read!;
        }

        if (body.SendEmail == true && !emails.Enabled)
        {
            return AdminHttp.Invalid("sendEmail", "No mail server is configured (Email:Host): give the person the invitation link yourself.");
        }

        var (result, token) = await operations.ResendInvitationAsync(user, body.SendEmail == true, context.Admin().Actor, context.RequestAborted);
        return result.Succeeded ? TypedResults.Ok(new Invitation(token!)) : AdminHttp.Refused(result);
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

    private static async Task<IResult> UpdateAsync(Guid accountId, string userId, HttpContext context, AuthorityDbContext db,
        UserOperations operations)
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
        if (errors.Count > 0)
        {
            return AdminHttp.Invalid(errors);
        }

        return Answer(await operations.ChangeProfileAsync(user, new ProfileChange(body.Email, body.DisplayName, body.Role), context.Admin().Actor,
            context.RequestAborted), user, context.Response);
    }

    private static async Task<IResult> DeleteAsync(Guid accountId, string userId, HttpContext context, AuthorityDbContext db, UserOperations operations)
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

        var result = await operations.DeleteAsync(user, context.Admin().Actor, context.RequestAborted);
        return result.Succeeded ? TypedResults.NoContent() : AdminHttp.Refused(result);
    }

    /// <summary>One user operation on the user the route names, by the request's admin: the operation's outcome as HTTP.</summary>
    private static async Task<IResult> OperateAsync(Guid accountId, string userId, HttpContext context, AuthorityDbContext db,
        Func<ApplicationUser, Actor, CancellationToken, Task<OperationResult>> operation)
    {
        var user = await FindAsync(accountId, userId, context, db);
        if (user is null)
        {
            return AdminHttp.NotFound("user");
        }

        if (user.Role == AccountRoles.Owner && !context.Admin().MayManageOwners(accountId))
        {
            return OwnersOnly();
        }

        return Answer(await operation(user, context.Admin().Actor, context.RequestAborted), user, context.Response);
    }

    /// <summary>An operation's outcome as the admin API answers it: the user as it now stands, with its version, or a problem.</summary>
    private static IResult Answer(OperationResult result, ApplicationUser user, HttpResponse response)
    {
        if (!result.Succeeded)
        {
            return AdminHttp.Refused(result);
        }

        AdminHttp.SetETag(response, user.Version);
        return TypedResults.Ok(UserView.From(user));
    }

    private static IResult OwnersOnly() => TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Forbidden",
        detail: "Only an owner of the account or a platform administrator may make, change or remove an owner.");

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
}
