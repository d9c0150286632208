using Identity.Core.Audit;
using System.Text.Json;
using Identity.Core.Accounts;
using Identity.Core.Data;
using Identity.Server.Audit;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using OpenIddict.EntityFrameworkCore.Models;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Identity.Server.Admin;

/// <summary>
/// The caller of the admin API, resolved from an access token issued by Identity itself: a platform administrator
/// (a person flagged so, or a client declared <c>PlatformAdmin</c>) manages everything; an account owner or admin
/// manages only their own account. Everyone else is refused.
/// </summary>
/// <remarks>
/// Resolved afresh at every request, never from the token's claims alone nor from a cache: a person disabled, an
/// account suspended, a client deleted or no longer platform admin loses access at the next request on every
/// replica. Revoked tokens never get here: OpenIddict's validation checks their authorization entry first
/// (<see cref="Connect.Replacements.UnstoredTokenAuthorization"/>).
/// </remarks>
public sealed record AdminActor(Actor Actor, bool IsPlatformAdmin, Guid? AccountId, bool IsOwner = false)
{
    public const string PlatformAdminProperty = "identity_platform_admin";

    private const string NotAnAdministrator = "This token does not belong to an administrator.";

    /// <summary>Platform admins see every account; account admins only their own — others do not exist for them (404).</summary>
    public bool CanSee(Guid accountId) => IsPlatformAdmin || AccountId == accountId;

    /// <summary>Only an owner of the account or a platform administrator makes, changes or removes an owner.</summary>
    public bool MayManageOwners(Guid accountId) => IsPlatformAdmin || (IsOwner && AccountId == accountId);

    /// <summary>The actor, or why the token's bearer may not use the admin API.</summary>
    public static async Task<(AdminActor? Actor, string? Refusal)> ResolveAsync(HttpContext context)
    {
        var principal = context.User;
        var subject = principal.GetClaim(Claims.Subject);
        var clientId = principal.GetClaim(Claims.ClientId);
        var ip = context.Connection.RemoteIpAddress?.ToString();
        if (subject is null)
        {
            return (null, NotAnAdministrator);
        }

        var db = context.RequestServices.GetRequiredService<AuthorityDbContext>();
        if (subject == clientId)
        {
            // Client credentials: the client acts for itself. Its row is read here rather than through the client
            // cache, so that a client deleted on another replica is refused at once.
            var properties = await db.Set<OpenIddictEntityFrameworkCoreApplication>().AsNoTracking()
                .Where(a => a.ClientId == clientId)
                .Select(a => a.Properties)
                .SingleOrDefaultAsync(context.RequestAborted);
            return IsPlatformAdminClient(properties)
                ? (new AdminActor(new Actor("client", clientId, clientId, ip), true, null), null)
                : (null, NotAnAdministrator);
        }

        // A person's token is accepted only with the authorization it was issued under (which validation checked).
        if (string.IsNullOrEmpty(principal.GetAuthorizationId()))
        {
            return (null, NotAnAdministrator);
        }

        return await ResolvePersonAsync(db, subject, clientId, ip, context.RequestAborted);
    }

    /// <summary>
    /// A person acting through <paramref name="clientId"/> (the admin API's caller, or the console's signed-in admin):
    /// the one rule for who administers what, read afresh from the database.
    /// </summary>
    public static async Task<(AdminActor? Actor, string? Refusal)> ResolvePersonAsync(AuthorityDbContext db, string subject, string? clientId,
        string? ip, CancellationToken cancellationToken)
    {
        var user = await db.Users.AsNoTracking()
            .Where(u => u.Id == subject)
            .Select(u => new { u.Id, u.IsPlatformAdmin, u.AccountId, u.Role, u.Status, AccountStatus = (AccountStatus?)u.Account!.Status })
            .SingleOrDefaultAsync(cancellationToken);
        if (user is null || user.Status != UserStatus.Active)
        {
            return (null, NotAnAdministrator);
        }

        var actor = new Actor("user", user.Id, clientId, ip);
        if (user.IsPlatformAdmin)
        {
            return (new AdminActor(actor, true, null), null);
        }

        if (!AccountRoles.CanAdminister(user.Role) || user.AccountId is not { } accountId)
        {
            return (null, NotAnAdministrator);
        }

        return user.AccountStatus == AccountStatus.Active
            ? (new AdminActor(actor, false, accountId, user.Role == AccountRoles.Owner), null)
            : (null, "The account is suspended: its administrators cannot manage it until a platform administrator activates it.");
    }

    private static bool IsPlatformAdminClient(string? properties)
    {
        if (string.IsNullOrEmpty(properties))
        {
            return false;
        }

        using var document = JsonDocument.Parse(properties);
        return document.RootElement.ValueKind == JsonValueKind.Object
            && document.RootElement.TryGetProperty(PlatformAdminProperty, out var flag) && flag.ValueKind == JsonValueKind.True;
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
            var (actor, refusal) = await AdminActor.ResolveAsync(invocation.HttpContext);
            if (actor is null)
            {
                return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Forbidden", detail: refusal);
            }

            invocation.HttpContext.Items[Key] = actor;
            return await next(invocation);
        });

    public static IResult PlatformOnly() => TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden,
        title: "Forbidden", detail: "Only platform administrators may do this.");
}
