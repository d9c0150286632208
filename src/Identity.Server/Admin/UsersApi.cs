using Identity.Core.Data;
using Identity.Core.Operations;

namespace Identity.Server.Admin;

/// <summary>
/// A user as the admin API shows it. <c>PendingEmail</c>: the address the user is moving to, not yet verified (their
/// <c>Email</c> stays until it is); given on one user's answers, null in lists. <c>PlatformAdmin</c>: a platform
/// administrator (decision 0087).
/// </summary>
public sealed record UserView(string Id, Guid? AccountId, string? Email, bool EmailVerified, string? DisplayName, string? Role,
    string Status, bool MfaEnrolled, long Version, DateTimeOffset CreatedAt, string? PendingEmail = null, bool PlatformAdmin = false)
{
    public static UserView From(ApplicationUser u, string? pendingEmail = null) => new(u.Id, u.AccountId, u.Email, u.EmailConfirmed, u.DisplayName,
        u.Role, u.Status.ToString().ToLowerInvariant(), u.TwoFactorEnabled, u.Version, u.CreatedAt, pendingEmail, u.IsPlatformAdmin);
}

/// <summary>Marks an address verified: the user's current one (no <c>email</c>), or the one they are moving to.</summary>
public sealed record VerifyEmailRequest(string? Email);

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
/// as if the account did not exist. Each change goes through <see cref="UserAdministration"/> (the admin's rights, then
/// the user operation: rule, version, events, audit, one transaction), which the console shares; this file translates HTTP.
/// </summary>
public static class UsersApi
{
    public static RouteGroupBuilder MapUsersApi(this RouteGroupBuilder admin)
    {
        var users = admin.MapGroup("/accounts/{accountId:guid}/users").WithTags("Users");
        users.MapGet("/", ListAsync);
        users.MapPost("/", CreateAsync).AcceptsJson<CreateUserRequest>();
        users.MapGet("/{userId:guid}", GetAsync);
        users.MapPatch("/{userId:guid}", UpdateAsync).AcceptsJson<UpdateUserRequest>();
        users.MapDelete("/{userId:guid}", DeleteAsync);
        users.MapPost("/{userId:guid}/invitation", ResendInvitationAsync).AcceptsJson<InvitationRequest>();
        users.MapPost("/{userId:guid}/verify-email", VerifyEmailAsync).AcceptsJson<VerifyEmailRequest>();
        users.MapPost("/{userId:guid}/verification-email", (Guid accountId, string userId, HttpContext c, UserAdministration u) =>
            OperateAsync(accountId, userId, c, u, u.ResendVerificationAsync));
        users.MapPost("/{userId:guid}/disable", (Guid accountId, string userId, HttpContext c, UserAdministration u) =>
            OperateAsync(accountId, userId, c, u, u.DisableAsync));
        users.MapPost("/{userId:guid}/enable", (Guid accountId, string userId, HttpContext c, UserAdministration u) =>
            OperateAsync(accountId, userId, c, u, u.EnableAsync));
        users.MapPost("/{userId:guid}/reset-mfa", (Guid accountId, string userId, HttpContext c, UserAdministration u) =>
            OperateAsync(accountId, userId, c, u, u.ResetMfaAsync));
        users.MapPost("/{userId:guid}/revoke-sessions", (Guid accountId, string userId, HttpContext c, UserAdministration u) =>
            OperateAsync(accountId, userId, c, u, u.RevokeSessionsAsync));
        return admin;
    }

    private static async Task<IResult> ListAsync(Guid accountId, HttpContext context, UserAdministration users,
        string? email, string? status, string? after, int? limit)
    {
        if (!await users.CanSeeAccountAsync(context.Admin(), accountId, context.RequestAborted))
        {
            return AdminHttp.NotFound("account");
        }

        if (!AdminHttp.TryDecodeCursor(after, out var cursor))
        {
            return AdminHttp.Invalid("after", "The cursor is not valid.");
        }

        if (UserAdministration.TryParseStatus(status, out var wanted) is { } refused)
        {
            return AdminHttp.Refused(refused);
        }

        var (page, more) = await users.ListAsync(accountId, email, wanted, cursor, AdminHttp.ClampLimit(limit), context.RequestAborted);
        var items = page.Select(u => UserView.From(u)).ToList();
        return TypedResults.Ok(new Page<UserView>(items, more ? AdminHttp.EncodeCursor(items[^1].Id) : null));
    }

    private static async Task<IResult> CreateAsync(Guid accountId, HttpContext context, UserAdministration users)
    {
        if (!await users.CanSeeAccountAsync(context.Admin(), accountId, context.RequestAborted))
        {
            return AdminHttp.NotFound("account");
        }

        var (body, problem) = await AdminHttp.ReadAsync<CreateUserRequest>(context.Request);
        if (problem is not null)
        {
            return problem;
        }

        var (result, user, invitation) = await users.CreateAsync(context.Admin(), accountId, body!, context.RequestAborted);
        if (!result.Succeeded)
        {
            return AdminHttp.Refused(result);
        }

        AdminHttp.SetETag(context.Response, user!.Version);
        return TypedResults.Created($"/admin/v1/accounts/{accountId}/users/{user.Id}", new CreatedUser(UserView.From(user), invitation));
    }

    private static async Task<IResult> ResendInvitationAsync(Guid accountId, string userId, HttpContext context, UserAdministration users)
    {
        var admin = context.Admin();
        var user = await users.FindAsync(admin, accountId, userId, context.RequestAborted);
        if (user is null)
        {
            return AdminHttp.NotFound("user");
        }

        if (UserAdministration.OwnerRule(admin, accountId, user.Role) is { } forbidden)
        {
            return AdminHttp.Refused(forbidden); // before the body is read
        }

        var (body, problem) = await ReadOptionalAsync(context.Request, new InvitationRequest(null));
        if (problem is not null)
        {
            return problem;
        }

        var (result, token) = await users.ResendInvitationAsync(admin, user, body!.SendEmail == true, context.RequestAborted);
        return result.Succeeded ? TypedResults.Ok(new Invitation(token!)) : AdminHttp.Refused(result);
    }

    private static async Task<IResult> GetAsync(Guid accountId, string userId, HttpContext context, UserAdministration users)
    {
        var user = await users.FindAsync(context.Admin(), accountId, userId, context.RequestAborted);
        if (user is null)
        {
            return AdminHttp.NotFound("user");
        }

        AdminHttp.SetETag(context.Response, user.Version);
        return TypedResults.Ok(UserView.From(user, await users.PendingEmailAsync(user, context.RequestAborted)));
    }

    private static async Task<IResult> VerifyEmailAsync(Guid accountId, string userId, HttpContext context, UserAdministration users)
    {
        var user = await users.FindAsync(context.Admin(), accountId, userId, context.RequestAborted);
        if (user is null)
        {
            return AdminHttp.NotFound("user");
        }

        var (body, problem) = await ReadOptionalAsync(context.Request, new VerifyEmailRequest(null));
        if (problem is not null)
        {
            return problem;
        }

        return await AnswerAsync(await users.MarkEmailVerifiedAsync(context.Admin(), user, body!.Email, context.RequestAborted), user, context, users);
    }

    /// <summary>A JSON body that may be left out (then <paramref name="absent"/>), or the problem with the one sent.</summary>
    private static async Task<(T? Body, IResult? Problem)> ReadOptionalAsync<T>(HttpRequest request, T absent) where T : class =>
        request.ContentLength is > 0 || request.Headers.TransferEncoding.Count > 0 ? await AdminHttp.ReadAsync<T>(request) : (absent, null);

    private static async Task<IResult> UpdateAsync(Guid accountId, string userId, HttpContext context, UserAdministration users)
    {
        var user = await users.FindAsync(context.Admin(), accountId, userId, context.RequestAborted);
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

        return await AnswerAsync(await users.ChangeProfileAsync(context.Admin(), user, body!, context.RequestAborted), user, context, users);
    }

    private static async Task<IResult> DeleteAsync(Guid accountId, string userId, HttpContext context, UserAdministration users)
    {
        if (!context.Admin().CanSee(accountId))
        {
            return AdminHttp.NotFound("account");
        }

        var user = await users.FindAsync(context.Admin(), accountId, userId, context.RequestAborted);
        if (user is null)
        {
            return TypedResults.NoContent(); // idempotent: already gone
        }

        var result = await users.DeleteAsync(context.Admin(), user, context.RequestAborted);
        return result.Succeeded ? TypedResults.NoContent() : AdminHttp.Refused(result);
    }

    /// <summary>One user operation on the user the route names, by the request's admin: the operation's outcome as HTTP.</summary>
    private static async Task<IResult> OperateAsync(Guid accountId, string userId, HttpContext context, UserAdministration users,
        Func<AdminActor, ApplicationUser, CancellationToken, Task<OperationResult>> operation)
    {
        var user = await users.FindAsync(context.Admin(), accountId, userId, context.RequestAborted);
        if (user is null)
        {
            return AdminHttp.NotFound("user");
        }

        return await AnswerAsync(await operation(context.Admin(), user, context.RequestAborted), user, context, users);
    }

    /// <summary>An operation's outcome as the admin API answers it: the user as it now stands, with its version, or a problem.</summary>
    private static async Task<IResult> AnswerAsync(OperationResult result, ApplicationUser user, HttpContext context, UserAdministration users)
    {
        if (!result.Succeeded)
        {
            return AdminHttp.Refused(result);
        }

        AdminHttp.SetETag(context.Response, user.Version);
        return TypedResults.Ok(UserView.From(user, await users.PendingEmailAsync(user, context.RequestAborted)));
    }
}
