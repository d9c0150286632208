using System.Security.Claims;
using Identity.Core.Accounts;
using Identity.Core.Data;
using Identity.Server.Audit;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Admin;

/// <summary>
/// The caller of the admin API, resolved from an access token issued by Identity itself: a platform administrator
/// (a person flagged so, or a client declared <c>PlatformAdmin</c>) manages everything; an account owner or admin
/// manages only their own account. Everyone else is refused.
/// </summary>
public sealed record AdminActor(Actor Actor, bool IsPlatformAdmin, Guid? AccountId, bool IsOwner = false)
{
    public const string PlatformAdminProperty = "identity_platform_admin";

    /// <summary>Platform admins see every account; account admins only their own — others do not exist for them (404).</summary>
    public bool CanSee(Guid accountId) => IsPlatformAdmin || AccountId == accountId;

    /// <summary>Only an owner of the account or a platform administrator makes, changes or removes an owner.</summary>
    public bool MayManageOwners(Guid accountId) => IsPlatformAdmin || (IsOwner && AccountId == accountId);

    public static async Task<AdminActor?> ResolveAsync(HttpContext context)
    {
        var principal = context.User;
        var subject = principal.GetClaim(Claims.Subject);
        var clientId = principal.GetClaim(Claims.ClientId);
        var ip = context.Connection.RemoteIpAddress?.ToString();
        if (subject is null)
        {
            return null;
        }

        var services = context.RequestServices;
        if (subject == clientId)
        {
            // Client credentials: the client acts for itself.
            var applications = services.GetRequiredService<IOpenIddictApplicationManager>();
            var application = await applications.FindByClientIdAsync(clientId, context.RequestAborted);
            var properties = application is null ? null : await applications.GetPropertiesAsync(application, context.RequestAborted);
            var platform = properties is not null && properties.TryGetValue(PlatformAdminProperty, out var flag)
                && flag.ValueKind == System.Text.Json.JsonValueKind.True;
            return platform ? new AdminActor(new Actor("client", clientId, clientId, ip), true, null) : null;
        }

        var db = services.GetRequiredService<AuthorityDbContext>();
        var user = await db.Users.AsNoTracking()
            .Where(u => u.Id == subject)
            .Select(u => new { u.Id, u.IsPlatformAdmin, u.AccountId, u.Role, u.Status })
            .SingleOrDefaultAsync(context.RequestAborted);
        if (user is null || user.Status != UserStatus.Active)
        {
            return null;
        }

        var actor = new Actor("user", user.Id, clientId, ip);
        if (user.IsPlatformAdmin)
        {
            return new AdminActor(actor, true, null);
        }

        return AccountRoles.CanAdminister(user.Role) && user.AccountId is { } accountId ? new AdminActor(actor, false, accountId, user.Role == AccountRoles.Owner) : null;
    }
}

public static class AdminActorExtensions
{
    private const string Key = nameof(AdminActor);

    public static AdminActor Admin(this HttpContext context) =>
        context.Items[Key] as AdminActor ?? throw new InvalidOperationException("The admin actor filter did not run.");

    /// <summary>Every admin route runs behind this filter: no token → 401 (by the policy), not an admin → 403.</summary>
    public static RouteGroupBuilder RequireAdminActor(this RouteGroupBuilder group) =>
        group.AddEndpointFilter(async (invocation, next) =>
        {
            var actor = await AdminActor.ResolveAsync(invocation.HttpContext);
            if (actor is null)
            {
                return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden,
                    title: "Forbidden", detail: "This token does not belong to an administrator.");
            }

            invocation.HttpContext.Items[Key] = actor;
            return await next(invocation);
        });

    public static IResult PlatformOnly() => TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden,
        title: "Forbidden", detail: "Only platform administrators may do this.");
}
